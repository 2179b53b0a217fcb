"""Benchmark: two hub processes against one on PostgreSQL, for the filing path.

The end-to-end set-up of ``bench/e2e.py`` (its load generator, enaio simulator, configuration and figures),
with the journal in PostgreSQL and the files in one local directory the processes share (what an object
store is to processes on several machines), or with ``--blobs s3`` in a bucket of moto's S3 server (a
stand-in: its CPU is not a real store's). For each count of ``--processes`` (default 1, then 2): a new
database at the journal's schema in one throw-away cluster (``hub.testing.postgres``, commits flushed to
disk as in production), a new enaio simulator, that many ``aktenhub run`` processes, each taking every
submission in turn (as a reverse proxy would spread them) and each running workers; a warm-up, then the
throughput phase (closed loop, as fast as the hub takes them) until everything is filed. Reports the
applications filed per second of each count and the ratio to one process, with the CPU of every process
over the phase (hubs with their PDF helpers, the simulator, PostgreSQL, the load generator): on a machine
with few cores they all share them, which caps what a second process can add.

    .venv/bin/python -m bench.scaleout [--processes 1 --processes 2] [--blobs local|s3] [--count 300]
        [bench/e2e.py's options]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import secrets
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

from bench.e2e import (
    MAPPING,
    Bench,
    Hub,
    PhaseReport,
    Simulator,
    die_with_parent,
    free_port,
    parse_args,
    tree_cpu_seconds,
    write_config,
)
from bench.figures import Figure, add_json_option, write
from bench.pgserver import journal_database, server_pid, throwaway_cluster
from bench.scratch import run_in_scratch
from hub.testing.postgres import PostgresServer
from hub.testing.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Bucket, S3Server
from hub.testing.s3 import start_server as start_s3


def run_processes(
    count: int, args: argparse.Namespace, server: PostgresServer, s3: S3Server | None, tmp: Path
) -> PhaseReport:
    """`count` hub processes on a new database (and bucket) and a new simulator: warm-up, then the
    measured phase."""
    directory = tmp / f"processes-{count}"
    directory.mkdir()
    store = journal_database(server)
    postmaster = server_pid(server)
    others = {"postgresql": lambda: tree_cpu_seconds(postmaster)}
    blobs = None
    if s3 is not None:
        bucket = f"bench-{secrets.token_hex(4)}"
        s3.client().create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        blobs = S3Bucket(s3, bucket).url
        others["s3 (moto)"] = lambda: tree_cpu_seconds(s3.process.pid)
    # Its own simulator: the applicants of each count are numbered from one again (new Akten each).
    simulator = Simulator(directory, free_port())
    hubs: list[Hub] = []
    try:
        simulator.wait_ready(simulator.url + "/_sim/stats")
        for n in range(1, count + 1):
            port = free_port()
            config = write_config(
                directory,
                port,
                simulator.url,
                args.api,
                args.worker_concurrency,
                args.enaio_concurrency,
                store=store,
                name=f"hub-{n}",
                blobs=blobs,
            )
            tokens = (hubs[0].form_token, hubs[0].admin_token) if hubs else None
            hubs.append(
                Hub(config, directory, f"http://127.0.0.1:{port}", args.log_level, f"hub-{n}", tokens)
            )
        for hub in hubs:
            hub.wait_ready(hub.url + "/readyz")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent) as pool:
            bench = Bench(hubs, simulator, pool, args, secrets.token_hex(3), others)
            if args.warmup:
                bench.run_phase("warmup")
            return bench.run_phase(f"{count} process{'es' if count > 1 else ''}")
    finally:
        for hub in hubs:
            hub.stop()
        simulator.stop()


@contextlib.contextmanager
def object_store(kind: str) -> Iterator[S3Server | None]:
    """moto's S3 server for ``--blobs s3`` (the hubs find its credentials in the environment)."""
    if kind != "s3":
        yield None
        return
    server = start_s3()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    try:
        yield server
    finally:
        server.stop()


