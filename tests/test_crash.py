"""Crash test: the hub is killed with SIGKILL under load, again and again; nothing is lost or doubled.

The hub runs as a real process (`aktenhub run -c CONFIG`) with the FormCycle source and the file drop
sink. Concurrent clients post FormCycle submissions (multipart, one small attachment, a unique
`vorgang_id`) while the hub is killed at random moments and restarted. A client whose request fails
either sends the same submission again after the restart (as FormCycle's retry would) or gives it up.
At the end the hub drains its backlog, and the import directory must hold every acknowledged submission
exactly once, complete, with the files it was sent.

The kills also land while the hub's other durable mechanisms work: the orphan sweep runs often (the
test ages every blob past the grace period a second after it was written, so the sweep always has
candidates: the leftovers of killed intakes, and everything an intake in flight writes again), one
service takes changed re-sends as revisions (a client corrects a delivered submission), and the map
step decides an Aktenzeichen per applicant (a `{seq}` pattern and an Akte search). After every restart
the journal's blob references must all resolve to intact content and the drawn file numbers must have
no gap and no duplicate; at the end every revision a client was answered for is delivered exactly once,
and the blob store holds nothing the journal does not reference.

Reproduce a run with its seed: ``AKTENHUB_CRASH_SEED=<seed> pytest tests/test_crash.py -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hub.blobs import BlobNotFound, BlobStore
from hub.blobs.pack import PACK_FILE
from hub.errors import PluginError
from hub.plugins import load_plugins
from hub.testing.harness import blob_files, stored_blobs
from hub.testing.processes import HubProcess

SEED = int(os.environ.get("AKTENHUB_CRASH_SEED", "20260611"))
KILLS = 6  # SIGKILLs under load
CLIENTS = 12  # concurrent FormCycle senders
KILL_DELAY = (0.2, 1.5)  # seconds after readiness until the kill
RESEND_SHARE = 0.6  # of the failed submissions, this share is sent again after the restart
READY_TIMEOUT = 30.0
DRAIN_TIMEOUT = 60.0
SERVICES = ("jagdschein", "fischereischein", "grabungserlaubnis")
REVISED_SERVICE = "fischereischein"  # through a FormCycle connector that takes changed re-sends as revisions
REVISE_SHARE = 0.15  # of the new requests, this share corrects an already delivered submission
SWEEP_SECONDS = 0.5  # the orphan sweep's interval
AGED_AFTER = 1.0  # seconds after it was written, the test ages a blob past the sweep's grace period
FILE_NUMBER = re.compile(r"^CR-\d{4}-(\d{6})$")
MAPPING = """\
version: 1
file_number:
  pattern: "CR-{year}-{seq:06d}"
akte:
  type: Akte
  search:
    name: "{{ form.nachname }}"
documents:
  - type: original
    content: original
  - type: attachment
    content: attachments
"""
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


def write_config(tmp: Path, port: int) -> Path:
    mapping = tmp / "crash-mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    formcycle = {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"}
    settings = {
        "store": f"sqlite:///{tmp / 'journal.db'}",
        "blobs": {"path": str(tmp / "blobs"), "sweep_interval_seconds": SWEEP_SECONDS},
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "crash-test", "token": "${AKTENHUB_ADMIN_TOKEN}", "role": "admin"}],
        },
        "workers": {"idle_poll_seconds": 0.2},
        "connectors": {
            "formcycle": formcycle,
            "formcycle-rev": {**formcycle, "on_changed_resend": "revision"},
            "import": {
                "type": "filedrop",
                "path": str(tmp / "import"),
                "retry": {"initial_seconds": 0.2, "max_seconds": 2, "jitter_seconds": 0.1},
            },
        },
        "routes": [
            {"name": "all-forms", "from": "formcycle", "map": str(mapping), "to": ["import"]},
            {"name": "revised", "from": "formcycle-rev", "map": str(mapping), "to": ["import"]},
        ],
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
    version: int = 1  # a client's correction of a submission is a later version with other content

    @property
    def key(self) -> tuple[str, int]:
        return (self.vorgang_id, self.version)

    @property
    def connector(self) -> str:
        return "formcycle-rev" if self.service == REVISED_SERVICE else "formcycle"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def corrected(self, rng: random.Random) -> Submission:
        """The next version: the same form (the same applicant) with another attachment."""
        content = b"%PDF-1.4\n" + rng.randbytes(rng.randint(256, 3072)) + b"\n%%EOF\n"
        return dataclasses.replace(self, content=content, version=self.version + 1)

    def form(self) -> aiohttp.FormData:
        form = aiohttp.FormData()
        for name, value in self.fields.items():
            form.add_field(name, value)
        form.add_field("nachweis", self.content, filename=self.filename, content_type="application/pdf")
        return form


@dataclass(frozen=True)
class Answer:
    status: int
    application_id: str
    revision: int


def folder_name(application_id: str, revision: int) -> str:
    """The file drop's folder of one revision of an application."""
    return application_id if revision == 1 else f"{application_id}-r{revision}"


