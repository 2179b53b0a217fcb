"""Benchmark: what taking in and claiming work cost with a million finished applications in the
journal, against none.

A journal keeps every finished application (completed or dead, its tasks done, its timeline) until the
purge takes it after years; neither an intake nor the workers' claims may slow down as it fills. For
each backend this runs the same small live workload on two stores side by side, one batch or claim on
one then one on the other (so both meet the same load of a shared machine), one store empty and one
holding ``--count`` finished applications, and compares what each operation costs:

- the live workload: ``--tasks`` applications taken in ``--batch`` at a time (concurrent posts: their
  intakes share the group commits), each with a delivery task to one of three targets with capacities
  (as the sinks' ``max_concurrency``) and a file number drawn for its Akte; then claimed (``--limit`` at
  a time, as a hub's ``workers.concurrency``) and completed (in the completing transaction: its event,
  the join, the application completed), as the workers do, until nothing is left;
- an intake's cost: its time inside its transaction (the idempotency lookup by (source, external_id),
  the application's row, its event, task and correlations, and every index they go into), the process's
  CPU time per intake of a batch (commits included) and the wall time per intake of a batch;
- a file number's, a claim's and a completion's time inside the transaction, and a claim's round trip
  through the journal (queue, thread, commit). Between intake and workload a checkpoint writes the
  intake's pages back into the database files, so that the claims' commits do not pay for them.

The finished applications come from ``bench/console.py``'s builder (a SQLite journal of a year of
history with scattered ids, built once per ``--dir`` and copied for the run, so it stays as built);
PostgreSQL gets them moved over from it by ``hub.journal.transfer.copy_journal`` into a throw-away
cluster (``hub.testing.postgres``), then ``ANALYZE`` (what autovacuum does on a live database).
``--explain`` prints the query plans of one intake's, file number's, claim's and completion's
statements on the large journal, and flags a full scan of a large table. After each round's workload,
a /metrics scrape's journal counts (`stats()`) are timed on both stores. ``--json FILE`` writes the
ratios large/empty and a scrape's milliseconds with the large journal (``bench/figures.py``).

    .venv/bin/python -m bench.claim [--count 1000000] [--tasks 2000] [--batch 32]
        [--backend sqlite --backend postgresql] [--explain] [--dir /tmp/aktenhub-console-bench] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.console import build, journal_path
from bench.figures import Figure, add_json_option, write
from bench.pgserver import journal_database, kept_cluster
from bench.scratch import remove
from hub.journal import AfterAll, Completion, FileNumberSequence, SqliteJournal, TaskSpec
from hub.journal.lifecycle import SqlJournal
from hub.journal.tx import Tx
from hub.models import Application, ApplicationState, Event
from hub.testing.plans import LARGE_TABLES, Plan, explain, full_scans, recording, wrapped_writes
from hub.testing.postgres import PostgresServer

T = TypeVar("T")
CAPACITY = {"enaio": 4, "k3": 8, "xta": 16}  # the targets of console.py's journal, with room per target
LEASE = 300.0
OWNER = "bench-claim"


# The transaction parts `claim` and `complete` run alone (and `complete_and_claim` together).
PARTS = {"_claiming": "claim", "_completing": "complete"}


@dataclass
class Probe:
    """The time each journal write operation spent inside its transaction, by the method that made it."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def wrap(self, op: Callable[[Tx], T]) -> Callable[[Tx], T]:
        """`op`, timed."""
        # The journal's method that built the operation: "SqlJournal.intake.<locals>.op" -> "intake";
        # a part several methods share, by the method it stands for ("_claiming" -> "claim").
        name = op.__qualname__.split(".<locals>")[0].rpartition(".")[2]
        name = PARTS.get(name, name)

        def timed(c: Tx) -> T:
            began = time.perf_counter()
            try:
                return op(c)
            finally:
                self.seconds.setdefault(name, []).append(time.perf_counter() - began)

        return timed


async def settle(journal: SqlJournal) -> None:
    """Write what earlier transactions left in the log back into the database's files (a checkpoint),
    so that the workload's commits do not pay for the intake's pages."""
    if isinstance(journal, SqliteJournal):
        db = sqlite3.connect(journal.path, timeout=30)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
    else:
        await journal._write(lambda c: c.execute("CHECKPOINT"))


