"""End to end through the `sql` transport: FormCycle (with a BundID login) → the hub → enaio and a
Fachverfahren's staging table in a real PostgreSQL database; the Fachverfahren (the simulator, working on
its table) assigns a case number and decides; the hub takes each answer from the row, has enaio update
the Akte and file the decision and tells the applicant through the ZBP mailbox — each once. Configured as
an operator would: the database password from the environment, a column from the mapping's payload."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from hub_fachverfahren.sql.simulator import StagingFachverfahren, connector_settings, documents, staging
from sqlalchemy import URL, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from test_e2e_answers import FAST_RETRY, World, started_world

from hub.models import ApplicationState

PAYLOAD = """
payloads:
  fv:
    antragsteller: "{{ applicant | sortname }}"
"""


def sql_section(postgres_url: str) -> tuple[dict[str, Any], str]:
    """The `fv` connector section for the simulator's tables, and the password it reads from the
    environment (the URL carries none, as an operator writes it)."""
    url = make_url(postgres_url)
    bare = URL.create("postgresql+asyncpg", url.username, None, url.host, url.port, url.database)
    section = connector_settings(bare.render_as_string(hide_password=False), "${FV_DB_PASSWORD}")
    section["columns"]["antragsteller"] = "antragsteller"
    section["answers"]["interval"] = 0.1
    section["retry"] = FAST_RETRY
    return section, str(url.password)


@pytest_asyncio.fixture
async def world(
    tmp_path: Path, hub_factory: Any, schema_dir: Path, postgres_url: str
) -> AsyncIterator[tuple[World, StagingFachverfahren]]:
    sim = StagingFachverfahren(
        create_async_engine(make_url(postgres_url).set(drivername="postgresql+asyncpg"))
    )
    await sim.setup()
    section, password = sql_section(postgres_url)
    env = {"FV_DB_PASSWORD": password}
    async with started_world(
        tmp_path, hub_factory, schema_dir, section, env=env, mapping_extra=PAYLOAD
    ) as started:
        yield started, sim
    await sim.engine.dispose()


async def _submit(w: World) -> tuple[str, str]:
    """A new application, filed and delivered; (its id, its Aktenzeichen)."""
    app_id = await w.submit(
        "FC-SQL-9", w.idp.response("U04", means="eID"), vorname="Johanna", nachname="Klein"
    )
    assert await w.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    app = await w.running.journal.get_application(app_id)
    assert app is not None and app.file_number
    return app_id, app.file_number


async def test_application_lands_once_in_the_staging_table(world: tuple[World, StagingFachverfahren]) -> None:
    w, sim = world
    app_id, aktenzeichen = await _submit(w)
    app = await w.running.journal.get_application(app_id)
    assert app is not None and app.correlations["fv"] == app_id
    async with sim.engine.connect() as conn:
        [row] = (await conn.execute(select(staging))).all()
        types = (await conn.execute(select(documents.c.dokumentart).order_by(documents.c.lfd_nr))).scalars()
        count = await conn.scalar(select(func.count()).select_from(documents))
    assert (row.hub_key, row.leistung, row.status, row.version) == (app_id, "jagdschein", "NEU", 0)
    # The applicant as BundID proved them (the form said "Klein"), through the mapping's payload.
    assert (row.aktenzeichen_akte, row.antragsteller) == (aktenzeichen, "Kleinschmidt, Johanna")
    assert list(types) == ["Antrag", "Anlage", "Originalantrag"] and count == 3


async def test_into_the_fachverfahren_and_back_through_the_staging_table(
    world: tuple[World, StagingFachverfahren],
) -> None:
    w, sim = world
    handle = w.idp.mailbox("U04")
    app_id, aktenzeichen = await _submit(w)

    async def acknowledged(version: int) -> bool:
        async with sim.engine.connect() as conn:
            row = (await conn.execute(select(staging.c.version, staging.c.hub_quittung))).one()
        return bool(row.hub_quittung == row.version == version)

    # A status polled from a column is seen as it stands at the poll: each is taken before the next.
    [picked] = await sim.pick_up()
    await w.running.wait_for(lambda: acknowledged(1), what="the case number taken")
    await sim.step(app_id, "NACHFORDERUNG", message="Bitte reichen Sie den Jagdhaftpflichtnachweis nach.")
    await w.running.wait_for(lambda: acknowledged(2), what="the request taken")
    await sim.step(app_id, "BESCHEID_ERLASSEN", message="Ihr Jagdschein ist erteilt.")
    await w.running.wait_for(lambda: acknowledged(3), what="the decision taken")
    await w.running.wait_all_final()

    async with sim.engine.connect() as conn:
        pdf = await conn.scalar(select(staging.c.bescheid))
    case_number = picked["case_number"]
    (akte,) = await w.enaio_objects(type="Personenakte")
    assert akte["fields"]["Aktenzeichen"] == aktenzeichen
    assert (akte["fields"]["FVAktenzeichen"], akte["fields"]["Bearbeitungsstand"]) == (
        case_number,
        "Bescheid erlassen",
    )
    (bescheid,) = await w.enaio_objects(type="Bescheid")
    assert bescheid["fields"]["Titel"] == f"Bescheid {case_number}"
    assert await w.enaio_content(bescheid["id"]) == pdf
    box = await w.mailbox(handle)
    statuses = [s["payload"]["status"] for s in box["status_updates"]]
    assert statuses == ["RECEIVED", "PROCESSING", "ACTION_REQUIRED", "COMPLETED"]
    assert box["messages"][-1]["payload"]["attachments"][0]["filename"] == f"bescheid-{case_number}.pdf"
    app = await w.running.journal.get_application(app_id)
    assert app is not None and app.file_number == aktenzeichen
    assert app.correlations["fv.case_number"] == case_number

    # The Fachverfahren flags the row as not taken (restored from a backup): handed again, nothing twice.
    async with sim.engine.begin() as conn:
        await conn.execute(update(staging).values(hub_quittung=None))
    await w.running.wait_for(lambda: acknowledged(3), what="the repeat taken")
    await w.running.wait_all_final()
    assert len(await w.enaio_objects(type="Bescheid")) == 1
    assert (await w.enaio_objects(type="Personenakte"))[0]["fields"] == akte["fields"]
    again = await w.mailbox(handle)
    assert (len(again["status_updates"]), len(again["messages"])) == (4, len(box["messages"]))
    events = Counter(e.type for e in await w.running.journal.events(app_id))
    assert events["answer.received"] == 3
