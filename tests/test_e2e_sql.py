"""End to end through the `sql` transport: FormCycle → the hub → enaio and a Fachverfahren's staging
table in a real PostgreSQL database (the simulated Fachverfahren's tables), configured as an operator
would: password from the environment, columns from the mapping's payload."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_enaio.simulator import make_app as make_enaio
from hub_fachverfahren.sql.simulator import STATUS_MAP, StagingFachverfahren, documents, staging
from sqlalchemy import URL, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from test_e2e_enaio import ENAIO_USER, ENV, MAPPING, jagdschein, post, submit

from hub.models import ApplicationState
from hub.testing.harness import RunningHub

StartHub = Callable[[], Awaitable[RunningHub]]

PAYLOAD = """
payloads:
  bau-fv:
    antragsteller: "{{ applicant | sortname }}"
"""


def sql_url(postgres_url: str) -> tuple[str, str]:
    """The sink's `url` (async driver, no password) and the password, as an operator splits them."""
    url = make_url(postgres_url)
    bare = URL.create("postgresql+asyncpg", url.username, None, url.host, url.port, url.database)
    return bare.render_as_string(hide_password=False), str(url.password)


@pytest_asyncio.fixture
async def fachverfahren(postgres_url: str) -> AsyncIterator[StagingFachverfahren]:
    """The simulated Fachverfahren with its tables in a fresh database."""
    sim = StagingFachverfahren(
        create_async_engine(make_url(postgres_url).set(drivername="postgresql+asyncpg"))
    )
    await sim.setup()
    yield sim
    await sim.engine.dispose()


