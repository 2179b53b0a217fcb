"""Delivery by HTTP upload to the simulated DMS: imported once, recognised by ProzessID, faults classified."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hub_xdomea.message import package_name, process_id
from xdomea_helpers import (
    PASSWORD,
    StartSimulator,
    assert_valid,
    closed_loopback_port,
    filed_record,
    make_sink,
)

from hub import Application, ConnectorContext, Permanent, Retryable
from hub.blobs import BlobStore
from hub.testing import delivery_context, make_application


async def bauantrag(blobs: BlobStore) -> Application:
    return await make_application(
        blobs,
        service="baugenehmigung",
        files={"Lageplan.pdf": b"%PDF-1.4 Lageplan\n", "Ansicht.jpg": b"\xff\xd8\xff Ansicht"},
    )


async def test_upload_is_imported_with_every_file(
    start_simulator: StartSimulator,
    xdomea_context: ConnectorContext,
    blobs: BlobStore,
    xdomea_xsd: Any,
    tmp_path: Path,
) -> None:
    dms = await start_simulator()
    sink = make_sink(xdomea_context, "http", url=dms.import_url)
    app = await bauantrag(blobs)
    record = filed_record(app)
    delivery = await sink.deliver(record, delivery_context(app, blobs))

    imported = dms.import_of(app.id)
    assert imported is not None
    assert delivery.reference == imported.prozess_id == process_id(app.id)
    assert delivery.correlations == {"prozess_id": imported.prozess_id, "import_id": imported.import_id}
    assert not delivery.duplicate
    assert delivery.details["status"] == 201
    assert imported.package == package_name(imported.prozess_id)
    assert imported.user == "aktenhub"
    assert_valid(xdomea_xsd, imported.xml)
    expected = sorted(str(d.blob).removeprefix("sha256:") for d in record.documents)
    assert sorted(f.sha256 for f in imported.files) == expected
    [akte] = imported.objects
    assert (akte["kind"], akte["kennzeichen"]) == ("Akte", "63-2025-00042")
    [vorgang] = akte["children"]
    assert [d["type"] for d in vorgang["children"]] == ["Anlage", "Anlage", "Originalantrag"]

    # The ZIP the DMS keeps is the one the sink built; the sink's work file is gone.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{dms.url}/_sim/imports/{imported.prozess_id}/package") as r,
    ):
        assert r.status == 200
        kept = await r.read()
    with zipfile.ZipFile(io.BytesIO(kept)) as archive:
        digests = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist()}
    assert sorted(v for k, v in digests.items() if not k.endswith(".xml")) == expected
    assert list((tmp_path / "xdomea" / "xdomea").iterdir()) == []


async def test_repeated_prozess_id_is_recognised_by_the_dms(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator()
    sink = make_sink(xdomea_context, "http", url=dms.import_url)
    app = await bauantrag(blobs)
    first = await sink.deliver(filed_record(app), delivery_context(app, blobs))
    # A delivery that lost its checkpoint uploads again: the DMS answers "already imported".
    again = await sink.deliver(filed_record(app), delivery_context(app, blobs))
    assert again.duplicate and not first.duplicate
    assert again.reference == first.reference
    assert again.correlations["import_id"] == first.correlations["import_id"]
    assert again.details["status"] == 200
    assert len(dms.state.imports) == 1
    assert dms.state.duplicates == 1


async def test_refusal_carries_the_servers_message(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(behoerdenschluessel="05315000")
    sink = make_sink(xdomea_context, "http", url=dms.import_url)
    app = await bauantrag(blobs)
    with pytest.raises(Permanent, match=r"refused the request \(422\): .*addressed to .*05382000"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs))
    assert dms.state.imports == {}


async def test_wrong_password_is_permanent_and_check_says_so(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator()
    sink = make_sink(xdomea_context, "http", url=dms.import_url, password="wrong")
    app = await bauantrag(blobs)
    with pytest.raises(Permanent, match=r"refused user 'aktenhub' \(401\)"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs))
    result = await sink.check()
    assert not result.ok and "401" in result.message


async def test_server_error_then_success(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext, blobs: BlobStore
) -> None:
    dms = await start_simulator(fail_next=1)
    sink = make_sink(xdomea_context, "http", url=dms.import_url)
    app = await bauantrag(blobs)
    store: dict[str, Any] = {}
    with pytest.raises(Retryable, match="503"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    delivery = await sink.deliver(filed_record(app), delivery_context(app, blobs, store))
    assert not delivery.duplicate and len(dms.state.imports) == 1


async def test_check_against_the_dms(
    start_simulator: StartSimulator, xdomea_context: ConnectorContext
) -> None:
    dms = await start_simulator()
    sink = make_sink(xdomea_context, "http", url=dms.import_url)
    result = await sink.check()
    assert result.ok, result.message
    assert result.details["status"] == "200"
    assert PASSWORD not in str(await sink.diagnostics())
    unreachable = make_sink(
        xdomea_context, "http", url=f"http://127.0.0.1:{closed_loopback_port()}/xdomea/import"
    )
    result = await unreachable.check()
    assert not result.ok and "connection" in result.message


@pytest.mark.parametrize(
    ("status", "answer", "outcome"),
    [
        (409, {"message": "ProzessID bereits importiert"}, "duplicate"),
        (409, {"message": "Aktenzeichen belongs to another Akte"}, Permanent),
        (429, {"message": "slow down"}, Retryable),
        (413, {"message": "too large"}, Permanent),
        (302, {}, Permanent),
        (200, {"status": "already imported", "importId": 7}, "duplicate"),
        (204, None, "imported"),
    ],
)
async def test_answers_of_other_dms_are_classified(
    status: int,
    answer: dict[str, Any] | None,
    outcome: Any,
    xdomea_context: ConnectorContext,
    blobs: BlobStore,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        if answer is None:
            return web.Response(status=status)
        return web.json_response(answer, status=status, headers={"Location": "/login"})

    app = web.Application()
    app.router.add_post("/import", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        sink = make_sink(xdomea_context, "http", url=f"http://127.0.0.1:{server.port}/import")
        application = await bauantrag(blobs)
        deliver = sink.deliver(filed_record(application), delivery_context(application, blobs))
        if isinstance(outcome, type):
            with pytest.raises(outcome, match=str(status)):
                await deliver
        else:
            delivery = await deliver
            assert delivery.duplicate is (outcome == "duplicate")
    finally:
        await server.close()
