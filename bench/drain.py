"""Benchmark: a backlog of applications queued while enaio is down, drained when it returns.

The processes and the load are ``bench/e2e.py``'s (the hub as ``aktenhub run``, the enaio simulator, a
load-generator process posting FormCycle multipart submissions, each of a new applicant); here:

1. enaio goes down: the simulator answers every request with 503 (``POST /_sim/faults``), as a gateway
   in front of a stopped enaio does; its objects stay, so what was filed can be counted afterwards;
2. ``--count`` submissions are posted and taken in, to be mapped (the example mapping: Personenakte,
   Vorgang, the PDF rendition unless ``--no-rendition``, the attachments, the original) and filed in
   enaio: the mapping asks enaio for the Akte, so the first attempts fail and open the circuit, and
   the rest wait behind it;
3. enaio returns (the faults cleared): the circuit's probe finds it, and the workers drain the backlog.

Figures: the time from enaio's return to the first filing (the circuit's cool-down), the drain (the
first to the last filing after the return, from the simulator's objects' creation times), filed per
second during the drain, the hub's memory (resident set of the hub process: after start, with the
backlog queued, its peak during the drain, and after; its PDF helpers' apart), its CPU per filed
application during the drain, the requests enaio got per filed application (a retry storm shows
there), and that every application is filed exactly once: one Personenakte per applicant, one Vorgang
per submission with all its documents, none twice.

    .venv/bin/python -m bench.drain [--count 10000] [--concurrency 32] [--open-seconds 2] [--no-rendition]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import re
import secrets
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bench.e2e import (
    MAPPING,
    SINK,
    Hub,
    LoadSpec,
    Simulator,
    die_with_parent,
    free_port,
    run_load,
    write_config,
)
from bench.figures import Figure, add_json_option, write
from bench.scratch import run_in_scratch

POLL_SECONDS = 0.5
# The states of a delivery task still to run: waiting for its turn, or running.
OPEN = ("pending", "leased", "waiting")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


# -- what the processes show -------------------------------------------------------------------------


def resident_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (what the hub keeps: its helpers, the PDF renderers,
    are started with the first rendition and stay as large however long the backlog)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def helpers_mb(pid: int) -> float:
    """Resident memory of the live descendants of process `pid` in MB."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
    total, todo = 0.0, [child for child, parent in parents.items() if parent == pid]
    while todo:
        current = todo.pop()
        total += resident_mb(current)
        todo += [child for child, parent in parents.items() if parent == current]
    return total


def tasks(metrics: dict[str, float]) -> dict[str, int]:
    """The tasks of every step against enaio by state, from the hub's /metrics."""
    out: dict[str, int] = {}
    for key, value in metrics.items():
        if key.startswith("aktenhub_tasks{"):
            labels = dict(_LABEL.findall(key))
            if labels.get("target") == SINK:
                out[labels["state"]] = out.get(labels["state"], 0) + int(value)
    return out


def counter(metrics: dict[str, float], name: str) -> float:
    """A counter of every step against enaio (e.g. aktenhub_retries_total)."""
    return sum(v for k, v in metrics.items() if k.startswith(name + "{") and f'target="{SINK}"' in k)


