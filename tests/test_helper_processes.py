"""The hub's helper processes (PDF rendition) end with the hub, even when it is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
import yaml
from test_crash import ADMIN_TOKEN, FORMCYCLE_TOKEN, Ledger, admin_get, send, write_config

from hub.testing.processes import HubProcess

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc"),
]

RENDITION_ONLY = "version: 1\ndocuments:\n  - type: Antrag\n    content: rendition\n"


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, start time) of a process, None if it does not exist."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below `root`, with its start time (which tells a reused PID apart)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[1], []).append(int(entry.name))
            started[int(entry.name)] = stat[2]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found[child] = started[child]
            todo.append(child)
    return found


def alive(processes: dict[int, str]) -> list[int]:
    """Those of `processes` still running (a zombie has ended; only its exit status waits)."""
    running = []
    for pid, start in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[2] == start and stat[0] != "Z":
            running.append(pid)
    return running


async def test_render_processes_end_when_the_hub_is_killed(
    tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    port = reserved_port()
    config = write_config(tmp_path, port)
    settings = yaml.safe_load(config.read_text(encoding="utf-8"))
    (tmp_path / "rendition.yaml").write_text(RENDITION_ONLY, encoding="utf-8")
    settings["routes"][0]["map"] = str(tmp_path / "rendition.yaml")
    settings["workers"]["render_processes"] = 2
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    env = {"FORMCYCLE_TOKEN": FORMCYCLE_TOKEN, "AKTENHUB_ADMIN_TOKEN": ADMIN_TOKEN}
    hub = HubProcess(config, tmp_path, f"http://127.0.0.1:{port}", env=env)
    hub.start()
    assert hub.proc is not None
    helpers: dict[int, str] = {}
    try:
        async with aiohttp.ClientSession() as session:
            await hub.wait_ready(session)
            ledger = Ledger()
            submission = ledger.new(random.Random(5))
            assert await send(session, hub.url, submission, ledger)
            app_id = ledger.acknowledged[submission.vorgang_id]
            deadline = time.monotonic() + 60
            while (await admin_get(session, hub.url, f"/api/v1/applications/{app_id}"))[
                "state"
            ] != "completed":
                assert time.monotonic() < deadline, hub.log_tail()
                await asyncio.sleep(0.05)
        helpers = descendants(hub.proc.pid)
        assert alive(helpers), "the hub rendered a PDF, so a render process should be running"

        await hub.kill()

        deadline = time.monotonic() + 15
        while alive(helpers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert alive(helpers) == [], f"left behind by the killed hub: {alive(helpers)}"
    finally:
        if hub.proc is not None and hub.proc.poll() is None:
            await hub.kill()
        for pid in alive(helpers):
            os.kill(pid, signal.SIGKILL)  # a failed run must not leave orphans on the test machine


def test_a_helper_whose_parent_is_already_gone_ends_at_once() -> None:
    # The race the death signal cannot cover: the parent died before the helper asked for it.
    script = "from hub.processes import die_with_parent\ndie_with_parent(-1)\nprint('still running')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "still running" not in done.stdout, done.stderr
