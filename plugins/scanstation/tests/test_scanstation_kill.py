"""A hub killed after taking a batch in, before moving it to done/, takes nothing twice after its restart.

The hub runs as a child process (`aktenhub run`). While it runs, done/ is replaced by a file, so the
rename after the durable intakes fails (the poll fails visibly, the hub keeps serving) and the batch
stays in the hot folder. The hub is killed with SIGKILL there; the restarted hub reads the batch again,
finds every document taken in already and moves the batch: three applications, three documents in enaio.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from hub_scanstation.simulator import write_batch
from scan_helpers import ENV, ROUTES, Enaio, connectors, mixed_batch

from hub.testing.processes import HubProcess, hub_settings, poll_until

TOKEN = "scan-kill-viewer-token"


def _config(tmp: Path, port: int, enaio: Enaio, hot_folder: Path) -> Path:
    config = {
        **hub_settings(tmp, port, TOKEN, "viewer"),
        "connectors": connectors(enaio.url, hot_folder, poll_seconds=0.2),
        "routes": ROUTES,
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


async def _applications(http: aiohttp.ClientSession, hub_url: str) -> list[dict[str, Any]]:
    async with http.get(
        f"{hub_url}/api/v1/applications", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as resp:
        assert resp.status == 200, await resp.text()
        found: list[dict[str, Any]] = (await resp.json())["applications"]
        return found


async def test_killed_before_the_batch_moved_takes_nothing_twice(
    enaio: Enaio, hot_folder: Path, tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    port = reserved_port()
    hub_url = f"http://127.0.0.1:{port}"
    hub = HubProcess(_config(tmp_path, port, enaio, hot_folder), tmp_path, hub_url, env=ENV)
    done = hot_folder / "done"
    async with aiohttp.ClientSession() as http:
        hub.start()
        try:
            await hub.wait_ready(http)
            shutil.rmtree(done)  # created at start; a file in its place makes the move fail
            done.write_bytes(b"")
            write_batch(hot_folder, mixed_batch())

            async def three_taken() -> bool:
                return len(await _applications(http, hub_url)) == 3

            await poll_until(three_taken, 30, "the batch's three documents taken in")

            # The move fails after the intakes commit, and the hub writes its log lines once per loop
            # iteration: a kill right after the third intake could come before the failure is logged.
            async def move_failed() -> bool:
                return "poll failed source=scanstation error=NotADirectoryError" in hub.log()

            await hub.until(move_failed, "the failed move logged")
        finally:
            await hub.kill()
        assert (hot_folder / "B0001" / "B0001.ready").exists()  # taken in, not moved
        assert "poll failed source=scanstation error=NotADirectoryError" in hub.log()  # visible

        done.unlink()
        hub.start()
        try:
            await hub.wait_ready(http)

            async def settled() -> bool:
                apps = await _applications(http, hub_url)
                moved = (done / "B0001" / "B0001.ready").exists()
                return moved and [a["state"] for a in apps] == ["completed"] * 3

            await poll_until(settled, 30, "the batch moved to done/ and its documents filed")
        finally:
            await hub.stop()
    assert len(enaio.posteingang()) == 3  # filed once each
