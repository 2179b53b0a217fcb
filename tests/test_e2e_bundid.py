"""End to end with BundID: FormCycle + signed login -> Enaio Akte under the verified name -> mailbox.

The Enaio, BundID IdP and ZBP simulators run in-process on loopback; the hub takes a FormCycle
multipart submission carrying the forwarded SAML response, verifies it, files the application and
answers the applicant's BundID mailbox with a signed message.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest_asyncio
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hub_bundid.simulator import IdpSimulator
from hub_enaio.simulator import make_app as enaio_app
from hub_zbp.keys import generate_author
from hub_zbp.simulator import make_app as zbp_app

from hub.journal import ApplicationFilter
from hub.models import ApplicationState
from hub.testing.harness import stored_blobs

MAPPING = Path(__file__).parents[1] / "config" / "mappings" / "jagd-und-fischerei.yaml"
TOKEN = "formcycle-e2e-token-0123456789"
ENAIO_PASSWORD = "enaio-e2e-secret"


@dataclass
class World:
    running: Any
    idp: IdpSimulator
    enaio: TestServer
    zbp: TestServer
    certificate_sha256: str

    async def enaio_objects(self, **query: str) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.enaio.make_url("/_sim/objects"), params=query) as r,
        ):
            body = await r.json()
        return list(body["objects"] if isinstance(body, dict) else body)

    async def mailbox(self, handle: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.zbp.make_url(f"/_sim/mailboxes/{handle}")) as r,
        ):
            assert r.status == 200
            box: dict[str, Any] = await r.json()
            return box

    async def filed_original(self) -> bytes:
        """The content of the one original submission filed in enaio, as its own API gives it."""
        (document,) = [
            o
            for o in await self.enaio_objects()
            if o["content"] and o["fields"].get("Titel", "").startswith("Originalantrag")
        ]
        async with (
            aiohttp.ClientSession(
                headers={"Authorization": aiohttp.encode_basic_auth("aktenhub", ENAIO_PASSWORD)}
            ) as http,
            http.get(self.enaio.make_url(f"/api/dms/objects/{document['id']}/contents/file")) as r,
        ):
            assert r.status == 200
            return await r.read()

    async def submit(self, vorgang_id: str, login: str, **fields: str) -> str:
        form = aiohttp.FormData({"vorgang_id": vorgang_id, "bundid_saml_response": login, **fields})
        form.add_field("ausweis", b"%PDF-1.4 Ausweis", filename="Ausweis.pdf", content_type="application/pdf")
        form.add_field(
            "nachweis", b"%PDF-1.4 Versicherung", filename="Versicherung.pdf", content_type="application/pdf"
        )
        status, body = await self.running.post(
            "/intake/formcycle/jagdschein", data=form, headers={"X-Aktenhub-Token": TOKEN}
        )
        assert status == 202, body
        return str(body["application_id"])


@pytest_asyncio.fixture
async def world(tmp_path: Path, hub_factory: Any, schema_dir: Path) -> AsyncIterator[World]:
    idp = IdpSimulator(
        schema_dir,
        sp_entity_id="https://aktenhub.example/sp",
        acs_url="https://formulare.example/bundid/acs",
    )
    metadata = tmp_path / "idp-metadata.xml"
    idp.write_metadata(metadata)
    author = generate_author()
    certificate = x509.load_pem_x509_certificate(author.certificate_pem.encode())
    enaio = TestServer(enaio_app(users={"aktenhub": ENAIO_PASSWORD}), host="127.0.0.1")
    zbp = TestServer(zbp_app(), host="127.0.0.1")
    await enaio.start_server()
    await zbp.start_server()
    connectors = {
        "formcycle": {
            "type": "formcycle",
            "token": "${FORMCYCLE_TOKEN}",
            "id_field": "vorgang_id",
            "applicant_fields": {"given_name": "vorname", "family_name": "nachname"},
            "header_fields": {"X-BundID-SAML-Response": "bundid_saml_response"},
        },
        "bundid": {
            "type": "bundid",
            "mode": "saml",
            "idp_metadata": str(metadata),
            "sp_entity_id": idp.sp_entity_id,
            "acs_url": idp.acs_url,
        },
        "enaio": {
            "type": "enaio",
            "base_url": str(enaio.make_url("")).rstrip("/"),
            "username": "aktenhub",
            "password": "${ENAIO_PASSWORD}",
            "retry": {"initial_seconds": 0.05, "max_seconds": 0.2, "jitter_seconds": 0.01},
        },
        "postfach": {
            "type": "zbp",
            "base_url": str(zbp.make_url("")).rstrip("/"),
            "author_key": author.key_pem,
            "author_certificate": author.certificate_pem,
            "sender_name": "Rhein-Sieg-Kreis",
        },
    }
    routes = [
        {
            "name": "jagd",
            "from": "formcycle",
            "identity": {"via": "bundid", "min_level": "substantiell"},
            "map": str(MAPPING),
            "to": ["enaio"],
            "notify": ["postfach"],
        }
    ]
    running = await hub_factory(
        connectors, routes, env={"FORMCYCLE_TOKEN": TOKEN, "ENAIO_PASSWORD": ENAIO_PASSWORD}
    )
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    yield World(running, idp, enaio, zbp, fingerprint)
    await zbp.close()
    await enaio.close()


async def test_verified_applicant_is_filed_and_answered_in_the_mailbox(world: World) -> None:
    surname = world.idp.persons["U04"]["surname"]  # Johanna Kleinschmidt, BundID test person
    login = world.idp.response("U04", means="eID")
    # the form's own name fields carry a typo: the verified identity wins
    app_id = await world.submit("FC-BID-1", login, vorname="Johanna", nachname="Kleinschmitt")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED

    app = await world.running.journal.get_application(app_id)
    assert (app.applicant.family_name, app.identity.level, app.identity.means) == (
        surname,
        "hoch",
        "eID",
    )
    (akte,) = await world.enaio_objects(type="Personenakte")
    fields = akte.get("fields", akte.get("properties", {}))
    assert surname in str(fields) and "Kleinschmitt" not in str(fields)
    assert app.file_number and app.file_number in str(fields)

    box = await world.mailbox(world.idp.mailbox("U04"))
    (status,) = box["status_updates"]
    (message,) = box["messages"]
    assert status["payload"]["status"] == "RECEIVED"
    assert app.file_number in status["payload"]["statusDetails"]["de"]
    assert message["payload"]["reference"] == app.file_number
    assert message["payload"]["stork_qaa_level"] == 4
    for item in (status, message):  # signed with our author key (the simulator verified the signatures)
        assert item["certificate_sha256"] == world.certificate_sha256
        assert item["signer"] == "Aktenhub ZBP Testabsender" and item["roles"] == ["THIRD_PARTY"]
    # The ZBP's ids of what was sent find the application.
    app = await world.running.journal.get_application(app_id)
    assert app.correlations["postfach.received.status"] == status["id"]
    assert app.correlations["postfach.received.message"] == message["id"]
    found = await world.running.journal.list_applications(ApplicationFilter(find=message["id"]))
    assert [a.id for a in found] == [app_id]


async def test_login_below_the_level_is_rejected_and_answered(world: World) -> None:
    login = world.idp.response("U02", means="Benutzername")
    app_id = await world.submit("FC-BID-2", login, vorname="Manfred", nachname="Schmidt")
    assert await world.running.wait_for_state(app_id) == ApplicationState.REJECTED
    summary = await world.running.journal.get_summary(app_id)
    assert summary.error == "Vertrauensniveau zu niedrig: untergeordnet erreicht, substantiell erforderlich"
    assert await world.enaio_objects(type="Personenakte") == []  # nothing filed

    async def answered() -> bool:
        box = await world.mailbox(world.idp.mailbox("U02"))
        return bool(box["messages"])

    await world.running.wait_for(answered, what="the rejection in the mailbox")
    (message,) = (await world.mailbox(world.idp.mailbox("U02")))["messages"]
    assert "Das Vertrauensniveau der Anmeldung reicht nicht." in message["payload"]["content"]


async def test_forged_login_is_rejected_and_hub_keeps_serving(world: World) -> None:
    forged = world.idp.response("U03", means="eID", fault="altered")
    bad = await world.submit("FC-BID-3", forged, vorname="Wilhelm", nachname="Weber")
    assert await world.running.wait_for_state(bad) == ApplicationState.REJECTED
    good = await world.submit(
        "FC-BID-4", world.idp.response("U03", means="ELSTER"), vorname="W", nachname="W"
    )
    assert await world.running.wait_for_state(good) == ApplicationState.COMPLETED
    assert len(await world.enaio_objects(type="Personenakte")) == 1


async def test_login_forwarded_in_a_header(world: World) -> None:
    login = world.idp.response("U05", means="Smart-eID")
    assert len(login) > 8190  # more than aiohttp's default header limit: the hub's limit is larger
    form = aiohttp.FormData({"vorgang_id": "FC-BID-5", "vorname": "Jochen", "nachname": "Bittel"})
    status, body = await world.running.post(
        "/intake/formcycle/jagdschein",
        data=form,
        headers={"X-Aktenhub-Token": TOKEN, "X-BundID-SAML-Response": login},
    )
    assert status == 202, body
    app_id = body["application_id"]
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    app = await world.running.journal.get_application(app_id)
    assert (app.identity.means, app.identity.level) == ("Smart-eID", "substantiell")


# -- the forwarded SAML response never reaches a sink, not even inside the filed original ------------

CREDENTIAL = "bundid_saml_response"


def assert_no_saml(content: bytes, login: str) -> None:
    lowered = content.lower()
    assert b"saml" not in lowered and b"assertion" not in lowered and b"signature" not in lowered
    assert login[:40].encode() not in content


async def orphans_swept_and_left(world: World) -> list[bytes]:
    """Run the orphan sweep as if its grace period had passed; the content of every blob left."""
    blobs, later = world.running.hub.blobs, time.time() + 3600
    candidates = await blobs.unreferenced_candidates(later)
    await blobs.sweep(candidates, await world.running.journal.blob_references(), later)
    return [await blobs.read_bytes(ref) for ref in sorted(stored_blobs(blobs))]


async def test_the_filed_original_holds_no_saml_response(world: World) -> None:
    login = world.idp.response("U04", means="eID")
    app_id = await world.submit("FC-RED-1", login, vorname="Johanna", nachname="Kleinschmidt")
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED

    filed = await world.filed_original()
    assert_no_saml(filed, login)
    assert CREDENTIAL.encode() not in filed
    canonical = json.loads(filed)  # the rest of the canonical submission is as it was taken in
    assert canonical["fields"] == {"nachname": "Kleinschmidt", "vorgang_id": "FC-RED-1", "vorname": "Johanna"}
    pdf = hashlib.sha256(b"%PDF-1.4 Ausweis").hexdigest()
    assert {
        "field": "ausweis",
        "name": "Ausweis.pdf",
        "media_type": "application/pdf",
        "size": 16,
        "sha256": pdf,
    } in canonical["attachments"]
    app = await world.running.journal.get_application(app_id)
    assert app.original.redacted and app.original.sha256 == hashlib.sha256(filed).hexdigest()
    (redacted,) = [e for e in await world.running.journal.events(app_id) if e.type == "original.redacted"]
    assert redacted.data == {"credential_fields": [CREDENTIAL]}
    # the unredacted original is referenced by nothing: the orphan sweep removes it, the rest stays
    left = await orphans_swept_and_left(world)
    assert filed in left and b"%PDF-1.4 Ausweis" in left
    for content in left:
        assert_no_saml(content, login)


async def test_an_urlencoded_original_loses_only_the_saml_parameter(world: World) -> None:
    login = world.idp.response("U05", means="Smart-eID")
    rest = [
        b"vorgang_id=FC-RED-2",
        b"vorname=J%C3%BCrgen",
        b"nachname=M%C3%BCller+Lang",
        b"anliegen=Jagdschein",
    ]
    body = b"&".join([*rest[:2], f"{CREDENTIAL}={quote_plus(login)}".encode(), *rest[2:]])
    status, answer = await world.running.post(
        "/intake/formcycle/jagdschein",
        data=body,
        headers={"X-Aktenhub-Token": TOKEN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 202, answer
    app_id = answer["application_id"]
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    assert await world.filed_original() == b"&".join(rest)  # every other byte as sent


async def test_a_login_forwarded_in_a_header_is_in_no_original(world: World) -> None:
    login = world.idp.response("U05", means="Smart-eID")
    form = aiohttp.FormData({"vorgang_id": "FC-RED-3", "vorname": "Jochen", "nachname": "Bittel"})
    form.add_field("ausweis", b"%PDF-1.4 Ausweis", filename="Ausweis.pdf", content_type="application/pdf")
    status, body = await world.running.post(
        "/intake/formcycle/jagdschein",
        data=form,
        headers={"X-Aktenhub-Token": TOKEN, "X-BundID-SAML-Response": login},
    )
    assert status == 202, body
    app_id = body["application_id"]
    assert await world.running.wait_for_state(app_id) == ApplicationState.COMPLETED
    filed = await world.filed_original()
    assert_no_saml(filed, login)
    assert json.loads(filed)["fields"] == {
        "nachname": "Bittel",
        "vorgang_id": "FC-RED-3",
        "vorname": "Jochen",
    }
    app = await world.running.journal.get_application(app_id)
    assert CREDENTIAL not in app.form and not app.original.redacted  # it never held the login
    for content in await orphans_swept_and_left(world):
        assert_no_saml(content, login)


async def test_a_rejected_login_leaves_no_saml_response_anywhere(world: World) -> None:
    forged = world.idp.response("U03", means="eID", fault="altered")
    too_low = world.idp.response("U02", means="Benutzername")
    forged_id = await world.submit("FC-RED-4", forged, vorname="Wilhelm", nachname="Weber")
    low_id = await world.submit("FC-RED-5", too_low, vorname="Manfred", nachname="Schmidt")
    for app_id in (forged_id, low_id):
        assert await world.running.wait_for_state(app_id) == ApplicationState.REJECTED
        app = await world.running.journal.get_application(app_id)
        assert CREDENTIAL not in app.form and app.original.redacted

    async def answered() -> bool:
        return bool((await world.mailbox(world.idp.mailbox("U02")))["messages"])

    await world.running.wait_for(answered, what="the rejection in the mailbox")
    box = await world.mailbox(world.idp.mailbox("U02"))
    assert_no_saml(json.dumps(box).encode(), too_low)
    assert await world.enaio_objects(type="Personenakte") == []
    for content in await orphans_swept_and_left(world):
        assert_no_saml(content, forged)
        assert_no_saml(content, too_low)
