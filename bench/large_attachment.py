"""Benchmark: a large Anlage flows from an XTA mailbox into the e-file without growing the hub's memory.

The XTA simulator, the Enaio simulator and the hub run as separate processes on loopback. A message
with one attachment of ``--size-mb`` MB (random content) is put into the authority's XTA mailbox; the
hub's XTA source fetches it (MTOM parts streamed into the blob store), the map step builds the record,
and the Enaio sink uploads the document (streamed from the blob store). The clock starts once the
message is in the mailbox (the hub polls it every 0.1 s) and stops when the application is filed.

Figures: MB/s through the hub, and the seconds of its two phases (fetch into the blob store up to
the intake's commit; map and upload into Enaio); CPU seconds per GB of the hub and, separately, of
the two simulators, also per phase (they share the machine's cores with the hub: their share of all
CPU spent is printed, so a slow stand-in is seen as such); the hub's peak resident memory above the
idle hub (VmRSS sampled every 20 ms and the kernel's high-water mark VmHWM, reset before the message
arrives). Aims (issue 14): at least 400 MB/s for a 2 GB Anlage, memory growth below 50 MB. The
content the Enaio simulator stored is read back and its sha256 compared.

    .venv/bin/python -m bench.large_attachment [--size-mb 2048] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.figures import Figure, add_json_option, write
from bench.scratch import run_in_scratch

AUTHORITY = "bauaufsicht:05382000"
PORTAL = "bauportal-nrw:portal"
ENAIO_USER, ENAIO_PASSWORD = "aktenhub", "enaio-simulator"
CHUNK = 1024 * 1024
AIM_MB_PER_SECOND = 400
AIM_GROWTH_MB = 50
BASIC = "Basic " + base64.b64encode(f"{ENAIO_USER}:{ENAIO_PASSWORD}".encode()).decode()


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_bytes(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of a process (VmRSS, or its high-water mark VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's VmHWM of a process to its current VmRSS (clear_refs 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def schema_dir() -> Path:
    """The reference schema directory ($AKTENHUB_SCHEMAS or ../shared/reference)."""
    env = os.environ.get("AKTENHUB_SCHEMAS")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    if not (path / "xta" / "XTA.wsdl").is_file():
        sys.exit(f"schema directory not found at {path}: set AKTENHUB_SCHEMAS")
    return path


def make_content(path: Path, size: int) -> str:
    """Write `size` bytes of random content; returns its sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def write_config(tmp: Path, port: int, xta_url: str, enaio_url: str, schemas: Path, size: int) -> Path:
    """A hub configuration: XTA mailbox source -> Enaio (documents into the tray, no mapping)."""
    config = {
        "store": f"sqlite:///{tmp / 'journal.db'}",
        # Room for the Anlage and the message beside it (a 2 GiB limit held a 2 GiB Anlage as oversize).
        "blobs": {"path": str(tmp / "blobs"), "max_size": 2 * size},
        "schemas": str(schemas),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "bench", "token": "${BENCH_ADMIN_TOKEN}", "role": "viewer"}],
        },
        "workers": {"idle_poll_seconds": 0.2},
        "connectors": {
            "bauportal": {
                "type": "xta",
                "service": "bauantrag",
                "poll_seconds": 0.2,  # the wait for the next poll is inside the timed span: keep it short
                "xta": {"url": xta_url, "account": {"identifier": AUTHORITY}},
            },
            "enaio": {
                "type": "enaio",
                "base_url": enaio_url,
                "username": ENAIO_USER,
                "password": "${ENAIO_PASSWORD}",
                "without_akte": "tray",
                "document_types": {"original": "Bauvorlage", "attachment": "Bauvorlage"},
                "document_title_field": "Titel",
                "timeout_seconds": 600,
            },
        },
        "routes": [{"name": "bau", "from": "bauportal", "to": ["enaio"]}],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


class Processes:
    """The simulators and the hub as child processes, stopped at the end whatever happens."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        child = subprocess.Popen(
            [sys.executable, "-m", "hub", "--log-level", "warning", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=self.tmp,
        )
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


async def wait_http(url: str, timeout: float = 120) -> None:
    """Until `url` answers (any status), bounded."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as resp:
                    await resp.read()
                    return
            await asyncio.sleep(0.1)  # polling a process that is starting: bounded above
    raise RuntimeError(f"{url} did not answer within {timeout}s")


