"""The identity provider in form-fields mode: the form server verified the login, the hub maps fields."""

from __future__ import annotations

from typing import Any

import pytest
from bundid_helpers import application, make_identity

from hub import Address, ConnectorContext, Rejection, TrustLevel

SETTINGS: dict[str, Any] = {
    "type": "bundid",
    "mode": "form-fields",
    "fields": {
        "level": "bundid_niveau",
        "means": "bundid_nachweis",
        "given_name": "vorname",
        "family_name": "nachname",
        "birth_date": "geburtsdatum",
        "street": "strasse",
        "postal_code": "plz",
        "city": "ort",
        "bpk2": "bundid_bpk2",
        "mailbox": "bundid_postkorb",
    },
}


def form(**overrides: Any) -> dict[str, Any]:
    values = {
        "bundid_niveau": "STORK-QAA-Level-3",
        "bundid_nachweis": "Elster",
        "vorname": "Jürgen",
        "nachname": "Groß",
        "geburtsdatum": "1970-01-02",
        "strasse": "Kaiserstraße 1",
        "plz": "53721",
        "ort": "Siegburg",
        "bundid_bpk2": "BPK-123",
        "bundid_postkorb": "c0ffee00-0000-4000-8000-000000000001",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


async def test_identity_taken_from_form_fields(connector_context: ConnectorContext) -> None:
    identity = make_identity(connector_context, SETTINGS)
    verification = await identity.verify(application(form()), TrustLevel.SUBSTANTIELL)

    who = verification.identity
    assert who.verified is False  # the form server verified it, not the hub
    assert (who.provider, who.asserted_by) == ("bundid", "form-server")
    assert who.level is TrustLevel.SUBSTANTIELL
    assert who.means == "Elster"
    assert who.subject == "BPK-123"
    applicant = verification.applicant
    assert applicant is not None
    assert (applicant.given_name, applicant.family_name) == ("Jürgen", "Groß")
    assert applicant.address == Address(street="Kaiserstraße 1", postal_code="53721", city="Siegburg")
    assert applicant.mailbox == "c0ffee00-0000-4000-8000-000000000001"
    assert applicant.bpk2 == "BPK-123"


@pytest.mark.parametrize(
    ("stated", "level"),
    [
        ("STORK-QAA-Level-4", TrustLevel.HOCH),
        ("3", TrustLevel.SUBSTANTIELL),
        ("substantiell", TrustLevel.SUBSTANTIELL),
        ("HOCH", TrustLevel.HOCH),
        ("Level 2", TrustLevel.NORMAL),
        (["1"], TrustLevel.UNTERGEORDNET),
        (4, TrustLevel.HOCH),
    ],
)
async def test_levels_as_form_servers_state_them(
    stated: Any, level: TrustLevel, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, SETTINGS)
    verification = await identity.verify(application(form(bundid_niveau=stated)), None)
    assert verification.identity.level is level


@pytest.mark.parametrize(("stated", "code"), [(None, "missing"), ("", "missing"), ("sehr hoch", "malformed")])
async def test_missing_or_unknown_level_is_rejected(
    stated: Any, code: str, connector_context: ConnectorContext
) -> None:
    identity = make_identity(connector_context, SETTINGS)
    with pytest.raises(Rejection) as caught:
        await identity.verify(application(form(bundid_niveau=stated)), None)
    assert caught.value.code == code
    if code == "missing":
        assert caught.value.reason == "Es ist kein Vertrauensniveau der Anmeldung angegeben."


async def test_default_mapping_needs_only_the_level(connector_context: ConnectorContext) -> None:
    identity = make_identity(connector_context, {"type": "bundid", "mode": "form-fields"})
    verification = await identity.verify(application({"bundid_level": "2", "vorname": "X"}), None)
    assert verification.identity.level is TrustLevel.NORMAL
    assert verification.applicant is not None
    assert verification.applicant.given_name is None
