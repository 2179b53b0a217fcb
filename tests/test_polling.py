"""Polled sources: the hub polls each on its interval, one poll at a time, and survives failing polls."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from hub.connectors import ConnectorConfig, ConnectorContext, IntakeFunc, Manifest, Source
from hub.hookspecs import hookimpl


class SlowPollingSource(Source[ConnectorConfig]):
    """A mailbox that answers slowly and fails every third poll."""

    kind = "test-slow-poll"
    manifest = Manifest(name="slow poll", version="1")
    instances: ClassVar[list[SlowPollingSource]] = []

    def __init__(self, config: Any, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = 0.02
        self.polls = 0
        self.running = 0
        self.most_at_once = 0
        SlowPollingSource.instances.append(self)

    async def poll(self, intake: IntakeFunc) -> int:
        self.polls += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.1)  # a slow remote mailbox: longer than the interval
            if self.polls % 3 == 0:
                raise ConnectionError("mailbox unreachable")
            return 0
        finally:
            self.running -= 1


class Plugin:
    @hookimpl
    def aktenhub_connector_types(self) -> list[type[Source]]:
        return [SlowPollingSource]


async def test_polls_never_overlap_and_a_failing_poll_is_retried(hub_factory: Any) -> None:
    SlowPollingSource.instances.clear()
    running = await hub_factory(
        {"mailbox": {"type": "test-slow-poll"}, "rec": {"type": "test-recording"}},
        [{"name": "r", "from": "mailbox", "to": ["rec"]}],
        extra_plugins=(Plugin(),),
    )
    (source,) = SlowPollingSource.instances
    await running.wait_for(lambda: source.polls >= 5, what="five polls", timeout=10)
    assert source.most_at_once == 1


class WakeableSource(Source[ConnectorConfig]):
    """A source polled hourly that hears of new submissions by other means (as IMAP IDLE does)."""

    kind = "test-wakeable"
    manifest = Manifest(name="wakeable", version="1")
    instances: ClassVar[list[WakeableSource]] = []

    def __init__(self, config: Any, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.poll_interval = 3600.0
        self.polls = 0
        WakeableSource.instances.append(self)

    async def poll(self, intake: IntakeFunc) -> int:
        self.polls += 1
        return 0


class WakeablePlugin:
    @hookimpl
    def aktenhub_connector_types(self) -> list[type[Source]]:
        return [WakeableSource]


async def test_a_woken_source_is_polled_at_once_not_at_its_interval(hub_factory: Any) -> None:
    WakeableSource.instances.clear()
    running = await hub_factory(
        {"postfach": {"type": "test-wakeable"}, "rec": {"type": "test-recording"}},
        [{"name": "r", "from": "postfach", "to": ["rec"]}],
        extra_plugins=(WakeablePlugin(),),
    )
    (source,) = WakeableSource.instances
    await running.wait_for(lambda: source.polls == 1, what="the first poll, at start", timeout=10)
    assert source.wake_poll is not None  # the core scheduled its polls, so it may wake them
    source.wake_poll()
    await running.wait_for(lambda: source.polls == 2, what="a poll at once, not in an hour", timeout=10)
