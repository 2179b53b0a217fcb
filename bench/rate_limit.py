"""Benchmark: a target's rate limit and circuit breaker as the back end (the enaio simulator) sees them.

One process, everything on loopback in a fresh temporary directory: the enaio simulator (DMS Service
API) and a real hub (JSON intake → enaio, SQLite journal) on real time.

Phases:

(a) rate: ``--count`` submissions at once, filed with ``max_per_second`` unset and then set to
    ``--max-per-second``; the simulator's own request counter is sampled every 50 ms -> deliveries
    per second, requests per second (mean, and over the busiest stretch of at least one second) as the
    back end saw them.
(b) circuit: the simulator fails every request; ``--count`` submissions open the circuit; the
    requests it saw from the first submission until the circuit opened, then in ``--outage`` seconds
    of outage (no more should come but the probes); then it recovers -> seconds until the backlog is
    filed.

    .venv/bin/python bench/rate_limit.py [--count 40] [--max-per-second 5] [--outage 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from bench.figures import Figure, add_json_option, write
from bench.scratch import remove
from hub.plugins import load_plugins
from hub.testing import fakes
from hub.testing.harness import RunningHub, base_settings, start_hub, stop_hub

PASSWORD = "enaio-simulator"
SAMPLE_SECONDS = 0.05
DOWN = 1_000_000  # the simulator's fail_next while "down"


def enaio_target(url: str, **settings: Any) -> dict[str, Any]:
    return {
        "type": "enaio",
        "base_url": url,
        "username": "aktenhub",
        "password": "${ENAIO_PASSWORD}",
        "without_akte": "tray",
        "document_types": {"original": "Originalantrag", "attachment": "Anlage"},
        "document_title_field": "Titel",
        "max_concurrency": 8,
        **settings,
    }


async def requests_seen(http: aiohttp.ClientSession, url: str) -> int:
    """Requests the simulator answered (authenticated API calls) plus those it failed on purpose."""
    async with http.get(f"{url}/_sim/stats") as resp:
        stats = await resp.json()
    async with http.get(f"{url}/_sim/faults") as resp:
        knobs = await resp.json()
    failed = DOWN - knobs["fail_next"] if knobs["fail_next"] > DOWN // 2 else 0
    return int(sum(stats["requests"].values())) + failed


async def start(tmp: Path, name: str, url: str, **settings: Any) -> RunningHub:
    connectors = {"json": {"type": "test-json"}, "enaio": enaio_target(url, **settings)}
    config = base_settings(tmp / name, connectors, [{"name": "r", "from": "json", "to": ["enaio"]}])
    config["workers"]["idle_poll_seconds"] = 0.05
    return await start_hub(config, extra_plugins=(fakes,), env={"ENAIO_PASSWORD": PASSWORD})


async def submit(running: RunningHub, count: int, prefix: str) -> list[str]:
    ids = []
    for i in range(count):
        status, body = await running.post("/intake/json/jagdschein", json={"id": f"{prefix}{i}", "form": {}})
        assert status == 202, body
        ids.append(body["application_id"])
    return ids


async def rate_phase(
    tmp: Path, url: str, http: aiohttp.ClientSession, count: int, limit: float | None
) -> dict[str, Any]:
    running = await start(tmp, f"rate-{limit}", url, max_per_second=limit)
    try:
        before = await requests_seen(http, url)
        samples: list[tuple[float, int]] = [(time.monotonic(), 0)]
        ids = await submit(running, count, f"r{limit}-")
        done = asyncio.create_task(running.wait_all_final(timeout=600))
        while not done.done():
            await asyncio.sleep(SAMPLE_SECONDS)  # sampling the back end's counter, not synchronising
            samples.append((time.monotonic(), await requests_seen(http, url) - before))
        await done
        samples.append((time.monotonic(), await requests_seen(http, url) - before))
        seconds = samples[-1][0] - samples[0][0]
        # The busiest stretch of at least a second (samples come slower while the hub is busy).
        peak = 0.0
        for i, (t0, n0) in enumerate(samples):
            later = next(((t, n) for t, n in samples[i:] if t - t0 >= 1.0), None)
            if later is not None:
                peak = max(peak, (later[1] - n0) / (later[0] - t0))
        return {
            "max_per_second": limit,
            "applications": len(ids),
            "seconds": round(seconds, 2),
            "deliveries_per_second": round(len(ids) / seconds, 2),
            "requests": samples[-1][1],
            "requests_per_delivery": round(samples[-1][1] / len(ids), 2),
            "requests_per_second_mean": round(samples[-1][1] / seconds, 2),
            "requests_per_second_busiest": round(peak, 2),
        }
    finally:
        await stop_hub(running)


async def circuit_phase(
    tmp: Path, url: str, http: aiohttp.ClientSession, count: int, outage: float
) -> dict[str, Any]:
    async with http.post(f"{url}/_sim/faults", json={"fail_next": DOWN}):
        pass
    circuit = {"failure_threshold": 5, "open_seconds": 1.0, "max_open_seconds": 2.0}
    retry = {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01}
    running = await start(tmp, "circuit", url, circuit=circuit, retry=retry)
    try:
        before = await requests_seen(http, url)
        started = time.monotonic()
        ids = await submit(running, count, "c-")
        gate = running.hub.bus.gate
        await running.wait_for(lambda: gate.status()[0].circuit == "open", what="the circuit to open")
        opened = time.monotonic()
        at_open = await requests_seen(http, url) - before
        await asyncio.sleep(outage)  # the outage lasts this long: a duration measured, not a wait on work
        during = await requests_seen(http, url) - before - at_open
        async with http.post(f"{url}/_sim/faults", json={"fail_next": 0}):
            pass
        recovered = time.monotonic()
        await running.wait_all_final(timeout=600)
        drained = time.monotonic()
        states = [(await running.journal.get_summary(i)).state.value for i in ids]
        return {
            "applications": count,
            "seconds_to_open": round(opened - started, 2),
            "requests_until_open": at_open,
            "outage_seconds": outage,
            "requests_during_outage": during,
            "probes_failed": int(running.hub.metrics.circuit_opened.labels("enaio")._value.get()) - 1,
            "seconds_recovery_to_all_filed": round(drained - recovered, 2),
            "completed": states.count("completed"),
            "dead": states.count("dead"),
        }
    finally:
        await stop_hub(running)


async def benchmark(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    simulator = load_plugins().simulators()["enaio"]  # as `aktenhub simulate enaio` finds it
    server = TestServer(simulator.make_app(content_dir=tmp / "enaio-content"), host="127.0.0.1")
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            return {
                "machine": f"{platform.machine()} Python {platform.python_version()}",
                "rate": [
                    await rate_phase(tmp, url, http, args.count, None),
                    await rate_phase(tmp, url, http, args.count, args.max_per_second),
                ],
                "circuit": await circuit_phase(tmp, url, http, args.count, args.outage),
            }
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=40, help="applications per phase")
    parser.add_argument("--max-per-second", type=float, default=5.0, help="the rate limit of phase (a)")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the back end stays down in (b)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="aktenhub-bench-"))
    try:
        result = asyncio.run(benchmark(args, tmp))
    finally:
        remove(tmp)
    print(json.dumps(result, indent=2))
    if args.json:
        write(args.json, figures(result, args.max_per_second))
    return 0


def figures(result: dict[str, Any], limit: float) -> list[Figure]:
    """The limited phase's busiest second against the limit; the outage's requests and the recovery."""
    limited, circuit = result["rate"][1], result["circuit"]
    busiest = limited["requests_per_second_busiest"] / limited["requests_per_delivery"]
    return [
        Figure(
            f"rate limit: deliveries/s at max_per_second {limit:g}, mean",
            limited["deliveries_per_second"],
            "/s",
            better="lower",
            note="the first second's burst included",
        ),
        Figure(
            f"rate limit: deliveries/s at max_per_second {limit:g}, busiest second",
            round(busiest, 2),
            "/s",
            better="lower",
            # The bucket holds a second's tokens: a second may start its own and the burst, 2x the limit.
            note="from the requests per second over requests per delivery",
        ),
        Figure(
            "circuit: enaio requests during the outage (probes only)",
            circuit["requests_during_outage"],
            "",
            better="lower",
        ),
        Figure(
            "circuit: recovery to all filed", circuit["seconds_recovery_to_all_filed"], "s", better="lower"
        ),
        Figure("circuit: applications dead after the outage", circuit["dead"], "", target=0, better="lower"),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