@dataclass
class Ledger:
    """What the clients sent and what the hub answered."""

    submissions: dict[str, Submission] = field(default_factory=dict)  # first versions by vorgang_id
    sent: dict[tuple[str, int], Submission] = field(default_factory=dict)  # every version by key
    answers: dict[tuple[str, int], list[Answer]] = field(default_factory=dict)
    # Delivered submissions of the revised service a client may correct: vorgang_id -> (latest version
    # sent, answer). Taken out while a client corrects one, so only one client works on each.
    correctable: dict[str, tuple[Submission, Answer]] = field(default_factory=dict)
    resent: set[tuple[str, int]] = field(default_factory=set)
    abandoned: set[tuple[str, int]] = field(default_factory=set)
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
        self.sent[sub.key] = sub
        return sub

    def correction(self, rng: random.Random, drop: Path) -> Submission | None:
        """A changed re-send of a submission whose latest revision is delivered, if there is one."""
        ready = [
            v
            for v, (_, a) in self.correctable.items()
            if (drop / folder_name(a.application_id, a.revision)).is_dir()
        ]
        if not ready:
            return None
        vorgang_id = rng.choice(sorted(ready))
        latest, _ = self.correctable.pop(vorgang_id)
        sub = latest.corrected(rng)
        self.sent[sub.key] = sub
        return sub

    def answered(self, sub: Submission, answer: Answer) -> None:
        self.answers.setdefault(sub.key, []).append(answer)
        if sub.service == REVISED_SERVICE:
            self.correctable[sub.vorgang_id] = (sub, answer)

    def given_up(self, sub: Submission) -> None:
        self.abandoned.add(sub.key)
        if sub.version > 1:  # correctable again from the last version the hub answered for
            previous = self.sent[(sub.vorgang_id, sub.version - 1)]
            while not self.answers.get(previous.key):
                previous = self.sent[(sub.vorgang_id, previous.version - 1)]
            self.correctable[sub.vorgang_id] = (sub, self.answers[previous.key][-1])

    @property
    def acknowledged(self) -> dict[str, str]:
        """vorgang_id -> application id, for every submission whose first version got a 2xx."""
        return {
            v: answers[0].application_id
            for (v, version), answers in self.answers.items()
            if version == 1 and answers
        }

    @property
    def acknowledged_revisions(self) -> dict[str, tuple[Submission, Answer]]:
        """Folder name -> the version and answer, for every version of a submission that got a 202 or 200."""
        return {
            folder_name(a[0].application_id, a[0].revision): (self.sent[key], a[0])
            for key, a in self.answers.items()
            if a
        }


@dataclass
class Control:
    """Shared between the killer and the clients."""

    up: asyncio.Event = field(default_factory=asyncio.Event)  # set while the hub is ready
    closing: bool = False  # no new submissions; pending re-sends still go out


