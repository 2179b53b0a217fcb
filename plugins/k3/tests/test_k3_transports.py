"""`type: k3` switched to the `sql` and `rest` transports by configuration, through a hub: the same
mapping as on the import folder, K3's presets (staging layout, Vorgang API, status words) under the
operator's few keys; K3's case number and decision come back the transport's way and are filed and told
once each. `sql` runs against the real PostgreSQL the test kit starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hub_fachverfahren.rest.simulator import DEFAULT_CLIENTS, STATE, decision_sha256
from hub_k3.connector import K3Config
from hub_k3.simulator import make_rest_app, make_sql_app
from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from test_k3_e2e import AKTENZEICHEN, settled, start, submit

from hub import AnswerStatus
from hub.testing.fakes import RecordingEfile

FAST_RETRY = {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01}
CLIENT_ID, CLIENT_SECRET = next(iter(DEFAULT_CLIENTS.items()))


async def filed(running: Any) -> list[Any]:
    """The answers the e-file recorded, oldest first."""
    efile = running.hub.connectors["efile"]
    assert isinstance(efile, RecordingEfile)
    assert efile.answer_calls == len(efile.answered)  # each answer filed once
    return sorted(efile.answered.values(), key=lambda r: r.at)


@pytest_asyncio.fixture
async def k3_sql(postgres_url: str) -> AsyncIterator[tuple[TestClient[Any, Any], str, str]]:
    """The simulated K3 on its staging table; (client, URL without password, password)."""
    url = make_url(postgres_url)
    bare = URL.create("postgresql+asyncpg", url.username, None, url.host, url.port, url.database)
    plain = bare.render_as_string(hide_password=False)
    password = str(url.password or "")
    app = make_sql_app(url=plain, password=password)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, plain, password


async def test_k3_on_its_staging_table_gets_the_row_and_answers_from_the_status_column(
    hub_factory: Any, tmp_path: Path, k3_sql: tuple[TestClient[Any, Any], str, str]
) -> None:
    k3, url, password = k3_sql
    section = {
        "type": "k3",
        "transport": "sql",
        "url": url,
        "password": "${K3_DB_PASSWORD}",
        "answers": {"interval": 0.1},  # merged into K3's preset: the status column stays K3's
        "retry": FAST_RETRY,
    }
    running = await start(hub_factory, tmp_path, section, env={"K3_DB_PASSWORD": password})
    app_id = await submit(running)

    (row,) = (await (await k3.get("/_sim/rows")).json())["rows"]
    assert row["hub_key"] == app_id
    assert (row["leistung"], row["aktenzeichen_akte"], row["status"]) == ("wasserrecht", AKTENZEICHEN, "NEU")
    assert row["dokumente"] == 1  # the mapping's Originalantrag, as a BLOB row
    (picked,) = (await (await k3.post("/_sim/pick-up")).json())["picked_up"]
    await settled(running, app_id, 1)
    decided = await k3.post("/_sim/decide", json={"key": app_id, "message": "Erlaubnis erteilt"})
    assert decided.status == 200, await decided.text()
    await settled(running, app_id, 2)

    answers = await filed(running)
    assert [a.status for a in answers] == [AnswerStatus.IN_PROGRESS, AnswerStatus.DECIDED]
    assert {a.case_number for a in answers} == {picked["case_number"]}
    assert picked["case_number"].startswith("UWB-")
    (decision,) = answers[1].documents
    assert decision.blob is not None
    assert (await running.hub.blobs.read_bytes(decision.blob)).startswith(b"%PDF-")
    app = await running.journal.get_application(app_id)
    assert app is not None and app.file_number == AKTENZEICHEN
    assert app.correlations["k3.case_number"] == picked["case_number"]


@pytest_asyncio.fixture
async def k3_rest() -> AsyncIterator[TestClient[Any, Any]]:
    """The simulated K3 behind its Vorgang API."""
    async with TestClient(TestServer(make_rest_app(), host="127.0.0.1")) as client:
        yield client


async def test_k3_behind_its_api_gets_the_vorgang_and_its_files_and_answers_are_polled_once(
    hub_factory: Any, tmp_path: Path, k3_rest: TestClient[Any, Any]
) -> None:
    base = str(k3_rest.make_url("")).rstrip("/")
    section = {
        "type": "k3",
        "transport": "rest",
        "base_url": f"{base}/api",
        "auth": {
            "type": "oauth2",
            "token_url": f"{base}/oauth/token",
            "client_id": CLIENT_ID,
            "client_secret": "${K3_CLIENT_SECRET}",
        },
        "answers": {"interval": 0.1},
        "retry": FAST_RETRY,
    }
    running = await start(hub_factory, tmp_path, section, env={"K3_CLIENT_SECRET": CLIENT_SECRET})
    app_id = await submit(running)

    (case,) = await (await k3_rest.get("/_sim/vorgaenge")).json()
    # The body fitted K3's Vorgang description (the simulator refuses what does not): the mapping's
    # Fachdaten, the Akte by its Aktenzeichen, the application's file uploaded.
    body = case["request"]
    assert body["aktenhubId"] == app_id and body["leistung"] == "wasserrecht"
    assert body["fachdaten"] == {"Benutzung": "Entnahme von Grundwasser"}
    assert body["eakte"] == {"system": "enaio", "aktenzeichen": AKTENZEICHEN}
    state = k3_rest.server.app[STATE]
    assert len(state.cases[case["id"]].documents) == 1
    answered = await k3_rest.post(f"/_sim/vorgaenge/{case['id']}/status", json={"status": "IN_BEARBEITUNG"})
    assert answered.status == 200
    await settled(running, app_id, 1)
    order = {"status": "BESCHIEDEN", "bescheid": True}
    assert (await k3_rest.post(f"/_sim/vorgaenge/{case['id']}/status", json=order)).status == 200
    await settled(running, app_id, 2)

    answers = await filed(running)
    assert [a.status for a in answers] == [AnswerStatus.IN_PROGRESS, AnswerStatus.DECIDED]
    assert {a.case_number for a in answers} == {case["aktenzeichen"]}
    (decision,) = answers[1].documents
    assert decision.blob == f"sha256:{decision_sha256()}"
    assert not state.pending and sorted(state.acknowledged.values()) == [1, 1]  # each acknowledged once
    app = await running.journal.get_application(app_id)
    assert app is not None and app.correlations["k3.case_number"] == case["aktenzeichen"]


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"transport": "ftp"}, "transport: 'ftp' is none of importfolder, sql, rest"),
        ({"transport": "sql"}, "settings.sql.url"),
        (
            {"transport": "rest", "base_url": "http://k3.example/api", "operation": "anlegen"},
            "no operation 'anlegen'",
        ),
    ],
)
def test_a_k3_section_the_transport_cannot_use_is_refused_naming_the_key(
    section: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        K3Config.model_validate({"type": "k3", **section})
    assert expected in str(refused.value)
