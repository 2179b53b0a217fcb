"""Durable intake side by side with Node-RED: the hub's acknowledged submissions per second against Node-RED
4.1 relaying the same multipart FormCycle posts to a DMS stand-in without any durability.

Set-up (issue 14): the server under test pinned to one core (``--server-cpu``), the load generator and
the DMS stand-in pinned to another (``--load-cpu``); the same load generator for both (a lean HTTP/1.1
client on keep-alive connections sending pre-built multipart bodies, so its own cost stays small),
``--concurrency`` connections, closed loop; hub and Node-RED measured in alternating rounds (ABBA order),
so a slow spell on the shared machine hits both. The hub runs the `aktenhub run` code path with the
FormCycle source on a fresh SQLite journal (WAL, synchronous=FULL) and its blob store, workers off: a
202 means journal row and files are durable. Node-RED (``bench/nodered``: http in with file upload ->
function -> http request to the DMS stand-in -> http response) answers with the DMS's answer and keeps
nothing.

Node-RED is installed with ``npm ci`` into the scratch directory (or ``--nodered-dir``, reused when
it holds the same package-lock.json).

    .venv/bin/python bench/intake_vs_nodered.py [--rounds 4] [--count 3000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import filecmp
import multiprocessing
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.figures import Figure, add_json_option, write
from bench.intake import (
    SERVICE,
    HubProcess,
    _die_with_parent,
    free_port,
    http_get,
    main_thread_cpu_seconds,
    process_cpu_seconds,
    write_config,
)
from bench.loadgen import read_response
from bench.scratch import run_in_scratch

NODERED = Path(__file__).resolve().parent / "nodered"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
REQUEST_TIMEOUT = 30.0
ACCEPTED = (200, 201, 202)


# -- the DMS stand-in --------------------------------------------------------------------------------


def serve_dms(port: int) -> None:
    """A document store that takes any POST, reads it whole and answers 201 with an id (no storage)."""
    _die_with_parent()
    from aiohttp import web

    counter = 0

    async def store(request: web.Request) -> web.Response:
        nonlocal counter
        await request.read()
        counter += 1
        return web.json_response({"id": f"DOC-{counter}"}, status=201)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/documents", store)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- Node-RED ----------------------------------------------------------------------------------------


def install_nodered(target: Path) -> Path:
    """`npm ci` of bench/nodered into `target` (skipped when it holds that lock file installed)."""
    target.mkdir(parents=True, exist_ok=True)
    lock = NODERED / "package-lock.json"
    installed = target / "node_modules" / "node-red" / "red.js"
    if installed.is_file() and (target / lock.name).is_file() and filecmp.cmp(lock, target / lock.name):
        return installed
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(NODERED / name, target / name)
    done = subprocess.run(
        ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not installed.is_file():
        raise RuntimeError(f"npm ci of Node-RED failed:\n{done.stderr[-2000:]}")
    return installed


class NodeRedProcess:
    """Node-RED running the relay flow, pinned to `cpus`."""

    def __init__(self, red_js: Path, tmp: Path, port: int, dms_url: str, token: str, cpus: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        user_dir = tmp / "nodered-user"
        user_dir.mkdir(exist_ok=True)
        flow = user_dir / "flows.json"
        shutil.copyfile(NODERED / "flows.json", flow)
        env = {
            **os.environ,
            "PORT": str(port),
            "FLOW_FILE": str(flow),
            "USER_DIR": str(user_dir),
            "DMS_URL": dms_url,
            "FORMCYCLE_TOKEN": token,
            "NODE_ENV": "production",
        }
        self.log_path = tmp / "nodered.log"
        command = ["taskset", "-c", cpus, "node", str(red_js), "--settings", str(NODERED / "settings.js")]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        """Poll until the flow's server answers (Node-RED listens once the flows have started)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Node-RED exited with {self.proc.returncode}:\n{self.log_tail()}")
            if http_get(self.url + "/", timeout=2)[0]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Node-RED not ready within {READY_TIMEOUT:g}s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """CPU time of the Node-RED process so far."""
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM, bounded wait, then SIGKILL."""
        stop_process(self.proc)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, bounded wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- the load generator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one round's load-generator process sends."""

    port: int
    token: str
    prefix: str  # makes every vorgang_id unique
    count: int
    concurrency: int
    attachment_size: int