# -- the live workload -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One workload on one store: per intake, file number, claim and completion, in the transaction and
    round trip."""

    backend: str
    store: str  # "empty" or "N finished"
    intakes: list[float] = field(default_factory=list)  # seconds in the transaction
    intake_cpu: list[float] = field(default_factory=list)  # process CPU seconds per intake, by batch
    intake_trips: list[float] = field(default_factory=list)  # wall seconds per intake, by batch
    file_numbers: list[float] = field(default_factory=list)  # seconds in the transaction
    claims: list[float] = field(default_factory=list)
    claim_trips: list[float] = field(default_factory=list)  # seconds awaited by the caller
    completions: list[float] = field(default_factory=list)
    scrapes: list[float] = field(default_factory=list)  # seconds per `stats()`: /metrics' journal counts
    tasks: int = 0


def _delivered(app_id: str, target: str) -> Completion:
    """A delivery's completion as the pipeline writes it; the last delivery completes the application."""
    return Completion(
        result={"target": target},
        events=[Event(application_id=app_id, type="delivery.completed", step="deliver", target=target)],
        after_all=AfterAll(
            step="deliver",
            events=[Event(application_id=app_id, type="application.completed")],
            state=ApplicationState.COMPLETED,
        ),
    )


def _submission(run: str, i: int) -> Application:
    """The `i`-th live submission: a new applicant's (its own Akte), with an id FormCycle gave it."""
    return Application(
        source="formcycle",
        external_id=f"BENCH-{run}-{i}",
        service="jagdschein",
        correlations={"formcycle.process": f"P-{run}-{i}"},
    )


async def take_in(stores: Sequence[tuple[SqlJournal, Run]], tasks: int, batch: int) -> None:
    """`tasks` new applications on each store, each with one delivery task spread over the targets and
    a file number drawn for its Akte, as the hub takes them in: `batch` posts at a time (their intakes
    share group commits), one batch on one store, then one on the other (the same moment's load).

    Per batch: the process CPU and the wall time it took, per intake; per operation: its time in the
    transaction (the idempotency lookup, the rows and every index they go into).
    """
    targets = list(CAPACITY)
    sequence = FileNumberSequence("bench", "2026", lambda n: f"BENCH-{n:06d}")
    runs = {id(run): secrets.token_hex(4) for _, run in stores}
    with contextlib.ExitStack() as stack:
        probes = []
        for journal, _ in stores:
            probes.append(Probe())
            stack.enter_context(wrapped_writes(journal, probes[-1].wrap))
        for first in range(0, tasks, batch):
            numbers = range(first, min(first + batch, tasks))
            for journal, run in stores:
                apps = [_submission(runs[id(run)], i) for i in numbers]
                wall, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(
                    *(
                        journal.intake(
                            app,
                            [Event(application_id=app.id, type="application.received")],
                            [TaskSpec("deliver", target=targets[i % len(targets)])],
                        )
                        for i, app in zip(numbers, apps, strict=True)
                    )
                )
                run.intake_cpu.append((time.process_time() - cpu) / len(apps))
                run.intake_trips.append((time.perf_counter() - wall) / len(apps))
                await asyncio.gather(
                    *(
                        journal.assign_file_number(a.id, sequence, akte_key=f"akte-{a.external_id}")
                        for a in apps
                    )
                )
    for (_, run), probe in zip(stores, probes, strict=True):
        run.intakes += probe.seconds["intake"]
        run.file_numbers += probe.seconds["assign_file_number"]


async def work_off(stores: Sequence[tuple[SqlJournal, Run]], limit: int) -> None:
    """Claim and complete until nothing is due, as a hub's workers do, on each store in turn.

    One claim (and its completions) on one store, then one on the other: both meet the same moment's
    load of a shared machine, which would otherwise weigh on whichever store ran at a busier time.
    """
    with contextlib.ExitStack() as stack:
        probes = []
        for journal, _ in stores:
            probes.append(Probe())
            stack.enter_context(wrapped_writes(journal, probes[-1].wrap))
        busy = list(stores)
        while busy:
            for journal, run in list(busy):
                if not await claim_and_complete(journal, limit, run):
                    busy.remove((journal, run))
    for (_, run), probe in zip(stores, probes, strict=True):
        run.claims += probe.seconds["claim"][:-1]  # the last claim found nothing: not the workload's
        run.completions += probe.seconds["complete"]


