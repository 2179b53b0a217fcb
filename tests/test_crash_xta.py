"""A hub killed between taking an XTA message in and closing it files the message once.

The XTA, Enaio and Bauportal.NRW simulators run in this process; the hub runs as a subprocess. The
XTA simulator refuses the first close, so the hub has durably taken the Bauantrag in but the message
is still open when the hub is killed with SIGKILL. The restarted hub fetches the message again, finds
it taken in already, files it once, closes it once and answers the portal once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from hub_bauportal_nrw.portal import make_app as portal_app
from hub_enaio.simulator import make_app as enaio_app
from hub_xta.simulator import make_app as xta_app

from hub.testing.processes import HubProcess, hub_settings

MAPPING = Path(__file__).parents[1] / "config" / "mappings" / "bauantrag.yaml"
ACCOUNT = "vbe:bauaufsicht-rhein-sieg"
AUTHORITY = {"kennung": "vbe:053820004", "name": "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"}
TOKEN = "crash-xta-admin-token"


@pytest_asyncio.fixture
async def servers(schema_dir: Path, tmp_path: Path) -> AsyncIterator[dict[str, TestServer]]:
    xta = TestServer(xta_app(schemas=str(schema_dir), data_dir=str(tmp_path / "xta")), host="127.0.0.1")
    enaio = TestServer(enaio_app(), host="127.0.0.1")
    await xta.start_server()
    await enaio.start_server()
    portal = TestServer(
        portal_app(xta_url=str(xta.make_url("")).rstrip("/"), reader=ACCOUNT), host="127.0.0.1"
    )
    await portal.start_server()
    yield {"xta": xta, "enaio": enaio, "portal": portal}
    for server in (portal, enaio, xta):
        await server.close()


def url(server: TestServer, path: str = "") -> str:
    return str(server.make_url(path)).rstrip("/") if not path else str(server.make_url(path))


def write_config(tmp: Path, port: int, servers: dict[str, TestServer], schemas: Path) -> Path:
    xta = {"url": url(servers["xta"]), "account": {"identifier": ACCOUNT}}
    config = {
        **hub_settings(tmp, port, TOKEN, "viewer"),
        "schemas": str(schemas),
        "connectors": {
            # the first poll runs at start, the next only after 30 s: the kill lands before it
            "bauportal": {"type": "bauportal-nrw", "poll_seconds": 30, "authority": AUTHORITY, "xta": xta},
            "antworten": {"type": "bauportal-nrw-answers", "authority": AUTHORITY, "xta": xta},
            "enaio": {
                "type": "enaio",
                "base_url": url(servers["enaio"]),
                "username": "aktenhub",
                "password": "enaio-simulator",
            },
        },
        "routes": [
            {
                "name": "bau",
                "from": "bauportal",
                "map": str(MAPPING),
                "to": ["enaio"],
                "notify": ["antworten"],
            }
        ],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


async def poll_json(http: aiohttp.ClientSession, target: str, what: str, ok: Any, timeout: float = 30) -> Any:
    """GET `target` until `ok(body)` holds (bounded): waiting on another process's observable state."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            async with http.get(target, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
                last = await resp.json() if resp.status == 200 else None
        except aiohttp.ClientError:
            last = None
        if last is not None and ok(last):
            return last
        await asyncio.sleep(0.05)  # polling another process's state, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}; last answer: {last}")


async def test_killed_between_intake_and_close_files_once(
    servers: dict[str, TestServer], tmp_path: Path, schema_dir: Path, reserved_port: Callable[[], int]
) -> None:
    port = reserved_port()
    config = write_config(tmp_path, port, servers, schema_dir)
    hub_url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        async with http.post(url(servers["xta"], "/_sim/faults"), json={"fail_close_next": 1}) as resp:
            assert resp.status == 200
        async with http.post(url(servers["portal"], "/sim/bauantrag"), json={}) as resp:
            assert resp.status == 201
            xta_id = (await resp.json())["xta_message_id"]

        hub = HubProcess(config, tmp_path, hub_url)
        hub.start()
        try:
            # taken in (durable) and the close refused: kill the hub now
            await poll_json(
                http, f"{hub_url}/api/v1/applications", "the intake", lambda b: len(b["applications"]) == 1
            )
            await poll_json(
                http,
                url(servers["xta"], "/_sim/faults"),
                "the refused close",
                lambda b: b.get("fail_close_next") == 0,
            )
        finally:
            await hub.kill()
        async with http.get(url(servers["xta"], "/_sim/closed")) as resp:
            assert await resp.json() == []  # still open after the kill

        hub.start()
        try:
            apps = await poll_json(
                http,
                f"{hub_url}/api/v1/applications",
                "the Bauantrag filed",
                lambda b: [a["state"] for a in b["applications"]] == ["completed"],
            )
            closed = await poll_json(
                http, url(servers["xta"], "/_sim/closed"), "the close", lambda b: len(b) >= 1
            )
        finally:
            await hub.stop()

    assert [c["message_id"] for c in closed] == [xta_id]  # closed exactly once
    assert len(apps["applications"]) == 1
    async with (
        aiohttp.ClientSession() as http,
        http.get(url(servers["enaio"], "/_sim/objects"), params={"type": "Bauakte"}) as resp,
    ):
        body = await resp.json()
    akten = body["objects"] if isinstance(body, dict) else body
    assert len(akten) == 1  # filed once


