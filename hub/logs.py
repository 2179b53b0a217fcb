"""Structured logs: one event per line, key=value (or JSON), never personal data at INFO and above."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# Control characters (line breaks above all) in a message would let a remote party who chooses an id or
# a name start a forged log line of its own; they are written as escapes instead.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


class TextFormatter(logging.Formatter):
    """`time level=... logger=... message`, one line per event whatever the message holds."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """`logging.Formatter`'s time stamp, the date and time part made once per second, not per line."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"  # as logging's default_msec_format "%s,%03d"

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_CONTROL)
        return super().formatMessage(record)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger for the hub's processes."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would print client addresses and URLs with ids for every request.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The S3 client at DEBUG logs every request's headers: the signature and a session token.
    for name in ("botocore", "aiobotocore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    quiet_pdf_libraries()


def lean_records() -> None:
    """For a serving process: log records without the details neither log format shows.

    A record would otherwise look up the process id (a system call), the thread's and the process's
    names and walk the stack for the caller's file and line: a third of what the one INFO line per
    received application costs. These are the switches the logging documentation names for this
    ("Optimization"). Not set by `setup_logging`, so a test process's own log capture keeps them.
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None


class LoopBatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose lines from the event loop's thread are written once per loop iteration.

    Each write to the stream is a system call that also hands the GIL to the journal and blob writer
    threads: a thread switch per INFO line ("application received", one per intake), where the lines of
    the intakes one group commit completes can go out in one write. Lines keep their order; a line from
    another thread, or when the loop has closed, is written at once after those waiting. What waits is
    written at the end of the current loop iteration, by `flush` and at exit (`logging.shutdown`); a
    process killed outright loses at most that iteration's lines.
    """

    def __init__(self, stream: Any, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(stream)
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._waiting: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record; write it with the rest of the loop iteration's lines (or now)."""
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._waiting.append(line)  # (under the handler's lock, as every emit)
        if threading.get_ident() != self._loop_thread or self._loop.is_closed():
            self.flush()
        elif len(self._waiting) == 1:
            try:
                self._loop.call_soon(self.flush)
            except RuntimeError:  # the loop closed after all
                self.flush()

    def flush(self) -> None:
        """Write the lines waiting, then flush the stream."""
        with self.lock:  # type: ignore[union-attr]
            lines, self._waiting = self._waiting, []
            try:
                if lines:
                    self.stream.write("".join(lines))
                self.stream.flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": "%d log lines lost", "args": (len(lines),)}))


def batch_loop_lines(loop: asyncio.AbstractEventLoop) -> None:
    """For a serving process: the root logger's stream handler becomes a `LoopBatchingHandler` on `loop`
    (called in the loop's thread, while it runs)."""
    root = logging.getLogger()
    for i, handler in enumerate(root.handlers):
        if type(handler) is logging.StreamHandler:
            batching = LoopBatchingHandler(handler.stream, loop)
            batching.setFormatter(handler.formatter)
            batching.setLevel(handler.level)
            root.handlers[i] = batching


def quiet_pdf_libraries() -> None:
    """The PDF libraries log the characters they render (a missing glyph at WARNING, font subsetting
    at INFO): characters of applicants' names, so personal data. Only their errors are logged."""
    for name in ("fpdf", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