async def enqueue(http: aiohttp.ClientSession, xta_url: str, content: Path) -> None:
    """Put a Bauantrag with one large attachment into the authority's mailbox (streamed from disk)."""
    metadata = {
        "author": {"identifier": PORTAL, "type": "xoev", "name": "Bauportal.NRW"},
        "service": "urn:xoev-de:bauportal:xbau",
        "business_scenario": "XBAU_DATA",
        "business_scenario_list_uri": "urn:de:dataport:codeliste:business.scenario",
        "business_scenario_list_version": "1",
        "message_type": "baugenehmigung.antrag.0200",
        "payload_schema": "http://www.xleitstelle.de/xbau/2/6",
        "subject": "Bauantrag mit großer Bauvorlage",
    }
    form = aiohttp.FormData()
    form.add_field("metadata", json.dumps(metadata), content_type="application/json")
    form.add_field("message", b"<antrag/>", filename="message.xml", content_type="application/xml")
    with content.open("rb") as f:
        form.add_field(
            "attachment", f, filename="Lageplan_gross.bin", content_type="application/octet-stream"
        )
        async with http.post(f"{xta_url}/_sim/mailboxes/{AUTHORITY}", data=form) as resp:
            if resp.status != 201:
                raise RuntimeError(f"enqueue refused ({resp.status}): {await resp.text()}")


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    schemas = schema_dir()
    procs = Processes(tmp)
    size = args.size_mb * 1024 * 1024
    try:
        content = tmp / "bauvorlage.bin"
        print(f"writing {args.size_mb} MB of content ...", flush=True)
        expected = make_content(content, size)
        xta_port, enaio_port, hub_port = free_port(), free_port(), free_port()
        xta = procs.start(
            "xta",
            "simulate",
            "xta",
            "--port",
            str(xta_port),
            "--option",
            f"schemas={schemas}",
            "--option",
            f"data_dir={tmp / 'xta'}",
            "--option",
            f"max_message_size={size * 2}",
        )
        enaio = procs.start(
            "enaio",
            "simulate",
            "enaio",
            "--port",
            str(enaio_port),
            "--option",
            f"content_dir={tmp / 'enaio'}",
            "--option",
            f"max_content_bytes={size * 2}",
        )
        xta_url, enaio_url = f"http://127.0.0.1:{xta_port}", f"http://127.0.0.1:{enaio_port}"
        await wait_http(f"{xta_url}/_sim/state")
        await wait_http(f"{enaio_url}/_sim/stats")
        token = secrets.token_hex(16)
        config = write_config(tmp, hub_port, xta_url, enaio_url, schemas, size)
        hub = procs.start(
            "hub",
            "run",
            "-c",
            str(config),
            env={"BENCH_ADMIN_TOKEN": token, "ENAIO_PASSWORD": ENAIO_PASSWORD},
        )
        hub_url = f"http://127.0.0.1:{hub_port}"
        await wait_http(f"{hub_url}/readyz")
        await asyncio.sleep(1.5)  # let the idle hub settle (first poll done) before the baseline
        # What the idle hub spends (polls, workers asking for work) is inside the CPU figures too.
        idle_started, idle_cpu = time.monotonic(), cpu_seconds(hub.pid)
        await asyncio.sleep(1.0)  # a second of idling, measured
        idle_share = (cpu_seconds(hub.pid) - idle_cpu) / (time.monotonic() - idle_started)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
            # Enqueued before the clock starts: the upload into the simulator's mailbox is set-up.
            await enqueue(http, xta_url, content)
            # The set-up's writes (our content file, the simulator's copy) are not the hub's: drop
            # ours and flush the rest before the clock starts, else their writeback competes with
            # the hub's own for the disk inside the timed span.
            content.unlink()
            os.sync()
            baseline = rss_bytes(hub.pid)
            hwm_reset = reset_peak_rss(hub.pid)
            peak = baseline
            pids = {"hub": hub.pid, "xta": xta.pid, "enaio": enaio.pid}
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            started = time.monotonic()
            headers = {"Authorization": f"Bearer {token}"}
            deadline = started + args.timeout
            state = None
            # The application exists once the intake committed (fetched, hashed, durable): the first
            # phase. The second is the map step and the upload into Enaio.
            received_at, cpu_received = None, dict(cpu_before)
            while time.monotonic() < deadline:
                peak = max(peak, rss_bytes(hub.pid))
                async with http.get(f"{hub_url}/api/v1/applications", headers=headers) as resp:
                    rows = (await resp.json())["applications"]
                state = rows[0]["state"] if rows else None
                if rows and received_at is None:
                    received_at = time.monotonic()
                    cpu_received = {name: cpu_seconds(pid) for name, pid in pids.items()}
                if state in ("completed", "dead"):
                    break
                await asyncio.sleep(0.02)  # the memory sampling interval
            elapsed = time.monotonic() - started
            cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
            cpu = {name: cpu_after[name] - cpu_before[name] for name in pids}
            fetch_seconds = (received_at or started) - started
            fetch_cpu = {name: cpu_received[name] - cpu_before[name] for name in pids}
            upload_cpu = {name: cpu_after[name] - cpu_received[name] for name in pids}
            if hwm_reset:
                peak = max(peak, rss_bytes(hub.pid, "VmHWM"))
            if state != "completed":
                raise RuntimeError(f"the application did not complete: {state} (see {tmp}/hub.log)")
            async with http.get(f"{enaio_url}/_sim/objects", params={"type": "Bauvorlage"}) as resp:
                body = await resp.json()
            objects = body["objects"] if isinstance(body, dict) else body
            stored = None
            for obj in objects:
                digest = hashlib.sha256()
                url = f"{enaio_url}/api/dms/objects/{obj['id']}/contents/file/1"
                async with http.get(url, headers={"Authorization": BASIC}) as resp:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        digest.update(chunk)
                if digest.hexdigest() == expected:
                    stored = obj["id"]
        growth = peak - baseline
        gigabytes = size / 2**30
        all_cpu = sum(cpu.values()) or 1.0
        return {
            "benchmark": "aktenhub.large_attachment",
            "size_mb": args.size_mb,
            "seconds_to_filed": round(elapsed, 2),
            "mb_per_second": round(args.size_mb / elapsed, 1),
            "hub_cpu_seconds_per_gb": round(cpu["hub"] / gigabytes, 2),
            "xta_simulator_cpu_seconds_per_gb": round(cpu["xta"] / gigabytes, 2),
            "enaio_simulator_cpu_seconds_per_gb": round(cpu["enaio"] / gigabytes, 2),
            "simulators_cpu_share_percent": round(100 * (cpu["xta"] + cpu["enaio"]) / all_cpu, 1),
            # The two phases: XTA -> blob store (until the intake's commit), blob store -> Enaio.
            "fetch_seconds": round(fetch_seconds, 2),
            "upload_seconds": round(elapsed - fetch_seconds, 2),
            "fetch_cpu_seconds_per_gb": {name: round(v / gigabytes, 2) for name, v in fetch_cpu.items()},
            "upload_cpu_seconds_per_gb": {name: round(v / gigabytes, 2) for name, v in upload_cpu.items()},
            "hub_idle_cpu_percent": round(100 * idle_share, 1),
            "hub_rss_baseline_mb": round(baseline / 2**20, 1),
            "hub_rss_peak_mb": round(peak / 2**20, 1),
            "hub_rss_growth_mb": round(growth / 2**20, 1),
            "peak_from_kernel_hwm": hwm_reset,
            "aim_mb_per_second": AIM_MB_PER_SECOND,
            "aim_growth_below_mb": AIM_GROWTH_MB,
            "within_aim": growth < AIM_GROWTH_MB * 2**20,
            "content_sha256_matches": stored is not None,
        }
    finally:
        procs.stop()


