"""Durable intake of two checkouts side by side: CPU per acknowledged post, by thread, in alternating rounds.

A change to intake is judged against the code it changes (e.g. main in a detached worktree) by the CPU
each hub spends per post, not by wall rates, which other work on a shared machine moves by more than a
change does. Both hubs run the `aktenhub run` code path of their own checkout (as in
``bench.intake_vs_nodered``: FormCycle source, SQLite journal, local blobs, workers off), pinned to the
same core; the load generator of ``bench.intake_vs_nodered`` runs on another. The rounds alternate
ABBA, so a slow spell hits both. Per round and hub: the CPU of the main thread (the event loop) and of
all threads per acknowledged post, from /proc, and the main thread's involuntary context switches per
post (each a thread that took the GIL in the middle of a request); at the end, the medians, each
pair's ratio, and the journal transactions and blob syncs per post (bigger groups: fewer of both).
Two checkouts of the same code differ by up to ~20 % in a single pair on a loaded machine: judge a change
by the median of several pairs (and run it once against itself to see the noise of the day).

    git worktree add --detach /tmp/intake-base main
    .venv/bin/python -m bench.intake_ab --base /tmp/intake-base [--new .] [--rounds 6] [--count 3000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import statistics
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.intake import HubProcess, free_port, write_config
from bench.intake_vs_nodered import ACCEPTED, Load, _pin_load, run_load
from bench.scratch import run_in_scratch


@dataclass(frozen=True)
class Usage:
    """What a hub process has used so far: CPU seconds of its main thread and of all threads, and its
    main thread's involuntary context switches."""

    main: float
    total: float
    switches: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        """Read from /proc."""
        tick = os.sysconf("SC_CLK_TCK")
        main = total = 0.0
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                fields = (task / "stat").read_text().rpartition(")")[2].split()
            except OSError:  # a thread that just ended
                continue
            cpu = (int(fields[11]) + int(fields[12])) / tick
            total += cpu
            if task.name == str(pid):
                main = cpu
        status = Path(f"/proc/{pid}/task/{pid}/status").read_text()
        switches = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("nonvol"))
        return cls(main, total, switches)


@dataclass
class Round:
    """One measured round of one hub, per acknowledged post."""

    hub: str
    acknowledged: int
    main_ms: float
    total_ms: float
    switches: float


@contextmanager
def code_of(checkout: Path) -> Iterator[None]:
    """Processes started inside import the hub, its plugins and `bench` from `checkout`."""
    plugins = [str(p) for p in sorted((checkout / "plugins").iterdir()) if p.is_dir()]
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(checkout), *plugins])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def start(name: str, checkout: Path, tmp: Path, cpu: str) -> tuple[HubProcess, int]:
    """A hub of `checkout` in its own directory under `tmp`, pinned to `cpu`; with its port."""
    workdir = tmp / name
    workdir.mkdir()
    port = free_port()
    config = write_config(workdir, port, 1, workers=False)
    with code_of(checkout):
        hub = HubProcess(config, workdir, f"http://127.0.0.1:{port}", False, "info", cpus=cpu)
    return hub, port


def measure(name: str, hub: HubProcess, port: int, pool: ProcessPoolExecutor, count: int) -> Round:
    """One closed-loop round of `count` posts (64 connections, 2 KB attachment) against one hub."""
    load = Load(port, hub.form_token, f"AB-{name}-{secrets.token_hex(4)}", count, 64, 2048)
    before = Usage.of(hub.proc.pid)
    outcome = pool.submit(run_load, load).result()
    after = Usage.of(hub.proc.pid)
    acknowledged = sum(n for status, n in outcome.statuses.items() if status in ACCEPTED)
    per = max(acknowledged, 1)
    return Round(
        name,
        acknowledged,
        (after.main - before.main) * 1000 / per,
        (after.total - before.total) * 1000 / per,
        (after.switches - before.switches) / per,
    )


