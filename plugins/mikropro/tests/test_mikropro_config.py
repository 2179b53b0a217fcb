"""`type: mikropro` configuration: the transport's own keys with Mikropro's defaults; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_mikropro.connector import MikroproConfig, MikroproImportConfig, MikroproXoevConfig
from mikropro_helpers import AUTHORITY, MIKROPRO, mikropro_section
from pydantic import ValidationError

from hub import AnswerStatus


def test_xoev_is_the_default_with_mikropros_message_and_answers() -> None:
    config = MikroproConfig.model_validate(mikropro_section("http://127.0.0.1:1"))
    assert isinstance(config, MikroproXoevConfig) and config.forward
    assert config.message.message_type == "anzeige.baubeginn.0900"
    assert config.message.values["autor_kennung"] == AUTHORITY["kennung"]
    assert config.message.values["leser_kennung"] == MIKROPRO["kennung"]
    assert config.answers is not None
    assert config.answers.message_types == [
        "prozessnachrichten.aktenzeichen.1121",
        "prozessnachrichten.statusFuerAntragsportal.1170",
        "prozessnachrichten.rueckweisung.G2G.1100",
    ]
    assert config.answers.status_map["04"] == AnswerStatus.DECIDED


def test_importfolder_needs_only_its_folders(tmp_path: Path) -> None:
    config = MikroproConfig.model_validate(
        {"type": "mikropro", "transport": "importfolder", "path": str(tmp_path / "in")}
    )
    assert isinstance(config, MikroproImportConfig)
    assert config.manifest.file_name == "mikropro-import.xml"
    assert config.answer_format.status_map["beschieden"] == AnswerStatus.DECIDED


def test_errors_name_the_transports_keys(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as found:
        MikroproConfig.model_validate({"type": "mikropro", "transport": "importfolder"})
    assert [e["loc"] for e in found.value.errors()] == [("path",)]
    section = mikropro_section("http://127.0.0.1:1")
    del section["fachverfahren"]
    section["authority"] = {"kennung": "Bauaufsicht", "name": "x"}
    with pytest.raises(ValidationError) as found:
        MikroproConfig.model_validate(section)
    assert sorted(e["loc"] for e in found.value.errors()) == [("authority", "kennung"), ("fachverfahren",)]
    with pytest.raises(ValidationError, match="'xoev' or 'importfolder'"):
        MikroproConfig.model_validate({**section, "transport": "fax"})
