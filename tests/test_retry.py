"""Retry delays grow exponentially with jitter and stay under the cap."""

from __future__ import annotations

from hub.bus import retry_delay
from hub.connectors import RetryPolicy


def test_delays_grow_and_are_capped() -> None:
    policy = RetryPolicy(initial_seconds=1, max_seconds=60, jitter_seconds=0.5)
    delays = [retry_delay(policy, attempt) for attempt in range(1, 12)]
    for attempt, delay in enumerate(delays[:5], start=1):
        base = 2 ** (attempt - 1)
        assert base <= delay <= base + 0.5
    assert all(d <= 60 for d in delays)
    assert delays[-1] == 60


def test_jitter_spreads_retries() -> None:
    policy = RetryPolicy(initial_seconds=1, max_seconds=600, jitter_seconds=1)
    assert len({round(retry_delay(policy, 3), 6) for _ in range(20)}) > 1
