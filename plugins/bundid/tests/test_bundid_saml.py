"""The identity provider in SAML mode, against responses the IdP simulator issues."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundid_helpers import FIELD, application, make_identity, saml_settings, with_response
from hub_bundid.attributes import BY_KEY, SAML_ASSERTION
from hub_bundid.config import BundIdConfig
from hub_bundid.saml import NS
from hub_bundid.simulator import Fault, IdpSimulator, generate_key_pair
from lxml import etree
from pydantic import ValidationError

from hub import Address, ConnectorContext, Party, Rejection, TrustLevel


async def rejected(verification: Awaitable[Any]) -> Rejection:
    """The Rejection the awaited verification raises."""
    with pytest.raises(Rejection) as caught:
        await verification
    return caught.value


async def test_valid_response_fills_applicant_and_identity(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    app = with_response(idp.response("U06", means="Elster"))
    app.applicant = Party(given_name="Tippfehler", phone="0911 12345")

    verification = await identity.verify(app, TrustLevel.SUBSTANTIELL)

    applicant = verification.applicant
    assert applicant is not None
    assert (applicant.given_name, applicant.family_name) == ("Martina", "Humpenöder")
    assert applicant.birth_date == "1985-07-13"
    assert applicant.birth_name == "Meissner"
    assert applicant.birth_place == "Nürnberg"
    assert applicant.address == Address(
        street="Oedenreuther Hauptstraße 39", postal_code="90574", city="Roßtal", country="DE"
    )
    assert applicant.email == "m.humpenoeder@example.com"
    assert applicant.bpk2 == "BUNDIDSIM-U06"
    assert applicant.mailbox == idp.mailbox("U06")
    assert applicant.phone == "0911 12345"  # what the assertion does not say stays as the form had it

    who = verification.identity
    assert who.verified is True
    assert (who.provider, who.asserted_by) == ("bundid", "idp")
    assert who.level is TrustLevel.SUBSTANTIELL
    assert who.means == "Elster"
    assert who.subject == "BUNDIDSIM-U06"
    assert who.assertion_id == idp.last_assertion_id
    assert who.verified_at is not None
    assert who.attribute_levels["family_name"] is TrustLevel.SUBSTANTIELL
    assert who.attribute_levels["email"] is TrustLevel.NORMAL  # as field_definitions.yml says
    assert who.attribute_levels["gender"] is TrustLevel.UNTERGEORDNET


async def test_eid_login_is_level_hoch_and_person_without_address(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    verification = await identity.verify(with_response(idp.response("U11", means="eID")), None)
    assert verification.identity.level is TrustLevel.HOCH
    assert verification.applicant is not None
    assert verification.applicant.family_name == "Karlsson"
    assert verification.applicant.address is None


# a response each failure case of the simulator produces, and the code it must be refused with
FAULT_CODES = [
    (Fault.UNSIGNED, "bad-signature"),
    (Fault.OTHER_KEY, "bad-signature"),
    (Fault.ALTERED, "bad-signature"),
    (Fault.WRAPPED, "bad-signature"),
    (Fault.EXPIRED, "expired"),
    (Fault.NOT_YET_VALID, "not-yet-valid"),
    (Fault.WRONG_AUDIENCE, "wrong-audience"),
    (Fault.WRONG_DESTINATION, "wrong-destination"),
    (Fault.WRONG_ISSUER, "wrong-issuer"),
    (Fault.STATUS_ERROR, "status-not-success"),
    (Fault.DOCTYPE, "malformed"),
    (Fault.MULTIVALUED, "attribute-multivalued"),
    (Fault.DUPLICATED_ATTRIBUTE, "attribute-multivalued"),
]


@pytest.mark.parametrize(("fault", "code"), FAULT_CODES, ids=[f.value for f, _ in FAULT_CODES])
async def test_failure_cases_are_rejected_with_their_code(
    fault: Fault, code: str, idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    rejection = await rejected(identity.verify(with_response(idp.response("U01", fault=fault)), None))
    assert rejection.code == code
    assert "BundID" in rejection.reason
    # the reason goes to the applicant: it names nothing of our configuration
    for secret in (idp.sp_entity_id, idp.acs_url, idp.entity_id, "formulare.kreis.example", "BEGIN"):
        assert secret not in rejection.reason


async def test_wrapped_response_would_fool_a_naive_reader(idp: IdpSimulator) -> None:
    """The forged assertion comes first; the genuine signed one (other name) follows it."""
    document = base64.b64decode(idp.response("U01", fault=Fault.WRAPPED))
    assert document.count(b"<saml:Assertion ") == 2
    assert document.index(b"Mallory") < document.index(b"<ds:Signature ")
    assert document.count(b"<ds:Signature ") == 1


async def test_replay_for_another_application_is_rejected(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    settings = saml_settings(idp, metadata)
    identity = make_identity(connector_context, settings)
    response = idp.response("U02", level=3)
    first = with_response(response, app_id="app_first")
    await identity.verify(first, None)

    # the same application again (a retried step after a crash): allowed, also by a new instance
    again = await make_identity(connector_context, settings).verify(first, None)
    assert again.identity.assertion_id == idp.last_assertion_id

    second = with_response(idp.response(fault=Fault.REPLAYED), app_id="app_second")
    rejection = await rejected(make_identity(connector_context, settings).verify(second, None))
    assert rejection.code == "replayed"
    assert idp.sp_entity_id not in rejection.reason


async def test_validity_is_judged_when_the_application_arrived(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    """A backlog or a retry hours later must not expire an application that arrived in time."""
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    issued = datetime.now(UTC) - timedelta(hours=3)
    response = idp.response("U03", now=issued)
    late_run = with_response(response, received_at=issued + timedelta(minutes=1))
    assert (await identity.verify(late_run, None)).applicant is not None

    # later than the validity and the default forwarding grace (an hour)
    arrived_late = with_response(idp.response("U03", now=issued), received_at=issued + timedelta(hours=2))
    assert (await rejected(identity.verify(arrived_late, None))).code == "expired"


async def test_clock_skew_and_forwarding_grace(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    now = datetime.now(UTC)
    no_grace = {"forwarding_grace_seconds": 0}
    strict = make_identity(connector_context, saml_settings(idp, metadata, clock_skew_seconds=0, **no_grace))
    tolerant = make_identity(
        connector_context, saml_settings(idp, metadata, clock_skew_seconds=120, **no_grace)
    )
    ahead = idp.response("U04", now=now + timedelta(seconds=60))  # the IdP's clock runs a minute ahead
    assert (await rejected(strict.verify(with_response(ahead, app_id="app_a"), None))).code == (
        "not-yet-valid"
    )
    await tolerant.verify(with_response(ahead, app_id="app_a"), None)

    # the form was submitted 20 minutes after the login: only accepted with a forwarding grace
    login = idp.response("U04", now=now - timedelta(minutes=20))
    assert (await rejected(tolerant.verify(with_response(login, app_id="app_b"), None))).code == "expired"
    # the default grace (an hour) suits a citizen who logs in first and then fills in the form
    graceful = make_identity(connector_context, saml_settings(idp, metadata))
    await graceful.verify(with_response(login, app_id="app_b"), None)


async def test_level_is_capped_by_the_means_of_proof(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    claimed = idp.response("U05", level=4, means="Benutzername")
    verification = await identity.verify(with_response(claimed), None)
    assert verification.identity.level is TrustLevel.UNTERGEORDNET


async def test_level_1_login_is_reported_as_untergeordnet(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    verification = await identity.verify(with_response(idp.response(fault=Fault.LEVEL_TOO_LOW)), None)
    assert verification.identity.level is TrustLevel.UNTERGEORDNET
    assert verification.identity.means == "Benutzername"


async def test_response_signature_required_on_request(
    idp: IdpSimulator, schema_dir: Path, tmp_path: Path, connector_context: ConnectorContext
) -> None:
    settings = saml_settings(idp, idp.write_metadata(tmp_path / "md.xml"), require_response_signature=True)
    identity = make_identity(connector_context, settings)
    rejection = await rejected(identity.verify(with_response(idp.response("U01")), None))
    assert rejection.code == "bad-signature"

    signing_both = IdpSimulator(schema_dir, keys=idp.keys, sign_response=True)
    verification = await identity.verify(with_response(signing_both.response("U07")), None)
    assert verification.applicant is not None
    assert verification.applicant.family_name == "Mauser"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "missing"),
        ("", "missing"),
        ("not base64!", "malformed"),
        (base64.b64encode(b"<nope").decode(), "malformed"),
        (base64.b64encode(b"<x/>").decode(), "malformed"),
        (base64.b64encode(b"<a>" + b"x" * 600_000 + b"</a>").decode(), "malformed"),
        (["one", "two"], "malformed"),
    ],
    ids=["absent", "empty", "not-base64", "not-xml", "not-saml", "too-large", "repeated"],
)
async def test_unusable_submissions_are_rejected(
    value: object, code: str, idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    form = {} if value is None else {FIELD: value}
    assert (await rejected(identity.verify(application(form), None))).code == code


async def test_doctype_with_external_entity_is_never_resolved(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("geheim")
    document = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" Version="2.0">&x;'
        "</samlp:Response>"
    )
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    app = application({FIELD: base64.b64encode(document.encode()).decode()})
    rejection = await rejected(identity.verify(app, None))
    assert rejection.code == "malformed"
    assert "geheim" not in rejection.reason


async def test_response_field_is_configurable(
    idp: IdpSimulator, metadata: Path, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata, response_field="saml"))
    verification = await identity.verify(application({"saml": [idp.response("U01")]}), None)
    assert verification.applicant is not None
    assert verification.applicant.given_name == "Maria"


async def test_check_and_diagnostics(
    idp: IdpSimulator,
    metadata: Path,
    connector_context: ConnectorContext,
    tmp_path: Path,
    schema_dir: Path,
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    result = await identity.check()
    assert result.ok, result.message
    assert result.details["idp_entity_id"] == idp.entity_id
    diagnostics = str(await identity.diagnostics())
    assert idp.entity_id in diagnostics
    certificate_text = base64.b64encode(idp.certificate.tbs_certificate_bytes).decode()[:40]
    assert "PRIVATE" not in diagnostics and certificate_text not in diagnostics

    missing = make_identity(connector_context, saml_settings(idp, tmp_path / "nowhere.xml"))
    assert not (await missing.check()).ok

    expired_keys = generate_key_pair("expired", days=5, start=datetime.now(UTC) - timedelta(days=10))
    stale = IdpSimulator(schema_dir, keys=expired_keys)
    stale_md = stale.write_metadata(tmp_path / "stale.xml")
    outdated = await make_identity(connector_context, saml_settings(idp, stale_md)).check()
    # still usable (the metadata pins the key), but reported
    assert outdated.ok
    assert "WARNING" in outdated.message and "expired on" in outdated.message


def test_saml_mode_needs_its_settings() -> None:
    with pytest.raises(ValidationError, match="idp_metadata, sp_entity_id, acs_url"):
        BundIdConfig.model_validate({"type": "bundid", "mode": "saml"})


def test_attribute_oids_agree_with_the_reference_table(schema_dir: Path) -> None:
    table = yaml.safe_load((schema_dir / "bundid" / "field_definitions.yml").read_text(encoding="utf-8"))
    reference = {row["name"]: row["attributes"]["name"].replace(" ", "") for row in table["fields"]}
    ours = {
        "givenname": "given_name",
        "surname": "family_name",
        "birthdate": "birth_date",
        "birthName": "birth_name",
        "placeOfBirth": "birth_place",
        "postalAddress": "address.street",
        "postalCode": "address.postal_code",
        "localityName": "address.city",
        "country": "address.country",
        "mail": "email",
        "bpk2": "bpk2",
        "gender": "gender",
        "assertionProvedBy": "means",
    }
    for name, key in ours.items():
        assert BY_KEY[key].oid == reference[name], name


def _drop(path: str) -> Callable[[etree._Element], None]:
    def mutate(assertion: etree._Element) -> None:
        for element in assertion.findall(path, NS):
            parent = element.getparent()
            assert parent is not None
            parent.remove(element)

    return mutate


def _set(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
    def mutate(assertion: etree._Element) -> None:
        for element in assertion.findall(path, NS):
            element.set(name, value)

    return mutate


def _unknown_condition(assertion: etree._Element) -> None:
    conditions = assertion.find("saml:Conditions", NS)
    assert conditions is not None
    etree.SubElement(conditions, f"{{{SAML_ASSERTION}}}Condition")


# what a correctly signing IdP (or a toolchain holding its key) may still get wrong, and the code
SIGNED_BUT_WRONG = [
    ("no-authn-statement", _drop("saml:AuthnStatement"), "malformed"),
    ("session-ended", _set("saml:AuthnStatement", "SessionNotOnOrAfter", "2020-01-01T00:00:00Z"), "expired"),
    ("unknown-condition", _unknown_condition, "malformed"),
    (
        "issuer-format",
        _set("saml:Issuer", "Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
        "wrong-issuer",
    ),
    (
        "date-only-time",
        _set(
            "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "NotOnOrAfter", "2099-01-01"
        ),
        "malformed",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "code"), [(m, c) for _, m, c in SIGNED_BUT_WRONG], ids=[n for n, _, _ in SIGNED_BUT_WRONG]
)
async def test_signed_but_unacceptable_assertions_are_rejected(
    mutate: Callable[[etree._Element], None],
    code: str,
    idp: IdpSimulator,
    metadata: Path,
    connector_context: ConnectorContext,
) -> None:
    identity = make_identity(connector_context, saml_settings(idp, metadata))
    # the unchanged response is accepted: the mutation alone makes the difference
    await identity.verify(with_response(idp.custom_response(lambda _: None), app_id="app_ok"), None)
    response = idp.custom_response(mutate)
    assert (await rejected(identity.verify(with_response(response), None))).code == code


async def test_expired_idp_certificate_still_verifies(
    idp: IdpSimulator, connector_context: ConnectorContext, tmp_path: Path, schema_dir: Path
) -> None:
    """SAML metadata practice: the metadata pins the key; the certificate's dates do not void it."""
    expired = generate_key_pair("expired", days=5, start=datetime.now(UTC) - timedelta(days=10))
    stale = IdpSimulator(schema_dir, keys=expired)
    identity = make_identity(
        connector_context, saml_settings(stale, stale.write_metadata(tmp_path / "s.xml"))
    )
    verification = await identity.verify(with_response(stale.response("U06", means="eID")), None)
    assert verification.identity.verified
    # still pinned: another key with an equally expired certificate is refused
    other = IdpSimulator(
        schema_dir, keys=generate_key_pair("other", days=5, start=expired.certificate.not_valid_before_utc)
    )
    assert (
        await rejected(identity.verify(with_response(other.response("U06")), None))
    ).code == "bad-signature"