def print_comparison(setup: dict[str, object], phases: list[PhaseReport]) -> None:
    """One line per process count: filed per second, the ratio to the first, CPU per process."""
    print()
    print("Aktenhub on PostgreSQL: several `aktenhub run` processes against one, FormCycle -> filed in enaio")
    for key, value in setup.items():
        print(f"  {key:<24} {value}")
    print()
    base = phases[0].filed_per_second if phases else 0.0
    print(f"  {'processes':<12} {'filed':>6} {'filed/s':>8} {'ratio':>6}  CPU per process (% of one core)")
    for p in phases:
        ratio = p.filed_per_second / base if base else 0.0
        cpu = ", ".join(f"{name} {percent:.0f}%" for name, percent in p.cpu_percent.items())
        cpu += f", load generator {p.client_cpu_percent:.0f}%"
        print(f"  {p.name:<12} {p.filed:>6} {p.filed_per_second:>8.2f} {ratio:>5.2f}x  {cpu}")
    print()
    print("  filed/s: applications filed per second, from the first send to the last delivery.completed")
    print("  (each count on a new database, the same warm-up first; aim: 2 processes >= 1.6x one)")
    for p in phases:
        if p.enaio_objects_created != p.enaio_objects_expected or p.filed < p.acknowledged or p.errors:
            print(
                f"  {p.name}: MISMATCH: {p.acknowledged} acknowledged, {p.filed} filed, {p.dead} dead, "
                f"enaio {p.enaio_objects_created} new objects of {p.enaio_objects_expected}, "
                f"errors {p.errors}"
            )
        else:
            objects = p.enaio_objects_created
            print(f"  {p.name}: every acknowledged submission filed once ({objects} enaio objects)")
    print()
    record = {"benchmark": "aktenhub.scaleout", "setup": setup, "phases": [asdict(p) for p in phases]}
    print(json.dumps(record, default=str))


def benchmark(counts: Sequence[int], args: argparse.Namespace, tmp: Path) -> None:
    """One cluster for all counts; a database, a simulator and the hub processes anew for each."""
    load_before = os.getloadavg()[0]
    phases: list[PhaseReport] = []
    with throwaway_cluster() as server, object_store(args.blobs) as s3:
        for count in counts:
            phases.append(run_processes(count, args, server, s3, tmp))
    setup: dict[str, object] = {
        "hubs": "subprocesses: the `aktenhub run` code path, each workers on, the same configuration",
        "journal": "PostgreSQL (throw-away cluster, commits flushed to disk), a new database per count",
        "files": (
            "S3: moto's server (a stand-in for Ceph RGW, Garage, SeaweedFS), a new bucket per count"
            if args.blobs == "s3"
            else "local blob store, one directory shared by the processes"
        ),
        "enaio": f"simulator subprocess, API {args.api}, no added latency",
        "route": f"formcycle -> {MAPPING.name} (PDF rendition, Personenakte, Vorgang, documents) -> enaio",
        "load": f"{args.count} submissions, {args.concurrency} connections, closed loop, taken in turn",
        "warmup": f"{args.warmup} submissions per count, filed before the measurement",
        "workers": f"{args.worker_concurrency} per process, enaio max_concurrency {args.enaio_concurrency}",
        "cpus": os.cpu_count(),
        "load average (1 min)": f"{load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "python": platform.python_version(),
    }
    print_comparison(setup, phases)
    if args.json:
        write(args.json, figures(phases))


def figures(phases: list[PhaseReport]) -> list[Figure]:
    """Filed per second for each process count, and each count's ratio to the first."""
    base = phases[0].filed_per_second if phases else 0.0
    out = []
    for p in phases:
        out.append(Figure(f"scaleout: {p.name}, filed/s", p.filed_per_second, "/s"))
        if p is not phases[0] and base:
            # The issue-12 aim: two processes file at least 1.6 times as many as one.
            aim = 1.6 if p.name.startswith("2 ") else None
            out.append(
                Figure(
                    f"scaleout: {p.name} / {phases[0].name}",
                    round(p.filed_per_second / base, 2),
                    "x",
                    target=aim,
                )
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison; options other than --processes are bench/e2e.py's."""
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--processes", type=int, action="append", help="hub processes (repeat; default 1, 2)")
    own.add_argument("--blobs", choices=["local", "s3"], default="local", help="where the files go")
    add_json_option(own)
    ours, rest = own.parse_known_args(argv)
    args = parse_args(rest)
    args.blobs, args.json = ours.blobs, ours.json
    counts = ours.processes or [1, 2]
    if min(counts) < 1:
        raise SystemExit("--processes must be at least 1")
    return run_in_scratch("aktenhub-bench-scaleout-", args.keep, lambda t: benchmark(counts, args, t))


if __name__ == "__main__":
    sys.exit(main())