def set_faults(simulator: Simulator, **knobs: Any) -> None:
    """Change the simulator's fault knobs (``POST /_sim/faults``)."""
    request = urllib.request.Request(
        simulator.url + "/_sim/faults",
        data=json.dumps(knobs).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    with opener.open(request, timeout=30) as resp:
        if resp.status != 200:
            raise RuntimeError(f"simulator faults: HTTP {resp.status}")


def requests_served(simulator: Simulator) -> int:
    """API requests the simulator has served so far (every endpoint but the operator's ``/_sim/``)."""
    return sum(int(n) for n in simulator.stats()["requests"].values())


@dataclass(frozen=True)
class Filed:
    """What enaio holds of the submissions: per Personenakte, its Vorgänge, documents and last creation."""

    akten: int
    vorgaenge: int
    documents: int
    distinct_submissions: int  # Vorgangsnummer values
    short: int  # Vorgänge with fewer documents than a submission has
    times: list[float]  # per Akte: when its last object was created (its application filed)


def filed(simulator: Simulator, per_vorgang: int) -> Filed:
    """Read every object the simulator holds and group it by Akte."""
    status, body = _get(simulator.url + "/_sim/objects")
    if status != 200:
        raise RuntimeError(f"simulator objects: HTTP {status}")
    objects = json.loads(body)["objects"]
    by_id = {o["id"]: o for o in objects}
    root: dict[str, str] = {}

    def akte_of(object_id: str) -> str:
        chain = [object_id]
        while by_id[chain[-1]]["parentId"] is not None and chain[-1] not in root:
            chain.append(by_id[chain[-1]]["parentId"])
        top = root.get(chain[-1], chain[-1])
        for member in chain:
            root[member] = top
        return top

    last: dict[str, float] = {}
    children: dict[str, int] = {}
    vorgaenge, documents, numbers = 0, 0, set()
    for o in objects:
        top = akte_of(o["id"])
        created = datetime.fromisoformat(o["createdAt"]).timestamp()
        last[top] = max(last.get(top, 0.0), created)
        if o["type"] == "Vorgang":
            vorgaenge += 1
            numbers.add(o["fields"].get("Vorgangsnummer"))
        elif o["parentId"] is not None and by_id[o["parentId"]]["type"] == "Vorgang":
            documents += 1
            children[o["parentId"]] = children.get(o["parentId"], 0) + 1
    short = sum(1 for o in objects if o["type"] == "Vorgang" and children.get(o["id"], 0) < per_vorgang)
    akten = sum(1 for o in objects if o["parentId"] is None)
    return Filed(akten, vorgaenge, documents, len(numbers), short, sorted(last.values()))


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=120) as resp:
        return int(resp.status), bytes(resp.read())


# -- the run ---------------------------------------------------------------------------------------------


