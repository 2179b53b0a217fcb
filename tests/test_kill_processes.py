"""Kill test: hub processes on one journal and one blob store, SIGKILLed under load again and again.

Two `aktenhub run` processes (both take intake and run steps) share one PostgreSQL database (migrated
once with `aktenhub migrate`) and one S3 bucket (moto's server). The enaio, XTA and Bauportal.NRW
simulators run in this test's process. While a killer SIGKILLs a random process at random moments and
starts it again (at least ten times in all):

- FormCycle senders post submissions with two attachments of random content to a random process that
  is up, concurrently; a request that fails (connection refused or cut, a 5xx) is sent again, with the
  same `vorgang_id`, as FormCycle's retry would, to whichever process is up. A submission counts as
  acknowledged only when a hub answered 202 (or 200: a duplicate of an acknowledged one);
- the portal puts Bauanträge into the authority's XTA mailbox, which the pollers of both processes
  compete for (a lease lets one poll at a time).

At the end, with every process up and the backlog drained: every acknowledged submission is filed in
enaio exactly once (one Vorgang per application, each document once, each attachment with the sha256
it was sent with); the journal holds each submission once; the file numbers have no gap and no
duplicate; every XTA message is taken in once, filed once and closed once, and no process tried to
close a message another had closed.

Reproduce a run's random choices with its seed:
``AKTENHUB_KILL_SEED=<seed> pytest tests/test_kill_processes.py -s``
(the moments the processes reach are the machine's, so a schedule repeats only roughly).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from hub_bauportal_nrw.portal import make_app as portal_app
from hub_enaio.simulator import make_app as enaio_app
from hub_xta.simulator import make_app as xta_app

from hub.testing.processes import HubProcess, hub_command, poll_until
from hub.testing.s3 import S3Bucket

SEED = int(os.environ.get("AKTENHUB_KILL_SEED") or secrets.randbelow(10**9))
KILLS = 10  # SIGKILLs in all, over all processes
KILL_GAP = (0.3, 3.0)  # seconds a process serves between its start and its kill
SENDERS = 8  # concurrent FormCycle senders
TWIN_SHARE = 0.2  # of the submissions, this share is sent twice at once
SEND_GAP = (0.2, 1.2)  # seconds a sender waits between two submissions: intake well below filing speed
BAUANTRAEGE = 8  # XTA messages the portal sends during the load
XTA_LATENCY = 0.1  # seconds the XTA simulator takes per request
DRAIN_TIMEOUT = 60.0
READY_TIMEOUT = 60.0  # a start on a crowded machine (two processes, the test and its simulators)
ENAIO_PASSWORD = "enaio-simulator"  # the simulator's default user
FORMCYCLE_TOKEN = "kill-fc-" + secrets.token_hex(16)
ADMIN_TOKEN = "kill-admin-" + secrets.token_hex(16)
ENV = {
    "FORMCYCLE_TOKEN": FORMCYCLE_TOKEN,
    "AKTENHUB_ADMIN_TOKEN": ADMIN_TOKEN,
    "ENAIO_PASSWORD": ENAIO_PASSWORD,
}
ACCOUNT = "vbe:053820004"  # the authority's XTA account: the portal writes to it, the hub reads it
AUTHORITY = {"kennung": ACCOUNT, "name": "Rhein-Sieg-Kreis, Untere Bauaufsichtsbehörde"}
BAUANTRAG_MAPPING = Path(__file__).parents[1] / "config" / "mappings" / "bauantrag.yaml"
FILE_NUMBER = re.compile(r"^KT-\d{4}-(\d{6})$")
# One Personenakte per applicant (every submission has another one), a Vorgang per application, the two
# attachments and the original as documents; no PDF rendition (the machine's cores go to the processes).
MAPPING = """\
version: 1
file_number:
  pattern: "KT-{year}-{seq:06d}"
akte:
  type: Personenakte
  search:
    Nachname: "{{ form.nachname }}"
  fields:
    Aktenzeichen: "{{ file_number }}"
    Nachname: "{{ form.nachname }}"
    Leistung: Killtest
vorgang:
  type: Vorgang
  fields:
    Betreff: "Killtest {{ form.vorgang_id }}"
    Eingangsdatum: "{{ received_at | date }}"
    Vorgangsnummer: "{{ form.vorgang_id }}"
