"""End to end: FormCycle posts over HTTP, the hub maps with the example mapping and files into enaio.

The enaio simulator runs in-process on 127.0.0.1 (`aiohttp.test_utils.TestServer`); the hub is a real
hub from `hub_factory` with the FormCycle source, the enaio sink and a route mapped by
``config/mappings/jagd-und-fischerei.yaml``. Every test runs against both enaio APIs (DMS Service and
OSRest). Outcomes are read from the simulator's operator endpoints and content endpoints, from the
admin API (state, file number, correlations, timeline) and from the hub's blob store.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import random
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pypdf
import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestServer
from click.testing import CliRunner
from hub_enaio.simulator import make_app

from hub.cli import main
from hub.models import ApplicationState
from hub.outbound import basic_authorization
from hub.testing.harness import RunningHub, stop_hub
from hub.testing.s3 import S3Bucket

MAPPING = Path(__file__).resolve().parents[1] / "config" / "mappings" / "jagd-und-fischerei.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
SERVICE = "jagdschein"

ENAIO_USER = "aktenhub"  # the simulator's default user
ENAIO_PASSWORD = "enaio-simulator"
FORMCYCLE_TOKEN = "fc-" + secrets.token_hex(16)
OPERATOR_TOKEN = "op-" + secrets.token_hex(16)
ENV = {
    "FORMCYCLE_TOKEN": FORMCYCLE_TOKEN,
    "ENAIO_PASSWORD": ENAIO_PASSWORD,
    "AKTENHUB_ADMIN_TOKEN": OPERATOR_TOKEN,
}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
DOCUMENT_TYPES = ["Antrag", "Anlage", "Anlage", "Originalantrag"]


# -- the simulator ------------------------------------------------------------------------------------


@dataclass
class Simulator:
    """The enaio simulator as a test sees it from outside: operator and content endpoints over HTTP."""

    url: str
    api: str
    http: aiohttp.ClientSession

    async def objects(self, **filters: str) -> list[dict[str, Any]]:
        """`GET /_sim/objects` (oldest first), filtered by type, parent or index field."""
        async with self.http.get(f"{self.url}/_sim/objects", params=filters) as resp:
            assert resp.status == 200, await resp.text()
            objects: list[dict[str, Any]] = (await resp.json())["objects"]
            return objects

    async def children(self, parent: str) -> list[dict[str, Any]]:
        """The objects directly under `parent`, oldest first."""
        return await self.objects(parent=parent)

    async def counts(self) -> Counter[str]:
        """How many objects of each type the simulator holds."""
        return Counter(o["type"] for o in await self.objects())

    async def stats(self) -> dict[str, Any]:
        """`GET /_sim/stats`."""
        async with self.http.get(f"{self.url}/_sim/stats") as resp:
            assert resp.status == 200, await resp.text()
            stats: dict[str, Any] = await resp.json()
            return stats

    async def set_faults(self, **knobs: Any) -> None:
        """`POST /_sim/faults`, as an operator would."""
        async with self.http.post(f"{self.url}/_sim/faults", json=knobs) as resp:
            assert resp.status == 200, await resp.text()

    async def content(self, object_id: str) -> bytes:
        """A document's content through the content endpoint of the API under test."""
        path = (
            f"/api/dms/objects/{object_id}/contents/file/1"
            if self.api == "dms"
            else f"/osrest/api/documentfiles/{object_id}/1"
        )
        credentials = base64.b64encode(f"{ENAIO_USER}:{ENAIO_PASSWORD}".encode()).decode()
        async with self.http.get(self.url + path, headers={"Authorization": f"Basic {credentials}"}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.read()


@pytest.fixture(params=["dms", "osrest"])
def api(request: pytest.FixtureRequest) -> str:
    """The enaio API the hub speaks: every test runs against both."""
    value: str = request.param
    return value


@pytest_asyncio.fixture
async def enaio(api: str) -> AsyncIterator[Simulator]:
    """The enaio simulator on a free loopback port (default type catalogue and user)."""
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Simulator(f"http://127.0.0.1:{server.port}", api, http)
    await server.close()


# -- the hub ---------------------------------------------------------------------------------------------

StartHub = Callable[..., Awaitable[RunningHub]]


def formcycle_to_enaio(
    enaio: Simulator, mapping: Path = MAPPING, **formcycle: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The connectors and the route FormCycle → enaio with the given mapping file (tokens from `ENV`)."""
    connectors: dict[str, Any] = {
        "formcycle": {
            **formcycle,
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "applicant_fields": {
                "given_name": "vorname",
                "family_name": "nachname",
                "birth_date": "geburtsdatum",
                "street": "strasse",
                "postal_code": "plz",
                "city": "ort",
                "email": "email",
            },
        },
        "enaio": {
            "type": "enaio",
            "base_url": enaio.url,
            "api": enaio.api,
            "username": ENAIO_USER,
            "password": "${ENAIO_PASSWORD}",
            "timeout_seconds": 5,
            "retry": {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01},
            # Some tests fail enaio six times in a row on purpose; the circuit (by default open
            # after five, tests/test_circuit_breaker.py) would hold the next attempt back for 30 s.
            "circuit": {"failure_threshold": 10},
        },
    }
    routes: list[dict[str, Any]] = [
        {
            "name": "jagd-und-fischerei",
            "from": "formcycle",
            "when": {"service": ["jagdschein", "fischereischein"]},
            "map": str(mapping.resolve()),
            "to": ["enaio"],
        }
    ]
    return connectors, routes


@pytest.fixture
def start_hub(hub_factory: Any, enaio: Simulator) -> StartHub:
    """Start a hub FormCycle → enaio with the given mapping file (default: the example mapping)."""

    async def start(
        mapping: Path = MAPPING,
        subdir: str = "hub",
        receipts: bool = False,
        people: Sequence[dict[str, str]] = (),
        env: dict[str, str] | None = None,
        settings: dict[str, Any] | None = None,
        **formcycle: Any,
    ) -> RunningHub:
        """`people`: more admin tokens (their ${ENV} values in `env`); `settings`: more hub settings."""
        connectors, routes = formcycle_to_enaio(enaio, mapping, **formcycle)
        if receipts:  # the fakes' recording notifier keeps every receipt sent
            connectors["receipts"] = {"type": "test-notifier"}
            routes[0]["notify"] = ["receipts"]
        server = {
            "listen": "127.0.0.1:0",
            "admin_tokens": [
                {"name": "operations", "token": "${AKTENHUB_ADMIN_TOKEN}", "role": "operator"},
                *people,
            ],
        }
        running: RunningHub = await hub_factory(
            connectors, routes, env={**ENV, **(env or {})}, subdir=subdir, server=server, **(settings or {})
        )
        return running

    return start


# -- submissions -----------------------------------------------------------------------------------------


@dataclass
class Submission:
    """A FormCycle submission: text parameters and uploaded files (form element → name, bytes)."""

    vorgang_id: str
    fields: dict[str, str | list[str]]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def form_data(self) -> aiohttp.FormData:
        """The multipart body as FormCycle's HTTP-Request action sends it (fresh each time)."""
        form = aiohttp.FormData()
        for name, value in self.fields.items():
            for v in value if isinstance(value, list) else [value]:
                form.add_field(name, v)
        for element, (file_name, data) in self.files.items():
            form.add_field(element, data, filename=file_name, content_type="application/pdf")
        return form


def _pdf_bytes(label: str) -> bytes:
    # Distinct content per file: the blob store is content-addressed.
    return b"%PDF-1.4\n% " + label.encode() + b"\n" + os.urandom(2048) + b"\n%%EOF\n"


def jagdschein(vorgang_id: str, **overrides: str) -> Submission:
    """A Jagdschein application of Jürgen Groß-Öztürk with two attachments."""
    fields: dict[str, str | list[str]] = {
        "vorgang_id": vorgang_id,
        "vorname": "Jürgen",
        "nachname": "Groß-Öztürk",
        "geburtsdatum": "1971-01-11",
        "strasse": "Kaiserstraße 12",
        "plz": "53721",
        "ort": "Siegburg",
        "email": "j.gross@example.org",
        "jagdschein_art": "Jahresjagdschein",
        "versicherung": ["Jagdhaftpflicht", "Unfallversicherung"],
        "einwilligung": "ja",
        **overrides,
    }
    files = {
        "ausweis": ("Personalausweis_Groß.pdf", _pdf_bytes(f"Ausweis {vorgang_id}")),
        "nachweis": ("Versicherungsnachweis.pdf", _pdf_bytes(f"Nachweis {vorgang_id}")),
    }
    return Submission(vorgang_id, fields, files)


async def post(hub: RunningHub, submission: Submission) -> tuple[int, dict[str, Any]]:
    """POST the submission to the FormCycle intake; (status, JSON answer)."""
    status, body = await hub.post(
        f"/intake/formcycle/{SERVICE}",
        data=submission.form_data(),
        headers={"X-Aktenhub-Token": FORMCYCLE_TOKEN},
    )
    assert isinstance(body, dict), body
    return status, body


async def submit(hub: RunningHub, submission: Submission) -> str:
    """POST a new submission (expects 202) and return its application id."""
    status, body = await post(hub, submission)
    assert status == 202, body
    assert body["duplicate"] is False
    application_id: str = body["application_id"]
    return application_id


async def admin_view(hub: RunningHub, application_id: str) -> dict[str, Any]:
    """The application with its timeline and tasks, through the admin API (operator token)."""
    status, body = await hub.get(f"/api/v1/applications/{application_id}", headers=OPERATOR)
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def events_of(view: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The timeline events of one type."""
    return [e for e in view["timeline"] if e["type"] == kind]


def sha256(data: bytes) -> str:
    """Hex sha256."""
    return hashlib.sha256(data).hexdigest()


def received_day(view: dict[str, Any]) -> datetime:
    """When the application was received, in German local time (dates in the mapping are local)."""
    return datetime.fromisoformat(view["received_at"]).astimezone(BERLIN)


async def filed(enaio: Simulator, application_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The application's Vorgang and the documents under it (asserting there is exactly one Vorgang)."""
    (vorgang,) = await enaio.objects(type="Vorgang", AktenhubID=application_id)
    return vorgang, await enaio.children(vorgang["id"])


async def printed_file_numbers(enaio: Simulator, application_id: str) -> set[str]:
    """Every Aktenzeichen printed on the PDF rendition filed for the application (header, page heads)."""
    _, documents = await filed(enaio, application_id)
    (rendition,) = [d for d in documents if d["type"] == "Antrag"]
    reader = pypdf.PdfReader(io.BytesIO(await enaio.content(rendition["id"])))
    text = " ".join(" ".join(page.extract_text().split()) for page in reader.pages)
    printed = set(re.findall(r"(?:Aktenzeichen|Az\.) (\S+)", text))
    assert printed, f"no Aktenzeichen on the rendition of {application_id}"
    return printed


# -- the cases -------------------------------------------------------------------------------------------


async def test_submission_with_two_attachments_is_filed_as_mapped(
    start_hub: StartHub, enaio: Simulator
) -> None:
    hub = await start_hub()
    submission = jagdschein("FC-2026-004712")
    application_id = await submit(hub, submission)

    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    view = await admin_view(hub, application_id)
    day = received_day(view)

    # The Akte: index data as mapped, names exactly as sent.
    (akte,) = await enaio.objects(type="Personenakte")
    aktenzeichen = f"32.3-{day.year}-00001"
    assert akte["fields"] == {
        "Aktenzeichen": aktenzeichen,
        "Leistung": "Jagdschein",
        "Nachname": "Groß-Öztürk",
        "Vorname": "Jürgen",
        "Geburtsdatum": "11.01.1971",
        "Ort": "Siegburg",
    }
    assert akte["parentId"] is None and akte["cabinet"] == "Buergerdienste"

    # The Vorgang under it.
    vorgang, documents = await filed(enaio, application_id)
    assert vorgang["parentId"] == akte["id"]
    assert vorgang["fields"] == {
        "Betreff": "Antrag auf Jagdschein (Jahresjagdschein)",
        "Eingangsdatum": day.strftime("%d.%m.%Y"),
        "Vorgangsnummer": "FC-2026-004712",
        "AktenhubID": application_id,
    }

    # Four documents: rendition, the two attachments in order, the original submission.
    assert [d["type"] for d in documents] == DOCUMENT_TYPES
    rendition, ausweis, nachweis, original = documents
    assert [d["fields"] for d in documents] == [
        {
            "Titel": "Antrag auf Jagdschein",
            "Datum": day.strftime("%d.%m.%Y"),
            "AktenhubID": f"{application_id}/0",
        },
        {
            "Titel": "Anlage 1: Personalausweis (Kopie)",
            "Dateiname": "Personalausweis_Groß.pdf",
            "AktenhubID": f"{application_id}/1",
        },
        {
            "Titel": "Anlage 2: Versicherungsnachweis",
            "Dateiname": "Versicherungsnachweis.pdf",
            "AktenhubID": f"{application_id}/2",
        },
        {"Titel": "Originalantrag (FormCycle FC-2026-004712)", "AktenhubID": f"{application_id}/3"},
    ]
    assert [d["content"]["fileName"] for d in documents] == [
        "Antrag Jagdschein Groß-Öztürk, Jürgen.pdf",
        "Personalausweis_Groß.pdf",
        "Versicherungsnachweis.pdf",
        "Originalantrag FC-2026-004712.json",
    ]
    assert [d["content"]["mimeType"] for d in documents] == [
        "application/pdf",
        "application/pdf",
        "application/pdf",
        "application/json",
    ]

    # Contents, fetched through the API's content endpoint.
    record = next(t["result"] for t in view["tasks"] if t["step"] == "map")
    rendition_ref = record["documents"][0]["blob"]
    stored_rendition = await hub.hub.blobs.read_bytes(rendition_ref)
    filed_rendition = await enaio.content(rendition["id"])
    assert filed_rendition.startswith(b"%PDF")
    assert sha256(filed_rendition) == sha256(stored_rendition) == rendition_ref.removeprefix("sha256:")
    assert rendition["content"]["sha256"] == sha256(filed_rendition)
    for document, element in ((ausweis, "ausweis"), (nachweis, "nachweis")):
        sent = submission.files[element][1]
        assert sha256(await enaio.content(document["id"])) == sha256(sent)
        assert document["content"]["size"] == len(sent)
    application = view["application"]
    stored_original = await hub.hub.blobs.read_bytes(application["original"]["blob"])
    assert sha256(await enaio.content(original["id"])) == sha256(stored_original)
    assert sha256(stored_original) == application["original"]["sha256"]
    canonical = json.loads(stored_original)  # the canonical JSON of the multipart submission
    assert "FC-2026-004712" in json.dumps(canonical, ensure_ascii=False)

    # The application: completed, the Akte's Aktenzeichen, the DMS ids.
    assert view["state"] == "completed" and view["error"] is None
    assert view["file_number"] == application["file_number"] == aktenzeichen
    assert application["correlations"] == {
        "formcycle": "FC-2026-004712",
        "enaio": akte["id"],
        "enaio.akte": akte["id"],
        "enaio.vorgang": vorgang["id"],
        "enaio.documents": ",".join(d["id"] for d in documents),
    }
    (delivered,) = events_of(view, "delivery.completed")
    assert delivered["target"] == "enaio"
    assert delivered["data"]["file_number"] == aktenzeichen and delivered["data"]["duplicate"] is False
    assert len(events_of(view, "application.completed")) == 1
    assert not events_of(view, "step.failed")
    assert await enaio.counts() == Counter(
        {"Personenakte": 1, "Vorgang": 1, "Antrag": 1, "Anlage": 2, "Originalantrag": 1}
    )


async def test_files_in_object_storage_are_filed_with_their_sha256_intact(
    start_hub: StartHub, enaio: Simulator, s3_bucket: S3Bucket
) -> None:
    hub = await start_hub(settings={"blobs": s3_bucket.url})
    submission = jagdschein("FC-2026-004713")
    # One attachment larger than a part: it goes up to the bucket as a multipart upload on its way in.
    plan = b"%PDF-1.4\n" + random.Random(4713).randbytes(12 * 1024 * 1024) + b"\n%%EOF\n"
    submission.files["nachweis"] = ("Lageplan.pdf", plan)
    application_id = await submit(hub, submission)

    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    _, documents = await filed(enaio, application_id)
    assert [d["type"] for d in documents] == DOCUMENT_TYPES
    _, ausweis, nachweis, original = documents
    for document, element in ((ausweis, "ausweis"), (nachweis, "nachweis")):
        sent = submission.files[element][1]
        assert sha256(await enaio.content(document["id"])) == sha256(sent)
        assert document["content"]["size"] == len(sent)
    # Every blob of the application is an object in the bucket, under its sha256; nothing else is.
    view = await admin_view(hub, application_id)
    application = view["application"]
    refs = {application["original"]["blob"], *(a["blob"] for a in application["attachments"])}
    keys = {key.rsplit("/", 1)[1] for key in s3_bucket.keys("sha256/")}
    assert {ref.removeprefix("sha256:") for ref in refs} <= keys
    assert sha256(plan) in keys
    assert s3_bucket.keys("tmp/") == [] and s3_bucket.open_uploads() == []
    assert sha256(await enaio.content(original["id"])) == application["original"]["sha256"]


async def test_second_application_of_the_same_applicant_lands_in_the_same_akte(
    start_hub: StartHub, enaio: Simulator
) -> None:
    hub = await start_hub(receipts=True)
    first = await submit(hub, jagdschein("FC-2026-000001"))
    assert await hub.wait_for_state(first) == ApplicationState.COMPLETED
    second = await submit(hub, jagdschein("FC-2026-000002", jagdschein_art="Dreijahresjagdschein"))
    assert await hub.wait_for_state(second) == ApplicationState.COMPLETED

    (akte,) = await enaio.objects(type="Personenakte")
    vorgaenge = await enaio.children(akte["id"])
    assert [v["fields"]["AktenhubID"] for v in vorgaenge] == [first, second]
    assert vorgaenge[1]["fields"]["Betreff"] == "Antrag auf Jagdschein (Dreijahresjagdschein)"
    for application_id in (first, second):
        _, documents = await filed(enaio, application_id)
        assert [d["type"] for d in documents] == DOCUMENT_TYPES

    view = await admin_view(hub, second)
    # The existing Akte's number is the second application's number everywhere; none was drawn for it.
    aktenzeichen = f"32.3-{received_day(view).year}-00001"
    assert view["file_number"] == akte["fields"]["Aktenzeichen"] == aktenzeichen
    for application_id in (first, second):
        assert await printed_file_numbers(enaio, application_id) == {aktenzeichen}
    receipts = hub.hub.connectors["receipts"].receipts  # type: ignore[attr-defined]
    assert {receipts[(app_id, "received")].file_number for app_id in (first, second)} == {aktenzeichen}
    assert view["application"]["correlations"]["enaio.akte"] == akte["id"]
    (delivered,) = events_of(view, "delivery.completed")
    assert delivered["data"]["file_number"] == akte["fields"]["Aktenzeichen"]
    assert await enaio.counts() == Counter(
        {"Personenakte": 1, "Vorgang": 2, "Antrag": 2, "Anlage": 4, "Originalantrag": 2}
    )
    # The next applicant's Akte gets the next number: the second application used none.
    other = await submit(hub, jagdschein("FC-2026-000003", nachname="Schmitz"))
    assert await hub.wait_for_state(other) == ApplicationState.COMPLETED
    assert (await admin_view(hub, other))["file_number"] == f"32.3-{received_day(view).year}-00002"


async def test_the_same_submission_sent_twice_is_filed_once(start_hub: StartHub, enaio: Simulator) -> None:
    hub = await start_hub()
    submission = jagdschein("FC-2026-000777")
    application_id = await submit(hub, submission)
    status, body = await post(hub, submission)  # FormCycle re-sends (its answer got lost)
    assert status == 200, body
    assert body == {"application_id": application_id, "duplicate": True}

    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    # And again after it is filed, twice at the same time.
    again = await asyncio.gather(post(hub, submission), post(hub, submission))
    assert again == [(200, {"application_id": application_id, "duplicate": True})] * 2
    await hub.wait_all_final()

    _, documents = await filed(enaio, application_id)
    assert [d["type"] for d in documents] == DOCUMENT_TYPES
    assert await enaio.counts() == Counter(
        {"Personenakte": 1, "Vorgang": 1, "Antrag": 1, "Anlage": 2, "Originalantrag": 1}
    )
    status, listing = await hub.get("/api/v1/applications", headers=OPERATOR)
    assert status == 200 and [a["id"] for a in listing["applications"]] == [application_id]
    view = await admin_view(hub, application_id)
    assert len(events_of(view, "application.received")) == 1
    assert len(events_of(view, "delivery.completed")) == 1


async def test_a_changed_resend_as_revision_files_the_new_documents_in_the_same_vorgang(
    start_hub: StartHub, enaio: Simulator
) -> None:
    hub = await start_hub(on_changed_resend="revision")
    application_id = await submit(hub, jagdschein("FC-2026-000888"))
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    vorgang, _ = await filed(enaio, application_id)
    file_number = (await admin_view(hub, application_id))["file_number"]

    corrected = jagdschein("FC-2026-000888", jagdschein_art="Dreijahresjagdschein")
    status, body = await post(hub, corrected)
    assert (status, body) == (202, {"application_id": application_id, "duplicate": False, "revision": 2})
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED

    # Same Akte, same Vorgang, same Aktenzeichen; revision 2's documents beside revision 1's.
    again, documents = await filed(enaio, application_id)
    assert again["id"] == vorgang["id"]
    assert [d["type"] for d in documents] == DOCUMENT_TYPES * 2
    assert [d["fields"]["AktenhubID"] for d in documents[4:]] == [
        f"{application_id}/r2/{i}" for i in range(4)
    ]
    # The attachments filed for revision 2 are the corrected submission's files.
    sent = [data for _, data in corrected.files.values()]
    assert [d["content"]["sha256"] for d in documents[5:7]] == [sha256(data) for data in sent]
    assert await enaio.counts() == Counter(
        {"Personenakte": 1, "Vorgang": 1, "Antrag": 2, "Anlage": 4, "Originalantrag": 2}
    )
    view = await admin_view(hub, application_id)
    assert view["file_number"] == file_number
    assert len(events_of(view, "application.revised")) == 1
    assert len(events_of(view, "delivery.completed")) == 2


async def test_answers_dropped_after_storing_cause_no_duplicates(
    start_hub: StartHub, enaio: Simulator
) -> None:
    hub = await start_hub()
    # Every one of the three inserts (Akte, Vorgang, the four documents in one request) is stored, then
    # its answer is lost.
    await enaio.set_faults(drop_after_insert=3)
    application_id = await submit(hub, jagdschein("FC-2026-000042"))

    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    assert (await enaio.stats())["dropped"] == 3
    assert await enaio.counts() == Counter(
        {"Personenakte": 1, "Vorgang": 1, "Antrag": 1, "Anlage": 2, "Originalantrag": 1}
    )
    (akte,) = await enaio.objects(type="Personenakte")
    vorgang, documents = await filed(enaio, application_id)
    assert vorgang["parentId"] == akte["id"]
    assert [d["fields"]["AktenhubID"] for d in documents] == [f"{application_id}/{i}" for i in range(4)]

    view = await admin_view(hub, application_id)
    failed = events_of(view, "step.failed")
    assert len(failed) == 3 and {(e["step"], e["target"]) for e in failed} == {("deliver", "enaio")}
    assert view["application"]["correlations"]["enaio.documents"] == ",".join(d["id"] for d in documents)
    assert view["file_number"] == akte["fields"]["Aktenzeichen"]


async def test_enaio_unavailable_for_a_while_is_retried_and_filed_once(
    start_hub: StartHub, enaio: Simulator
) -> None:
    hub = await start_hub()
    await enaio.set_faults(fail_next=4)  # the next four requests are answered 503
    application_id = await submit(hub, jagdschein("FC-2026-000503"))

    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    view = await admin_view(hub, application_id)
    failed = events_of(view, "step.failed")
    assert len(failed) == 4
    for event in failed:
        # The first request to enaio is mapping's lookup of an existing Akte (its number would win):
        # retried by enaio's policy, and nothing is drawn until enaio answers.
        assert (event["step"], event["target"]) == ("map", "enaio")
        assert "503" in event["data"]["error"] and event["data"]["retry_at"] is not None
        assert event["data"]["permanent"] is False
    assert [e["data"]["attempt"] for e in failed] == [1, 2, 3, 4]
    (delivered,) = events_of(view, "delivery.completed")
    assert delivered["at"] > failed[-1]["at"]
    map_task = next(t for t in view["tasks"] if t["step"] == "map")
    assert map_task["attempts"] == 5 and map_task["state"] == "done"
    assert view["file_number"] == f"32.3-{received_day(view).year}-00001"

    assert await enaio.counts() == Counter(
        {"Personenakte": 1, "Vorgang": 1, "Antrag": 1, "Anlage": 2, "Originalantrag": 1}
    )
    (akte,) = await enaio.objects(type="Personenakte")
    assert view["file_number"] == akte["fields"]["Aktenzeichen"]


async def test_mapping_with_a_missing_field_is_dead_and_replay_files_it_after_the_fix(
    start_hub: StartHub, enaio: Simulator, tmp_path: Path
) -> None:
    good = MAPPING.read_text(encoding="utf-8")
    broken_line = '    Vorgangsnummer: "{{ form.vorgang_id }}"'
    assert good.count(broken_line) == 1
    mapping = tmp_path / "jagd-und-fischerei.yaml"
    mapping.write_text(good.replace(broken_line, '    Vorgangsnummer: "{{ form.vorgangsnummer }}"'), "utf-8")
    line = good.splitlines().index(broken_line) + 1

    hub = await start_hub(mapping, subdir="journal")
    application_id = await submit(hub, jagdschein("FC-2026-000404"))
    assert await hub.wait_for_state(application_id) == ApplicationState.DEAD

    view = await admin_view(hub, application_id)
    error = view["error"]
    assert "'vorgangsnummer'" in error
    assert f"{mapping.resolve()}:{line}: vorgang.fields.Vorgangsnummer" in error
    (dead,) = events_of(view, "step.dead")
    assert dead["step"] == "map" and dead["data"]["permanent"] is True
    assert "'vorgangsnummer'" in dead["data"]["error"]
    assert await enaio.objects() == []  # nothing half-filed
    await stop_hub(hub)

    mapping.write_text(good, encoding="utf-8")  # the operator fixes the mapping ...
    fixed = await start_hub(mapping, subdir="journal")  # ... restarts the hub on the same journal ...
    status, body = await fixed.post(f"/api/v1/applications/{application_id}/replay")
    assert status == 401, body  # (replay needs a token)
    status, body = await fixed.post(f"/api/v1/applications/{application_id}/replay", headers=OPERATOR)
    assert status == 200, body  # ... and replays it
    assert body == {"replayed": [application_id], "count": 1}

    assert await fixed.wait_for_state(application_id) == ApplicationState.COMPLETED
    view = await admin_view(fixed, application_id)
    (akte,) = await enaio.objects(type="Personenakte")
    vorgang, documents = await filed(enaio, application_id)
    assert vorgang["fields"]["Vorgangsnummer"] == "FC-2026-000404"
    assert [d["type"] for d in documents] == DOCUMENT_TYPES
    # The number the failed attempt recorded on the application is kept: the replay drew none.
    assert view["file_number"] == akte["fields"]["Aktenzeichen"] == f"32.3-{received_day(view).year}-00001"
    assert await printed_file_numbers(enaio, application_id) == {view["file_number"]}
    assert view["application"]["correlations"]["enaio.vorgang"] == vorgang["id"]
    assert [e["type"] for e in view["timeline"]].count("application.completed") == 1
    assert await fixed.post(f"/api/v1/applications/{application_id}/replay", headers=OPERATOR) == (
        409,
        {"error": f"application {application_id} has no dead step to replay"},
    )
    # No gap: the next applicant gets the next number.
    other = await submit(fixed, jagdschein("FC-2026-000405", nachname="Nguyễn"))
    assert await fixed.wait_for_state(other) == ApplicationState.COMPLETED
    assert (await admin_view(fixed, other))["file_number"] == f"32.3-{received_day(view).year}-00002"


async def test_an_akte_a_clerk_created_keeps_its_number_everywhere(
    start_hub: StartHub, enaio: Simulator
) -> None:
    # A clerk filed the applicant's Akte years ago, by hand, under the number of that year.
    existing = "32.3-2019-00815"
    fields = {
        "Aktenzeichen": existing,
        "Leistung": "Jagdschein",
        "Nachname": "Groß-Öztürk",
        "Vorname": "Jürgen",
        "Geburtsdatum": "11.01.1971",
    }
    created = {
        "objects": [
            {
                "properties": {
                    "system:objectTypeId": {"value": "Personenakte"},
                    **{name: {"value": value} for name, value in fields.items()},
                }
            }
        ]
    }
    basic = basic_authorization(ENAIO_USER, ENAIO_PASSWORD)
    async with enaio.http.post(
        f"{enaio.url}/api/dms/objects", json=created, headers={"Authorization": basic}
    ) as resp:
        assert resp.status in (200, 201), await resp.text()

    hub = await start_hub(receipts=True)
    application_id = await submit(hub, jagdschein("FC-2026-000815"))
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED

    (akte,) = await enaio.objects(type="Personenakte")
    assert akte["fields"]["Aktenzeichen"] == existing
    view = await admin_view(hub, application_id)
    assert view["file_number"] == existing
    assert await printed_file_numbers(enaio, application_id) == {existing}
    receipt = hub.hub.connectors["receipts"].receipts[(application_id, "received")]  # type: ignore[attr-defined]
    assert receipt.file_number == existing
    (delivered,) = events_of(view, "delivery.completed")
    assert delivered["data"]["file_number"] == existing
    # No number was drawn for it: the next new Akte gets the year's first.
    other = await submit(hub, jagdschein("FC-2026-000816", nachname="Schmitz"))
    assert await hub.wait_for_state(other) == ApplicationState.COMPLETED
    assert (await admin_view(hub, other))["file_number"] == f"32.3-{received_day(view).year}-00001"


async def test_two_first_applications_of_one_applicant_at_once_share_one_number(
    start_hub: StartHub, enaio: Simulator
) -> None:
    hub = await start_hub()
    ids = await asyncio.gather(
        submit(hub, jagdschein("FC-2026-000901")),
        submit(hub, jagdschein("FC-2026-000902", jagdschein_art="Dreijahresjagdschein")),
    )
    for application_id in ids:
        assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED

    (akte,) = await enaio.objects(type="Personenakte")
    aktenzeichen = akte["fields"]["Aktenzeichen"]
    year = received_day(await admin_view(hub, ids[0])).year
    assert aktenzeichen == f"32.3-{year}-00001"
    for application_id in ids:
        assert (await admin_view(hub, application_id))["file_number"] == aktenzeichen
        assert await printed_file_numbers(enaio, application_id) == {aktenzeichen}
    other = await submit(hub, jagdschein("FC-2026-000903", nachname="Schmitz"))
    assert await hub.wait_for_state(other) == ApplicationState.COMPLETED
    assert (await admin_view(hub, other))["file_number"] == f"32.3-{year}-00002"


async def test_an_enaio_document_id_finds_its_application_by_api_and_cli(
    start_hub: StartHub, enaio: Simulator, tmp_path: Path
) -> None:
    hub = await start_hub()
    application_id = await submit(hub, jagdschein("FC-2026-000077"))
    other_id = await submit(hub, jagdschein("FC-2026-000078", nachname="Other"))
    assert await hub.wait_for_state(application_id) == ApplicationState.COMPLETED
    assert await hub.wait_for_state(other_id) == ApplicationState.COMPLETED
    _, documents = await filed(enaio, application_id)
    document_id = documents[2]["id"]  # one of several: the correlation lists them all

    status, body = await hub.get("/api/v1/applications", params={"q": document_id}, headers=OPERATOR)
    assert status == 200, body
    assert [a["id"] for a in body["applications"]] == [application_id]

    config = tmp_path / "aktenhub.yaml"
    settings = {"store": hub.hub.config.hub.store, "blobs": str(hub.hub.config.hub.blobs.path)}
    config.write_text(yaml.safe_dump({**settings, "connectors": {}, "routes": []}))
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["applications", "-c", str(config), "--find", document_id, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert [a["id"] for a in json.loads(result.stdout)] == [application_id]