async def test_killed_after_mikropros_number_before_the_bauakte_files_once_with_that_number(
    servers: dict[str, TestServer], tmp_path: Path, schema_dir: Path, reserved_port: Callable[[], int]
) -> None:
    # Mikropro assigns the Aktenzeichen (assigned_by): the Bauantrag is forwarded to it, its 1121 brings
    # the number, and the hub dies while enaio refuses the Bauakte (the second stage, retried). After the
    # restart the Bauakte is filed once with Mikropro's number, the portal's 1120 and 1121 carry it once.
    from hub_mikropro.simulator import make_app as mikropro_app
    from hub_xta.simulator import STATE as XTA

    hub_account, mikropro_account = "vbe:053820005", "vbe:053820063"
    mikropro = TestServer(
        mikropro_app(
            xta_url=url(servers["xta"]),
            account=mikropro_account,
            schemas=schema_dir,
            data_dir=tmp_path / "mp",
        ),
        host="127.0.0.1",
    )
    await mikropro.start_server()
    port = reserved_port()
    config = write_config(tmp_path, port, servers, schema_dir)
    settings = json.loads(config.read_text(encoding="utf-8"))
    settings["connectors"]["mikropro"] = {
        "type": "mikropro",
        "xta": {"url": url(servers["xta"]), "account": {"identifier": hub_account}},
        "recipient": {"identifier": mikropro_account},
        "authority": AUTHORITY,
        "fachverfahren": {"kennung": "vbe:053820063", "name": "Mikropro Bauamt"},
        "poll_seconds": 0.1,
    }
    settings["connectors"]["enaio"]["retry"] = {"initial_seconds": 0.1, "max_seconds": 0.2}
    settings["routes"][0].update(
        map=str(MAPPING.with_name("bauantrag-mikropro.yaml")),
        to=["enaio", "mikropro"],
        file_number={"assigned_by": "mikropro"},
    )
    config.write_text(json.dumps(settings), encoding="utf-8")
    hub_url = f"http://127.0.0.1:{port}"
    state = servers["xta"].app[XTA]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(url(servers["enaio"], "/_sim/faults"), json={"fail_next": 10000}) as resp:
                assert resp.status == 200
            async with http.post(url(servers["portal"], "/sim/bauantrag"), json={}) as resp:
                assert resp.status == 201
            hub = HubProcess(config, tmp_path, hub_url)
            hub.start()
            try:
                deadline = time.monotonic() + 30
                while not state.mailbox(mikropro_account):  # the Bauantrag forwarded to Mikropro
                    assert time.monotonic() < deadline, (tmp_path / "hub.log").read_text()
                    await asyncio.sleep(0.05)  # polling another process's effect, bounded
                async with http.post(mikropro.make_url("/control/receive")) as resp:
                    assert len((await resp.json())["opened"]) == 1
                async with http.get(mikropro.make_url("/control/cases")) as resp:
                    (case,) = (await resp.json())["cases"]
                number = case["case_number"]
                # the number taken: the application carries it while enaio still refuses the Bauakte
                await poll_json(
                    http,
                    f"{hub_url}/api/v1/applications",
                    "Mikropro's number taken",
                    lambda b: [a["file_number"] for a in b["applications"]] == [number],
                )
            finally:
                await hub.kill()
            assert [
                m.metadata.message_type for m in state.sent if m.metadata.reader.identifier != hub_account
            ] == [
                "baugenehmigung.antrag.0200"
            ]  # nothing went to the portal yet (only the forward to Mikropro)

            async with http.post(url(servers["enaio"], "/_sim/faults"), json={"fail_next": 0}) as resp:
                assert resp.status == 200
            hub.start()
            try:
                apps = await poll_json(
                    http,
                    f"{hub_url}/api/v1/applications",
                    "the Bauantrag filed",
                    lambda b: [a["state"] for a in b["applications"]] == ["completed"],
                )
            finally:
                await hub.stop()
            async with http.get(url(servers["enaio"], "/_sim/objects"), params={"type": "Bauakte"}) as resp:
                body = await resp.json()
    finally:
        await mikropro.close()
    assert [a["file_number"] for a in apps["applications"]] == [number]
    akten = body["objects"] if isinstance(body, dict) else body
    assert [a["fields"]["Aktenzeichen"] for a in akten] == [number]  # filed once, with Mikropro's number
    to_portal = [m for m in state.sent if m.metadata.reader.identifier not in (hub_account, mikropro_account)]
    types = sorted(m.metadata.message_type for m in to_portal)
    assert types == ["prozessnachrichten.aktenzeichen.1121", "prozessnachrichten.eingangsbestaetigung.1120"]
    for message in to_portal:
        assert etree_text(message.message.path, "bezug/vorgang") == number
    assert len([m for m in state.sent if m.metadata.reader.identifier == mikropro_account]) == 1
    assert state.mailbox(hub_account) == {}


def etree_text(path: Path, xpath: str) -> str | None:
    """The text at `xpath` (from the root) of an XML file."""
    from lxml import etree

    return etree.parse(str(path)).getroot().findtext(xpath)
