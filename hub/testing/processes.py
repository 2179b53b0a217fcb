"""Real hub processes for tests: `aktenhub run -c CONFIG` as a child, ready on /readyz, killed, restarted.

The crash and kill tests need what an in-process hub (`hub.testing.harness`) cannot give: a process that
dies with SIGKILL at any instruction, leaving its files, locks, connections and leases as they were.
Each start is a new process in a process group of its own: a Ctrl-C on the test run does not reach the
hub before the test stops it, and the last-resort kill of `stop` takes the helpers it started with it.
The output of every start goes to one log file, with a line between the starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from hub.testing.servers import free_port, reserve_port

__all__ = ["HubProcess", "free_port", "hub_command", "hub_settings", "poll_until", "reserve_port"]

T = TypeVar("T")
READY_TIMEOUT = 30.0  # seconds from the start until /readyz must answer 200
STOP_TIMEOUT = 20.0  # seconds a clean stop (SIGTERM) may take before the SIGKILL
POLL_SECONDS = 0.05


def hub_command(config: Path, *args: str) -> list[str]:
    """`aktenhub <args> -c CONFIG` (default `run`): the console script next to this interpreter."""
    script = Path(sys.executable).with_name("aktenhub")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "hub"]
    return [*command, *(args or ("run",)), "-c", str(config)]


def hub_settings(tmp: Path, port: int, token: str, role: str = "viewer") -> dict[str, Any]:
    """The settings every hub child process of a test shares: SQLite journal and blobs in `tmp`, the
    admin API on `port` with one `token` of `role`, fast idle polling, the rendition in the worker (no
    render process to outlive a SIGKILL). A test adds its `connectors`, `routes` and others."""
    return {
        "store": f"sqlite:///{tmp / 'journal.db'}",
        "blobs": str(tmp / "blobs"),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "t", "token": token, "role": role}],
        },
        "workers": {"idle_poll_seconds": 0.1, "render_processes": 0},
    }


async def poll_until(
    check: Callable[[], Awaitable[T | None]], timeout: float, what: str, every: float = POLL_SECONDS
) -> T:
    """Await `check()` until it returns something other than None/False (bounded by `timeout`).

    For state another process changes: there is no event to wait on, so the state is polled.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)  # polling another process's state, bounded by the deadline


class HubProcess:
    """One hub as a child process (`aktenhub run`, or `command`), started, killed and restarted by a test.

    Give it a port from the `reserved_port` fixture (`hub.testing.servers.ReservedPort`): a port from
    `free_port()` may be taken by another process before the hub listens, or between a kill and the
    restart. Every wait on the process (`wait_ready`, `until`) fails at once, with its log, if it exits.
    """

    def __init__(
        self,
        config: Path,
        workdir: Path,
        url: str,
        *,
        env: Mapping[str, str] | None = None,
        name: str = "hub",
        command: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.command = list(command) if command is not None else hub_command(config)
        self.workdir = workdir
        self.url = url
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def alive(self) -> bool:
        """Whether the process runs (it may not be ready yet)."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process (in a new process group); see `wait_ready`."""
        assert not self.alive, f"{self.name} runs already"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== {self.name} start {self.starts + 1} ====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = READY_TIMEOUT) -> None:
        """Poll /readyz until it answers 200 (bounded); fail with the log's tail if the process died."""

        last = "no answer"

        async def ready() -> bool:
            nonlocal last
            self._fail_if_exited("during start")
            try:
                async with session.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    last = f"{resp.status} {(await resp.text())[:500]}"
                    return resp.status == 200
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                return False

        try:
            await poll_until(ready, timeout, f"{self.name} to be ready")
        except AssertionError as exc:
            if self.proc is not None and self.proc.poll() is not None:
                raise  # the message has the log already
            raise AssertionError(f"{exc} (last answer of /readyz: {last})\n{self.log_tail()}") from None

    async def until(
        self, check: Callable[[], Awaitable[T | None]], what: str, timeout: float = READY_TIMEOUT
    ) -> T:
        """Await `check()` until its value is truthy (bounded), while the process runs: fails at once, with
        its log, if it exits.

        Falsy values (None, False, an empty list) and a request that fails to connect or is cut off (the
        hub may be starting) count as "not yet".
        """

        async def running_check() -> T | None:
            self._fail_if_exited(f"while waiting for {what}")
            try:
                value = await check()
            except (aiohttp.ClientError, OSError):
                return None
            return value or None

        try:
            return await poll_until(running_check, timeout, what)
        except AssertionError as exc:
            if self.proc is not None and self.proc.poll() is not None:
                raise  # the message has the log already
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def _fail_if_exited(self, when: str) -> None:
        assert self.proc is not None, f"{self.name} was not started"
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode} {when}:\n{self.log_tail()}")

    async def kill(self) -> None:
        """SIGKILL the hub process (no clean-up of any kind runs) and reap it.

        Only the hub, as a crash or the OOM killer ends it: the helpers it started must end by themselves
        (`hub.processes`), which is part of what a crash test checks.
        """
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 10)
        self.kills += 1

    async def stop(self) -> int | None:
        """SIGTERM, a bounded wait, SIGKILL as the last resort; the exit code of a clean stop."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await asyncio.to_thread(self.proc.wait, 10)
            return None

    def log(self) -> str:
        """Everything the process wrote, over all starts."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the log, headed by the process's name."""
        return f"--- {self.name} ({self.log_path}) ---\n" + "\n".join(self.log().splitlines()[-lines:])