documents:
  - type: Anlage
    content: attachments
    fields:
      Titel: "{{ attachment.name }}"
      Dateiname: "{{ attachment.name }}"
  - type: Originalantrag
    content: original
    name: "Originalantrag {{ form.vorgang_id }}.txt"
    fields:
      Titel: "Originalantrag {{ form.vorgang_id }}"
"""

pytestmark = pytest.mark.timeout(300)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- what the processes share ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shared:
    """The journal and blob store all processes use, and how many processes run on them."""

    store: str
    blobs: str
    processes: int


@pytest.fixture
def shared(postgres_url: str, s3_bucket: S3Bucket) -> Shared:
    """One PostgreSQL database and one S3 bucket for two processes."""
    return Shared(postgres_url, s3_bucket.url, 2)


# -- the simulators ------------------------------------------------------------------------------------


@dataclass
class Simulators:
    """The simulators the processes talk to, in this test's process, and what the XTA one saw."""

    enaio: TestServer
    xta: TestServer
    portal: TestServer
    # Requests the XTA simulator refused because the message was no longer in the mailbox: a poller
    # fetching or closing what another had closed already.
    stale_requests: list[str] = field(default_factory=list)

    @staticmethod
    def url(server: TestServer, path: str = "") -> str:
        """A simulator's base URL (no trailing slash), or the URL of `path` on it."""
        return str(server.make_url(path)) if path else str(server.make_url("")).rstrip("/")


def fault_watch(faults: list[str]) -> Any:
    """An aiohttp middleware for the XTA simulator noting every answer that names a message no longer in
    the mailbox: a fetch or close of a message another poller had closed already."""

    @web.middleware
    async def watch(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, web.Response) and response.status >= 400 and response.body is not None:
            body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
            if b"InvalidMessageIDException" in body:
                found = re.search(rb"message \S+ is not in the mailbox[^<]*|no fetch sequence[^<]*", body)
                faults.append(found.group(0).decode() if found else body[:300].decode(errors="replace"))
        return response

    return watch


@pytest_asyncio.fixture
async def simulators(schema_dir: Path, tmp_path: Path) -> AsyncIterator[Simulators]:
    refused: list[str] = []
    # Every XTA request takes a while, as over a real network: two pollers running at once would overlap.
    xta_application = xta_app(
        schemas=str(schema_dir), data_dir=str(tmp_path / "xta"), latency_seconds=XTA_LATENCY
    )
    xta_application.middlewares.append(fault_watch(refused))
    xta = TestServer(xta_application, host="127.0.0.1")
    enaio = TestServer(enaio_app(), host="127.0.0.1")
    await xta.start_server()
    await enaio.start_server()
    portal = TestServer(
        portal_app(xta_url=Simulators.url(xta), reader=ACCOUNT, authority_kennung=ACCOUNT),
        host="127.0.0.1",
    )
    await portal.start_server()
    yield Simulators(enaio, xta, portal, refused)
    for server in (portal, enaio, xta):
        await server.close()


# -- the hub processes -------------------------------------------------------------------------------


def hub_settings(tmp: Path, shared: Shared, sims: Simulators, port: int, schemas: Path) -> dict[str, Any]:
    """One process's configuration: its own listener, the shared journal and blobs, the simulators."""
    mapping = tmp / "killtest-mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    xta = {"url": Simulators.url(sims.xta), "account": {"identifier": ACCOUNT}}
    fast_retry = {"initial_seconds": 0.1, "max_seconds": 1, "jitter_seconds": 0.05}
    return {
        "store": shared.store,
        "blobs": shared.blobs,
        "schemas": str(schemas),
        "server": {
            "listen": f"127.0.0.1:{port}",
            "admin_tokens": [{"name": "kill-test", "token": "${AKTENHUB_ADMIN_TOKEN}", "role": "operator"}],
        },
        # A killed process's claimed steps go back to the others once their lease ran out.
        "workers": {"idle_poll_seconds": 0.2, "lease_seconds": 3, "render_processes": 0},
        "connectors": {
            "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
            "bauportal": {"type": "bauportal-nrw", "poll_seconds": 0.5, "authority": AUTHORITY, "xta": xta},
            "antworten": {"type": "bauportal-nrw-answers", "authority": AUTHORITY, "xta": xta},
            "enaio": {
                "type": "enaio",
                "base_url": Simulators.url(sims.enaio),
                "username": "aktenhub",
                "password": "${ENAIO_PASSWORD}",
                "timeout_seconds": 10,
                "retry": fast_retry,
                "circuit": {"failure_threshold": 1000},
            },
        },
        "routes": [
            {"name": "formulare", "from": "formcycle", "map": str(mapping), "to": ["enaio"]},
            {
                "name": "bau",
                "from": "bauportal",
                "map": str(BAUANTRAG_MAPPING),
                "to": ["enaio"],
                "notify": ["antworten"],
            },
        ],
    }


