"""The end-to-end benchmark's load generator: the posts it sends and how it sends them."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bench import e2e
from bench.e2e import SERVICE, LoadResult, LoadSpec, _load, build_submission, submission_fields

TOKEN = "bench-token"


def spec(url: str = "http://127.0.0.1:1", **load: Any) -> LoadSpec:
    values: dict[str, Any] = {"count": 1, "concurrency": 1} | load
    return LoadSpec(
        urls=(url,),
        token=TOKEN,
        prefix="FC-TEST",
        first=7,
        attachments=2,
        attachment_size=300,
        start_at=time.monotonic(),
        deadline=30.0,
        **values,
    )


async def test_a_post_is_what_aiohttp_formdata_sends() -> None:
    # The raw post must be byte for byte the multipart body aiohttp's FormData made of the same fields.
    body = build_submission(spec(), 3, "BOUNDARY0123", bytes(range(256)) * 400)
    form = aiohttp.FormData()
    for name, value in submission_fields(spec(), 3):
        form.add_field(name, value)
    for element in ("ausweis", "nachweis"):
        found = re.search(
            rb'filename="%s_3.pdf"\r\n\r\n(.*?)\r\n--BOUNDARY0123' % element.encode(), body, re.S
        )
        assert found is not None
        assert found[1].startswith(b"%PDF-1.4\n% FC-TEST-0000003 " + element.encode() + b"\n")
        assert len(found[1]) == 300
        form.add_field(element, found[1], filename=f"{element}_3.pdf", content_type="application/pdf")
    writer = form()
    assert isinstance(writer, aiohttp.MultipartWriter)
    writer._boundary = b"BOUNDARY0123"  # aiohttp draws a random one

    class Sink:
        data = b""

        async def write(self, chunk: bytes) -> None:
            self.data += chunk

    sink = Sink()
    await writer.write(sink)  # type: ignore[arg-type]  # writes to anything with an async write()
    assert sink.data == body


def test_every_file_of_every_post_is_distinct() -> None:
    # The blob store is content-addressed: copies would be stored once, and the benchmark would lie.
    noise = bytes(range(256)) * 400
    files = set()
    for n in range(50):
        body = build_submission(spec(), n, "B", noise)
        files |= set(re.findall(rb'\.pdf"\r\n\r\n(.*?)\r\n--B', body, re.S))
    assert len(files) == 100


@pytest.fixture
async def intake() -> AsyncIterator[tuple[str, list[dict[str, Any]], set[Any]]]:
    """A stand-in of the hub's FormCycle intake: reads each post as multipart, answers 202."""
    posts: list[dict[str, Any]] = []
    peers: set[Any] = set()

    async def take(request: web.Request) -> web.Response:
        assert request.headers["X-Aktenhub-Token"] == TOKEN
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        fields: dict[str, Any] = {}
        async for name, value in _parts(request):
            fields.setdefault(name, []).append(value)
        posts.append(fields)
        if len(posts) == 3:
            return web.json_response({"error": "try again"}, status=503)
        return web.json_response({"application_id": f"app_{len(posts)}"}, status=202)

    app = web.Application()
    app.router.add_post(f"/intake/formcycle/{SERVICE}", take)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), posts, peers
    finally:
        await server.close()


async def _parts(request: web.Request) -> AsyncIterator[tuple[str, Any]]:
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        assert isinstance(part, aiohttp.BodyPartReader)
        content = await part.read()
        yield str(part.name), (part.filename, len(content)) if part.filename else content.decode()


async def test_the_closed_loop_sends_each_post_once_on_kept_alive_connections(
    intake: tuple[str, list[dict[str, Any]], set[Any]],
) -> None:
    url, posts, peers = intake
    result: LoadResult = await _load(spec(url, count=8, concurrency=2))
    assert len(posts) == 8
    assert sorted(p["vorgang_id"][0] for p in posts) == [f"FC-TEST-{n:07d}" for n in range(8)]
    assert len({p["nachname"][0] + p["geburtsdatum"][0] for p in posts}) == 8  # a new applicant each
    assert all(p["ausweis"] == [("ausweis_" + p["vorgang_id"][0][-1] + ".pdf", 300)] for p in posts)
    assert len(peers) <= 2  # two connections, each kept alive
    assert sorted(s.status for s in result.samples) == [202] * 7 + [503]
    assert result.errors == {"HTTP 503": 1}
    assert {s.application_id for s in result.samples if s.status == 202} == {
        f"app_{i}" for i in (1, 2, 4, 5, 6, 7, 8)
    }


async def test_the_open_loop_sends_on_schedule(intake: tuple[str, list[dict[str, Any]], set[Any]]) -> None:
    url, posts, _ = intake
    result = await _load(spec(url, count=0, concurrency=0, rate=40.0, duration=0.25))
    assert len(posts) == len(result.samples) == 10
    scheduled = sorted(s.scheduled_wall for s in result.samples)
    assert all(0.02 <= b - a <= 0.03 for a, b in itertools.pairwise(scheduled))
    assert all(s.sent_wall >= s.scheduled_wall - 0.001 for s in result.samples)


async def test_a_refused_connection_is_counted_not_raised() -> None:
    result = await asyncio.wait_for(_load(spec("http://127.0.0.1:9", count=2, concurrency=1)), 30)
    assert [s.status for s in result.samples] == [0, 0]
    assert sum(result.errors.values()) == 2


async def test_a_connection_idle_too_long_is_not_reused(
    intake: tuple[str, list[dict[str, Any]], set[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hub closes idle connections (keep-alive timeout): one idle past IDLE_SECONDS gets a new one.
    monkeypatch.setattr(e2e, "IDLE_SECONDS", 0.0)
    url, posts, peers = intake
    result = await _load(spec(url, count=4, concurrency=1))
    assert len(posts) == 4 and not result.errors.keys() - {"HTTP 503"}
    assert len(peers) == 4


@pytest.mark.parametrize(("api", "auth"), [("dms", "session"), ("osrest", "basic")])
def test_the_hub_logs_in_to_enaio_as_an_operator_would_set_it_up(tmp_path: Path, api: str, auth: str) -> None:
    # The DMS Service with the session cookie (the plugin README's example); OSRest with Basic, the only
    # login documented for it. The configuration is read as `aktenhub run` reads it.
    from hub.config import load_config
    from hub.plugins import load_plugins

    path = e2e.write_config(tmp_path, 8000, "http://127.0.0.1:8001", api, 4, 2)
    env = {e2e.FORMCYCLE_TOKEN_ENV: "t" * 32, e2e.ADMIN_TOKEN_ENV: "a" * 32, e2e.ENAIO_PASSWORD_ENV: "p"}
    config = load_config(path, load_plugins(), env=env)
    enaio = config.connectors[e2e.SINK].model_dump()
    assert (enaio["api"], enaio["auth"]) == (api, auth)