async def send(session: aiohttp.ClientSession, url: str, sub: Submission, ledger: Ledger) -> bool:
    """Post one submission; True when the hub acknowledged it (2xx)."""
    try:
        async with session.post(
            f"{url}/intake/{sub.connector}/{sub.service}",
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
        ledger.answered(sub, Answer(status, str(body["application_id"]), int(body.get("revision", 1))))
        return True
    if status < 500:
        ledger.refused.append(f"{sub.vorgang_id}: {status} {body}")
    ledger.failures += 1
    return False


async def client(
    session: aiohttp.ClientSession, url: str, ctl: Control, ledger: Ledger, rng: random.Random, drop: Path
) -> None:
    pending: Submission | None = None
    while pending is not None or not ctl.closing:
        await ctl.up.wait()
        sub = pending or (rng.random() < REVISE_SHARE and ledger.correction(rng, drop)) or ledger.new(rng)
        if await send(session, url, sub, ledger):
            pending = None
        elif ctl.closing and ctl.up.is_set():
            # The last hub is never killed: a failure now is not a crash (counted, reported, given up).
            ledger.final_failures += 1
            ledger.given_up(sub)
            pending = None
        elif rng.random() < RESEND_SHARE:
            ledger.resent.add(sub.key)
            pending = sub
        else:
            ledger.given_up(sub)
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
    revision: int = 1
    file_number: str | None = None


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
    revision = int(app.get("revision", 1))
    if path.name != folder_name(app["id"], revision):
        problems.append(f"{path.name}: holds revision {revision} of {app['id']}")
    return Folder(
        path.name, str(vorgang_id), str(app["id"]), problems, attachments, revision, app.get("file_number")
    )


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


def read_journal(db: Path) -> sqlite3.Connection:
    """The running hub's journal, read-only (WAL: the hub goes on writing meanwhile)."""
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def journal_documents(db: Path) -> list[str]:
    """Every application's document and every archived revision's (JSON)."""
    with contextlib.closing(read_journal(db)) as c:
        query = "SELECT doc FROM applications UNION ALL SELECT doc FROM application_revisions"
        return [r[0] for r in c.execute(query)]


async def missing_blobs(db: Path, store: BlobStore) -> list[str]:
    """Blob references of every application and archived revision that do not resolve to intact content."""
    docs = await asyncio.to_thread(journal_documents, db)
    problems = []
    for doc in map(json.loads, docs):
        files = [*doc["attachments"], *([doc["original"]] if doc.get("original") else [])]
        for f in files:
            digest = f["blob"].removeprefix("sha256:")
            try:  # as the hub reads it: packed (small content, as here) or a file of its own
                actual = hashlib.sha256(await store.read_bytes(f["blob"])).hexdigest()
            except BlobNotFound:
                problems.append(f"{doc['id']} r{doc.get('revision', 1)}: {f['blob']} is missing")
                continue
            if not actual == digest == f["sha256"]:
                problems.append(f"{doc['id']} r{doc.get('revision', 1)}: {f['blob']} holds {actual}")
    return problems


def file_number_problems(db: Path) -> list[str]:
    """Gaps and duplicates among the Aktenzeichen drawn so far (every applicant here is another one)."""
    with contextlib.closing(read_journal(db)) as c:
        c.execute("BEGIN")  # one snapshot: the hub draws numbers meanwhile
        numbers = [
            r[0] for r in c.execute("SELECT file_number FROM applications WHERE file_number IS NOT NULL")
        ]
        drawn = sum(r[0] for r in c.execute("SELECT value FROM sequences"))
    seqs = []
    for number in numbers:
        match = FILE_NUMBER.match(number)
        if match is None:
            return [f"not a drawn number: {number}"]
        seqs.append(int(match.group(1)))
    problems = []
    if len(set(seqs)) != len(seqs):
        problems.append(f"duplicates: {sorted(n for n, k in Counter(seqs).items() if k > 1)[:5]}")
    if set(seqs) != set(range(1, drawn + 1)):
        problems.append(
            f"sequence at {drawn}, numbers held: gaps {sorted(set(range(1, drawn + 1)) - set(seqs))[:5]}"
        )
    return problems


async def check_journal(db: Path, store: BlobStore, context: str) -> None:
    """What must hold after every restart: nothing the journal references is gone, no number lost."""
    missing = await missing_blobs(db, store)
    assert not missing, f"{context}: blobs the journal references are gone: {missing[:5]}"
    numbers = await asyncio.to_thread(file_number_problems, db)
    assert not numbers, f"{context}: file numbers: {numbers}"


async def age_blobs(blobs: Path) -> None:
    """Age every blob past the sweep's grace period a second after it was written (the grace is >= 60 s)."""
    while True:
        await asyncio.to_thread(age_written, blobs, time.time())
        await asyncio.sleep(0.2)  # a periodic background activity, not synchronisation


def age_written(blobs: Path, now: float) -> None:
    """One round of `age_blobs`, beside the running hub (another process, as a second hub would be)."""
    old, window = now - 7200, (now - 60, now - AGED_AFTER)
    # Small content is a row of the store's pack: its `written` time is what the sweep goes by. The
    # condition and the change are one statement, so content the hub stores again meanwhile stays young.
    pack = f"file:{blobs / PACK_FILE}?mode=rw"  # never created here: the hub creates it at its start
    with (
        contextlib.suppress(sqlite3.OperationalError),  # not created yet, or busy: the next round ages it
        contextlib.closing(sqlite3.connect(pack, uri=True, timeout=10)) as conn,
        conn,
    ):
        conn.execute("UPDATE blobs SET written = ? WHERE written > ? AND written < ?", (old, *window))
    for path in blobs.glob("??/*"):  # large content: a file of its own (none in this test's load)
        with contextlib.suppress(FileNotFoundError):
            if len(path.name) == 64 and window[0] < path.stat().st_mtime < window[1]:
                os.utime(path, (old, old))


def referenced_blobs(db: Path) -> set[str]:
    docs = journal_documents(db)
    return {r for doc in docs for r in re.findall(r"sha256:[0-9a-f]{64}", doc)}


async def test_sigkill_under_load_loses_and_doubles_nothing(
    tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    print(f"\ncrash test seed {SEED} (AKTENHUB_CRASH_SEED={SEED} reproduces the schedule)")
    port = reserved_port()
    url = f"http://127.0.0.1:{port}"
    hub = HubProcess(
        write_config(tmp_path, port),
        tmp_path,
        url,
        env={"FORMCYCLE_TOKEN": FORMCYCLE_TOKEN, "AKTENHUB_ADMIN_TOKEN": ADMIN_TOKEN},
    )
    drop, db, blobs = tmp_path / "import", tmp_path / "journal.db", tmp_path / "blobs"
    store: BlobStore | None = None  # the hub's blob store, read from here: opened once the hub made it
    ledger = Ledger()
    ctl = Control()
    delays: list[float] = []
    connector = aiohttp.TCPConnector(limit=CLIENTS + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [
            asyncio.create_task(client(session, url, ctl, ledger, random.Random(f"{SEED}-{i}"), drop))
            for i in range(CLIENTS)
        ]
        ager = asyncio.create_task(age_blobs(blobs))
        try:
            for kill in range(KILLS + 1):
                hub.start()
                await hub.wait_ready(session, READY_TIMEOUT)
                store = store or BlobStore(blobs)
                await check_journal(db, store, f"seed {SEED}, start {hub.starts}")
                if kill == KILLS:
                    break
                ctl.up.set()
                delay = rng.uniform(*KILL_DELAY)
                delays.append(round(delay, 3))
                await asyncio.sleep(delay)  # the random moment of the crash, not synchronisation
                ctl.up.clear()
                await hub.kill()
            ctl.closing = True
            ctl.up.set()
            await asyncio.wait_for(asyncio.gather(*clients), 60)
            loaded = time.monotonic()

            # Drain: every acknowledged revision delivered, nothing left in flight, no orphan blob left.
            expected = ledger.acknowledged_revisions
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while True:
                folders, _ = scan_drop(drop)
                delivered = {f.name for f in folders}
                busy = [
                    a
                    for state in ("received", "processing", "dead")
                    for a in (await admin_get(session, url, f"/api/v1/applications?state={state}&limit=5"))[
                        "applications"
                    ]
                ]
                if any(a["state"] == "dead" for a in busy):
                    break  # the assertions below report it with the application's error
                # Listed before the references are read, as the sweep does.
                stored = await asyncio.to_thread(stored_blobs, store)
                orphans = stored - await asyncio.to_thread(referenced_blobs, db)
                if not busy and delivered >= set(expected) and not orphans:
                    break
                if time.monotonic() > deadline:
                    missing = sorted(set(expected) - delivered)
                    pytest.fail(
                        f"seed {SEED}: not drained within {DRAIN_TIMEOUT}s: {len(missing)} acknowledged "
                        f"revision(s) not delivered (e.g. {missing[:5]}), in flight: {busy[:3]}, "
                        f"orphan blobs not swept: {len(orphans)}\n{hub.log_tail()}"
                    )
                await asyncio.sleep(0.2)  # polling an observable condition, bounded by the deadline
            await check_journal(db, store, f"seed {SEED}, drained")
            # Besides the pack, no file: a killed intake of this load's small content leaves none behind.
            leftovers = await asyncio.to_thread(blob_files, blobs)
            assert not leftovers, f"seed {SEED}: files left in the blob store: {leftovers[:5]}"
            with contextlib.closing(read_journal(db)) as c:
                journal = {
                    r[0]: (r[1], r[2], int(r[3]), r[4], r[5])
                    for r in c.execute(
                        "SELECT id, external_id, state, json_extract(doc, '$.revision'), file_number, error "
                        "FROM applications"
                    )
                }
        finally:
            ctl.closing = True
            ctl.up.set()
            for task in [*clients, ager]:
                task.cancel()
            await asyncio.gather(*clients, ager, return_exceptions=True)
            exit_code = await hub.stop()
            if store is not None:
                await store.close()

    folders, hidden = scan_drop(drop)
    by_revision: dict[tuple[str, int], list[Folder]] = {}
    for f in folders:
        by_revision.setdefault((f.vorgang_id, f.revision), []).append(f)
    by_vorgang = {v for v, _ in by_revision}
    acknowledged = ledger.acknowledged
    expected = ledger.acknowledged_revisions
    stored_abandoned = {v for v, version in ledger.abandoned if version == 1} & by_vorgang
    answered_twice = {k: a for k, a in ledger.answers.items() if len(a) > 1}
    revised = [k for k, a in ledger.answers.items() if a and a[0].revision > 1]
    # How often a kill hit a delivery after its folder was written but before the journal knew.
    log_text = hub.log()
    redelivered = log_text.count("already delivered")
    swept = log_text.count("files no application references")
    print(
        f"hub starts {hub.starts}, kills {KILLS} at {delays} s after readiness; "
        f"submissions {len(ledger.submissions)}, acknowledged {len(acknowledged)}, "
        f"revisions acknowledged {len(revised)}, "
        f"failed requests {ledger.failures} (to the last hub: {ledger.final_failures}), "
        f"re-sent {len(ledger.resent)} "
        f"(acknowledged as duplicate: {sum(1 for a in ledger.answers.values() if a[0].status == 200)}), "
        f"abandoned {len(ledger.abandoned)} (first versions stored anyway: {len(stored_abandoned)}); "
        f"deliveries repeated after a kill {redelivered}; sweeps that removed files {swept}; "
        f"folders {len(folders)}, hidden temporary entries {len(hidden)}, journal applications "
        f"{len(journal)}; clean stop exit code {exit_code}; load {loaded - started:.1f}s, "
        f"total {time.monotonic() - started:.1f}s"
    )

    context = f"seed {SEED}; hub log {hub.log_path}"
    assert not ledger.refused, f"{context}: submissions refused: {ledger.refused[:5]}"
    assert len(acknowledged) > 100, f"{context}: too little load to mean anything: {len(acknowledged)}"
    assert ledger.resent and ledger.abandoned, f"{context}: the kills hit no request"
    assert revised, f"{context}: no correction was taken in as a revision"
    problems = [p for f in folders for p in f.problems]
    assert not problems, f"{context}: damaged folders: {problems[:10]}"
    doubled = {k: [f.name for f in fs] for k, fs in by_revision.items() if len(fs) > 1}
    assert not doubled, f"{context}: revisions delivered more than once: {dict(list(doubled.items())[:5])}"
    # Each acknowledged version is in the folder of the application and revision it was acknowledged with,
    # with the file the client sent. Re-sends of one version were all answered with the same revision.
    folder_by_name = {f.name: f for f in folders}
    for name, (sub, answer) in expected.items():
        assert name in folder_by_name, f"{context}: acknowledged {sub.key} ({name}) is lost"
        folder = folder_by_name[name]
        assert (folder.vorgang_id, folder.application_id) == (sub.vorgang_id, answer.application_id), context
        assert folder.attachment_sha256 == [sub.sha256], (context, sub.key, folder)
    for key, answers in answered_twice.items():
        assert len({(a.application_id, a.revision) for a in answers}) == 1, (context, key, answers)
    # Folders of versions nobody was answered for (given up, stored anyway) hold one of the versions sent.
    sent_sha = {(k[0], s.sha256) for k, s in ledger.sent.items()}
    unknown = [f.name for f in folders if (f.vorgang_id, *f.attachment_sha256) not in sent_sha]
    assert not unknown, f"{context}: folders with content nobody sent: {unknown[:5]}"
    # The journal and the import directory agree: every stored application's current revision delivered
    # once, under the one Aktenzeichen the application has; every applicant's number its own.
    unfinished = [(i, state, error) for i, (_, state, _, _, error) in journal.items() if state != "completed"]
    assert not unfinished, f"{context}: applications not completed: {unfinished[:5]}"
    current = {folder_name(i, revision) for i, (_, _, revision, _, _) in journal.items()}
    assert current <= set(folder_by_name), (
        f"{context}: not delivered: {sorted(current - set(folder_by_name))[:5]}"
    )
    assert {f.application_id for f in folders} == set(journal), context
    assert {external_id for external_id, *_ in journal.values()} == by_vorgang, context
    assert by_vorgang <= set(ledger.submissions), f"{context}: folders of unknown submissions"
    wrong = [f.name for f in folders if f.file_number != journal[f.application_id][3]]
    assert not wrong, f"{context}: folders under another Aktenzeichen than their application's: {wrong[:5]}"
    numbers = [number for _, _, _, number, _ in journal.values()]
    assert len(set(numbers)) == len(numbers) == len(journal), f"{context}: Aktenzeichen shared or missing"
    # Hidden entries are temporary folders of deliveries cut short by a kill; nothing else may be hidden.
    assert all(h.startswith(".tmp-") for h in hidden), f"{context}: unexpected hidden entries {hidden}"
