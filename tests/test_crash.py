"""Crash test: the hub is killed with SIGKILL under load, again and again; nothing is lost or doubled.

The hub runs as a real process (`aktenhub run -c CONFIG`) with the FormCycle source and the file drop
sink. Concurrent clients post FormCycle submissions (multipart, one small attachment, a unique
`vorgang_id`) while the hub is killed at random moments and restarted. A client whose request fails
either sends the same submission again after the restart (as FormCycle's retry would) or gives it up.
At the end the hub drains its backlog, and the import directory must hold every acknowledged submission
exactly once, complete, with the files it was sent.

Reproduce a run with its seed: ``AKTENHUB_CRASH_SEED=<seed> pytest tests/test_crash.py -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub.errors import PluginError
from hub.plugins import load_plugins

SEED = int(os.environ.get("AKTENHUB_CRASH_SEED", "20260611"))
KILLS = 6  # SIGKILLs under load
CLIENTS = 12  # concurrent FormCycle senders
KILL_DELAY = (0.2, 1.5)  # seconds after readiness until the kill
RESEND_SHARE = 0.6  # of the failed submissions, this share is sent again after the restart
READY_TIMEOUT = 30.0
DRAIN_TIMEOUT = 60.0
SERVICES = ("jagdschein", "fischereischein", "grabungserlaubnis")
FORMCYCLE_TOKEN = "crash-test-" + secrets.token_hex(16)
ADMIN_TOKEN = "crash-admin-" + secrets.token_hex(16)
TERMINAL = {"completed", "dead", "rejected"}


def _plugins_installed() -> bool:
    try:
        plugins = load_plugins()
        plugins.connector_type("formcycle")
        plugins.connector_type("filedrop")
    except PluginError:
        return False
    return True


pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not _plugins_installed(),
        reason="plugins formcycle and filedrop are not installed (`make venv` installs them)",
    ),
]


def hub_command(config: Path) -> list[str]:
    """`aktenhub run -c CONFIG`: the console script next to this interpreter (hub.cli has no __main__)."""
    script = Path(sys.executable).with_name("aktenhub")
    if script.exists():
        return [str(script), "run", "-c", str(config)]
    return [
        sys.executable,
        "-c",
        "import sys; from hub.cli import main; sys.exit(main())",
        "run",
        "-c",
        str(config),
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, port: int) -> Path:
    settings = {
        "store": f"sqlite:///{tmp / 'journal.db'}",
        "blobs": str(tmp / "blobs"),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "crash-test", "token": "${AKTENHUB_ADMIN_TOKEN}", "role": "admin"}],
        },
        "workers": {"idle_poll_seconds": 0.2},
        "connectors": {
            "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
            "import": {
                "type": "filedrop",
                "path": str(tmp / "import"),
                "retry": {"initial_seconds": 0.2, "max_seconds": 2, "jitter_seconds": 0.1},
            },
        },
        "routes": [{"name": "all-forms", "from": "formcycle", "to": ["import"]}],
    }
    path = tmp / "aktenhub.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Submission:
    """One FormCycle submission; a re-send carries exactly the same content."""

    vorgang_id: str
    service: str
    fields: dict[str, str]
    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def form(self) -> aiohttp.FormData:
        form = aiohttp.FormData()
        for name, value in self.fields.items():
            form.add_field(name, value)
        form.add_field("nachweis", self.content, filename=self.filename, content_type="application/pdf")
        return form


@dataclass
class Ledger:
    """What the clients sent and what the hub answered."""

    submissions: dict[str, Submission] = field(default_factory=dict)
    answers: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # vorgang_id -> (status, app id)
    resent: set[str] = field(default_factory=set)
    abandoned: set[str] = field(default_factory=set)
    failures: int = 0
    final_failures: int = 0  # failed requests to the last hub, which is never killed
    refused: list[str] = field(default_factory=list)  # unexpected 4xx: a bug in the test or the hub

    def new(self, rng: random.Random) -> Submission:
        n = len(self.submissions) + 1
        vorgang_id = f"FC-CRASH-{SEED}-{n:06d}"
        content = b"%PDF-1.4\n" + rng.randbytes(rng.randint(256, 3072)) + b"\n%%EOF\n"
        sub = Submission(
            vorgang_id=vorgang_id,
            service=rng.choice(SERVICES),
            fields={
                "vorgang_id": vorgang_id,
                "vorname": rng.choice(["Jürgen", "Zoë", "Ayşe", "Hans-Peter"]),
                "nachname": f"Crashtest-{n}",
                "plz": f"{rng.randint(10000, 99999)}",
                "einwilligung": "ja",
            },
            filename=f"Nachweis_{n}.pdf",
            content=content,
        )
        self.submissions[vorgang_id] = sub
        return sub

    @property
    def acknowledged(self) -> dict[str, str]:
        """vorgang_id -> application id, for every submission that got a 2xx."""
        return {v: answers[0][1] for v, answers in self.answers.items() if answers}


class HubProcess:
    """The hub as a child process, killed and restarted by the test."""

    def __init__(self, config: Path, tmp: Path, url: str) -> None:
        self.command = hub_command(config)
        self.tmp = tmp
        self.url = url
        self.log_path = tmp / "hub.log"
        self.env = {**os.environ, "FORMCYCLE_TOKEN": FORMCYCLE_TOKEN, "AKTENHUB_ADMIN_TOKEN": ADMIN_TOKEN}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== start {self.starts + 1} ====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command, cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1

    async def wait_ready(self, session: aiohttp.ClientSession) -> None:
        """Poll /readyz until it answers 200 (bounded); fail with the log if the process died."""
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"hub exited with {self.proc.returncode} during start:\n{self.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
        pytest.fail(f"hub not ready within {READY_TIMEOUT}s:\n{self.log_tail()}")

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 10)

    async def stop(self) -> int | None:
        """SIGTERM, bounded wait, SIGKILL as the last resort; returns the exit code of a clean stop."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)
            return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Control:
    """Shared between the killer and the clients."""

    up: asyncio.Event = field(default_factory=asyncio.Event)  # set while the hub is ready
    closing: bool = False  # no new submissions; pending re-sends still go out