async def claim_and_complete(journal: SqlJournal, limit: int, run: Run) -> bool:
    """One claim and the completion of what it leased; whether there was anything."""
    began = time.perf_counter()
    claimed = await journal.claim(OWNER, limit, LEASE, CAPACITY)
    took = time.perf_counter() - began
    if not claimed:
        return False
    run.claim_trips.append(took)
    run.tasks += len(claimed)
    # The workers complete side by side: one commit may carry several (SQLite's group commit).
    await asyncio.gather(*(journal.complete(t, _delivered(t.application_id, t.target)) for t in claimed))
    return True


# -- the query plans ----------------------------------------------------------------------------------------


async def plans(journal: SqlJournal, limit: int) -> list[Plan]:
    """The plans of one intake's, one file number's, one claim's and one completion's statements (the
    claim's tasks are completed)."""
    app = _submission(secrets.token_hex(4), 0)
    with recording(journal) as statements:
        await journal.intake(app, [Event(application_id=app.id, type="application.received")], [])
        await journal.intake(app, [Event(application_id=app.id, type="application.received")], [])  # re-sent
        sequence = FileNumberSequence("bench", "2026", str)
        await journal.assign_file_number(app.id, sequence, akte_key=f"akte-{app.external_id}")
        claimed = await journal.claim(OWNER, limit, LEASE, CAPACITY)
        if claimed:
            await journal.complete(claimed[0], _delivered(claimed[0].application_id, claimed[0].target))
    for task in claimed[1:]:
        await journal.complete(task, _delivered(task.application_id, task.target))
    return await journal._write(lambda c: explain(c, statements))


def print_plans(backend: str, explained: list[Plan]) -> None:
    """Each statement (its column list shortened) and its plan, full scans of large tables flagged."""
    print(
        f"\nquery plans on {backend}, the large journal: "
        "an intake, its re-send, a file number, a claim, a completion"
    )
    flagged = 0
    for sql, plan in explained:
        short = re.sub(r"SELECT (\w+, ){4,}\w+ FROM", "SELECT ... FROM", sql)
        print(f"  {short}")
        for line in plan:
            print(f"      {line}")
        for line in full_scans(plan):
            flagged += 1
            print(f"      ^ FULL SCAN of a large table: {line.strip()}")
    print(f"  {flagged} full scan(s) of {', '.join(LARGE_TABLES)}")


# -- stores ---------------------------------------------------------------------------------------------


@asynccontextmanager
async def sqlite_store(directory: Path, source: Path | None = None) -> AsyncIterator[SqlJournal]:
    """A SQLite journal in `directory`: empty, or a copy of `source` (which stays as built)."""
    path = directory / f"journal-{secrets.token_hex(4)}.db"
    if source is not None:
        shutil.copyfile(source, path)
    journal = SqliteJournal(path)
    await journal.open()
    try:
        yield journal
    finally:
        await journal.close()
        for leftover in directory.glob(path.name + "*"):
            leftover.unlink()


@asynccontextmanager
async def postgres_store(url: str) -> AsyncIterator[SqlJournal]:
    """The journal in the database at `url`."""
    from hub.journal.postgres import PostgresJournal

    journal = PostgresJournal(url)
    await journal.open()
    try:
        yield journal
    finally:
        await journal.close()


async def fill(server: PostgresServer, source: Path) -> str:
    """A new database of `server` with the rows of the SQLite journal `source`; its name."""
    url = journal_database(server)
    began = time.perf_counter()
    async with postgres_store(url) as journal:
        origin = SqliteJournal(source)  # opened to write: brought to this hub's schema first
        await origin.open()
        try:
            moved = await journal.take_over(origin)
        finally:
            await origin.close()
        # What autovacuum does on a live database soon after: the planner's statistics.
        await journal._write(lambda c: c.execute("ANALYZE"))
    rows = sum(moved.rows.values())
    print(f"postgresql: {rows:,} rows moved in and analysed in {time.perf_counter() - began:.0f} s (kept)")
    return url.rpartition("/")[2]


