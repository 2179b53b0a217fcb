"""The enaio plugin's mapping filter `enaio_file_name`, as a shipped mapping uses it."""

from __future__ import annotations

from pathlib import Path

import yaml

from hub.mapping import load_mapping, sample_application
from hub.plugins import load_plugins

MAPPINGS = Path(__file__).parents[3] / "config" / "mappings"


def test_the_bauantrag_mapping_names_the_rendition_by_its_aktenzeichen_safely() -> None:
    filters = load_plugins().mapping_filters()
    assert "enaio_file_name" in filters
    mapping = load_mapping(MAPPINGS / "bauantrag.yaml", filters)
    app = sample_application(yaml.safe_load((MAPPINGS / "samples" / "bauantrag.yaml").read_text()))
    record = mapping.render(app, "63/BA-2027-00001", rendition=None)
    assert record.documents[0].name == "Bauantrag 63-BA-2027-00001.pdf"


def test_file_names_enaio_cannot_store_are_made_storable() -> None:
    enaio_file_name = load_plugins().mapping_filters()["enaio_file_name"]
    assert enaio_file_name('Bescheid 32:1/2026 "neu"?. ') == "Bescheid 32-1-2026 -neu-"
    assert enaio_file_name(" . ") == "dokument"
    long = enaio_file_name("A" * 300 + ".pdf")
    assert len(long) == 255 and long.endswith("A.pdf")