async def send(session: aiohttp.ClientSession, url: str, sub: Submission, ledger: Ledger) -> bool:
    """Post one submission; True when the hub acknowledged it (2xx)."""
    try:
        async with session.post(
            f"{url}/intake/formcycle/{sub.service}",
            data=sub.form(),
            headers={"X-Aktenhub-Token": FORMCYCLE_TOKEN},
            timeout=aiohttp.ClientTimeout(total=20),
        ) as resp:
            body = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError, ValueError):
        # Connection refused or reset, or a truncated answer: the hub went down mid-request.
        ledger.failures += 1
        return False
    if status in (200, 202):
        assert isinstance(body, dict)
        assert body.get("duplicate") is (status == 200), (sub.vorgang_id, status, body)
        ledger.answers.setdefault(sub.vorgang_id, []).append((status, str(body["application_id"])))
        return True
    if status < 500:
        ledger.refused.append(f"{sub.vorgang_id}: {status} {body}")
    ledger.failures += 1
    return False


async def client(
    session: aiohttp.ClientSession, url: str, ctl: Control, ledger: Ledger, rng: random.Random
) -> None:
    pending: Submission | None = None
    while pending is not None or not ctl.closing:
        await ctl.up.wait()
        sub = pending or ledger.new(rng)
        if await send(session, url, sub, ledger):
            pending = None
        elif ctl.closing and ctl.up.is_set():
            # The last hub is never killed: a failure now is not a crash (counted, reported, given up).
            ledger.final_failures += 1
            ledger.abandoned.add(sub.vorgang_id)
            pending = None
        elif rng.random() < RESEND_SHARE:
            ledger.resent.add(sub.vorgang_id)
            pending = sub
        else:
            ledger.abandoned.add(sub.vorgang_id)
            pending = None
        await asyncio.sleep(0)  # let the killer run between requests


async def admin_get(session: aiohttp.ClientSession, url: str, path: str) -> Any:
    async with session.get(
        f"{url}{path}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=aiohttp.ClientTimeout(total=10),
    ) as resp:
        assert resp.status == 200, (path, resp.status, await resp.text())
        return await resp.json()


