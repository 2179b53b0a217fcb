"""Structured logs: one event per line, key=value (or JSON), never personal data at INFO and above."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime


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


def quiet_pdf_libraries() -> None:
    """The PDF libraries log the characters they render (a missing glyph at WARNING, font subsetting
    at INFO): characters of applicants' names, so personal data. Only their errors are logged."""
    for name in ("fpdf", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
