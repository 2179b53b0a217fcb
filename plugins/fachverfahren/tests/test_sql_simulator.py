"""The simulated Fachverfahren on its staging table: its operator endpoints, as strict as its database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_fachverfahren.plugin import aktenhub_simulators
from hub_fachverfahren.sql.simulator import STATUS_MAP, make_app, staging
from sql_helpers import engine_of, split_url
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from hub import AnswerStatus


@pytest_asyncio.fixture
async def simulator(postgres_url: str) -> AsyncIterator[str]:
    url, password = split_url(postgres_url)
    server = TestServer(make_app(url=url, password=password), host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _insert(postgres_url: str, key: str) -> None:
    engine = engine_of(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(insert(staging).values(hub_key=key, leistung="wasserrecht"))
    await engine.dispose()


async def test_a_case_moves_through_the_fachverfahren(
    simulator: str, postgres_url: str, http: aiohttp.ClientSession
) -> None:
    await _insert(postgres_url, "app_1")
    async with http.post(f"{simulator}/_sim/decide", json={"key": "app_1"}) as response:
        assert response.status == 409  # not picked up yet
        assert "needs IN_BEARBEITUNG" in (await response.json())["error"]
    async with http.post(f"{simulator}/_sim/accept", json={"key": "app_1"}) as response:
        assert (await response.json())["status"] == "UEBERNOMMEN"
    async with http.post(f"{simulator}/_sim/pick-up") as response:
        [picked] = (await response.json())["picked_up"]
    assert picked["key"] == "app_1" and picked["case_number"].startswith("FV-")
    async with http.post(f"{simulator}/_sim/pick-up") as response:
        assert (await response.json())["picked_up"] == []
    async with http.post(
        f"{simulator}/_sim/request", json={"key": "app_1", "message": "Plan fehlt"}
    ) as response:
        assert response.status == 200
    async with http.post(f"{simulator}/_sim/decide", json={"key": "app_1"}) as response:
        assert (await response.json())["status"] == "BESCHEID_ERLASSEN"
    async with http.get(f"{simulator}/_sim/rows") as response:
        [row] = (await response.json())["rows"]
    assert (row["status"], row["version"], row["fv_aktenzeichen"], row["dokumente"]) == (
        "BESCHEID_ERLASSEN",
        4,
        picked["case_number"],
        0,
    )
    assert row["bescheid_name"] == f"bescheid-{picked['case_number']}.pdf"


async def test_refuses_what_it_cannot_do(simulator: str, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{simulator}/_sim/decide", json={"key": "unbekannt"}) as response:
        assert response.status == 404
    async with http.post(f"{simulator}/_sim/decide", data=b"{kein json") as response:
        assert response.status == 400 and "not JSON" in (await response.json())["error"]
    async with http.post(f"{simulator}/_sim/decide", json={"key": "x", "extra": 1}) as response:
        assert response.status == 400
    async with http.delete(f"{simulator}/_sim/rows") as response:
        assert response.status == 405


async def test_its_database_enforces_the_table(simulator: str, postgres_url: str) -> None:
    engine = engine_of(postgres_url)
    try:
        async with engine.begin() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(insert(staging).values(hub_key="k", leistung="x", status="ERLEDIGT"))
        async with engine.begin() as conn:
            with pytest.raises(IntegrityError):
                await conn.execute(insert(staging).values(hub_key="k"))
    finally:
        await engine.dispose()


def test_registered_with_its_status_map() -> None:
    [sim] = [s for s in aktenhub_simulators() if s.name == "fachverfahren-sql"]
    assert "auto_seconds" in sim.description
    assert {AnswerStatus(v) for v in STATUS_MAP.values() if v} == set(AnswerStatus)
    with pytest.raises(ValueError, match="needs url="):
        sim.make_app()