def start_processes(
    tmp: Path, shared: Shared, sims: Simulators, schemas: Path, reserve: Callable[[], int]
) -> list[HubProcess]:
    processes = []
    for n in range(1, shared.processes + 1):
        port = reserve()
        workdir = tmp / f"hub{n}"
        workdir.mkdir()
        config = workdir / "aktenhub.json"
        config.write_text(json.dumps(hub_settings(tmp, shared, sims, port, schemas)), encoding="utf-8")
        processes.append(HubProcess(config, workdir, f"http://127.0.0.1:{port}", env=ENV, name=f"hub{n}"))
    return processes


async def migrate(config: Path) -> None:
    """`aktenhub migrate`: the shared database's schema brought up to date once, before any process runs."""
    proc = await asyncio.create_subprocess_exec(
        *hub_command(config, "migrate"),
        env={**os.environ, **ENV},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out.decode(errors="replace")


# -- the load ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One FormCycle submission; a re-send carries exactly the same content."""

    vorgang_id: str
    fields: dict[str, str]
    files: dict[str, tuple[str, bytes]]  # form element -> (file name, content)

    def sha256s(self) -> list[str]:
        return sorted(hashlib.sha256(content).hexdigest() for _, content in self.files.values())

    def form(self) -> aiohttp.FormData:
        form = aiohttp.FormData()
        for name, value in self.fields.items():
            form.add_field(name, value)
        for element, (file_name, content) in self.files.items():
            form.add_field(element, content, filename=file_name, content_type="application/pdf")
        return form


def new_submission(n: int, rng: random.Random) -> Submission:
    vorgang_id = f"FC-KILL-{SEED}-{n:05d}"

    def pdf() -> bytes:
        return b"%PDF-1.4\n" + rng.randbytes(rng.randint(512, 48 * 1024)) + b"\n%%EOF\n"

    return Submission(
        vorgang_id,
        {
            "vorgang_id": vorgang_id,
            "vorname": rng.choice(["Jürgen", "Zoë", "Ayşe", "Hans-Peter"]),
            "nachname": f"Killtest-{SEED}-{n}",
            "einwilligung": "ja",
        },
        {"ausweis": (f"Ausweis_{n}.pdf", pdf()), "nachweis": (f"Nachweis_{n}.pdf", pdf())},
    )


@dataclass
class Load:
    """What the senders sent and what the hubs answered; shared by senders, killer and checks."""

    processes: list[HubProcess]
    ready: dict[str, asyncio.Event]  # per process: set while it is up and ready
    closing: bool = False
    sent: dict[str, Submission] = field(default_factory=dict)
    acknowledged: dict[str, str] = field(default_factory=dict)  # vorgang_id -> application id
    answers: Counter[int] = field(default_factory=Counter)
    failures: int = 0
    refused: list[str] = field(default_factory=list)  # a 4xx: a bug in the test or the hub

    async def up(self, rng: random.Random) -> HubProcess:
        """A random process that is up (waiting until one is)."""
        while True:
            candidates = [p for p in self.processes if self.ready[p.name].is_set()]
            if candidates:
                return rng.choice(candidates)
            waiters = [asyncio.ensure_future(e.wait()) for e in self.ready.values()]
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()


async def send(session: aiohttp.ClientSession, hub: HubProcess, sub: Submission, load: Load) -> bool:
    """POST one submission to `hub`; True when it was acknowledged."""
    try:
        async with session.post(
            f"{hub.url}/intake/formcycle/killtest",
            data=sub.form(),
            headers={"X-Aktenhub-Token": FORMCYCLE_TOKEN},
            timeout=aiohttp.ClientTimeout(total=20),
        ) as resp:
            status = resp.status
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        load.failures += 1  # refused, cut or truncated: the process went down mid-request
        return False
    load.answers[status] += 1
    if status in (200, 202):
        assert isinstance(body, dict) and body.get("duplicate") is (status == 200), (sub.vorgang_id, body)
        application_id = str(body["application_id"])
        first = load.acknowledged.setdefault(sub.vorgang_id, application_id)
        assert first == application_id, f"{sub.vorgang_id} acknowledged as {first} and as {application_id}"
        return True
    if status < 500:
        load.refused.append(f"{sub.vorgang_id} at {hub.name}: {status} {body}")
    load.failures += 1
    return False


async def deliver(session: aiohttp.ClientSession, load: Load, rng: random.Random, sub: Submission) -> None:
    """Send `sub` to a process that is up until one acknowledges it, as FormCycle's retry does."""
    while not await send(session, await load.up(rng), sub, load):
        await asyncio.sleep(0.05)  # FormCycle's retry waits a moment too; not synchronisation


async def sender(session: aiohttp.ClientSession, load: Load, rng: random.Random, first: int) -> None:
    """Send new submissions until closing; each until a process acknowledged it.

    Some go out twice at once (a FormCycle retry racing its slow first attempt), to two processes if
    two are up: both must get the one application id, only one of them a new application.
    """
    n = first
    while not load.closing:
        sub = new_submission(n, rng)
        n += SENDERS
        load.sent[sub.vorgang_id] = sub
        copies = 2 if rng.random() < TWIN_SHARE else 1
        await asyncio.gather(*(deliver(session, load, rng, sub) for _ in range(copies)))
        await asyncio.sleep(rng.uniform(*SEND_GAP))  # the pace of the load, not synchronisation


async def feed_portal(session: aiohttp.ClientSession, sims: Simulators, rng: random.Random) -> list[str]:
    """The portal sends Bauanträge (each for another plot) at random moments of the load."""
    message_ids = []
    for n in range(BAUANTRAEGE):
        await asyncio.sleep(rng.uniform(0.5, 4.0))  # the random moment of the portal's send
        wish = {"flurstueck": {"gemarkung": "Siegburg", "flur": "7", "zaehler": f"{SEED % 1000}{n}"}}
        async with session.post(Simulators.url(sims.portal, "/sim/bauantrag"), json=wish) as resp:
            assert resp.status == 201, await resp.text()
            message_ids.append((await resp.json())["xta_message_id"])
    return message_ids


async def keep_up(hub: HubProcess, session: aiohttp.ClientSession, ready: asyncio.Event) -> None:
    """Start `hub` and mark it ready once /readyz says so."""
    hub.start()
    await hub.wait_ready(session, READY_TIMEOUT)
    ready.set()


async def killer(
    hub: HubProcess, session: aiohttp.ClientSession, load: Load, rng: random.Random, kills: int
) -> list[tuple[float, str]]:
    """SIGKILL `hub` at a random moment of each run, `kills` times, starting it again at once.

    Every process has a killer of its own: they do not wait for each other, so sometimes one process
    serves alone and sometimes all are down at once.
    """
    schedule = []
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(*KILL_GAP))  # the random moment of the kill, after readiness
        load.ready[hub.name].clear()
        await hub.kill()
        schedule.append((time.monotonic(), hub.name))
        await keep_up(hub, session, load.ready[hub.name])
    return schedule


