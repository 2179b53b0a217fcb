"""No single XTA message blocks the mailbox: what cannot be taken is held, the poll goes on."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import hdrs, web
from aiohttp.test_utils import TestServer
from hub_xta import XtaSource
from hub_xta.simulator import enqueue, set_faults
from hub_xta.xml import META, OSCI, WSA, qname
from lxml import etree
from xta_helpers import AUTHORITY, PORTAL, StartXta, Xta, antrag_metadata

from hub import (
    BackOff,
    ConnectorContext,
    HeldMessages,
    HeldState,
    Intake,
    IntakeOutcome,
    Permanent,
    Retryable,
)
from hub.blobs import BlobStore
from hub.held import HeldFilter
from hub.journal import SqliteJournal
from hub.testing.harness import blob_files, stored_blobs

ANTRAG = b"<baugenehmigung.antrag.0200/>"
GIB = 1024**3


class Intakes:
    """An intake function like the core's: idempotent on (source, external_id)."""

    def __init__(self) -> None:
        self.applications: dict[str, Intake] = {}

    async def __call__(self, intake: Intake) -> IntakeOutcome:
        key = intake.application.external_id
        duplicate = key in self.applications
        self.applications.setdefault(key, intake)
        return IntakeOutcome(self.applications[key].application.id, duplicate)

    def blob_refs(self) -> set[str]:
        """Every blob an application taken in references: its attachments and its original."""
        refs = set()
        for intake in self.applications.values():
            app = intake.application
            refs |= {a.blob for a in app.attachments} | ({app.original.blob} if app.original else set())
        return refs