@pytest_asyncio.fixture
async def enaio_url() -> AsyncIterator[str]:
    server = TestServer(make_enaio(), host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
def start(hub_factory: Any, enaio_url: str, postgres_url: str, tmp_path: Path) -> StartHub:
    mapping = tmp_path / "jagd-mit-fachverfahren.yaml"
    mapping.write_text(MAPPING.read_text() + PAYLOAD)
    url, password = sql_url(postgres_url)

    async def start() -> RunningHub:
        connectors = {
            "formcycle": {
                "type": "formcycle",
                "token": "${FORMCYCLE_TOKEN}",
                "id_field": "vorgang_id",
                "applicant_fields": {
                    "given_name": "vorname",
                    "family_name": "nachname",
                    "birth_date": "geburtsdatum",
                    "street": "strasse",
                    "postal_code": "plz",
                    "city": "ort",
                },
            },
            "enaio": {
                "type": "enaio",
                "base_url": enaio_url,
                "username": ENAIO_USER,
                "password": "${ENAIO_PASSWORD}",
            },
            "bau-fv": {
                "type": "sql",
                "url": url,
                "password": "${FV_DB_PASSWORD}",
                "table": "antrag_import",
                "key_column": "hub_key",
                "columns": {
                    "leistung": "record.service",
                    "aktenzeichen_akte": "record.file_number",
                    "antragsteller": "antragsteller",
                },
                "constants": {"status": "NEU"},
                "documents": {
                    "table": "antrag_dokument",
                    "key_column": "hub_key",
                    "number_column": "lfd_nr",
                    "name_column": "dateiname",
                    "type_column": "dokumentart",
                    "content_column": "inhalt",
                },
                "answers": {
                    "status_column": "status",
                    "changed_column": "version",
                    "case_number_column": "fv_aktenzeichen",
                    "decision_column": "bescheid",
                    "decision_name_column": "bescheid_name",
                    "statuses": STATUS_MAP,
                    "ack_column": "hub_quittung",
                    "interval": 0.2,
                },
            },
        }
        routes = [
            {
                "name": "jagd",
                "from": "formcycle",
                "when": {"service": "jagdschein"},
                "map": str(mapping),
                "to": ["enaio", "bau-fv"],
            }
        ]
        env = {**ENV, "FV_DB_PASSWORD": password}
        running: RunningHub = await hub_factory(connectors, routes, env=env)
        return running

    return start


async def test_application_lands_once_in_the_staging_table(
    start: StartHub, fachverfahren: StagingFachverfahren
) -> None:
    hub = await start()
    submission = jagdschein("FC-2026-SQL-1")
    application_id = await submit(hub, submission)
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    _, again = await post(hub, submission)
    assert again["duplicate"] is True and again["application_id"] == application_id

    app = await hub.journal.get_application(application_id)
    assert app.correlations["bau-fv"] == application_id
    async with fachverfahren.engine.connect() as conn:
        [row] = (await conn.execute(select(staging))).all()
        docs = (
            (await conn.execute(select(documents.c.dokumentart).order_by(documents.c.lfd_nr))).scalars().all()
        )
        count = await conn.scalar(select(func.count()).select_from(documents))
    assert (row.hub_key, row.leistung, row.status) == (application_id, "jagdschein", "NEU")
    assert row.aktenzeichen_akte == app.file_number and row.antragsteller == "Groß-Öztürk, Jürgen"
    assert docs == ["Antrag", "Anlage", "Anlage", "Originalantrag"] and count == 4


async def test_the_fachverfahrens_answers_reach_the_application_once(
    start: StartHub, fachverfahren: StagingFachverfahren
) -> None:
    hub = await start()
    application_id = await submit(hub, jagdschein("FC-2026-SQL-2"))
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    aktenzeichen = (await hub.journal.get_application(application_id)).file_number
    [picked] = await fachverfahren.pick_up()

    def taken(version: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            async with fachverfahren.engine.connect() as conn:
                row = (await conn.execute(select(staging.c.version, staging.c.hub_quittung))).one()
            return bool(row.hub_quittung == row.version == version)

        return check

    # A status polled from a column is seen as it stands at the poll: wait for one before the next.
    await hub.wait_for(taken(1), what="the first answer acknowledged in the row")
    await fachverfahren.step(application_id, "BESCHEID_ERLASSEN", message="Jagdschein erteilt")
    await hub.wait_for(taken(2), what="the decision acknowledged in the row")
    answers = await hub.journal.answers(application_id)
    assert [(a.connector, a.answer.status.value) for a in answers] == [
        ("bau-fv", "in_progress"),
        ("bau-fv", "decided"),
    ]
    decision = answers[1].answer.decision
    assert decision is not None and decision.name == f"bescheid-{picked['case_number']}.pdf"
    assert (await hub.hub.blobs.read_bytes(decision.blob)).startswith(b"%PDF")
    app = await hub.journal.get_application(application_id)
    assert app.correlations["bau-fv.case_number"] == picked["case_number"]
    assert app.file_number == aktenzeichen  # the case number never replaces the Aktenzeichen
    events = [e.type for e in await hub.journal.events(application_id)]
    assert events.count("answer.received") == 2


async def test_answers_update_the_akte_and_tell_the_applicant_once(
    hub_factory: Any, postgres_url: str, fachverfahren: StagingFachverfahren
) -> None:
    url, password = sql_url(postgres_url)
    connectors = {
        "json": {"type": "test-json"},
        "efile": {"type": "test-efile", "file_number": "AZ-2026-7"},
        "bau-fv": {
            "type": "sql",
            "url": url,
            "password": "${FV_DB_PASSWORD}",
            "table": "antrag_import",
            "key_column": "hub_key",
            "columns": {"leistung": "record.service"},
            "answers": {
                "status_column": "status",
                "changed_column": "version",
                "case_number_column": "fv_aktenzeichen",
                "message_column": "hinweis",
                "decision_column": "bescheid",
                "decision_name_column": "bescheid_name",
                "statuses": STATUS_MAP,
                "interval": 0.1,
            },
        },
        "mailbox": {"type": "test-notifier"},
    }
    routes = [
        {
            "name": "wasser",
            "from": "json",
            "to": ["efile", "bau-fv"],
            "on_answer": {"update_akte": "efile", "notify": "mailbox", "decision": "both"},
        }
    ]
    hub = await hub_factory(connectors, routes, env={"FV_DB_PASSWORD": password})
    status, body = await hub.post("/intake/json/wasserrecht", json={"id": "sql-e2e-3", "form": {}})
    assert status == 202, body
    application_id = body["application_id"]
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    efile, mailbox = hub.hub.connectors["efile"], hub.hub.connectors["mailbox"]

    [picked] = await fachverfahren.pick_up()
    await hub.wait_for(lambda: len(mailbox.statuses) == 1, what="the applicant told: in progress")
    await fachverfahren.step(application_id, "NACHFORDERUNG", message="Bitte Lageplan nachreichen")
    await hub.wait_for(lambda: len(mailbox.statuses) == 2, what="the applicant told: action required")
    await fachverfahren.step(application_id, "BESCHEID_ERLASSEN", message="Erlaubnis erteilt")
    await hub.wait_for(lambda: len(efile.answered) == 3 and len(mailbox.statuses) == 3, what="all three")
    await hub.wait_all_final()

    statuses = [r.status.value for r in mailbox.statuses.values() if r.status is not None]
    assert statuses == ["in_progress", "action_required", "decided"]
    assert [r.message for r in mailbox.statuses.values()][1] == "Bitte Lageplan nachreichen"
    assert {r.case_number for r in efile.answered.values()} == {picked["case_number"]}
    decided = list(efile.answered.values())[-1]
    assert [d.name for d in decided.documents] == [f"bescheid-{picked['case_number']}.pdf"]
    assert efile.answer_calls == 3 and mailbox.status_calls == 3  # each answer filed and told once
    app = await hub.journal.get_application(application_id)
    assert app.file_number == "AZ-2026-7" and app.correlations["bau-fv.case_number"] == picked["case_number"]