def configure(tmp: Path, port: int, simulator: Simulator, args: argparse.Namespace) -> Path:
    """e2e's hub configuration, with the circuit's cool-down (and with --no-rendition no PDF document)."""
    path = write_config(tmp, port, simulator.url, "dms", args.worker_concurrency, args.enaio_concurrency)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["connectors"][SINK]["circuit"] = {
        "open_seconds": args.open_seconds,
        "max_open_seconds": args.open_seconds * 4,
    }
    mapping = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    if not args.rendition:
        mapping["documents"] = [d for d in mapping["documents"] if d["content"] != "rendition"]
    (tmp / "mapping.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    config["routes"][0]["map"] = str(tmp / "mapping.yaml")
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def wait_for(
    what: str, done: Callable[[], bool], hub: Hub, timeout: float, sample: Callable[[], None] | None = None
) -> None:
    """Poll `done()` until true, bounded by `timeout`; `sample()` at each poll (memory)."""
    deadline = time.monotonic() + timeout
    while not done():
        if sample is not None:
            sample()
        if hub.proc.poll() is not None:
            raise RuntimeError(f"hub exited with {hub.proc.returncode}:\n{hub.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g}s:\n{hub.log_tail()}")
        time.sleep(POLL_SECONDS)  # polling an observable state, bounded by `timeout`


@dataclass
class Drain:
    """What one run measured."""

    count: int
    taken_in: float  # seconds from the first post to the last acknowledgment (all 202)
    queued_in: float  # ... until every application waited for enaio
    returned: float  # wall clock when enaio returned
    failed_down: float  # failed attempts against enaio while it was down
    failed_drain: float  # ... after it returned
    requests: int  # requests enaio answered during the drain
    hub_cpu: float  # CPU seconds of the hub (and its helpers) during the drain
    simulator_cpu: float  # ... of the enaio simulator
    rss_start: float  # MB, the hub ready
    rss_queued: float  # MB, the backlog queued
    rss_peak: float  # MB, the most during the drain
    rss_end: float  # MB, everything filed
    helpers: float  # MB, the hub's helper processes (PDF renderers) at the end
    dead: int
    outcome: Filed

    @property
    def drain_seconds(self) -> float:
        """From the first to the last filing after enaio returned."""
        return max(self.outcome.times[-1] - self.outcome.times[0], 1e-9)

    @property
    def first_after(self) -> float:
        """From enaio's return to the first filing."""
        return self.outcome.times[0] - self.returned

    @property
    def not_once(self) -> int:
        """Applications not filed exactly once: missing, twice, short of documents or dead."""
        out = self.outcome
        return (
            abs(self.count - out.akten) + (out.vorgaenge - out.distinct_submissions) + out.short + self.dead
        )

    def print(self, open_seconds: float, hub_exit: int | None) -> None:
        """The report, for a person."""
        out, n = self.outcome, self.count
        print()
        print(f"Aktenhub backlog drain: {n} applications queued while enaio was down")
        print(
            f"  taken in (all 202)           {self.taken_in:.1f} s; "
            f"all waiting for enaio after {self.queued_in:.1f} s"
        )
        print(f"  failed attempts (enaio down) {self.failed_down:.0f}, then the circuit held the rest back")
        print(
            f"  return -> first filed        {self.first_after:.2f} s (circuit cool-down {open_seconds:g} s)"
        )
        print(
            f"  drain (first -> last filed)  {self.drain_seconds:.1f} s: {n / self.drain_seconds:.1f} filed/s"
        )
        print(f"  return -> all filed          {out.times[-1] - self.returned:.1f} s")
        print(f"  failed attempts (drain)      {self.failed_drain:.0f}")
        print(f"  enaio requests per filing    {self.requests / n:.2f}")
        print(
            f"  CPU per filing (drain)       hub {self.hub_cpu / n * 1000:.1f} ms, "
            f"enaio simulator {self.simulator_cpu / n * 1000:.1f} ms"
        )
        print(
            f"  hub memory (RSS)             {self.rss_start:.0f} MB at start, "
            f"{self.rss_queued:.0f} MB queued, "
            f"{self.rss_peak:.0f} MB peak in the drain, {self.rss_end:.0f} MB after; "
            f"its helpers {self.helpers:.0f} MB"
        )
        print(
            f"  enaio holds                  {out.akten} Akten, {out.vorgaenge} Vorgänge "
            f"({out.distinct_submissions} distinct), {out.documents} documents, {out.short} Vorgänge short "
            f"of documents; {self.dead} dead; hub exit {hub_exit}"
        )
        print(f"  every application filed exactly once: {'yes' if self.not_once == 0 else 'NO'}")

    def figures(self) -> list[Figure]:
        """The figures for `make bench`'s table."""
        n, name = self.count, f"drain {self.count:,}:"
        return [
            Figure(f"{name} return -> first filed", round(self.first_after, 2), "s", better="lower"),
            Figure(f"{name} first -> last filed", round(self.drain_seconds, 1), "s", better="lower"),
            Figure(f"{name} filed/s in the drain", round(n / self.drain_seconds, 1), "/s"),
            Figure(f"{name} hub CPU per filing", round(self.hub_cpu / n * 1000, 2), "ms", better="lower"),
            Figure(f"{name} enaio requests per filing", round(self.requests / n, 2), "", better="lower"),
            Figure(f"{name} failed attempts after return", self.failed_drain, "", better="lower"),
            Figure(f"{name} hub RSS peak", round(self.rss_peak, 1), "MB", better="lower"),
            Figure(f"{name} hub's PDF helpers RSS", round(self.helpers, 1), "MB", better="lower"),
            Figure(
                f"{name} hub RSS growth, backlog queued",
                round(self.rss_queued - self.rss_start, 1),
                "MB",
                better="lower",
            ),
            Figure(
                f"{name} hub RSS growth in the drain",
                round(self.rss_peak - self.rss_queued, 1),
                "MB",
                better="lower",
            ),
            Figure(f"{name} not filed exactly once", float(self.not_once), "", target=0, better="lower"),
        ]


def benchmark(args: argparse.Namespace, tmp: Path) -> list[Figure]:
    """Queue the backlog with enaio down, let it return, measure the drain; the figures."""
    simulator = Simulator(tmp, free_port())
    hub: Hub | None = None
    try:
        simulator.wait_ready(simulator.url + "/_sim/stats")
        port = free_port()
        hub = Hub(configure(tmp, port, simulator, args), tmp, f"http://127.0.0.1:{port}", "warning")
        hub.wait_ready(hub.url + "/readyz")
        drain = run(args, hub, simulator)
    finally:
        hub_exit = hub.stop() if hub is not None else None
        simulator.stop()
    drain.print(args.open_seconds, hub_exit)
    return drain.figures()


def run(args: argparse.Namespace, hub: Hub, simulator: Simulator) -> Drain:
    """enaio down, the backlog posted and queued, enaio back, the backlog drained."""
    rss_start = resident_mb(hub.proc.pid)
    set_faults(simulator, fail_next=10**9, fail_status=503)  # enaio down: every request 503
    print(f"enaio down; posting {args.count} submissions ...", flush=True)
    began = time.monotonic()
    spec = LoadSpec(
        urls=(hub.url,),
        token=hub.form_token,
        prefix=f"FC-DRAIN-{secrets.token_hex(3)}",
        first=0,
        attachments=args.attachments,
        attachment_size=args.attachment_size,
        start_at=time.monotonic() + 1.0,
        deadline=args.phase_timeout,
        count=args.count,
        concurrency=args.concurrency,
    )
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=die_with_parent) as pool:
        load = pool.submit(run_load, spec).result()
    accepted = sum(1 for s in load.samples if s.status == 202)
    if accepted != args.count:
        raise RuntimeError(f"{accepted} of {args.count} submissions accepted; errors: {load.errors}")
    taken_in = time.monotonic() - began

    def queued() -> bool:
        # Every step to enaio waits behind its circuit: the mapping too (it asks enaio for the Akte).
        return bool(sum(n for s, n in tasks(hub.metrics()).items() if s in OPEN) >= args.count)

    wait_for("backlog queued", queued, hub, args.phase_timeout)
    queued_in = time.monotonic() - began
    rss_queued = resident_mb(hub.proc.pid)
    failed_down = counter(hub.metrics(), "aktenhub_retries_total")
    print(f"{args.count} waiting for enaio after {queued_in:.0f} s; enaio returns", flush=True)

    requests_before = requests_served(simulator)
    hub_cpu, simulator_cpu = hub.cpu_seconds(), simulator.cpu_seconds()
    returned = time.time()
    set_faults(simulator, fail_next=0)
    peak = [rss_queued]

    def sample() -> None:
        peak[0] = max(peak[0], resident_mb(hub.proc.pid))

    def drained() -> bool:
        m = hub.metrics()
        final = m.get('aktenhub_applications{state="completed"}', 0) + m.get(
            'aktenhub_applications{state="dead"}', 0
        )
        return bool(final >= args.count)

    wait_for("backlog drained", drained, hub, args.phase_timeout, sample)
    hub_cpu, simulator_cpu = hub.cpu_seconds() - hub_cpu, simulator.cpu_seconds() - simulator_cpu
    requests = requests_served(simulator) - requests_before  # the operator's requests are not counted
    after = hub.metrics()
    per_vorgang = (1 if args.rendition else 0) + args.attachments + 1  # rendition, attachments, original
    return Drain(
        count=args.count,
        taken_in=taken_in,
        queued_in=queued_in,
        returned=returned,
        failed_down=failed_down,
        failed_drain=counter(after, "aktenhub_retries_total") - failed_down,
        requests=requests,
        hub_cpu=hub_cpu,
        simulator_cpu=simulator_cpu,
        rss_start=rss_start,
        rss_queued=rss_queued,
        rss_peak=peak[0],
        rss_end=resident_mb(hub.proc.pid),
        helpers=helpers_mb(hub.proc.pid),
        dead=int(after.get('aktenhub_applications{state="dead"}', 0)),
        outcome=filed(simulator, per_vorgang),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="applications queued while enaio is down")
    parser.add_argument("--concurrency", type=int, default=32, help="connections posting the submissions")
    parser.add_argument(
        "--attachments", type=int, default=1, choices=[0, 1, 2, 3], help="files per submission"
    )
    parser.add_argument("--attachment-size", type=int, default=4096, help="bytes per attachment")
    parser.add_argument(
        "--rendition", action=argparse.BooleanOptionalAction, default=True, help="file the PDF rendition"
    )
    parser.add_argument("--worker-concurrency", type=int, default=16, help="hub workers.concurrency")
    parser.add_argument("--enaio-concurrency", type=int, default=8, help="max_concurrency of the enaio sink")
    parser.add_argument("--open-seconds", type=float, default=2.0, help="the circuit's first cool-down")
    parser.add_argument("--phase-timeout", type=float, default=1800.0, help="bound on each phase (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (for a look)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.count < 1 or args.concurrency < 1 or args.open_seconds <= 0:
        parser.error("--count and --concurrency must be at least 1, --open-seconds positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark in a scratch directory; write the figures with --json."""
    args = parse_args(argv)

    def run(tmp: Path) -> None:
        measured = benchmark(args, tmp)
        if args.json:
            write(args.json, measured)

    return run_in_scratch("aktenhub-bench-drain-", args.keep, run)


if __name__ == "__main__":
    sys.exit(main())
