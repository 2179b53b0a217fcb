"""Log lines: one event per line, whatever a remote party put into an id or a name."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading

from hub.logs import JsonFormatter, LoopBatchingHandler, TextFormatter


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


class Writes(io.StringIO):
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_the_lines_of_one_loop_iteration_go_out_in_one_write_in_order() -> None:
    stream = Writes()
    logger = logging.getLogger("test.logs.batched")
    logger.propagate = False

    async def serve() -> list[str]:
        handler = LoopBatchingHandler(stream, asyncio.get_running_loop())
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        try:
            for n in range(3):
                logger.warning("received %d", n)
            before = list(stream.writes)  # nothing written while the iteration runs
            await asyncio.sleep(0)  # the iteration ends; the next one starts after the write
            elsewhere = threading.Thread(target=logger.warning, args=("from a thread",))
            logger.warning("received 3")  # waits for the loop ...
            elsewhere.start()  # ... but goes out before the thread's line, which is written at once
            elsewhere.join()
            return before
        finally:
            logger.removeHandler(handler)

    before = asyncio.run(serve())
    assert before == []
    assert stream.writes == ["received 0\nreceived 1\nreceived 2\n", "received 3\nfrom a thread\n"]


def test_a_line_after_the_loop_has_closed_is_written_at_once() -> None:
    stream = Writes()
    loop = asyncio.new_event_loop()
    loop.close()
    handler = LoopBatchingHandler(stream, loop)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(logging.makeLogRecord({"msg": "stopping"}))
    assert stream.getvalue() == "stopping\n"
