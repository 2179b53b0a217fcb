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


def test_each_line_carries_its_own_time_stamp_to_the_millisecond() -> None:
    formatter = TextFormatter()
    standard = logging.Formatter("%(asctime)s")
    # Records within one second and across a minute boundary, and one going back in time.
    for created in (1_796_990_399.25, 1_796_990_399.999, 1_796_990_400.0, 1_796_990_400.5, 1_700_000_000.042):
        record = logging.LogRecord("hub.test", logging.INFO, __file__, 1, "m", (), None)
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0
        assert formatter.format(record).split(" level=")[0] == standard.format(record)
