"""Answers from the staging table: each status change reaches the return channel once, acknowledged
only after the return channel took it (in the row, or as the hub's high-water mark)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from hub_fachverfahren.sql import SqlSink
from hub_fachverfahren.sql.simulator import StagingFachverfahren, staging
from sql_helpers import fachverfahren, make_sink, settings
from sqlalchemy import select

from hub import Answer, AnswerOutcome, AnswerStatus, Blobs, ConnectorContext, UnknownApplication
from hub.testing import default_record, delivery_context, make_application

ACK = {"ack_column": "hub_quittung"}


class ReturnChannel:
    """Stands in for the core's `ConnectorContext.answer` (durable, idempotent on answer_id)."""

    def __init__(self) -> None:
        self.stored: dict[str, Answer] = {}
        self.failing = False
        self.crash_after_store = False
        self.handed: list[str] = []
        self.known: set[str] = set()

    async def __call__(self, connector: str, answer: Answer) -> AnswerOutcome:
        if self.failing:
            raise RuntimeError("journal unavailable")
        assert answer.application_id is not None
        if answer.application_id not in self.known:
            raise UnknownApplication(answer.application_id)
        self.handed.append(answer.answer_id)
        duplicate = answer.answer_id in self.stored
        self.stored.setdefault(answer.answer_id, answer)
        if self.crash_after_store:
            raise SystemExit("hub killed after the commit, before the acknowledgement")
        return AnswerOutcome(application_id=answer.application_id, duplicate=duplicate)


@dataclasses.dataclass
class Setup:
    sim: StagingFachverfahren
    channel: ReturnChannel
    context: ConnectorContext
    url: str
    blobs: Blobs
    sinks: list[SqlSink]

    async def sink(self, **answers: Any) -> SqlSink:
        section = settings(self.url)
        section["answers"].update(answers)
        sink = await make_sink(self.context, section)
        self.sinks.append(sink)
        return sink

    async def delivered(self, sink: SqlSink, n: int = 1) -> str:
        app = await make_application(self.blobs, external_id=f"answers-{n}")
        self.channel.known.add(app.id)
        await sink.deliver(default_record(app), delivery_context(app, self.blobs))
        return app.id


@pytest_asyncio.fixture
async def setup(postgres_url: str, connector_context: ConnectorContext, blobs: Blobs) -> AsyncIterator[Setup]:
    channel = ReturnChannel()
    context = dataclasses.replace(connector_context, name="bau-fv", _answer=channel)
    s = Setup(await fachverfahren(postgres_url), channel, context, postgres_url, blobs, [])
    yield s
    for sink in s.sinks:
        await sink.stop()
    await s.sim.engine.dispose()


@pytest.mark.parametrize(
    "acknowledge",
    [{}, ACK, {"changed_column": "geaendert"}],
    ids=["high-water-mark", "ack-column", "timestamp-mark"],
)
async def test_each_status_change_is_one_answer(setup: Setup, acknowledge: dict[str, str]) -> None:
    sink = await setup.sink(**acknowledge)
    app_id = await setup.delivered(sink)
    assert await sink.poll_answers() == 0  # a new row (no status yet) is no answer
    [picked] = await setup.sim.pick_up()
    assert await sink.poll_answers() == 1
    assert await sink.poll_answers() == 0
    await setup.sim.step(picked["key"], "BESCHEID_ERLASSEN", message="Erlaubnis erteilt")
    assert await sink.poll_answers() == 1
    assert await sink.poll_answers() == 0

    first, decided = setup.channel.stored.values()
    assert (first.status, first.case_number, first.application_id) == (
        AnswerStatus.IN_PROGRESS,
        picked["case_number"],
        app_id,
    )
    assert first.reference == app_id and first.status_text == "IN_BEARBEITUNG" and first.decision is None
    assert decided.status is AnswerStatus.DECIDED and decided.message == "Erlaubnis erteilt"
    assert decided.decision is not None and decided.decision.name == f"bescheid-{picked['case_number']}.pdf"
    content = await setup.blobs.read_bytes(decided.decision.blob)
    async with setup.sim.engine.connect() as conn:
        stored = await conn.scalar(select(staging.c.bescheid).where(staging.c.hub_key == app_id))
    assert content == stored and content.startswith(b"%PDF")
    if "ack_column" in acknowledge:
        async with setup.sim.engine.connect() as conn:
            row = (await conn.execute(select(staging.c.version, staging.c.hub_quittung))).one()
        assert row.hub_quittung == row.version == 2