@dataclass
class LoadOutcome:
    """What the load generator saw: answers by status, wall time of the round, its own CPU time."""

    statuses: dict[int, int]
    errors: dict[str, int]
    wall_seconds: float
    cpu_seconds: float


def build_request(load: Load, n: int) -> bytes:
    """One FormCycle post (the fields of bench/intake.py's form, a distinct attachment) as raw HTTP."""
    boundary = secrets.token_hex(16)
    vorgang_id = f"{load.prefix}-{n:07d}"
    fields = {
        "vorgang_id": vorgang_id,
        "vorname": "Jürgen",
        "nachname": "Groß",
        "plz": "53721",
        "einwilligung": "ja",
    }
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    # Distinct content per submission: the blob store is content-addressed and would dedupe copies.
    content = vorgang_id.encode() + os.urandom(max(0, load.attachment_size - len(vorgang_id)))
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="nachweis"; filename="Nachweis.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    body = b"".join(parts)
    head = (
        f"POST /intake/formcycle/{SERVICE} HTTP/1.1\r\nHost: 127.0.0.1:{load.port}\r\n"
        f"X-Aktenhub-Token: {load.token}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def run_load(load: Load) -> LoadOutcome:
    """Entry point of the load-generator process: build the posts, then send them."""
    requests = [build_request(load, n) for n in range(load.count)]
    before = os.times()
    outcome = asyncio.run(_send_all(load, requests))
    after = os.times()
    outcome.cpu_seconds = (after.user - before.user) + (after.system - before.system)
    return outcome


async def _send_all(load: Load, requests: list[bytes]) -> LoadOutcome:
    outcome = LoadOutcome({}, {}, 0.0, 0.0)
    pending = iter(requests)

    async def connection() -> None:
        reader = writer = None
        try:
            for request in pending:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", load.port)
                assert reader is not None
                try:
                    writer.write(request)
                    status, _, keep = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                    outcome.errors[type(exc).__name__] = outcome.errors.get(type(exc).__name__, 0) + 1
                    writer.close()
                    reader = writer = None
                    continue
                outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                if not keep:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(load.concurrency)))
    outcome.wall_seconds = time.monotonic() - started
    return outcome


def _pin_load(cpus: str) -> None:
    _die_with_parent()
    os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


# -- rounds ------------------------------------------------------------------------------------------


@dataclass
class Round:
    """One measured round of one server."""

    server: str
    acknowledged: int
    failed: int
    per_second: float
    server_cpu_ms: float  # per acknowledged submission
    main_thread_cpu_ms: float  # of that, the server's main thread (the hub's event loop; Node's JS thread)
    load_cpu_percent: float


def measure(
    name: str,
    pid: int,
    port: int,
    token: str,
    pool: ProcessPoolExecutor,
    count: int,
    concurrency: int,
    size: int,
) -> Round:
    """One closed-loop round against the server at `port`: its rate and CPU per acknowledged post."""
    load = Load(port, token, f"FC-VS-{name}-{secrets.token_hex(4)}", count, concurrency, size)
    # The rate is timed by the load process from its first send (the bodies are built before); the
    # server's CPU from here on, which adds only its idle cost while the bodies are built.
    cpu_before, main_before = process_cpu_seconds(pid), main_thread_cpu_seconds(pid)
    outcome = pool.submit(run_load, load).result()
    cpu = process_cpu_seconds(pid) - cpu_before
    main = main_thread_cpu_seconds(pid) - main_before
    acknowledged = sum(n for status, n in outcome.statuses.items() if status in ACCEPTED)
    failed = count - acknowledged
    return Round(
        server=name,
        acknowledged=acknowledged,
        failed=failed,
        per_second=acknowledged / max(outcome.wall_seconds, 1e-9),
        server_cpu_ms=cpu * 1000 / max(acknowledged, 1),
        main_thread_cpu_ms=main * 1000 / max(acknowledged, 1),
        load_cpu_percent=outcome.cpu_seconds / max(outcome.wall_seconds, 1e-9) * 100,
    )


