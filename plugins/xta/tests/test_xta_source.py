"""``type: xta``: the generic mailbox source — fetch, durable intake, then close; exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_xta import XtaSource
from hub_xta.simulator import enqueue, get_json
from xta_helpers import AUTHORITY, PORTAL, StartXta, antrag_metadata, sha256

from hub import ConnectorContext, HeldMessages, Intake, IntakeOutcome, Retryable
from hub.blobs import BlobStore
from hub.journal import SqliteJournal
from hub.testing.harness import RunningHub

ANTRAG = b"<baugenehmigung.antrag.0200/>"


def make_source(
    url: str,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    blobs: BlobStore,
    journal: SqliteJournal,
    **settings: Any,
) -> XtaSource:
    config = XtaSource.Config.model_validate(
        {
            "type": "xta",
            "xta": {"url": url, "account": {"identifier": AUTHORITY}, "timeout_seconds": 5},
            **settings,
        }
    )
    context = ConnectorContext(
        name="xta-in",
        blobs=blobs,
        schemas=schema_dir,
        data_dir=Path("."),
        _http=lambda: http,
        _held=HeldMessages(journal, "xta-in"),
    )
    return XtaSource(config, context)


class Journal:
    """An intake function like the core's: idempotent on (source, external_id); can crash."""

    def __init__(self) -> None:
        self.applications: dict[str, Intake] = {}
        self.crash = False

    async def __call__(self, intake: Intake) -> IntakeOutcome:
        if self.crash:
            raise Retryable("the hub went down before the commit")
        key = intake.application.external_id
        duplicate = key in self.applications
        self.applications.setdefault(key, intake)
        return IntakeOutcome(self.applications[key].application.id, duplicate)


async def test_poll_takes_closes_and_filters(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    plan = b"%PDF-1.7 plan"
    antrag = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(subject="Neubau", process_requester="AZ-7"),
        message=ANTRAG,
        attachments=[("lageplan.pdf", plan, "application/pdf")],
    )
    other = await enqueue(
        http, xta.url, AUTHORITY, metadata=antrag_metadata(message_type="anderes.9999"), message=b"<x/>"
    )
    source = make_source(
        xta.url,
        schema_dir,
        http,
        blobs,
        held_journal,
        message_types=["baugenehmigung.antrag.0200"],
        service="bauantrag",
    )
    journal = Journal()
    assert await source.poll(journal) == 1

    [intake] = journal.applications.values()
    app = intake.application
    assert app.external_id == antrag["message_id"] and app.service == "bauantrag"
    assert app.form["xta_author"] == PORTAL and app.form["xta_subject"] == "Neubau"
    assert app.form["xta_process_requester"] == "AZ-7"
    assert app.original is not None and await blobs.read_bytes(app.original.blob) == ANTRAG
    assert [(a.name, a.sha256) for a in app.attachments] == [("lageplan.pdf", sha256(plan))]
    closed = await get_json(http, xta.url, "/_sim/closed")
    assert [c["message_id"] for c in closed] == [antrag["message_id"]]
    assert list(xta.state.mailbox(AUTHORITY)) == [other["message_id"]]  # not ours: left for others


async def test_crash_before_commit_fetches_again_and_takes_once(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    queued = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=ANTRAG)
    source = make_source(xta.url, schema_dir, http, blobs, held_journal)
    journal = Journal()
    journal.crash = True
    with pytest.raises(Retryable):
        await source.poll(journal)
    assert await get_json(http, xta.url, "/_sim/closed") == []  # not closed: still in the mailbox

    journal.crash = False
    restarted = make_source(xta.url, schema_dir, http, blobs, held_journal)
    assert await restarted.poll(journal) == 1
    assert await restarted.poll(journal) == 0
    assert len(journal.applications) == 1
    closed = await get_json(http, xta.url, "/_sim/closed")
    assert [c["message_id"] for c in closed] == [queued["message_id"]]
    assert xta.state.mailbox(AUTHORITY) == {}


async def test_check(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta(accounts=[AUTHORITY])
    assert (await make_source(xta.url, schema_dir, http, blobs, held_journal).check()).ok
    xta.state.locked.add(AUTHORITY)
    result = await make_source(xta.url, schema_dir, http, blobs, held_journal).check()
    assert not result.ok and "locked" in result.message
    no_schemas = make_source(xta.url, schema_dir, http, blobs, held_journal)
    no_schemas.context.schemas = None
    assert not (await no_schemas.check()).ok


async def test_in_a_running_hub(
    start_xta: StartXta, http: aiohttp.ClientSession, schema_dir: Path, hub_factory: Any
) -> None:
    xta = await start_xta()
    queued = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(), message=ANTRAG)
    running: RunningHub = await hub_factory(
        {
            "xta-in": {
                "type": "xta",
                "service": "bauantrag",
                "xta": {"url": xta.url, "account": {"identifier": AUTHORITY}},
            },
            "rec": {"type": "test-recording"},
        },
        [{"name": "bau", "from": "xta-in", "to": ["rec"]}],
        schemas=str(schema_dir),
    )
    sink = running.hub.connectors["rec"]
    await running.wait_for(lambda: len(sink.delivered) == 1, what="the XTA message to be filed")  # type: ignore[attr-defined]
    await running.wait_for(lambda: not xta.state.mailbox(AUTHORITY), what="the close")
    [record] = sink.delivered.values()  # type: ignore[attr-defined]
    assert record.service == "bauantrag"
    assert [c.message_id for c in xta.state.closed] == [queued["message_id"]]