async def all_applications(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = await admin_get(session, url, f"/api/v1/applications?limit=500&offset={len(rows)}")
        rows.extend(page["applications"])
        if len(page["applications"]) < 500:
            return rows


@dataclass
class Folder:
    name: str
    vorgang_id: str
    application_id: str
    problems: list[str]
    attachment_sha256: list[str]


def read_folder(path: Path) -> Folder:
    """Read one delivered folder and check its files against application.json."""
    problems: list[str] = []
    try:
        doc = json.loads((path / "application.json").read_bytes())
    except (OSError, ValueError) as exc:
        return Folder(path.name, "", "", [f"{path.name}: no readable application.json ({exc})"], [])
    app = doc["application"]
    listed = {f["name"]: f for f in doc["files"]}
    present = {p.name for p in path.iterdir()}
    if present != {"application.json", *listed}:
        problems.append(f"{path.name}: files {sorted(present)} != listed {sorted(listed)}")
    for name, entry in listed.items():
        try:
            digest = hashlib.sha256((path / name).read_bytes()).hexdigest()
        except OSError as exc:
            problems.append(f"{path.name}/{name}: unreadable ({exc})")
            continue
        if digest != entry["sha256"]:
            problems.append(f"{path.name}/{name}: sha256 {digest} != listed {entry['sha256']}")
    vorgang_id = app["form"].get("vorgang_id")
    if app["external_id"] != vorgang_id:
        problems.append(f"{path.name}: external_id {app['external_id']!r} != vorgang_id {vorgang_id!r}")
    attachments = [f["sha256"] for f in doc["files"] if f["document_type"] == "attachment"]
    return Folder(path.name, str(vorgang_id), str(app["id"]), problems, attachments)


def scan_drop(directory: Path) -> tuple[list[Folder], list[str]]:
    """The delivered folders, and the names of the hidden (temporary) entries."""
    if not directory.is_dir():
        return [], []
    folders, hidden = [], []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            hidden.append(entry.name)
        elif not entry.is_dir():
            folders.append(Folder(entry.name, "", "", [f"{entry.name}: not a folder"], []))
        else:
            folders.append(read_folder(entry))
    return folders, hidden


async def test_sigkill_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    print(f"\ncrash test seed {SEED} (AKTENHUB_CRASH_SEED={SEED} reproduces the schedule)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    hub = HubProcess(write_config(tmp_path, port), tmp_path, url)
    drop = tmp_path / "import"
    ledger = Ledger()
    ctl = Control()
    delays: list[float] = []
    connector = aiohttp.TCPConnector(limit=CLIENTS + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [
            asyncio.create_task(client(session, url, ctl, ledger, random.Random(f"{SEED}-{i}")))
            for i in range(CLIENTS)
        ]
        try:
            for _ in range(KILLS):
                hub.start()
                await hub.wait_ready(session)
                ctl.up.set()
                delay = rng.uniform(*KILL_DELAY)
                delays.append(round(delay, 3))
                await asyncio.sleep(delay)  # the random moment of the crash, not synchronisation
                ctl.up.clear()
                await hub.kill()
            hub.start()
            await hub.wait_ready(session)
            ctl.closing = True
            ctl.up.set()
            await asyncio.wait_for(asyncio.gather(*clients), 60)
            loaded = time.monotonic()

            # Drain: every acknowledged submission delivered and nothing left in flight.
            acknowledged = ledger.acknowledged
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while True:
                folders, _ = scan_drop(drop)
                delivered = {f.vorgang_id for f in folders}
                busy = [
                    a
                    for state in ("received", "processing", "dead")
                    for a in (await admin_get(session, url, f"/api/v1/applications?state={state}&limit=5"))[
                        "applications"
                    ]
                ]
                if any(a["state"] == "dead" for a in busy):
                    break  # the assertions below report it with the application's error
                if not busy and delivered >= set(acknowledged):
                    break
                if time.monotonic() > deadline:
                    missing = sorted(set(acknowledged) - delivered)
                    pytest.fail(
                        f"seed {SEED}: not drained within {DRAIN_TIMEOUT}s: {len(missing)} acknowledged "
                        f"submission(s) not delivered (e.g. {missing[:5]}), in flight: {busy[:3]}\n"
                        f"{hub.log_tail()}"
                    )
                await asyncio.sleep(0.2)  # polling an observable condition, bounded by the deadline
            journal = await all_applications(session, url)
        finally:
            ctl.closing = True
            ctl.up.set()
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
            exit_code = await hub.stop()

    folders, hidden = scan_drop(drop)
    by_vorgang: dict[str, list[Folder]] = {}
    for f in folders:
        by_vorgang.setdefault(f.vorgang_id, []).append(f)
    acknowledged = ledger.acknowledged
    stored_abandoned = ledger.abandoned & set(by_vorgang)
    answered_twice = {v: a for v, a in ledger.answers.items() if len(a) > 1}
    # How often a kill hit a delivery after its folder was written but before the journal knew.
    redelivered = hub.log_path.read_text(encoding="utf-8", errors="replace").count("already delivered")
    print(
        f"hub starts {hub.starts}, kills {KILLS} at {delays} s after readiness; "
        f"submissions {len(ledger.submissions)}, acknowledged {len(acknowledged)}, "
        f"failed requests {ledger.failures} (to the last hub: {ledger.final_failures}), "
        f"re-sent {len(ledger.resent)} "
        f"(acknowledged as duplicate: {sum(1 for a in ledger.answers.values() if a[0][0] == 200)}), "
        f"abandoned {len(ledger.abandoned)} (of them stored anyway: {len(stored_abandoned)}); "
        f"deliveries repeated after a kill {redelivered}; folders {len(folders)}, "
        f"hidden temporary entries {len(hidden)}, journal applications "
        f"{len(journal)}; clean stop exit code {exit_code}; load {loaded - started:.1f}s, "
        f"total {time.monotonic() - started:.1f}s"
    )

    context = f"seed {SEED}; hub log {hub.log_path}"
    assert not ledger.refused, f"{context}: submissions refused: {ledger.refused[:5]}"
    assert len(acknowledged) > 100, f"{context}: too little load to mean anything: {len(acknowledged)}"
    assert ledger.resent and ledger.abandoned, f"{context}: the kills hit no request"
    problems = [p for f in folders for p in f.problems]
    assert not problems, f"{context}: damaged folders: {problems[:10]}"
    doubled = {v: [f.name for f in fs] for v, fs in by_vorgang.items() if len(fs) > 1}
    assert not doubled, f"{context}: submissions delivered more than once: {dict(list(doubled.items())[:5])}"
    # Each acknowledged submission is in the folder of the application it was acknowledged with, with the
    # file the client sent. Re-sends of one submission were all answered with the same application.
    for vorgang_id, app_id in acknowledged.items():
        assert vorgang_id in by_vorgang, f"{context}: acknowledged {vorgang_id} ({app_id}) is lost"
        (folder,) = by_vorgang[vorgang_id]
        assert folder.name == folder.application_id == app_id, (context, vorgang_id, folder)
        assert folder.attachment_sha256 == [ledger.submissions[vorgang_id].sha256], (context, vorgang_id)
    for vorgang_id, answers in answered_twice.items():
        assert {a for _, a in answers} == {acknowledged[vorgang_id]}, (context, vorgang_id, answers)
    # The journal and the import directory agree: every stored application delivered once, nothing else.
    unfinished = [(a["id"], a["state"], a["error"]) for a in journal if a["state"] != "completed"]
    assert not unfinished, f"{context}: applications not completed: {unfinished[:5]}"
    assert {a["id"] for a in journal} == {f.name for f in folders}, context
    assert {a["external_id"] for a in journal} == set(by_vorgang), context
    assert set(by_vorgang) <= set(ledger.submissions), f"{context}: folders of unknown submissions"
    # Hidden entries are temporary folders of deliveries cut short by a kill; nothing else may be hidden.
    assert all(h.startswith(".tmp-") for h in hidden), f"{context}: unexpected hidden entries {hidden}"
