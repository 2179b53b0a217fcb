"""Render processes: PDF renditions in helper processes, driven from the event loop without threads.

A rendition holds the GIL for a few milliseconds, so the hub renders in helper processes and its own
interpreter stays free for intake. The hop used to be a ``ProcessPoolExecutor``: per rendition it woke
the pool's manager thread and the call queue's feeder thread and went through four pipe writes, ~0.2 ms
of the hub's CPU (bench/render.py). Here the event loop writes the request to the helper's stdin and
reads the PDF from its stdout: one write, one or two reads, no thread, ~0.05 ms.

Frames on the pipes: a 4-byte big-endian length, then the bytes. A request is two frames, the
application's JSON and the JSON of ``[labels, title]``; the answer is one byte (``P`` for the PDF, ``E``
for an error's text), then a frame. A helper that ends or is interrupted mid-frame is never used again:
the rendition that was waiting fails with `RenderError` (the step is retried as any failure) and the next
one starts a fresh helper. Helpers die with the hub (`hub.processes.init_helper`).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
from collections.abc import Mapping
from typing import BinaryIO

from hub.processes import init_helper

_LENGTH = struct.Struct(">I")
_STOP_SECONDS = 5.0


class RenderError(RuntimeError):
    """A rendition in a helper process failed, or the helper ended while rendering."""

    def __init__(self, message: str, *, helper_ended: bool = False) -> None:
        super().__init__(message)
        self.helper_ended = helper_ended


def _frame(data: bytes) -> bytes:
    return _LENGTH.pack(len(data)) + data


class _Helper:
    """One helper process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Helper:
        # The hub's own import path, as multiprocessing's spawn hands it on: hub imports in the helper
        # however the hub was started (installed, a checkout, PYTHONPATH).
        code = (
            f"import sys; sys.path[:] = {sys.path!r}; import hub.render_helpers as h; h.serve({os.getpid()})"
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def render(self, application_json: str, labels: Mapping[str, str], title: str | None) -> bytes:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None  # both are pipes
        try:
            stdin.write(
                _frame(application_json.encode()) + _frame(json.dumps([dict(labels), title]).encode())
            )
            await stdin.drain()
            kind = await stdout.readexactly(1)
            (length,) = _LENGTH.unpack(await stdout.readexactly(_LENGTH.size))
            payload = await stdout.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            ended = f"the render process ended (exit code {self.process.returncode})"
            raise RenderError(ended, helper_ended=True) from exc
        if kind != b"P":
            raise RenderError(f"rendition failed: {payload.decode(errors='replace')}")
        return payload

    async def stop(self) -> None:
        """End the helper: EOF on its stdin, killed if it does not end within a few seconds."""
        if self.process.returncode is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), _STOP_SECONDS)
            except TimeoutError:
                self.kill()
                await self.process.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class RenderProcesses:
    """Up to `processes` helper processes, started when first needed, each rendering one PDF at a time."""

    def __init__(self, processes: int) -> None:
        self._slots = asyncio.Semaphore(processes)
        self._idle: list[_Helper] = []
        self._running: set[_Helper] = set()

    async def render(self, application_json: str, labels: Mapping[str, str], title: str | None) -> bytes:
        """`hub.render.render_application_json` in a helper process."""
        async with self._slots:
            helper = self._idle.pop() if self._idle else await self._start()
            try:
                pdf = await helper.render(application_json, labels, title)
            except RenderError as exc:
                if exc.helper_ended:
                    self._discard(helper)
                else:
                    self._idle.append(helper)  # a complete answer: the helper goes on
                raise
            except BaseException:
                self._discard(helper)  # cancelled mid-frame: its pipes are out of step
                raise
            self._idle.append(helper)
            return pdf

    def pids(self) -> list[int]:
        """The process ids of the running helpers."""
        return [helper.process.pid for helper in self._running]

    async def close(self) -> None:
        """End every helper process."""
        helpers, self._idle = list(self._running), []
        self._running.clear()
        await asyncio.gather(*(helper.stop() for helper in helpers))

    async def _start(self) -> _Helper:
        helper = await _Helper.start()
        self._running.add(helper)
        return helper

    def _discard(self, helper: _Helper) -> None:
        helper.kill()
        self._running.discard(helper)


def _read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None  # the hub closed the pipe: time to end
    (length,) = _LENGTH.unpack(head)
    return stream.read(length)


def serve(parent_pid: int) -> None:
    """A helper process' main loop: render each request from stdin, answer on stdout, end at EOF."""
    init_helper(parent_pid)
    from hub.render import render_application_json  # loads the fonts lazily

    requests = sys.stdin.buffer
    # Answers go to a copy of stdout; fd 1 becomes stderr, so a stray print cannot corrupt a frame.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    while (application_json := _read_frame(requests)) is not None:
        extras = _read_frame(requests)
        if extras is None:
            break
        labels, title = json.loads(extras)
        try:
            pdf = render_application_json(application_json.decode(), labels, title)
        except Exception as exc:  # the hub shows it as the step's failure; this process goes on
            answer = b"E" + _frame(f"{type(exc).__name__}: {exc}".encode())
        else:
            answer = b"P" + _frame(pdf)
        answers.write(answer)
        answers.flush()