def report(result: dict[str, Any]) -> None:
    """Print the figures for a person."""
    print()
    print(f"  Anlage                 {result['size_mb']} MB, XTA (MTOM) -> blob store -> Enaio upload")
    print(f"  time to filed          {result['seconds_to_filed']} s")
    print(f"  throughput             {result['mb_per_second']} MB/s (aim: >= {AIM_MB_PER_SECOND} MB/s)")
    print(
        f"  hub CPU                {result['hub_cpu_seconds_per_gb']} s per GB "
        f"(idle, it spends {result['hub_idle_cpu_percent']} % of a core)"
    )
    print(
        f"  simulators' CPU        XTA {result['xta_simulator_cpu_seconds_per_gb']} s per GB, "
        f"Enaio {result['enaio_simulator_cpu_seconds_per_gb']} s per GB "
        f"({result['simulators_cpu_share_percent']} % of all CPU spent; same cores as the hub)"
    )
    for phase in ("fetch", "upload"):
        per_gb = ", ".join(f"{name} {value}" for name, value in result[f"{phase}_cpu_seconds_per_gb"].items())
        print(f"  {phase + ' phase':<22} {result[f'{phase}_seconds']} s; CPU s per GB: {per_gb}")
    print(f"  hub RSS idle / peak    {result['hub_rss_baseline_mb']} MB / {result['hub_rss_peak_mb']} MB")
    print(
        f"  hub RSS growth         {result['hub_rss_growth_mb']} MB (aim: < {AIM_GROWTH_MB} MB) "
        f"{'OK' if result['within_aim'] else 'OVER'}"
    )
    print(f"  content in Enaio       sha256 {'matches' if result['content_sha256_matches'] else 'DIFFERS'}")
    print(json.dumps(result))