@pytest.mark.parametrize("acknowledge", [{}, ACK], ids=["high-water-mark", "ack-column"])
async def test_not_acknowledged_when_the_return_channel_fails(
    setup: Setup, acknowledge: dict[str, str]
) -> None:
    sink = await setup.sink(**acknowledge)
    await setup.delivered(sink)
    await setup.sim.pick_up()
    setup.channel.failing = True
    with pytest.raises(RuntimeError):
        await sink.poll_answers()
    assert setup.channel.stored == {}
    setup.channel.failing = False
    assert await sink.poll_answers() == 1
    assert len(setup.channel.stored) == 1


async def test_high_water_mark_survives_a_restart(setup: Setup) -> None:
    sink = await setup.sink()
    first = await setup.delivered(sink, 1)
    await setup.delivered(sink, 2)
    await setup.sim.pick_up()
    assert await sink.poll_answers() == 2
    await sink.stop()
    setup.channel.stored.clear()  # a fresh return channel would take them again: none may come
    again = await setup.sink()
    assert await again.poll_answers() == 0
    await setup.sim.step(first, "NACHFORDERUNG", message="Lageplan fehlt")
    assert await again.poll_answers() == 1
    [answer] = setup.channel.stored.values()
    assert answer.status is AnswerStatus.ACTION_REQUIRED and answer.message == "Lageplan fehlt"
    assert (await again.diagnostics())["answers"]["high_water_mark"]["key"] == first


async def test_rows_of_unknown_applications_and_unmapped_statuses_are_passed_over(setup: Setup) -> None:
    sink = await setup.sink(
        statuses={"NEU": None, "IN_BEARBEITUNG": "in_progress", "BESCHEID_ERLASSEN": "decided"}
    )
    known = await setup.delivered(sink, 1)
    stranger = await setup.delivered(sink, 2)
    setup.channel.known.discard(stranger)
    await setup.sim.pick_up()
    assert await sink.poll_answers() == 1
    await setup.sim.step(known, "NACHFORDERUNG")
    assert await sink.poll_answers() == 0
    state = (await sink.diagnostics())["answers"]
    assert state["unmapped_statuses"] == {"NACHFORDERUNG": 1}
    assert state["passed_over"] == 2 and state["taken"] == 1
    await setup.sim.step(known, "BESCHEID_ERLASSEN")
    assert await sink.poll_answers() == 1


async def test_refused_import_is_a_failed_answer_with_the_reason(setup: Setup) -> None:
    sink = await setup.sink()
    app_id = await setup.delivered(sink)
    await setup.sim.step(app_id, "FEHLER", error="Leistung unbekannt")
    assert await sink.poll_answers() == 1
    [answer] = setup.channel.stored.values()
    assert answer.status is AnswerStatus.FAILED and answer.error == "Leistung unbekannt"


@pytest.mark.parametrize("acknowledge", [{}, ACK], ids=["high-water-mark", "ack-column"])
async def test_crash_between_commit_and_acknowledgement_hands_the_answer_again_under_its_id(
    setup: Setup, acknowledge: dict[str, str]
) -> None:
    sink = await setup.sink(**acknowledge)
    await setup.delivered(sink)
    await setup.sim.pick_up()
    setup.channel.crash_after_store = True
    with pytest.raises(SystemExit):
        await sink.poll_answers()
    await sink.stop()
    setup.channel.crash_after_store = False
    restarted = await setup.sink(**acknowledge)
    assert await restarted.poll_answers() == 0  # handed again, a duplicate for the return channel
    assert len(setup.channel.handed) == 2 and len(set(setup.channel.handed)) == 1
    assert len(setup.channel.stored) == 1
    assert await restarted.poll_answers() == 0 and len(setup.channel.handed) == 2
