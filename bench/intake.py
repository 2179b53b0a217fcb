"""Benchmark of durable intake: FormCycle submissions acknowledged after their journal commit.

The hub runs as a subprocess (the code path of ``aktenhub run -c CONFIG``) with the FormCycle source and
the file drop sink on a fresh SQLite journal, blob store and import directory in a temporary directory.
The load generator runs in separate process(es) (multiprocessing, spawn), so it never shares an event
loop or the GIL with the hub; on a small machine it still shares the CPU cores, and the output reports
how much CPU each side used.

Two phases:

(a) throughput: ``--count`` multipart posts (small attachment) from ``--concurrency`` connections, as
    fast as the hub acknowledges them (closed loop) -> acknowledged submissions per second;
(b) latency: open loop at ``--rate`` submissions per second for ``--duration`` seconds (sends are
    scheduled at fixed intervals whatever the answers) -> p50/p95/p99/max of the time from the
    scheduled send to the acknowledgment.

The journal's group-commit ratio (operations per SQLite transaction) comes from the hub's /metrics.

    .venv/bin/python bench/intake.py [--count 5000] [--concurrency 96] [--rate 500] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.loadgen import closed_loop, open_loop
from bench.scratch import run_in_scratch

FORMCYCLE_TOKEN_ENV = "FORMCYCLE_TOKEN"
ADMIN_TOKEN_ENV = "AKTENHUB_ADMIN_TOKEN"
SERVICE = "jagdschein"
REQUEST_TIMEOUT = 30.0
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


# -- the hub process ---------------------------------------------------------------------------------


def serve_hub(config: Path, log_level: str) -> None:
    """Run `aktenhub run -c CONFIG` in this process (dying with the benchmark)."""
    _die_with_parent()
    from hub.cli import main as cli_main

    cli_main(["--log-level", log_level, "run", "-c", str(config)])


def _die_with_parent() -> None:
    """Linux: get SIGTERM when the benchmark dies, even by SIGKILL: no hub or load process is left."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the benchmark died before prctl took effect
        sys.exit(1)


def write_config(tmp: Path, port: int, concurrency: int, workers: bool) -> Path:
    """A configuration like config/aktenhub.example.yaml, everything under `tmp`."""
    text = f"""\
store: sqlite:///{tmp / "journal.db"}
blobs: {tmp / "blobs"}
server:
  listen: "127.0.0.1:{port}"
  admin_tokens:
    - name: bench
      token: ${{{ADMIN_TOKEN_ENV}}}
      role: admin
workers:
  enabled: {"true" if workers else "false"}
  concurrency: {concurrency}
  idle_poll_seconds: 0.2
connectors:
  formcycle:
    type: formcycle
    token: ${{{FORMCYCLE_TOKEN_ENV}}}
    id_field: vorgang_id
  import:
    type: filedrop
    path: {tmp / "import"}
routes:
  - name: all-forms
    from: formcycle
    to: [import]
"""
    path = tmp / "aktenhub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process's main thread (the hub's event loop) so far, from /proc."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/task/{pid}/stat"))


