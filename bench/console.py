"""Benchmark: the console's pages on a journal with a long history, as the operator waits for them.

Builds (once per directory, reused afterwards) a SQLite journal of ``--count`` finished applications
spread over a year, 1 % of the last month's dead with error texts that quote ids, written straight into
the journal's tables: through intake, a million applications would take hours. Then starts a real hub
on that journal and times the console's pages over HTTP (best and worst of ``--rounds``), logged in
with an admin token: the dashboard (24 hours, 7 days), the live counters, the dead letters (an
operator's grouping by error text, a viewer's by code), a search by an id and an application's page.

    .venv/bin/python -m bench.console [--count 200000] [--rounds 5] [--dir /tmp/aktenhub-console-bench]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sqlite3
import time
from pathlib import Path

from bench.figures import Figure, add_json_option, write
from hub.journal import SqliteJournal
from hub.models import Application
from hub.testing import fakes
from hub.testing.console import ConsoleClient
from hub.testing.harness import base_settings, start_hub, stop_hub

YEAR = 365 * 86400
TARGETS = {"jagd": "enaio", "angeln": "k3", "bau": "xta"}
TOKEN = "bench-admin-token-0123456789"
VIEWER = "bench-viewer-token-0123456789"


def journal_path(directory: Path, count: int) -> Path:
    """Where `build` keeps the journal of `count` applications in `directory` (reused by later runs)."""
    return directory / f"journal-{count}-v2.db"  # v2: scattered ids


def application_id(i: int) -> str:
    """The `i`-th application's id: scattered like the random ids hubs gave before issue 14 (now
    `hub.models.new_id` makes them in time order), so each application's rows sit somewhere in the id
    indexes as in a journal of years, not in one corner: the harder case for a new application's rows."""
    return "app_" + hashlib.sha256(str(i).encode()).hexdigest()[:32]


async def _create(path: Path) -> None:
    journal = SqliteJournal(path)
    await journal.open()
    await journal.close()


def build(path: Path, count: int, now: float) -> float:
    """Write `count` finished applications into a fresh journal at `path`; seconds it took."""
    for old in path.parent.glob(path.name + "*"):
        old.unlink()
    asyncio.run(_create(path))
    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    rng = random.Random(1)
    db.execute("BEGIN")
    for i in range(count):
        app_id = application_id(i)
        received = now - (count - i) / count * YEAR  # in time order, as a journal fills
        done = received + rng.random() * 600
        route = rng.choice(list(TARGETS))
        target = TARGETS[route]
        dead = received > now - 30 * 86400 and rng.random() < 0.01
        state = "dead" if dead else "completed"
        error = f"Permanent: record {i} of {app_id} refused by {target}" if dead else None
        doc = Application(
            id=app_id, source="formcycle", external_id=f"FC-{i}", service="jagdschein", form={"name": "x"}
        ).model_dump_json()
        db.execute(
            "INSERT INTO applications (id, source, external_id, service, route, state, received_at,"
            " updated_at, search, doc) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (app_id, "formcycle", f"FC-{i}", "jagdschein", route, state, received, done, f"fc-{i}", doc),
        )
        last = (
            ("step.dead", json.dumps({"error": error, "error_code": "Permanent"}))
            if dead
            else (
                "delivery.completed",
                "{}",
            )
        )
        db.executemany(
            "INSERT INTO events (application_id, type, at, step, target, data) VALUES (?,?,?,?,?,?)",
            [
                (app_id, "application.received", received, None, None, '{"source": "formcycle"}'),
                (app_id, "record.mapped", received + 1, "map", None, "{}"),
                (app_id, last[0], done, "deliver", target, last[1]),
                *([] if dead else [(app_id, "application.completed", done, None, None, "{}")]),
            ],
        )
        db.executemany(
            "INSERT INTO tasks (application_id, step, target, state, max_attempts, due_at, created_at,"
            " updated_at, last_error, error_code) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (app_id, "map", "", "done", 5, received, received, received + 1, None, None),
                (app_id, "deliver", target, state, 5, received, received, done, error, error and "Permanent"),
            ],
        )
        if i % 100_000 == 99_999:
            db.execute("COMMIT")
            db.execute("BEGIN")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - started


async def measure(path: Path, count: int, rounds: int) -> list[tuple[str, float, float]]:
    """(what, best ms, worst ms) of each console request."""
    connectors = {name: {"type": "test-recording"} for name in TARGETS.values()}
    connectors["formcycle"] = {"type": "test-json"}
    settings = base_settings(
        path.parent / "hub", connectors, [{"name": "jagd", "from": "formcycle", "to": ["enaio"]}]
    )
    settings["store"] = f"sqlite:///{path}"
    settings["server"]["admin_tokens"] = [
        {"name": "bench", "token": "${TOKEN}", "role": "admin"},
        {"name": "viewer", "token": "${VIEWER}", "role": "viewer"},
    ]
    started = time.perf_counter()
    running = await start_hub(
        settings, extra_plugins=(fakes,), env={"TOKEN": TOKEN, "VIEWER": VIEWER}, workers=False
    )
    took = time.perf_counter() - started
    print(f"hub started on the journal in {took:.1f} s (the first start builds new indexes)")
    middle = application_id(count // 2)
    pages = [
        ("dashboard, 24 hours", "/ui/"),
        ("dashboard, 7 days", "/ui/?zeitraum=7d"),
        ("live counters", "/ui/counters"),
        ("dead letters (grouped by text)", "/ui/dead"),
        ("search by an external id", f"/ui/applications?q=FC-{count // 2}"),
        ("application page", f"/ui/applications/{middle}"),
        ("applications, first page", "/ui/applications"),
    ]
    figures: list[tuple[str, float, float]] = []
    try:
        for token, who in ((TOKEN, False), (VIEWER, True)):
            async with ConsoleClient(running.url) as console:
                await console.login_with_token(token)
                for what, path_ in pages if not who else pages[3:4]:
                    times = []
                    for _ in range(rounds):
                        began = time.perf_counter()
                        status, _ = await console.get(path_)
                        times.append(time.perf_counter() - began)
                        assert status == 200, (path_, status)
                    named = "dead letters (grouped by code) as viewer" if who else what
                    figures.append((named, min(times) * 1000, max(times) * 1000))
    finally:
        await stop_hub(running)
    return figures


def main() -> None:
    """Build (or reuse) the journal, time the pages, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/aktenhub-console-bench"))
    add_json_option(parser)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = journal_path(args.dir, args.count)
    if not path.exists():
        print(f"building a journal of {args.count:,} finished applications ...", flush=True)
        print(f"built in {build(path, args.count, time.time()):.0f} s, {path.stat().st_size / 1e6:,.0f} MB")
    figures = asyncio.run(measure(path, args.count, args.rounds))
    print(f"\nconsole on a journal of {args.count:,} applications ({args.rounds} rounds each)")
    print(f"{'request':<40} {'best ms':>8} {'worst ms':>9}")
    for what, best, worst in figures:
        print(f"{what:<40} {best:>8.0f} {worst:>9.0f}")
    if args.json:
        journal = f"{args.count:,} applications"
        write(
            args.json,
            [
                Figure(f"console: {what}, {journal}", round(worst), "ms", better="lower")
                for what, _, worst in figures
            ],
        )


if __name__ == "__main__":
    main()
