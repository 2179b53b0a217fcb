"""BundID identity in a running hub: one replay store per IdP, credentials never reach a sink, per-attribute
trust levels, an expired IdP certificate reported (not fatal), rejections counted by reason."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hub_bundid.simulator import IdpSimulator, generate_key_pair

from hub import CITIZEN_TEXTS_MAX, ApplicationState, RejectionCode, citizen_text
from hub.config import IdentityRequirement
from hub.journal import ApplicationPatch
from hub.models import Application, OriginalSubmission
from hub.testing.fakes import RecordingSink

FIELD = "bundid_saml_response"


@pytest.fixture
def idp(schema_dir: Path) -> IdpSimulator:
    return IdpSimulator(schema_dir)


def bundid(idp: IdpSimulator, metadata: Path, **settings: Any) -> dict[str, Any]:
    return {
        "type": "bundid",
        "idp_metadata": str(metadata),
        "sp_entity_id": idp.sp_entity_id,
        "acs_url": idp.acs_url,
        **settings,
    }


def route(name: str, service: str, via: str, to: str, **identity: Any) -> dict[str, Any]:
    return {
        "name": name,
        "from": "formserver",
        "when": {"service": service},
        "identity": {"via": via, **identity},
        "to": [to],
    }


async def submit(running: Any, service: str, ident: str, response: str) -> str:
    body = {"id": ident, "form": {FIELD: response, "anliegen": "Waffenschein"}}
    status, answer = await running.post(f"/intake/formserver/{service}", json=body)
    assert status == 202, answer
    return str(answer["application_id"])


async def rejection_code(running: Any, app_id: str) -> str:
    (rejected,) = [e for e in await running.journal.events(app_id) if e.type == "application.rejected"]
    return str(rejected.data["code"])


async def test_an_assertion_accepted_by_one_connector_is_refused_by_another_trusting_the_same_idp(
    hub_factory: Any, idp: IdpSimulator, tmp_path: Path
) -> None:
    metadata = idp.write_metadata(tmp_path / "idp.xml")
    connectors = {
        "formserver": {"type": "test-json"},
        "bundid-a": bundid(idp, metadata),
        "bundid-b": bundid(idp, metadata),
        "rec": {"type": "test-recording"},
    }
    routes = [route("a", "waffenschein", "bundid-a", "rec"), route("b", "jagdschein", "bundid-b", "rec")]
    running = await hub_factory(connectors, routes)
    login = idp.response("U06", means="eID")

    first = await submit(running, "waffenschein", "first", login)
    assert await running.wait_for_state(first) == ApplicationState.COMPLETED
    second = await submit(running, "jagdschein", "second", login)
    assert await running.wait_for_state(second) == ApplicationState.REJECTED
    assert await rejection_code(running, second) == "replayed"
    sink = running.hub.connectors["rec"]
    assert isinstance(sink, RecordingSink) and list(sink.delivered) == [first]


async def test_the_saml_response_never_reaches_a_sink(
    hub_factory: Any, idp: IdpSimulator, tmp_path: Path
) -> None:
    metadata = idp.write_metadata(tmp_path / "idp.xml")
    drop = tmp_path / "import"
    connectors = {
        "formserver": {"type": "test-json"},
        "bundid": bundid(idp, metadata),
        "drop": {"type": "filedrop", "path": str(drop)},
    }
    running = await hub_factory(connectors, [route("a", "waffenschein", "bundid", "drop")])
    login = idp.response("U06", means="eID")
    signature_value = re.search(rb"SignatureValue>([^<]{20})", base64.b64decode(login))
    assert signature_value is not None

    app_id = await submit(running, "waffenschein", "one", login)
    assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED
    (written,) = list(drop.glob("*/application.json"))
    text = written.read_text(encoding="utf-8")
    assert FIELD not in text and login[:60] not in text
    assert signature_value.group(1).decode() not in text
    document = json.loads(text)
    # what the sink needs is there: the verified identity and the applicant from it
    assert document["application"]["identity"]["verified"] is True
    assert document["application"]["applicant"]["family_name"] == idp.persons["U06"]["surname"]
    assert document["application"]["form"] == {"anliegen": "Waffenschein"}
    stored = await running.journal.get_application(app_id)
    assert FIELD not in stored.form

    # the original filed beside it lost the login and kept everything else
    (original,) = [p for p in written.parent.iterdir() if p.name.startswith("antrag-original")]
    assert json.loads(original.read_bytes()) == {"id": "one", "form": {"anliegen": "Waffenschein"}}

    # a rejected one keeps no credential either, in its form or its original
    forged = await submit(running, "waffenschein", "two", idp.response("U06", fault="altered"))
    assert await running.wait_for_state(forged) == ApplicationState.REJECTED
    rejected = await running.journal.get_application(forged)
    assert FIELD not in rejected.form and rejected.original.redacted
    assert FIELD.encode() not in await running.hub.blobs.read_bytes(rejected.original.blob)


async def test_an_original_its_source_cannot_redact_is_never_filed(
    hub_factory: Any, idp: IdpSimulator, tmp_path: Path
) -> None:
    metadata = idp.write_metadata(tmp_path / "idp.xml")
    drop = tmp_path / "import"
    connectors = {
        "formserver": {"type": "test-json", "redacts": False},
        "bundid": bundid(idp, metadata),
        "drop": {"type": "filedrop", "path": str(drop)},
    }
    running = await hub_factory(connectors, [route("a", "waffenschein", "bundid", "drop")])
    app_id = await submit(running, "waffenschein", "one", idp.response("U06", means="eID"))

    # without a mapping file the record files the original: refused, visibly, with the reason
    assert await running.wait_for_state(app_id) == ApplicationState.DEAD
    summary = await running.journal.get_summary(app_id)
    assert summary.error is not None
    assert "still holds the credential field(s) bundid_saml_response" in summary.error
    assert not list(drop.rglob("*"))  # nothing filed
    app = await running.journal.get_application(app_id)
    assert app.identity.verified and FIELD not in app.form
    assert app.original.unredacted == [FIELD] and not app.original.redacted
    (marked,) = [e for e in await running.journal.events(app_id) if e.type == "original.unredacted"]
    assert marked.data == {"credential_fields": [FIELD]}


async def test_attribute_trust_levels_per_route(hub_factory: Any, idp: IdpSimulator, tmp_path: Path) -> None:
    metadata = idp.write_metadata(tmp_path / "idp.xml")
    connectors = {
        "formserver": {"type": "test-json"},
        "bundid": bundid(idp, metadata),
        "rec": {"type": "test-recording"},
    }
    routes = [
        route(
            "birth-date-hoch",
            "waffenschein",
            "bundid",
            "rec",
            min_level="substantiell",
            attribute_levels={"birth_date": "hoch"},
        )
    ]
    running = await hub_factory(connectors, routes)
    # Elster: level 3, the birth date carries akdb:TrustLevel SUBSTANTIELL
    elster = await submit(running, "waffenschein", "elster", idp.response("U06", means="Elster"))
    assert await running.wait_for_state(elster) == ApplicationState.REJECTED
    assert await rejection_code(running, elster) == "attribute-level-too-low"
    summary = await running.journal.get_summary(elster)
    assert (
        summary.error
        == "Angabe birth_date nicht ausreichend bestätigt: substantiell erreicht, hoch erforderlich"
    )
    # eID: HOCH
    eid = await submit(running, "waffenschein", "eid", idp.response("U06", means="eID"))
    assert await running.wait_for_state(eid) == ApplicationState.COMPLETED


def test_attribute_levels_name_known_attributes() -> None:
    assert IdentityRequirement(via="bundid", attribute_levels={"birth_date": "hoch"}).attribute_levels
    with pytest.raises(ValueError, match="unknown attribute geburtsdatum"):
        IdentityRequirement(via="bundid", attribute_levels={"geburtsdatum": "hoch"})


async def test_expired_idp_certificate_still_verifies_and_is_reported(
    hub_factory: Any, schema_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = generate_key_pair("bundid-expired", days=5, start=datetime.now(UTC) - timedelta(days=10))
    idp = IdpSimulator(schema_dir, keys=keys)
    metadata = idp.write_metadata(tmp_path / "idp.xml")
    connectors = {
        "formserver": {"type": "test-json"},
        "bundid": bundid(idp, metadata),
        "rec": {"type": "test-recording"},
    }
    caplog.set_level(logging.WARNING, logger="hub")
    running = await hub_factory(connectors, [route("a", "waffenschein", "bundid", "rec")])
    for n in range(2):
        app_id = await submit(running, "waffenschein", f"login-{n}", idp.response("U06", means="eID"))
        assert await running.wait_for_state(app_id) == ApplicationState.COMPLETED

    def expired_warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "certificate has expired connector=bundid" in r.getMessage()]

    await running.wait_for(expired_warnings, what="the daily certificate warning (first at start)")
    warnings = expired_warnings()
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING  # once a day, not per login
    assert "purpose=idp-signing" in warnings[0].getMessage()
    status, text = await running.get("/metrics")
    assert status == 200
    match = re.search(
        r'aktenhub_certificate_expiry_seconds\{connector="bundid",fingerprint="[0-9a-f]{16}",'
        r'purpose="idp-signing",subject="[^"]+"\} (\S+)',
        text,
    )
    assert match is not None, text
    assert -5.1 < float(match.group(1)) / 86400 < -4.9  # expired five days ago
    check = await running.hub.connectors["bundid"].check()
    assert check.ok and "expired on" in check.message


async def test_identity_rejections_are_counted_by_reason(
    hub_factory: Any, idp: IdpSimulator, tmp_path: Path
) -> None:
    metadata = idp.write_metadata(tmp_path / "idp.xml")
    connectors = {
        "formserver": {"type": "test-json"},
        "bundid": bundid(idp, metadata),
        "rec": {"type": "test-recording"},
    }
    running = await hub_factory(
        connectors, [route("a", "waffenschein", "bundid", "rec", min_level="substantiell")]
    )
    cases = [("altered", "bad-signature"), ("unsigned", "bad-signature"), ("level-too-low", "level-too-low")]
    for n, (fault, _) in enumerate(cases):
        app_id = await submit(running, "waffenschein", f"bad-{n}", idp.response("U01", fault=fault))
        assert await running.wait_for_state(app_id) == ApplicationState.REJECTED
    status, text = await running.get("/metrics")
    assert status == 200
    assert 'aktenhub_identity_rejections_total{provider="bundid",reason="bad-signature"} 2.0' in text
    assert 'aktenhub_identity_rejections_total{provider="bundid",reason="level-too-low"} 1.0' in text


def test_every_identity_rejection_code_has_a_short_german_text() -> None:
    for code in RejectionCode:
        text = citizen_text(code)
        assert len(text) <= CITIZEN_TEXTS_MAX, code
        assert text != citizen_text(None) and text.endswith(".")
    assert citizen_text("xbau-invalid", "Nachricht ungültig") == "Nachricht ungültig"


def test_a_redacted_original_replaces_only_the_original_it_was_made_from() -> None:
    def original(content: bytes, **marks: Any) -> OriginalSubmission:
        digest = hashlib.sha256(content).hexdigest()
        return OriginalSubmission(
            media_type="application/json", blob=f"sha256:{digest}", size=len(content), sha256=digest, **marks
        )

    received, redacted = original(b'{"saml":"x","a":1}'), original(b'{"a":1}', redacted=True)
    patch = ApplicationPatch(remove_fields=("saml",), original=redacted, replaces_original=received.sha256)
    app = Application(source="s", external_id="e", service="x", form={"saml": "x", "a": 1}, original=received)
    assert patch.apply(app).original == redacted
    # a revision taken in while the step ran brought its own original: the step's copy does not replace it
    revision = app.model_copy(update={"original": original(b'{"saml":"y","a":2}')})
    assert patch.apply(revision).original == revision.original