def write_figures(path: Path, result: dict[str, Any]) -> None:
    """The figures for `make bench`'s table (bench/figures.py's format)."""
    size = f"{result['size_mb']} MB"
    machine = "machine shared with the simulators"
    write(
        path,
        [
            Figure(
                "large: throughput",
                result["mb_per_second"],
                "MB/s",
                target=AIM_MB_PER_SECOND,
                note=f"{size} XTA -> Enaio; {machine}",
            ),
            Figure(
                "large: fetch phase",
                result["fetch_seconds"],
                "s",
                target=None,
                better="lower",
                note=(
                    f"XTA -> blob store until the intake's commit; hub "
                    f"{result['fetch_cpu_seconds_per_gb']['hub']} CPU s/GB"
                ),
            ),
            Figure(
                "large: upload phase",
                result["upload_seconds"],
                "s",
                target=None,
                better="lower",
                note=(
                    f"map + upload into Enaio; Enaio simulator "
                    f"{result['upload_cpu_seconds_per_gb']['enaio']} CPU s/GB"
                ),
            ),
            Figure(
                "large: hub memory growth",
                result["hub_rss_growth_mb"],
                "MB",
                target=AIM_GROWTH_MB,
                better="lower",
                note=f"peak RSS above idle, {size}",
            ),
            Figure(
                "large: hub CPU per GB",
                result["hub_cpu_seconds_per_gb"],
                "s",
                target=None,
                better="lower",
                note="CPU time of the hub process",
            ),
            Figure(
                "large: XTA simulator CPU per GB",
                result["xta_simulator_cpu_seconds_per_gb"],
                "s",
                target=None,
                better="lower",
                note="stand-in serving MTOM",
            ),
            Figure(
                "large: Enaio simulator CPU per GB",
                result["enaio_simulator_cpu_seconds_per_gb"],
                "s",
                target=None,
                better="lower",
                note="stand-in receiving and hashing",
            ),
            Figure(
                "large: simulators' share of CPU",
                result["simulators_cpu_share_percent"],
                "%",
                target=None,
                better="lower",
                note="of hub + simulators' CPU time",
            ),
        ],
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="size of the Anlage in MB")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the filing")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    add_json_option(parser)
    args = parser.parse_args()
    result: dict[str, Any] = {}
    status = run_in_scratch(
        "aktenhub-large-", args.keep, lambda tmp: result.update(asyncio.run(run(args, tmp)))
    )
    if status:
        sys.exit(status)
    report(result)
    if args.json:
        write_figures(args.json, result)
    if not (result["within_aim"] and result["content_sha256_matches"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