async def compare(
    backend: str,
    args: argparse.Namespace,
    empty: Callable[[], AbstractAsyncContextManager[SqlJournal]],
    large: SqlJournal,
) -> list[Run]:
    """The workload on a fresh empty store and on the large one, side by side, `--rounds` times.

    The large store is the same in every round: each round leaves ``--tasks`` more finished
    applications in it (0.2 % of a million by default).
    """
    runs = Run(backend, "empty"), Run(backend, f"{args.count:,} finished")
    for round_ in range(args.rounds):
        async with empty() as journal:
            await take_in([(journal, runs[0]), (large, runs[1])], args.tasks, args.batch)
            if args.explain and round_ == 0:
                print_plans(backend, await plans(large, args.limit))
            for store in (journal, large):
                await settle(store)
            await work_off([(journal, runs[0]), (large, runs[1])], args.limit)
            for _ in range(SCRAPES):
                for store, run in ((journal, runs[0]), (large, runs[1])):
                    run.scrapes.append(await scrape(store))
    return list(runs)


SCRAPES = 5  # /metrics scrapes per round and store


async def scrape(journal: SqlJournal) -> float:
    """The wall time of the journal's counts for one /metrics scrape (`stats()`), in seconds.

    Wall time: on PostgreSQL the work is the server's; on SQLite the reader thread's, nearly all CPU.
    """
    began = time.perf_counter()
    await journal.stats()
    return time.perf_counter() - began


# -- figures --------------------------------------------------------------------------------------------


def micros(values: Sequence[float]) -> str:
    """The median in microseconds, or '-'."""
    return f"{statistics.median(values) * 1e6:,.0f}" if values else "-"


def ratio(large: Sequence[float], empty: Sequence[float]) -> float:
    """The median of `large` over that of `empty`."""
    return statistics.median(large) / statistics.median(empty)


# What each run's figures are: (attribute, column heading, what the ratio large/empty is called).
MEASURES = (
    ("intakes", "intake µs", "intake in its transaction"),
    ("intake_cpu", "intake CPU µs", "intake process CPU"),
    ("intake_trips", "intake trip µs", "intake round trip"),
    ("file_numbers", "file no. µs", "file number in its transaction"),
    ("claims", "claim µs", "claim in its transaction"),
    ("claim_trips", "claim trip µs", "claim round trip"),
    ("completions", "complete µs", "completion in its transaction"),
    ("scrapes", "scrape µs", "/metrics journal counts"),
)
# The aim for the operations whose cost must not grow with history; the rest is reported.
AIMED = {"intakes", "intake_cpu", "claims"}
AIM = 1.10
SCRAPE_AIM_MS = 20.0  # a scrape every 15 s must not cost a share of a core


