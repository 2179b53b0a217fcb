"""The packaged message templates with the example mappings: each sample becomes a message that meets the
XAusländer schema (here the TEST FIXTURE), with the values the mapping gives; and the simulated ADVIS's
answers meet it as the connector reads them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from advis_fixture import NS
from hub_advis.outbound import MESSAGES, preset
from hub_advis.schema import SchemaSettings, checked, load_schemas

from hub import utcnow
from hub.mapping import load_mapping, sample_application

MAPPINGS = Path(__file__).parents[3] / "config" / "mappings"


@pytest.mark.parametrize("name", sorted(MESSAGES))
async def test_the_example_mapping_makes_a_valid_message(name: str, advis_schemas: Path) -> None:
    mapping = load_mapping(MAPPINGS / f"{name}.yaml", {})
    app = sample_application(yaml.safe_load((MAPPINGS / "samples" / f"{name}.yaml").read_text("utf-8")))

    async def first(pattern: str, period: str) -> int:
        return 1

    record = mapping.render(app, await mapping.draw_file_number(app, first), rendition=None)
    payload = record.payloads["advis"]
    assert payload["message"] == name
    process_id = str(uuid.uuid4())
    content = preset(name).render(
        application=app,
        record=record,
        fields=payload["fields"],
        delivered_at=utcnow(),
        target="advis",
        process_id=process_id,
        namespace=NS,
    )
    schemas = load_schemas(advis_schemas, SchemaSettings(), purpose="test")
    message = checked(schemas, content, limit=1024 * 1024)
    assert message.tag == f"{{{NS}}}{MESSAGES[name]}"
    assert message.findtext("nachrichtenkopf/nachrichtUUID") == process_id
    assert message.findtext("antragsdaten/antragsnummer") == app.external_id
    person = (
        message.find("verpflichtungsgeber")
        if name == "verpflichtungserklaerung"
        else message.find("antragsteller")
    )
    assert person is not None
    assert person.findtext("familienname") == app.applicant.family_name
    assert person.findtext("geburtsdatum") == str(app.applicant.birth_date)