def benchmark(args: argparse.Namespace, tmp: Path) -> None:
    """Start DMS stand-in, hub and Node-RED; alternate the rounds; print and write the figures."""
    red_js = install_nodered(args.nodered_dir or tmp / "nodered")
    context = multiprocessing.get_context("spawn")
    dms_port, hub_port, red_port = free_port(), free_port(), free_port()
    dms = subprocess.Popen(
        ["taskset", "-c", args.load_cpu, sys.executable, __file__, "--serve-dms", str(dms_port)],
        stdout=subprocess.DEVNULL,
    )
    config = write_config(tmp, hub_port, 1, workers=False)
    url = f"http://127.0.0.1:{hub_port}"
    hub = HubProcess(config, tmp, url, False, args.hub_log_level, cpus=args.server_cpu)
    red = NodeRedProcess(
        red_js, tmp, red_port, f"http://127.0.0.1:{dms_port}/documents", hub.form_token, args.server_cpu
    )
    rounds: list[Round] = []
    try:
        hub.wait_ready()
        red.wait_ready()
        servers = {"hub": (hub.proc.pid, hub_port), "node-red": (red.proc.pid, red_port)}
        with ProcessPoolExecutor(
            max_workers=1, mp_context=context, initializer=_pin_load, initargs=(args.load_cpu,)
        ) as pool:
            for name, (pid, port) in servers.items():  # warm-up: JIT, caches, connection set-up
                warm = measure(
                    name, pid, port, hub.form_token, pool, args.warmup, args.concurrency, args.size
                )
                if warm.failed:
                    raise RuntimeError(f"{name} failed {warm.failed} of {args.warmup} warm-up posts")
            order = list(servers)
            for i in range(args.rounds):
                # ABBA: neither server is always measured first after the other's round.
                for name in order if i % 2 == 0 else order[::-1]:
                    pid, port = servers[name]
                    done = measure(
                        name, pid, port, hub.form_token, pool, args.count, args.concurrency, args.size
                    )
                    rounds.append(done)
                    print(
                        f"  round {i + 1} {name:<8} {done.per_second:8.1f}/s  CPU "
                        f"{done.server_cpu_ms:6.2f} ms/post (main thread {done.main_thread_cpu_ms:.2f})  "
                        f"failed {done.failed}  load gen "
                        f"{done.load_cpu_percent:.0f}% CPU",
                        flush=True,
                    )
    finally:
        hub.stop()
        red.stop()
        stop_process(dms)
    report(args, rounds)