def print_table(runs: list[Run], flush: bool = False) -> None:
    """Per backend and store: medians per intake, file number, claim and completion; ratios large/empty."""
    print()
    head = ("backend", "store", "claims", "tasks", *(heading for _, heading, _ in MEASURES))
    rows = [head] + [
        (
            r.backend,
            r.store,
            str(len(r.claims)),
            str(r.tasks),
            *(micros(getattr(r, attribute)) for attribute, _, _ in MEASURES),
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for i, row in enumerate(rows):
        cells = (
            c.rjust(w) if j > 1 else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        print("  " + "  ".join(cells))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    print("  (medians; µs in the transaction: the operation's statements; trip: as the caller awaits it,")
    print("   queue, thread hop and the durable commit included, intakes per batch of concurrent posts;")
    print("   intake CPU: the process's CPU time per intake of a batch, commit included;")
    print("   scrape: the journal's counts of one /metrics scrape, `stats()`, after the workload)")
    for empty, large in zip(runs[::2], runs[1::2], strict=True):
        ratios = ", ".join(
            f"{what} {ratio(getattr(large, attribute), getattr(empty, attribute)):.2f}x"
            for attribute, _, what in MEASURES
        )
        print(
            f"  {empty.backend}: large / empty: {ratios} (aim: intake and claim within {AIM:.2f}x)",
            flush=flush,
        )


def figures(runs: list[Run], count: int) -> list[Figure]:
    """The ratios large/empty per backend and a scrape's cost with the large journal, for `make bench`."""
    scrapes = [
        Figure(
            f"history: /metrics journal counts with {count:,} finished, {large.backend}",
            round(statistics.median(large.scrapes) * 1e3, 2),
            "ms",
            target=SCRAPE_AIM_MS,
            better="lower",
        )
        for large in runs[1::2]
    ]
    return scrapes + [
        Figure(
            f"history: {what} with {count:,} finished / empty, {empty.backend}",
            round(ratio(getattr(large, attribute), getattr(empty, attribute)), 3),
            "x",
            target=AIM if attribute in AIMED else None,
            better="lower",
        )
        for empty, large in zip(runs[::2], runs[1::2], strict=True)
        for attribute, _, what in MEASURES
    ]


async def run_sqlite(args: argparse.Namespace, source: Path, tmp: Path) -> list[Run]:
    """Empty SQLite journals against a copy of the large one."""
    async with sqlite_store(tmp, source) as large:
        return await compare("sqlite", args, lambda: sqlite_store(tmp), large)


def run_postgres(args: argparse.Namespace, source: Path) -> list[Run]:
    """Empty PostgreSQL databases against one holding the large journal's rows, on one cluster: a copy
    of the one kept beside the SQLite journal (moved in once: 20 minutes for a million applications on
    a shared 2-core machine)."""
    from hub.journal.postgres import migrate

    # -v2: moved in by a `take_over` that folds the finished counts and vacuums their deltas; a cluster
    # kept from before holds a million unfolded deltas, which the first /metrics scrape folds.
    cache = source.with_name(source.stem + "-postgresql-v2")
    with kept_cluster(cache, lambda server: asyncio.run(fill(server, source))) as (server, database):
        # The kept cluster is at the schema it was built with: upgraded as `aktenhub migrate` would
        # (on this run's copy; the kept one stays as built).
        migrate(server.url(database))

        async def workload() -> list[Run]:
            async with postgres_store(server.url(database)) as large:
                return await compare(
                    "postgresql", args, lambda: postgres_store(journal_database(server)), large
                )

        return asyncio.run(workload())


def main() -> None:
    """Build (or reuse) the large journal, run the workload on each backend, print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=1_000_000, help="finished applications in the large journal"
    )
    parser.add_argument("--tasks", type=int, default=2000, help="live applications (one delivery task each)")
    parser.add_argument("--limit", type=int, default=16, help="tasks per claim (workers.concurrency)")
    parser.add_argument("--batch", type=int, default=32, help="intakes at once (concurrent posts)")
    parser.add_argument("--rounds", type=int, default=2, help="workloads on each store, in turn")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"], help="default: both")
    parser.add_argument("--explain", action="store_true", help="print the claim's query plans")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/aktenhub-console-bench"))
    add_json_option(parser)
    args = parser.parse_args()
    backends = args.backend or ["sqlite", "postgresql"]
    args.dir.mkdir(parents=True, exist_ok=True)
    source = journal_path(args.dir, args.count)
    if not source.exists():
        print(
            f"building a journal of {args.count:,} finished applications (bench/console.py) ...", flush=True
        )
        print(
            f"built in {build(source, args.count, time.time()):.0f} s, {source.stat().st_size / 1e6:,.0f} MB"
        )
    tmp = Path(tempfile.mkdtemp(prefix="aktenhub-bench-claim-"))
    measured: list[Figure] = []
    try:
        for backend in backends:
            load = os.getloadavg()[0]
            if backend == "sqlite":
                runs = asyncio.run(run_sqlite(args, source, tmp))
            else:
                runs = run_postgres(args, source)
            print(f"\nintake and claims on {backend} with {args.count:,} finished applications against none")
            print(
                f"  workload: {args.tasks} applications taken in {args.batch} at a time, each with a file "
                f"number and one delivery over {len(CAPACITY)} targets (capacities {CAPACITY}), claimed "
                f"{args.limit} at a time and completed; {args.rounds} round(s)"
            )
            print(
                f"  load average (1 min) {load:.2f} at start, {os.getloadavg()[0]:.2f} at end, "
                f"{os.cpu_count()} cpus"
            )
            print_table(runs, flush=True)
            measured += figures(runs, args.count)
    finally:
        remove(tmp)
    if args.json:
        write(args.json, measured)


if __name__ == "__main__":
    main()