def benchmark(args: argparse.Namespace, tmp: Path) -> None:
    """Start both hubs, warm them up, alternate the rounds, print what each spent per post."""
    checkouts = {"base": args.base.resolve(), "new": args.new.resolve()}
    hubs = {name: start(name, checkout, tmp, args.server_cpu) for name, checkout in checkouts.items()}
    rounds: list[Round] = []
    try:
        for hub, _ in hubs.values():
            hub.wait_ready()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            1, mp_context=context, initializer=_pin_load, initargs=(args.load_cpu,)
        ) as pool:
            for name, (hub, port) in hubs.items():
                measure(name, hub, port, pool, args.warmup)
            order = list(hubs)
            for i in range(args.rounds):
                for name in order if i % 2 == 0 else order[::-1]:
                    done = measure(name, *hubs[name], pool, args.count)
                    rounds.append(done)
                    print(
                        f"  round {i + 1} {name:<4} acknowledged {done.acknowledged}  CPU per post: main "
                        f"thread {done.main_ms:.3f} ms, all threads {done.total_ms:.3f} ms; "
                        f"{done.switches:.2f} involuntary switches",
                        flush=True,
                    )
        totals = {name: hub.counters() for name, (hub, _) in hubs.items()}
    finally:
        for hub, _ in hubs.values():
            hub.stop()
    report(args, rounds, totals)


def report(args: argparse.Namespace, rounds: list[Round], totals: dict[str, dict[str, int]]) -> None:
    """Medians per hub, each pair's ratio new/base, group sizes."""
    base = [r for r in rounds if r.hub == "base"]
    new = [r for r in rounds if r.hub == "new"]
    posts = args.warmup + args.rounds * args.count
    print(f"\nIntake CPU per acknowledged post, {args.rounds} ABBA rounds of {args.count}, same core")
    for name, of in (("base", base), ("new", new)):
        counters = totals.get(name, {})
        print(
            f"  {name:<4} {checkout_name(args, name)}: main thread "
            f"{statistics.median(r.main_ms for r in of):.3f} ms, all threads "
            f"{statistics.median(r.total_ms for r in of):.3f} ms (medians); journal transactions "
            f"{counters.get('commits', 0) / posts:.3f}, blob syncs "
            f"{counters.get('blob_syncs', 0) / posts:.3f} per post"
        )
    for what in ("main_ms", "total_ms"):
        ratios = [
            getattr(n, what) / getattr(b, what) for b, n in zip(base, new, strict=True) if getattr(b, what)
        ]
        print(
            f"  new/base {what.removesuffix('_ms')}: median {statistics.median(ratios):.3f} "
            f"(pairs {' '.join(f'{r:.2f}' for r in ratios)})"
        )


def checkout_name(args: argparse.Namespace, name: str) -> str:
    """The checkout a hub ran, as given."""
    return str(args.base if name == "base" else args.new)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--base", type=Path, required=True, help="the checkout to compare against")
    parser.add_argument(
        "--new", type=Path, default=Path(__file__).resolve().parents[1], help="the changed one"
    )
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds per hub (alternating)")
    parser.add_argument("--count", type=int, default=3000, help="posts per round")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured posts per hub first")
    parser.add_argument("--server-cpu", default="0", help="the core both hubs are pinned to")
    parser.add_argument("--load-cpu", default="1", help="the core of the load generator")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (for a look)")
    args = parser.parse_args(argv)
    if min(args.rounds, args.count, args.warmup) < 1:
        parser.error("--rounds, --count and --warmup must be at least 1")
    for checkout in (args.base, args.new):
        if not (checkout / "hub" / "__init__.py").is_file():
            parser.error(f"{checkout} is not a checkout of the hub")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison."""
    args = parse_args(argv)
    return run_in_scratch("aktenhub-intake-ab-", args.keep, lambda t: benchmark(args, t))


if __name__ == "__main__":
    sys.exit(main())