def report(args: argparse.Namespace, rounds: list[Round]) -> None:
    """Medians per server, the per-round-pair ratio, and the figures for `make bench`."""

    def of(name: str) -> list[Round]:
        return [r for r in rounds if r.server == name]

    hub, red = of("hub"), of("node-red")
    ratios = [h.per_second / r.per_second for h, r in zip(hub, red, strict=True) if r.per_second]
    ratio = statistics.median(ratios) if ratios else float("nan")
    hub_rate = statistics.median(r.per_second for r in hub)
    red_rate = statistics.median(r.per_second for r in red)
    hub_cpu = statistics.median(r.server_cpu_ms for r in hub)
    red_cpu = statistics.median(r.server_cpu_ms for r in red)
    hub_loop = statistics.median(r.main_thread_cpu_ms for r in hub)
    red_loop = statistics.median(r.main_thread_cpu_ms for r in red)
    cpu_ratio = red_cpu / hub_cpu if hub_cpu else float("nan")
    failed = sum(r.failed for r in rounds)
    busiest_load = max(r.load_cpu_percent for r in rounds)
    print()
    print("Durable intake (hub) vs relay without durability (Node-RED), each pinned to one core")
    print(
        f"  cpu server {args.server_cpu}, load generator + DMS stand-in {args.load_cpu}; {args.rounds} rounds"
    )
    print(f"  of {args.count} posts ({args.size} B attachment), {args.concurrency} connections, closed loop")
    print(
        f"  hub: SQLite journal (WAL, synchronous=FULL), local blobs, workers off, "
        f"log level {args.hub_log_level}"
    )
    print(f"  hub       {hub_rate:8.1f} acknowledged/s (median)   CPU {hub_cpu:.2f} ms per acknowledged post")
    print(f"  Node-RED  {red_rate:8.1f} relayed/s (median)        CPU {red_cpu:.2f} ms per relayed post")
    # The main thread is the hub's event loop (HTTP, parsing, validation); the rest are its blob
    # committer and journal writer threads (file and database writes, fsync).
    print(
        f"  of that in the main thread: hub {hub_loop:.2f} ms (event loop; other threads "
        f"{hub_cpu - hub_loop:.2f}), Node-RED {red_loop:.2f} ms"
    )
    print(
        f"  ratio hub/Node-RED {ratio:.2f}x (median of the rounds' ratios: "
        f"{', '.join(f'{r:.2f}' for r in ratios)})"
    )
    # On a loaded machine neither server gets its core to itself; the CPU each spends per post is the
    # rate it would reach on an idle core, so this ratio is what the throughput ratio tends to there.
    print(f"  CPU ratio Node-RED/hub per post {cpu_ratio:.2f}x; failed posts {failed}")
    if busiest_load > 90:
        print(
            f"  WARNING: the load generator used up to {busiest_load:.0f}% of its core: it may be the limit"
        )
    if args.json:
        note = "alternating rounds, each server pinned to one core; machine shared"
        write(
            args.json,
            [
                Figure("intake: ratio hub/Node-RED", round(ratio, 3), "x", target=2, note=note),
                Figure(
                    "intake: CPU ratio Node-RED/hub per submission",
                    round(cpu_ratio, 3),
                    "x",
                    target=2,
                    note="the rate ratio on idle cores",
                ),
                Figure("intake: hub acknowledged/s (1 core)", round(hub_rate, 1), "/s", note=note),
                Figure("intake: Node-RED relayed/s (1 core)", round(red_rate, 1), "/s", note=note),
                Figure(
                    "intake: hub CPU per acknowledged submission",
                    round(hub_cpu, 3),
                    "ms",
                    better="lower",
                    note="CPU time of the hub process",
                ),
                Figure(
                    "intake: hub event loop CPU per acknowledged submission",
                    round(hub_loop, 3),
                    "ms",
                    better="lower",
                    note="the hub's main thread; the rest is its blob and journal writer threads",
                ),
                Figure(
                    "intake: Node-RED CPU per relayed submission",
                    round(red_cpu, 3),
                    "ms",
                    better="lower",
                    note="CPU time of the Node-RED process",
                ),
            ],
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=4, help="measured rounds per server (alternating)")
    parser.add_argument("--count", type=int, default=3000, help="posts per round")
    parser.add_argument("--warmup", type=int, default=500, help="unmeasured posts per server first")
    parser.add_argument("--concurrency", type=int, default=64, help="connections")
    parser.add_argument("--size", type=int, default=2048, help="bytes of the attachment")
    parser.add_argument("--server-cpu", default="0", help="the core hub and Node-RED are pinned to")
    parser.add_argument("--load-cpu", default="1", help="the core of the load generator and the DMS")
    parser.add_argument(
        "--hub-log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the hub's log level (info, as operators run it, logs a line per application received)",
    )
    parser.add_argument("--nodered-dir", type=Path, help="install Node-RED here (kept, reused)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (for a look)")
    parser.add_argument("--serve-dms", type=int, help=argparse.SUPPRESS)
    add_json_option(parser)
    args = parser.parse_args(argv)
    if min(args.rounds, args.count, args.warmup, args.concurrency) < 1:
        parser.error("--rounds, --count, --warmup and --concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with a hidden option, be its hub or DMS stand-in process)."""
    args = parse_args(argv)
    if args.serve_dms is not None:
        serve_dms(args.serve_dms)
        return 0
    return run_in_scratch("aktenhub-vs-nodered-", args.keep, lambda t: benchmark(args, t))


if __name__ == "__main__":
    sys.exit(main())
