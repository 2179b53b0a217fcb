"""A hub killed between taking a FIT-Connect submission in and accepting it files it once, accepts it once.

The simulator runs in this process, the hub as a subprocess. The simulator holds the first accept
(``hold_events_next``): when it is held, the intake is durable (the accept follows it) and the accept has
not reached FIT-Connect. The hub is killed with SIGKILL then. The restarted hub's first poll finds the
submission still waiting, takes it again (the intake returns the application it made), files it once
and accepts it: one accept in the event log. The held accept of the dead process, released afterwards,
gets the 409 of a second accept and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from subscriber_helpers import SOURCE, FitConnect
from subscriber_helpers import world as world  # the fixture

from hub.testing.processes import HubProcess, hub_settings, poll_until

TOKEN = "fitconnect-kill-admin-token"


def write_config(tmp: Path, port: int, fc: FitConnect) -> Path:
    (tmp / "drop").mkdir()
    config = {
        **hub_settings(tmp, port, TOKEN, "viewer"),
        # the first poll runs at start, the next only after an hour: each start polls once
        "connectors": {
            SOURCE: fc.connector(poll_seconds=3600),
            "wohngeld-fachverfahren": {"type": "filedrop", "path": str(tmp / "drop")},
        },
        "routes": [{"name": "wohngeld", "from": SOURCE, "to": ["wohngeld-fachverfahren"]}],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


async def applications(http: aiohttp.ClientSession, hub_url: str) -> list[dict[str, Any]] | None:
    try:
        async with http.get(
            f"{hub_url}/api/v1/applications", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as resp:
            if resp.status != 200:
                return None
            found: list[dict[str, Any]] = (await resp.json())["applications"]
            return found
    except aiohttp.ClientError:
        return None


async def test_killed_between_intake_and_accept_files_once_and_accepts_once(
    world: FitConnect, tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    port = reserved_port()
    hub_url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, port, world)
    await world.faults(hold_events_next=1)
    sent = await world.send()
    hub = HubProcess(config, tmp_path, hub_url, env=world.env())
    async with aiohttp.ClientSession() as http:
        hub.start()
        try:

            async def accept_held() -> bool:
                return world.state.held == 1

            await poll_until(accept_held, 30, "the hub's accept to be held")
        finally:
            await hub.kill()
        view = await world.view(sent.submission_id)
        assert view["status"] == "submitted"  # not accepted: the hub died first
        assert await world.accepts(sent.submission_id) == []

        hub.start()
        try:
            await hub.wait_ready(http)

            async def accepted() -> bool:
                return (await world.view(sent.submission_id))["status"] == "accepted"

            await poll_until(accepted, 30, "the restarted hub's accept")

            async def completed() -> list[dict[str, Any]] | None:
                apps = await applications(http, hub_url)
                return apps if apps and all(a["state"] == "completed" for a in apps) else None

            apps = await poll_until(completed, 30, "the application to be filed")
            assert [a["external_id"] for a in apps] == [sent.submission_id]
            assert len([p for p in (tmp_path / "drop").iterdir() if p.is_dir()]) == 1

            world.state.release_held()  # the dead process's accept arrives late: a 409, nothing more

            async def released() -> bool:
                return world.state.held == 0

            await poll_until(released, 10, "the held accept to be answered")
            assert len(await world.accepts(sent.submission_id)) == 1
            assert len(await applications(http, hub_url) or []) == 1
        finally:
            assert await hub.stop() == 0, hub.log_tail()
    assert "Traceback" not in hub.log().split("==== hub start 2 ====")[1], hub.log_tail()
