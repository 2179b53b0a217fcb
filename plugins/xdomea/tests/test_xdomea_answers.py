"""The DMS's answers 0629/0630 (receipt_requested) and the rule that a ProzessID is uploaded once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hub_xdomea.answers import IMPORT, RECEIPT, answer_file_name, build_import, build_receipt
from hub_xdomea.message import process_id
from hub_xdomea.simulator import ANSWERS_PATH
from lxml import etree
from pydantic import ValidationError
from xdomea_helpers import StartSimulator, filed_record, make_sink, read_zip, zips_in

from hub import Application, ConnectorContext, Permanent, Retryable
from hub.blobs import BlobStore
from hub.testing import delivery_context, make_application


async def bauantrag(blobs: BlobStore) -> Application:
    return await make_application(
        blobs, service="baugenehmigung", files={"Lageplan.pdf": b"%PDF-1.4 Lageplan\n"}
    )


def with_receipts(url: str) -> dict[str, Any]:
    return {"url": url + "/xdomea/import", "receipt_requested": True, "answers_url": url + ANSWERS_PATH}


async def test_lost_answer_without_receipts_fails_visibly_and_never_uploads_again(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(drop_after_import=1, duplicate_detection=False)
    sink = make_sink(xdomea_context, "http", url=dms.import_url)
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    with pytest.raises(Retryable, match="connection"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert store["xdomea"]["state"] == "sending"  # durable before the upload: the retry knows
    with pytest.raises(Permanent, match="may have imported it"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert dms.state.uploads == 1
    assert len(dms.state.imports_of(process_id(app.id))) == 1


async def test_lost_answer_with_receipts_completes_on_the_dms_answers_with_one_import(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(drop_after_import=1, duplicate_detection=False)
    sink = make_sink(xdomea_context, "http", **with_receipts(dms.url))
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    with pytest.raises(Retryable, match="connection"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    delivery = await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert delivery.reference == process_id(app.id) and store["xdomea"]["state"] == "confirmed"
    assert dms.state.uploads == 1
    assert len(dms.state.imports_of(process_id(app.id))) == 1


async def test_crash_before_the_answer_never_uploads_again(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(duplicate_detection=False, hold_answers=True)
    sink = make_sink(xdomea_context, "http", **with_receipts(dms.url))
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    with pytest.raises(Retryable, match=r"waiting for the DMS's import confirmation .* no receipt"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    # The hub "crashed" after the upload and before it recorded the answer: the journal says sending.
    store["xdomea"]["state"] = "sending"
    with pytest.raises(Retryable, match="waiting"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    await dms.set_faults(hold_answers=False)
    delivery = await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    again = await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert again.duplicate and again.reference == delivery.reference
    assert dms.state.uploads == 1
    assert len(dms.state.imports_of(process_id(app.id))) == 1


async def test_hub_dying_during_the_upload_never_uploads_again(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(duplicate_detection=False, latency_seconds=30)
    sink = make_sink(xdomea_context, "http", **with_receipts(dms.url))
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    attempt = asyncio.create_task(sink.deliver(filed_record(app), delivery_context(app, blobs, store)))
    async with asyncio.timeout(10):  # the upload is under way once "sending" is durable
        while store.get("xdomea", {}).get("state") != "sending":
            await asyncio.sleep(0.01)
    attempt.cancel()  # the hub dies with the request in flight
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await dms.set_faults(latency_seconds=0)
    for _ in range(2):  # the retries look for the DMS's answers; they do not upload
        with pytest.raises(Retryable, match=r"waiting for .* no receipt \(0629\) either"):
            await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert dms.state.uploads == 0 and dms.state.history == []
    assert store["xdomea"]["state"] == "sending"


async def test_import_the_dms_refuses_is_a_permanent_failure_with_its_reason(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(refuse_import="Ablage im Aktenplan 63.01 gesperrt")
    sink = make_sink(xdomea_context, "http", **with_receipts(dms.url))
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    with pytest.raises(Permanent) as refused:
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    message = str(refused.value)
    assert "refused the import" in message and "Ablage im Aktenplan 63.01 gesperrt" in message
    assert "0605005 (Datei kann im DMS nicht abgelegt werden.)" in message
    assert dms.state.imports_of(process_id(app.id)) == [] and dms.state.failed_imports == 1
    with pytest.raises(Permanent, match="refused the import"):  # a replay: read again, not sent again
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert dms.state.uploads == 1


async def test_server_error_is_no_upload_and_is_sent_again(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(fail_next=1, duplicate_detection=False)
    sink = make_sink(xdomea_context, "http", **with_receipts(dms.url))
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    with pytest.raises(Retryable, match="503"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert store["xdomea"]["state"] == "unsent"  # the DMS answered: it did not take it
    await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert len(dms.state.imports_of(process_id(app.id))) == 1


async def test_directory_mode_reads_the_answers_from_the_answer_directory(
    xdomea_context: ConnectorContext, blobs: BlobStore, tmp_path: Path
) -> None:
    inbox, answers = tmp_path / "import", tmp_path / "answers"
    answers.mkdir()
    sink = make_sink(xdomea_context, path=inbox, receipt_requested=True, answer_path=answers)
    app = await bauantrag(blobs)
    pid = process_id(app.id)
    store: dict[str, Any] = {}
    with pytest.raises(Retryable, match="waiting"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    [package] = zips_in(inbox)
    request = etree.fromstring(read_zip(package).xml)
    assert request.findtext("{*}Kopf/{*}Empfangsbestaetigung") == "1"
    # The DMS takes the ZIP away and answers, as an importer does.
    package.unlink()
    now = datetime.now(UTC)
    (answers / answer_file_name(pid, RECEIPT)).write_bytes(build_receipt(request, now))
    with pytest.raises(Retryable, match="confirmed the receipt"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    (answers / answer_file_name(pid, IMPORT)).write_bytes(build_import(request, now))
    delivery = await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert delivery.reference == pid and zips_in(inbox) == []  # nothing written twice


def test_receipts_need_a_place_to_read_the_answers(xdomea_context: ConnectorContext, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="answer_path"):
        make_sink(xdomea_context, path=tmp_path, receipt_requested=True)
    with pytest.raises(ValidationError, match="answers_url"):
        make_sink(xdomea_context, "http", url="http://127.0.0.1:1/x", receipt_requested=True)


async def test_check_names_a_missing_answer_directory(
    xdomea_context: ConnectorContext, tmp_path: Path
) -> None:
    answers = tmp_path / "answers"
    sink = make_sink(xdomea_context, path=tmp_path / "import", receipt_requested=True, answer_path=answers)
    result = await sink.check()
    assert not result.ok and "answer directory" in result.message
    answers.mkdir()
    assert (await sink.check()).ok
