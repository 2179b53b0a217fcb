"""The XAusländer validation policy: the XSDs from the schema directory, refusal without them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from advis_fixture import NS, without_xauslaender
from hub_advis.schema import InvalidMessage, SchemaSettings, XAuslaenderSchemaMissing, checked, load_schemas

from hub.schemas import schema_directory

ANSWER = f"""<x:advis.rueckmeldung xmlns:x="{NS}">
  <nachrichtenkopf>
    <nachrichtUUID>6f1c1d2e-3a4b-5c6d-8e9f-0a1b2c3d4e5f</nachrichtUUID>
    <nachrichtentyp listURI="urn:test:nachrichtentyp" listVersionID="1">
      <code>advis.rueckmeldung</code></nachrichtentyp>
    <erstellungszeitpunkt>2026-12-06T12:00:00</erstellungszeitpunkt>
    <absender><kennung>vbe:advis</kennung></absender>
    <empfaenger><kennung>vbe:hub</kennung></empfaenger>
  </nachrichtenkopf>
  <bezug><nachrichtUUID>0b6f0c8e-1d2a-5b3c-9d4e-5f6a7b8c9d0e</nachrichtUUID></bezug>
  <aktenzeichen>{{case}}</aktenzeichen>
  <status listURI="urn:test:status" listVersionID="1"><code>eingegangen</code></status>
</x:advis.rueckmeldung>"""


def test_a_valid_message_passes_and_an_invalid_one_names_the_rule_not_the_value(advis_schemas: Path) -> None:
    schemas = load_schemas(advis_schemas, SchemaSettings(), purpose="test")
    assert schemas is not None and schemas.namespaces == [NS]
    document = checked(schemas, ANSWER.replace("{case}", "ABH-1").encode(), limit=10_000)
    assert document.tag == f"{{{NS}}}advis.rueckmeldung"
    with pytest.raises(InvalidMessage) as refused:
        checked(schemas, ANSWER.replace("{case}", "   ").encode(), limit=10_000)
    assert "aktenzeichen" in str(refused.value) and "   " not in str(refused.value).split(":", 1)[1]


def test_without_the_xsds_the_policy_refuses_and_names_the_directory(tmp_path: Path) -> None:
    reference = schema_directory()
    assert reference is not None
    schemas = without_xauslaender(reference, tmp_path / "schemas")
    with pytest.raises(XAuslaenderSchemaMissing) as refused:
        load_schemas(schemas, SchemaSettings(), purpose="connector advis")
    assert str(schemas / "xauslaender" / "1.21.1") in str(refused.value)
    assert "validate: false" in str(refused.value)


def test_switched_off_it_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert load_schemas(tmp_path, SchemaSettings(validate=False), purpose="connector advis") is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "validate: false" in caplog.records[0].getMessage()
