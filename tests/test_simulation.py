"""The public simulator helpers: credentials, fault knobs and their endpoint, bounded bodies."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import Field

from hub.simulation import (
    FaultKnobs,
    SimulatedFaults,
    basic_credentials,
    basic_user,
    bearer_token,
    fault_middleware,
    fault_routes,
    read_body,
    refusal_middleware,
    secret_matches,
)


def basic(user: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def test_basic_credentials_and_users() -> None:
    users = {"hub": "geheim", "ärger": "pass:wort"}
    assert basic_credentials(basic(b"hub", b"geheim")) == ("hub", "geheim")
    assert basic_user(basic(b"hub", b"geheim"), users) == "hub"
    assert basic_user(basic("ärger".encode(), b"pass:wort"), users) == "ärger"  # UTF-8, colon in password
    assert basic_user(basic(b"hub", b"falsch"), users) is None
    assert basic_user(basic(b"niemand", b"geheim"), users) is None
    assert basic_user(basic(b"", b""), {"": ""}) is None  # an empty user name is nobody
    assert basic_user("Basic %%%", users) is None
    assert basic_user(basic(b"hub", b"\xff\xfe"), users) is None  # not UTF-8
    assert basic_user("Bearer geheim", users) is None


def test_bearer_tokens() -> None:
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Bearer ") is None
    assert bearer_token("Basic abc") is None
    assert secret_matches("abc", "abc")
    assert not secret_matches("abd", "abc")
    assert not secret_matches("", None)
    assert not secret_matches("\udcff", "x")  # a header of non-UTF-8 bytes: no crash


class Knobs(FaultKnobs):
    drop_next: int = Field(0, ge=0)


class State(SimulatedFaults[Knobs]):
    def __init__(self) -> None:
        self.knobs = Knobs()
        self.served = 0


STATE = web.AppKey("state", State)


def error(status: int, message: str) -> web.Response:
    return web.json_response({"fehler": message}, status=status)


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[tuple[State, str, aiohttp.ClientSession]]:
    async def api(request: web.Request) -> web.Response:
        request.app[STATE].served += 1
        return web.json_response({"size": len(await read_body(request, 1000))})

    app = web.Application(
        middlewares=[fault_middleware(STATE, error), refusal_middleware(lambda request, s, m: error(s, m))]
    )
    app[STATE] = State()
    app.router.add_post("/api", api)
    app.router.add_routes(fault_routes(STATE))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield app[STATE], str(server.make_url("")).rstrip("/"), http
    app[STATE].release()
    await server.close()


async def test_fault_knobs_fail_the_next_requests_with_their_status(
    simulator: tuple[State, str, aiohttp.ClientSession],
) -> None:
    state, url, http = simulator
    async with http.post(f"{url}/_sim/faults", json={"fail_next": 2, "fail_status": 502}) as response:
        assert response.status == 200
        assert await response.json() == {
            "fail_next": 2,
            "fail_status": 502,
            "latency_seconds": 0.0,
            "drop_next": 0,
        }
    statuses = []
    for _ in range(3):
        async with http.post(f"{url}/api", data=b"x") as response:
            statuses.append(response.status)
    assert statuses == [502, 502, 200]
    assert state.served == 1
    async with http.get(f"{url}/_sim/faults") as response:  # the operator's endpoints are never failed
        assert (await response.json())["fail_next"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"fail_next": -1}, "invalid knob fail_next"),
        ({"nope": 1}, "invalid knob nope"),
        ([1, 2], "expected a JSON object of knobs"),
    ],
)
async def test_invalid_knobs_are_refused_and_change_nothing(
    simulator: tuple[State, str, aiohttp.ClientSession], body: object, message: str
) -> None:
    state, url, http = simulator
    async with http.post(f"{url}/_sim/faults", json=body) as response:
        assert response.status == 400
        assert message in (await response.json())["fehler"]
    assert state.knobs == Knobs()


async def test_latency_ends_when_the_simulator_is_released(
    simulator: tuple[State, str, aiohttp.ClientSession],
) -> None:
    state, url, http = simulator
    state.knobs.latency_seconds = 600
    request = asyncio.ensure_future(http.post(f"{url}/api", data=b"x"))
    done, _ = await asyncio.wait({request}, timeout=0.2)
    assert not done  # held by the latency knob
    state.release()
    async with await request as response:
        assert response.status == 200


async def test_bodies_are_read_to_a_bound(simulator: tuple[State, str, aiohttp.ClientSession]) -> None:
    _, url, http = simulator

    async def chunks(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"y" * 100

    async with http.post(f"{url}/api", data=chunks(10)) as response:  # streamed, no Content-Length
        assert (response.status, await response.json()) == (200, {"size": 1000})
    async with http.post(f"{url}/api", data=chunks(11)) as response:
        assert response.status == 413
        assert (await response.json())["fehler"] == "the body is larger than 1000 bytes"
    async with http.post(f"{url}/api", data=b"z" * 1001) as response:  # declared
        assert response.status == 413