def make_source(
    xta: Xta,
    schema_dir: Path,
    http: aiohttp.ClientSession,
    blobs: BlobStore,
    journal: SqliteJournal,
    backoff: BackOff | None = None,
    **xta_settings: Any,
) -> XtaSource:
    config = XtaSource.Config.model_validate(
        {
            "type": "xta",
            "message_types": ["baugenehmigung.antrag.0200"],
            "fetch_backoff": (backoff or BackOff()).model_dump(),
            "xta": {
                "url": xta.url,
                "account": {"identifier": AUTHORITY},
                "timeout_seconds": 5,
                **xta_settings,
            },
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


async def queue(http: aiohttp.ClientSession, xta: Xta, content: bytes = ANTRAG, **metadata: Any) -> str:
    answer = await enqueue(http, xta.url, AUTHORITY, metadata=antrag_metadata(**metadata), message=content)
    message_id: str = answer["message_id"]
    return message_id


async def held_states(journal: SqliteJournal) -> dict[str, tuple[str, str]]:
    return {h.message_id: (h.state, h.reason_code) for h in await journal.list_held(HeldFilter())}


async def test_oversize_by_msgsize_is_quarantined_without_download_and_the_rest_is_taken(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    huge = await queue(http, xta, msg_size=GIB)  # declares 1 GiB: never fetched
    valid = await queue(http, xta)
    source = make_source(xta, schema_dir, http, blobs, held_journal, max_content=1024**2)
    intakes = Intakes()
    assert await source.poll(intakes) == 1
    assert await source.poll(intakes) == 0  # again: nothing is fetched twice

    assert list(intakes.applications) == [valid]
    assert xta.state.mailbox(AUTHORITY)[huge].fetches == 0
    assert [c.message_id for c in xta.state.closed] == [valid]
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.message_id, held.state, held.reason_code) == (huge, HeldState.QUARANTINED, "oversize")
    assert held.sender == PORTAL and "1073741824" in held.reason


async def test_content_larger_than_allowed_stops_the_download_and_the_poll_goes_on(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta(endless_content_next=1)  # the first content fetched never ends
    hostile = await queue(http, xta)
    valid = await queue(http, xta)
    source = make_source(xta, schema_dir, http, blobs, held_journal, max_content=256 * 1024)
    intakes = Intakes()
    assert await source.poll(intakes) == 1  # returns at all: the endless part was not read to its end

    assert list(intakes.applications) == [valid]
    assert await held_states(held_journal) == {hostile: (HeldState.QUARANTINED, "oversize")}
    # The valid message's blobs only: nothing of the hostile one stays, not even a temporary file.
    assert stored_blobs(blobs) == intakes.blob_refs() and len(intakes.blob_refs()) == 1
    assert blob_files(blobs.root) == []
    assert [c.message_id for c in xta.state.closed] == [valid]
    assert await source.poll(intakes) == 0
    assert xta.state.mailbox(AUTHORITY)[hostile].fetches == 1


async def test_encrypted_message_is_quarantined_before_its_content_is_downloaded(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    encrypted = await queue(http, xta, encrypted=True)
    valid = await queue(http, xta)
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    intakes = Intakes()
    assert await source.poll(intakes) == 1
    assert await source.poll(intakes) == 0

    assert list(intakes.applications) == [valid]
    assert await held_states(held_journal) == {encrypted: (HeldState.QUARANTINED, "encrypted")}
    assert xta.state.mailbox(AUTHORITY)[encrypted].fetches == 1  # once, not on every poll
    # The valid message's blobs only: the encrypted content was never stored, not even in part.
    assert stored_blobs(blobs) == intakes.blob_refs() and len(intakes.blob_refs()) == 1
    assert blob_files(blobs.root) == []


async def test_other_message_types_are_quarantined_from_their_metadata(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    other = await queue(http, xta, message_type="anderes.9999")
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    assert await source.poll(Intakes()) == 0
    assert await held_states(held_journal) == {other: (HeldState.QUARANTINED, "message_type")}
    assert xta.state.mailbox(AUTHORITY)[other].fetches == 0
    assert xta.state.closed == []  # it waits for an operator's decision


async def test_failing_fetch_backs_off_and_is_quarantined_after_the_last_try(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
    tmp_path: Path,
) -> None:
    xta = await start_xta()
    stuck = await queue(http, xta)
    valid = await queue(http, xta)
    await set_faults(http, xta.url, fail_messages=[stuck])  # the server cannot deliver this one
    patient = make_source(xta, schema_dir, http, blobs, held_journal, BackOff(max_fetches=3))
    intakes = Intakes()
    assert await patient.poll(intakes) == 1
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.state, held.fetches, held.reason_code) == (HeldState.RETRYING, 1, "fetch_failed")
    assert held.next_fetch_at is not None
    assert await patient.poll(intakes) == 0  # backing off: not fetched
    assert xta.state.requests["getMessage"] == 2

    # Without waiting between fetches (a journal of its own): three fetches, then quarantined for good.
    journal = SqliteJournal(tmp_path / "eager.db")
    await journal.open()
    try:
        eager = make_source(xta, schema_dir, http, blobs, journal, BackOff(max_fetches=3, initial_seconds=0))
        for _ in range(4):
            await eager.poll(intakes)
        [held] = await journal.list_held(HeldFilter())
    finally:
        await journal.close()
    assert (held.state, held.fetches) == (HeldState.QUARANTINED, 3)
    assert "fetched 3 times" in held.reason and "HTTP 503" in held.reason
    assert xta.state.requests["getMessage"] == 2 + 3  # the stuck one: twice above, three times here
    assert list(intakes.applications) == [valid]


async def test_a_retrying_message_taken_later_leaves_no_record(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    flaky = await queue(http, xta)
    await set_faults(http, xta.url, fail_messages=[flaky])
    source = make_source(xta, schema_dir, http, blobs, held_journal, BackOff(initial_seconds=0))
    intakes = Intakes()
    assert await source.poll(intakes) == 0
    await set_faults(http, xta.url, fail_messages=[])
    assert await source.poll(intakes) == 1
    assert list(intakes.applications) == [flaky]
    assert await held_journal.list_held(HeldFilter()) == []


async def test_server_trouble_stops_the_poll_without_charging_the_message(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    await queue(http, xta)
    await queue(http, xta)
    await set_faults(http, xta.url, fail_operations=["getMessage", "checkAccountActive"])
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    with pytest.raises(Retryable):
        await source.poll(Intakes())
    assert await held_journal.list_held(HeldFilter()) == []
    assert xta.state.requests["getMessage"] == 1  # stopped at the first


async def test_failed_close_is_retried_next_poll_without_downloading_again(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta(fail_close_next=1)
    first = await queue(http, xta)
    second = await queue(http, xta)
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    intakes = Intakes()
    assert await source.poll(intakes) == 2  # the failed close of the first did not stop the second
    assert [c.message_id for c in xta.state.closed] == [second]
    assert await source.poll(intakes) == 0
    assert [c.message_id for c in xta.state.closed] == [second, first]
    assert xta.state.requests["getMessage"] == 2
    assert xta.state.mailbox(AUTHORITY) == {}


async def test_message_the_hub_refuses_to_take_in_is_quarantined(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    unroutable = await queue(http, xta, subject="kein Weg")
    valid = await queue(http, xta)

    class NoRouteFor(Intakes):
        async def __call__(self, intake: Intake) -> IntakeOutcome:
            if intake.application.external_id == unroutable:
                raise Permanent("no route takes service 'baugenehmigung.antrag.0200' from 'xta-in'")
            return await super().__call__(intake)

    intakes = NoRouteFor()
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    assert await source.poll(intakes) == 1
    assert list(intakes.applications) == [valid]
    assert await held_states(held_journal) == {unroutable: (HeldState.QUARANTINED, "intake_refused")}
    assert [c.message_id for c in xta.state.closed] == [valid]  # the refused one stays upstream


async def test_held_messages_at_the_head_do_not_use_up_a_poll(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta(page_size=2)  # the status list comes in pages of two
    others = [await queue(http, xta, message_type="anderes.9999") for _ in range(5)]
    valid = await queue(http, xta)
    source = make_source(xta, schema_dir, http, blobs, held_journal)
    source.config.max_per_poll = 1
    intakes = Intakes()
    assert await source.poll(intakes) == 1
    assert list(intakes.applications) == [valid]
    assert set(await held_states(held_journal)) == set(others)
    assert xta.state.requests["getMessage"] == 1


async def test_a_status_list_entry_that_does_not_fit_the_schema_spoils_nothing_else(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    valid = await queue(http, xta)
    broken_id = "urn:de:xta:messageid:kaputt:1"
    template: list[etree._Element] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        """A server of another make: it lists one more message, whose metadata lacks its MessageType."""
        body = await request.read()
        headers = {hdrs.CONTENT_TYPE: request.headers[hdrs.CONTENT_TYPE]}
        async with http.post(xta.url + request.path, data=body, headers=headers) as answer:
            data, media = await answer.read(), answer.headers[hdrs.CONTENT_TYPE]
            status = answer.status
        if b"MsgStatusList" in data and media.startswith("application/soap+xml"):
            envelope = etree.fromstring(data)
            listing = envelope.find(f".//{qname(OSCI, 'MsgStatusList')}")
            assert listing is not None
            if not template:
                template.append(copy.deepcopy(listing[0]))
            broken = copy.deepcopy(template[0])
            broken.find(f".//{qname(WSA, 'MessageID')}").text = broken_id  # type: ignore[union-attr]
            message_type = broken.find(f".//{qname(META, 'MessageType')}")
            message_type.getparent().remove(message_type)  # type: ignore[union-attr]
            listing.insert(0, broken)
            data = etree.tostring(envelope)
        return web.Response(body=data, status=status, headers={hdrs.CONTENT_TYPE: media})

    app = web.Application()
    app.router.add_post("/{port}", forward)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        other_make = Xta(f"http://127.0.0.1:{server.port}", xta.state)
        source = make_source(other_make, schema_dir, http, blobs, held_journal)
        intakes = Intakes()
        assert await source.poll(intakes) == 1
        assert await source.poll(intakes) == 0  # listed again: recorded once, nothing fetched
    finally:
        await server.close()
    assert xta.state.requests["getStatusList"] == 2 and xta.state.requests["getMessage"] == 1
    assert list(intakes.applications) == [valid]
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.message_id, held.state, held.reason_code) == (broken_id, HeldState.QUARANTINED, "metadata")


async def test_a_message_that_trips_the_reader_is_retried_then_quarantined(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    tricky = await queue(http, xta, subject="Sonderzeichen")
    valid = await queue(http, xta)

    class Buggy(Intakes):
        async def __call__(self, intake: Intake) -> IntakeOutcome:
            if intake.application.external_id == tricky:
                raise KeyError("antragsteller")  # a reader's bug on this one message
            return await super().__call__(intake)

    intakes = Buggy()
    source = make_source(
        xta, schema_dir, http, blobs, held_journal, BackOff(max_fetches=2, initial_seconds=0)
    )
    assert await source.poll(intakes) == 1
    assert await held_states(held_journal) == {tricky: (HeldState.RETRYING, "intake_failed")}
    assert await source.poll(intakes) == 0
    assert await source.poll(intakes) == 0
    [held] = await held_journal.list_held(HeldFilter())
    assert (held.state, held.fetches) == (HeldState.QUARANTINED, 2) and "KeyError" in held.reason
    assert list(intakes.applications) == [valid]
    assert xta.state.mailbox(AUTHORITY)[tricky].fetches == 2


async def test_content_declared_too_large_in_the_envelope_is_not_read_at_all(
    start_xta: StartXta,
    http: aiohttp.ClientSession,
    schema_dir: Path,
    blobs: BlobStore,
    held_journal: SqliteJournal,
) -> None:
    xta = await start_xta()
    big = await enqueue(
        http,
        xta.url,
        AUTHORITY,
        metadata=antrag_metadata(msg_size=100),  # the status list understates it
        message=b"<x/>",
        attachments=[("plan.pdf", b"%PDF" + b"0" * (2 * 1024**2), "application/pdf")],
    )
    source = make_source(xta, schema_dir, http, blobs, held_journal, max_content=1024**2)
    assert await source.poll(Intakes()) == 0
    assert await held_states(held_journal) == {big["message_id"]: (HeldState.QUARANTINED, "oversize")}
    # Refused from the envelope: not even the small message was stored, nor a temporary file left.
    assert stored_blobs(blobs) == set() and blob_files(blobs.root) == []