# -- reading the outcome -------------------------------------------------------------------------------


async def get_json(session: aiohttp.ClientSession, url: str, **params: str) -> Any:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with session.get(
        url, params=params, headers=headers, timeout=aiohttp.ClientTimeout(total=20)
    ) as resp:
        assert resp.status == 200, (url, resp.status, await resp.text())
        return await resp.json()


async def journal_applications(session: aiohttp.ClientSession, hub: HubProcess) -> list[dict[str, Any]]:
    """Every application in the shared journal, through the admin API."""
    rows: list[dict[str, Any]] = []
    while True:
        page = await get_json(session, f"{hub.url}/api/v1/applications", limit="500", offset=str(len(rows)))
        rows.extend(page["applications"])
        if len(page["applications"]) < 500:
            return rows


async def enaio_objects(
    session: aiohttp.ClientSession, sims: Simulators, **filters: str
) -> list[dict[str, Any]]:
    body = await get_json(session, Simulators.url(sims.enaio, "/_sim/objects"), **filters)
    objects: list[dict[str, Any]] = body["objects"]
    return objects


def poll_tenures(leases: dict[str, Any]) -> int:
    """The XTA poll lease's fencing token: how many times a process took it."""
    return max(
        (int(lease["token"]) for lease in leases["leases"] if lease["name"] == "poll:bauportal"), default=0
    )


