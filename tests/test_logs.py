"""Log lines: one event per line, whatever a remote party put into an id or a name."""

from __future__ import annotations

import io
import json
import logging

from hub.logs import JsonFormatter, TextFormatter


def emit(formatter: logging.Formatter, message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_line_break_in_an_id_cannot_forge_a_log_line() -> None:
    forged = "m1\n2026-12-06 12:00:00 level=INFO logger=hub.runtime all is well\r\x1b[2J"
    out = emit(TextFormatter(), "message held source=%s message_id=%s", "xta", forged)
    assert out.count("\n") == 1 and out.endswith("\n")
    assert "message_id=m1\\n2026-12-06 12:00:00 level=INFO" in out
    assert "\\r\\x1b[2J" in out


def test_json_lines_stay_one_line_too() -> None:
    out = emit(JsonFormatter(), "message_id=%s", "a\nb")
    assert out.count("\n") == 1
    assert json.loads(out)["msg"] == "message_id=a\nb"