def _stat_cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """A blocking GET; (status, body), status 0 when nothing answered."""
    try:
        with _opener.open(url, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


class HubProcess:
    """The hub subprocess: started, watched, stopped; its log goes to a file in the temp directory."""

    def __init__(
        self, config: Path, tmp: Path, url: str, workers: bool, log_level: str, cpus: str | None = None
    ) -> None:
        self.url = url
        self.workers = workers
        self.log_path = tmp / "hub.log"
        # `cpus`: pinned with taskset from the start, so every thread the hub starts inherits it.
        pin = ["taskset", "-c", cpus] if cpus else []
        command = [*pin, sys.executable, str(Path(__file__).resolve()), "--serve-hub", str(config)]
        command += ["--log-level", log_level]
        env = {
            **os.environ,
            FORMCYCLE_TOKEN_ENV: "bench-" + secrets.token_hex(16),
            ADMIN_TOKEN_ENV: "bench-" + secrets.token_hex(16),
        }
        self.form_token = env[FORMCYCLE_TOKEN_ENV]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        """Poll /readyz until 200, bounded."""
        probe = "/readyz"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            if http_get(self.url + probe, timeout=2)[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"hub not ready within {READY_TIMEOUT:g}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the hub process (all its threads) so far."""
        return process_cpu_seconds(self.proc.pid)

    def counters(self) -> dict[str, Any]:
        """The journal's commit and operation counters, from /metrics."""
        metrics = self.metrics()
        if "aktenhub_journal_write_transactions_total" not in metrics:
            return {}
        return {
            "commits": int(metrics["aktenhub_journal_write_transactions_total"]),
            "operations": int(metrics["aktenhub_journal_write_operations_total"]),
            "blob_syncs": int(metrics.get("aktenhub_blob_syncs_total", 0)),
        }

    def metrics(self) -> dict[str, float]:
        """GET /metrics, as {'name{labels}': value}."""
        status, body = http_get(self.url + "/metrics", timeout=10)
        out: dict[str, float] = {}
        if status != 200:
            return out
        for line in body.decode("utf-8", "replace").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out

    def backlog(self) -> int:
        """Applications taken in but not yet through (received or processing)."""
        m = self.metrics()
        return int(
            m.get('aktenhub_applications{state="received"}', 0)
            + m.get('aktenhub_applications{state="processing"}', 0)
        )

    def stop(self) -> int | None:
        """SIGTERM, bounded wait, then SIGKILL; the exit code of a clean stop."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the load generator (runs in its own process) ---------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """What one load-generator process does."""

    url: str
    token: str
    prefix: str  # makes every vorgang_id unique
    attachment_size: int
    start_at: float  # time.monotonic() (system-wide on Linux) when to begin
    deadline: float  # seconds after start_at when unfinished work is abandoned
    count: int = 0  # closed loop: this many submissions ...
    concurrency: int = 0  # ... from this many connections
    rate: float = 0.0  # open loop: submissions per second ...
    duration: float = 0.0  # ... for this many seconds


@dataclass
class LoadResult:
    """What one load-generator process measured: (scheduled, sent, done, status) per submission."""

    samples: list[tuple[float, float, float, int]] = field(default_factory=list)
    cpu_seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


def run_load(spec: LoadSpec) -> LoadResult:
    """Entry point of a load-generator process."""
    before = os.times()
    result = asyncio.run(_load(spec))
    after = os.times()
    result.cpu_seconds = (after.user - before.user) + (after.system - before.system)
    return result


async def _load(spec: LoadSpec) -> LoadResult:
    result = LoadResult()
    limit = spec.concurrency if spec.count else 1024
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.sleep(max(0.0, spec.start_at - time.monotonic()))
        if spec.count:
            await _closed_loop(session, spec, result)
        else:
            await _open_loop(session, spec, result)
    return result


def _form(spec: LoadSpec, n: int) -> aiohttp.FormData:
    vorgang_id = f"{spec.prefix}-{n:07d}"
    form = aiohttp.FormData()
    form.add_field("vorgang_id", vorgang_id)
    form.add_field("vorname", "Jürgen")
    form.add_field("nachname", "Groß")
    form.add_field("plz", "53721")
    form.add_field("einwilligung", "ja")
    # Distinct content per submission: the blob store is content-addressed and would dedupe copies.
    content = vorgang_id.encode() + os.urandom(max(0, spec.attachment_size - len(vorgang_id)))
    form.add_field("nachweis", content, filename="Nachweis.pdf", content_type="application/pdf")
    return form


async def _send(
    session: aiohttp.ClientSession, spec: LoadSpec, n: int, scheduled: float, result: LoadResult
) -> None:
    form = _form(spec, n)
    sent = time.monotonic()
    status = 0
    try:
        async with session.post(
            f"{spec.url}/intake/formcycle/{SERVICE}",
            data=form,
            headers={"X-Aktenhub-Token": spec.token},
        ) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        key = type(exc).__name__
        result.errors[key] = result.errors.get(key, 0) + 1
    if status and status not in (200, 202):
        result.errors[f"HTTP {status}"] = result.errors.get(f"HTTP {status}", 0) + 1
    result.samples.append((scheduled, sent, time.monotonic(), status))


async def _closed_loop(session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult) -> None:
    async def send(n: int, now: float) -> None:
        await _send(session, spec, n, now, result)

    await closed_loop(send, spec.count, spec.concurrency, spec.start_at + spec.deadline)


async def _open_loop(session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult) -> None:
    async def send(n: int, scheduled: float) -> None:
        await _send(session, spec, n, scheduled, result)

    unanswered = await open_loop(send, spec.rate, spec.duration, spec.deadline - spec.duration)
    if unanswered:
        result.errors["unanswered at deadline"] = result.errors.get("unanswered at deadline", 0) + unanswered


# -- phases ------------------------------------------------------------------------------------------


@dataclass
class PhaseReport:
    """The figures of one phase."""

    name: str
    offered_rate: float | None  # open loop: submissions/s offered; closed loop: None
    offered: int
    acknowledged: int
    errors: dict[str, int]
    wall_seconds: float
    acknowledged_per_second: float
    latency_ms: dict[str, float]
    service_ms: dict[str, float]  # from the actual send (without client-side scheduling lag)
    max_send_lag_ms: float
    hub_cpu_percent: float
    client_cpu_percent: float
    journal_operations: int | None
    journal_commits: int | None
    operations_per_commit: float | None
    backlog_after: int


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    if not values:
        return {}
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {
        "p50": round(cuts[49] * 1000, 2),
        "p95": round(cuts[94] * 1000, 2),
        "p99": round(cuts[98] * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


def run_phase(
    name: str, hub: HubProcess, pool: ProcessPoolExecutor, specs: list[LoadSpec], rate: float | None = None
) -> PhaseReport:
    """Run the load-generator processes of one phase and measure the hub alongside."""
    futures = [pool.submit(run_load, s) for s in specs]
    time.sleep(max(0.0, specs[0].start_at - time.monotonic()))  # the hub is measured from the start
    counters_before = hub.counters()
    cpu_before, measured_from = hub.cpu_seconds(), time.monotonic()
    results = [f.result() for f in futures]
    cpu_after, measured_to = hub.cpu_seconds(), time.monotonic()
    counters_after = hub.counters()
    samples = [s for r in results for s in r.samples]
    errors: dict[str, int] = {}
    for r in results:
        for key, n in r.errors.items():
            errors[key] = errors.get(key, 0) + n
    ok = [s for s in samples if s[3] in (200, 202)]
    start = min((s[1] for s in samples), default=0.0)
    end = max((s[2] for s in samples), default=0.0)
    wall = max(end - start, 1e-9)
    operations = commits = None
    ratio = None
    if counters_before.get("commits") is not None and counters_after.get("commits") is not None:
        operations = int(counters_after["operations"]) - int(counters_before["operations"])
        commits = int(counters_after["commits"]) - int(counters_before["commits"])
        ratio = round(operations / commits, 2) if commits else None
    return PhaseReport(
        name=name,
        offered_rate=rate,
        offered=len(samples),
        acknowledged=len(ok),
        errors=errors,
        wall_seconds=round(wall, 3),
        acknowledged_per_second=round(len(ok) / wall, 1),
        latency_ms=percentiles([s[2] - s[0] for s in ok]),
        service_ms=percentiles([s[2] - s[1] for s in ok]),
        max_send_lag_ms=round(max((s[1] - s[0] for s in samples), default=0.0) * 1000, 2),
        hub_cpu_percent=round((cpu_after - cpu_before) / max(measured_to - measured_from, 1e-9) * 100, 1),
        client_cpu_percent=round(sum(r.cpu_seconds for r in results) / wall * 100, 1),
        journal_operations=operations,
        journal_commits=commits,
        operations_per_commit=ratio,
        backlog_after=hub.backlog(),
    )


def split(total: int, parts: int) -> list[int]:
    """`total` split into `parts` near-equal shares."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def drain(hub: HubProcess, timeout: float) -> tuple[float, int]:
    """Wait (bounded) until the workers have delivered everything; (seconds waited, backlog left)."""
    started = time.monotonic()
    backlog = hub.backlog()
    while backlog and time.monotonic() - started < timeout:
        time.sleep(0.5)  # polling an observable condition, bounded by `timeout`
        backlog = hub.backlog()
    return round(time.monotonic() - started, 1), backlog


# -- output ------------------------------------------------------------------------------------------


def print_report(setup: dict[str, Any], phases: list[PhaseReport]) -> None:
    """A readable table, then the same figures as one JSON line."""
    print()
    print("Aktenhub durable intake benchmark")
    for key, value in setup.items():
        print(f"  {key:<22} {value}")
    print()
    rows: list[tuple[str, ...]] = [
        (
            "phase",
            "sent",
            "acked",
            "errors",
            "acked/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "hub CPU",
            "client CPU",
            "ops/commit",
            "backlog",
        )
    ]
    for p in phases:
        lat = p.latency_ms
        rows.append(
            (
                p.name,
                str(p.offered),
                str(p.acknowledged),
                str(sum(p.errors.values())),
                f"{p.acknowledged_per_second:.1f}",
                f"{lat.get('p50', 0):.1f}",
                f"{lat.get('p95', 0):.1f}",
                f"{lat.get('p99', 0):.1f}",
                f"{lat.get('max', 0):.1f}",
                f"{p.hub_cpu_percent:.0f}%",
                f"{p.client_cpu_percent:.0f}%",
                "-" if p.operations_per_commit is None else f"{p.operations_per_commit:.2f}",
                str(p.backlog_after),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print(
            "  "
            + "  ".join(
                c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    print()
    print("  latency: from the scheduled send to the acknowledgment (202 after the journal commit);")
    print("  ops/commit: journal write operations per SQLite transaction (group commit; includes the")
    print("  workers' claims and completions when they run); CPU: % of one core over the phase's wall time")
    for p in phases:
        if p.errors:
            print(f"  errors in {p.name}: {p.errors}")
        if p.offered_rate is not None and p.acknowledged_per_second < 0.95 * p.offered_rate:
            print(
                f"  {p.name}: SATURATED: {p.acknowledged_per_second:g}/s acknowledged of "
                f"{p.offered_rate:g}/s offered; the latency is the queue growing for the whole phase, "
                "not a steady state"
            )
        if p.service_ms:
            print(
                f"  {p.name}: from the actual send p50 {p.service_ms['p50']} ms, p99 {p.service_ms['p99']} "
                f"ms; largest client-side send lag {p.max_send_lag_ms} ms; journal "
                f"{p.journal_operations} operations in {p.journal_commits} commits"
            )
    print()
    print(json.dumps({"benchmark": "aktenhub.intake", "setup": setup, "phases": [asdict(p) for p in phases]}))


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=5000, help="submissions in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=96, help="connections in the throughput phase")
    parser.add_argument(
        "--rate",
        type=float,
        nargs="+",
        default=[500.0],
        help="offered submissions/s of the latency phase (several values: one phase each)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the latency phase")
    parser.add_argument("--attachment-size", type=int, default=2048, help="bytes per attachment")
    parser.add_argument(
        "--workers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the hub's workers (deliveries compete with intake) or measure intake alone",
    )
    parser.add_argument("--worker-concurrency", type=int, default=16, help="hub workers.concurrency")
    parser.add_argument(
        "--drain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with workers: wait for the delivery backlog to clear before the latency phase",
    )
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--client-processes", type=int, default=1, help="load-generator processes")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured submissions first")
    parser.add_argument("--phase-timeout", type=float, default=180.0, help="bound on each phase (s)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (for a look)")
    parser.add_argument("--serve-hub", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("count", "concurrency", "client_processes", "worker_concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.concurrency < args.client_processes:
        parser.error("--concurrency must be at least --client-processes")
    if min(args.rate) <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    return args


def benchmark(args: argparse.Namespace, tmp: Path) -> None:
    """Start the hub, run the phases, print the report; the hub is stopped whatever happens."""
    load_before = os.getloadavg()[0]  # another busy process on the machine skews every figure
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp, port, args.worker_concurrency, args.workers)
    hub = HubProcess(config, tmp, url, args.workers, args.log_level)
    procs = args.client_processes
    run_id = secrets.token_hex(3)
    phases: list[PhaseReport] = []
    drained: dict[str, Any] = {}
    try:
        hub.wait_ready()
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=procs, mp_context=context, initializer=_die_with_parent) as pool:

            def specs(phase: str, **load: Any) -> list[LoadSpec]:
                start_at = time.monotonic() + 1.0  # every process is up and connected by then
                out = []
                for i in range(procs):
                    share = {
                        k: (split(v, procs)[i] if isinstance(v, int) else v / procs) for k, v in load.items()
                    }
                    if phase.startswith("latency"):
                        share["duration"] = args.duration
                    out.append(
                        LoadSpec(
                            url=url,
                            token=hub.form_token,
                            prefix=f"FC-BENCH-{run_id}-{phase}-{i}",
                            attachment_size=args.attachment_size,
                            start_at=start_at,
                            deadline=args.phase_timeout,
                            **share,
                        )
                    )
                return out

            if args.warmup:
                run_phase("warmup", hub, pool, specs("warmup", count=args.warmup, concurrency=8))
                if args.workers and args.drain:
                    drain(hub, args.drain_timeout)
            phases.append(
                run_phase(
                    "throughput",
                    hub,
                    pool,
                    specs("throughput", count=args.count, concurrency=args.concurrency),
                )
            )
            if args.workers and args.drain:
                drained["seconds"], drained["backlog_left"] = drain(hub, args.drain_timeout)
            for i, rate in enumerate(args.rate):
                if i and args.workers and args.drain:
                    drain(hub, args.drain_timeout)
                phases.append(
                    run_phase(f"latency @{rate:g}/s", hub, pool, specs(f"latency{i}", rate=rate), rate)
                )
        intakes = sum(
            v
            for k, v in hub.metrics().items()
            if k.startswith("aktenhub_intakes_total{") and 'duplicate="false"' in k
        )
    finally:
        exit_code = hub.stop()
    setup = {
        "hub": "subprocess: `aktenhub run` code path, SQLite WAL synchronous=FULL, group commit",
        "load generator": f"{procs} separate process(es) (multiprocessing spawn), aiohttp, loopback",
        "cpus": os.cpu_count(),
        "load average (1 min)": f"{load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "python": platform.python_version(),
        "workers": (
            f"running (concurrency {args.worker_concurrency}): deliveries to the file drop compete "
            "with intake"
            if args.workers
            else "not started: intake alone, nothing is delivered"
        ),
        "drain before latency": drained or "no",
        "attachment": f"{args.attachment_size} bytes, multipart/form-data, 5 text fields",
        "throughput phase": f"{args.count} submissions, {args.concurrency} connections, closed loop",
        "latency phase": f"open loop, {', '.join(f'{r:g}' for r in args.rate)}/s for {args.duration:g}s each",
        "hub log level": args.log_level,
        "hub intakes counted": int(intakes),
        "hub stop exit code": exit_code,
    }
    print_report(setup, phases)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with the hidden --serve-hub, be the hub process)."""
    args = parse_args(argv)
    if args.serve_hub is not None:
        serve_hub(args.serve_hub, args.log_level)
        return 0
    return run_in_scratch("aktenhub-bench-", args.keep, lambda t: benchmark(args, t))


if __name__ == "__main__":
    sys.exit(main())