async def test_sigkilled_processes_file_every_acknowledged_submission_once(
    shared: Shared, simulators: Simulators, schema_dir: Path, tmp_path: Path, reserved_port: Callable[[], int]
) -> None:
    started = time.monotonic()
    print(f"\nkill test seed {SEED} (AKTENHUB_KILL_SEED={SEED} repeats its random choices)")
    sims = simulators
    processes = start_processes(tmp_path, shared, sims, schema_dir, reserved_port)
    await migrate(processes[0].config)
    load = Load(processes, {p.name: asyncio.Event() for p in processes})
    context = f"seed {SEED}; logs in {tmp_path}/hub*/"
    connector = aiohttp.TCPConnector(limit=SENDERS + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(keep_up(p, session, load.ready[p.name]) for p in processes))
        senders = [
            asyncio.create_task(sender(session, load, random.Random(f"{SEED}-{i}"), i + 1))
            for i in range(SENDERS)
        ]
        portal = asyncio.create_task(feed_portal(session, sims, random.Random(f"{SEED}-portal")))
        try:
            per_process = -(-KILLS // len(processes))  # rounded up: at least KILLS in all
            killers = [
                killer(p, session, load, random.Random(f"{SEED}-{p.name}"), per_process) for p in processes
            ]
            schedule = sorted(kill for kills in await asyncio.gather(*killers) for kill in kills)
            loaded = time.monotonic()
            load.closing = True
            await asyncio.wait_for(asyncio.gather(*senders), 60)
            message_ids = await asyncio.wait_for(portal, 30)

            # Drain: every application in a final state, every XTA message closed.
            hub = processes[0]

            async def drained() -> list[dict[str, Any]] | None:
                apps = await journal_applications(session, hub)
                if any(a["state"] in ("received", "processing") for a in apps):
                    return None
                closed = await get_json(session, Simulators.url(sims.xta, "/_sim/closed"))
                if len(closed) < len(message_ids):
                    return None
                return apps

            try:
                apps = await poll_until(drained, DRAIN_TIMEOUT, "the backlog to drain", every=0.3)
            except AssertionError as exc:
                tails = "\n".join(p.log_tail(25) for p in processes)
                raise AssertionError(f"{context}: {exc}\n{tails}") from None
            closed = await get_json(session, Simulators.url(sims.xta, "/_sim/closed"))
            mailbox = await get_json(session, Simulators.url(sims.xta, f"/_sim/mailboxes/{ACCOUNT}"))
            vorgaenge = await enaio_objects(session, sims, type="Vorgang")
            documents = [
                *await enaio_objects(session, sims, type="Anlage"),
                *await enaio_objects(session, sims, type="Originalantrag"),
            ]
            bauantraege = await enaio_objects(session, sims, type="Bauantrag")
            leases = await get_json(session, f"{hub.url}/api/v1/leases")
        finally:
            load.closing = True
            for task in [*senders, portal]:
                task.cancel()
            await asyncio.gather(*senders, portal, return_exceptions=True)
            exit_codes = [await p.stop() for p in processes]

    by_state = Counter(a["state"] for a in apps)
    print(
        f"processes {len(processes)}, kills {[f'{n}@{t - started:.1f}s' for t, n in schedule]} "
        f"(load {loaded - started:.1f}s); "
        f"submissions {len(load.sent)}, acknowledged {len(load.acknowledged)}, answers {dict(load.answers)}, "
        f"failed requests {load.failures}; journal {dict(by_state)}; XTA messages {len(message_ids)}, "
        f"closes {len(closed)}, poll lease tenures {poll_tenures(leases)}; clean stops {exit_codes}; "
        f"total {time.monotonic() - started:.1f}s"
    )
    assert not load.refused, f"{context}: submissions refused: {load.refused[:5]}"
    assert sum(p.kills for p in processes) >= KILLS, context
    assert len(load.acknowledged) >= 30, f"{context}: too little load to mean anything"
    assert load.answers[200] > 0, f"{context}: no submission was answered as a duplicate"

    # The journal: each submission and each XTA message once, everything filed.
    formcycle = [a for a in apps if a["route"] == "formulare"]
    bau = [a for a in apps if a["route"] == "bau"]
    twice = [e for e, k in Counter(a["external_id"] for a in apps).items() if k > 1]
    assert not twice, f"{context}: in the journal more than once: {twice[:5]}"
    unfinished = [(a["id"], a["state"], a.get("error")) for a in apps if a["state"] != "completed"]
    assert not unfinished, f"{context}: not completed: {unfinished[:5]}"
    journal_ids = {a["external_id"]: a["id"] for a in formcycle}
    lost = sorted(set(load.acknowledged) - set(journal_ids))
    assert not lost, f"{context}: acknowledged but not in the journal: {lost[:5]}"
    assert {v: journal_ids[v] for v in load.acknowledged} == load.acknowledged, context
    assert set(journal_ids) <= set(load.sent), f"{context}: applications nobody sent"

    # enaio: one Vorgang per application, each document once, the attachments as sent.
    per_app = Counter(v["fields"].get("AktenhubID") for v in vorgaenge)
    doubled = {k: n for k, n in per_app.items() if n > 1}
    assert not doubled, f"{context}: filed more than once: {dict(list(doubled.items())[:5])}"
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        by_parent.setdefault(document["parentId"], []).append(document)
    doc_ids = Counter(d["fields"].get("AktenhubID") for d in documents)
    assert not [k for k, n in doc_ids.items() if n > 1], f"{context}: documents filed twice"
    vorgang_of = {v["fields"]["AktenhubID"]: v for v in vorgaenge}
    for vorgang_id, application_id in load.acknowledged.items():
        assert application_id in vorgang_of, f"{context}: {vorgang_id} ({application_id}) is not in enaio"
        filed = by_parent.get(vorgang_of[application_id]["id"], [])
        attachments = sorted(d["content"]["sha256"] for d in filed if d["type"] == "Anlage")
        assert attachments == load.sent[vorgang_id].sha256s(), f"{context}: {vorgang_id}: {filed}"
        assert [d["type"] for d in filed].count("Originalantrag") == 1, f"{context}: {vorgang_id}: {filed}"
    assert set(vorgang_of) == {a["id"] for a in formcycle}, f"{context}: enaio and the journal disagree"

    # File numbers drawn by both processes from one sequence: no gap, no duplicate.
    numbers = sorted(int(m.group(1)) for a in formcycle if (m := FILE_NUMBER.match(a["file_number"] or "")))
    assert len(numbers) == len(formcycle), f"{context}: applications without a drawn file number"
    assert numbers == list(range(1, len(numbers) + 1)), f"{context}: file numbers with gaps or duplicates"

    # XTA: every message taken in once, filed once, closed once; nobody closed another's message.
    assert sorted(a["external_id"] for a in bau) == sorted({a["external_id"] for a in bau})
    assert len(bau) == len(message_ids), (
        f"{context}: {len(bau)} Bauanträge in the journal for {len(message_ids)}"
    )
    assert Counter(c["message_id"] for c in closed) == Counter(message_ids), f"{context}: closes {closed}"
    assert mailbox == [], f"{context}: left open in the mailbox: {mailbox}"
    assert not sims.stale_requests, (
        f"{context}: fetches or closes of messages closed already: {sims.stale_requests}"
    )
    assert len(bauantraege) == len(bau), f"{context}: {len(bauantraege)} Bauanträge in enaio for {len(bau)}"
    assert len({b["fields"].get("AktenhubID") for b in bauantraege}) == len(bau), context
    # The poll's lease went from process to process as its holders were killed: each tenure a new token.
    assert poll_tenures(leases) >= 2, f"{context}: the XTA poll was never taken over: {leases}"
