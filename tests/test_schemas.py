"""The one schema locator: configured, $AKTENHUB_SCHEMAS, the shared/reference fallback, compiled XSDs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from hub import Permanent
from hub.schemas import (
    ENV,
    SchemaDirectoryMissing,
    combined_schema,
    require_schema_directory,
    schema_directory,
    xml_schema,
)


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """A schema directory laid out like shared/reference, with one XSD."""
    root = tmp_path / "schemas"
    (root / "xta").mkdir(parents=True)
    (root / "xta" / "XTA.wsdl").write_text("<definitions/>", encoding="utf-8")
    (root / "fv").mkdir()
    (root / "fv" / "case.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:element name="fall" type="xs:string"/></xs:schema>',
        encoding="utf-8",
    )
    return root


def test_the_configured_directory_wins_over_the_environment(
    layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(ENV, str(other))
    assert schema_directory(layout) == layout.resolve()
    assert schema_directory() == other.resolve()


def test_an_explicit_choice_is_never_replaced_by_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "missing"))
    assert schema_directory() is None  # not silently ../shared/reference
    assert schema_directory(tmp_path / "also-missing") is None


def test_the_fallback_is_shared_reference_beside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    work = tmp_path / "work"
    (tmp_path / "shared" / "reference").mkdir(parents=True)
    work.mkdir()
    monkeypatch.chdir(work)  # ../shared/reference seen from the working directory
    assert schema_directory() == (tmp_path / "shared" / "reference").resolve()


def test_the_fallback_is_also_found_from_the_source_tree(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # nothing beside the working directory
    project = Path(__file__).resolve().parents[1]
    expected = project / "../shared/reference"
    found = schema_directory()
    assert found == (expected.resolve() if expected.is_dir() else None)


def test_containing_asks_for_a_file_inside(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(layout))
    assert schema_directory(containing="xta/XTA.wsdl") == layout.resolve()
    assert schema_directory(containing="xbau/2.6") is None


def test_a_missing_directory_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SchemaDirectoryMissing) as missing:
        require_schema_directory(containing="xbau/2.6", purpose="the XBau validation")
    message = str(missing.value)
    assert f"{tmp_path / 'nowhere'} is no schema directory holding xbau/2.6" in message
    assert "the XBau validation needs it" in message
    assert "`schemas:`" in message and "$AKTENHUB_SCHEMAS" in message


def test_xsds_are_compiled_once_and_again_when_the_file_changes(layout: Path) -> None:
    path = layout / "fv" / "case.xsd"
    schema = xml_schema(path)
    assert xml_schema(path) is schema
    assert schema.validate(_doc("<fall>K3-1</fall>"))
    path.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:element name="fall" type="xs:integer"/></xs:schema>',
        encoding="utf-8",
    )
    os.utime(path, ns=(1, 1))  # a different version even within the file system's time resolution
    changed = xml_schema(path)
    assert changed is not schema
    assert not changed.validate(_doc("<fall>K3-1</fall>"))


def _doc(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def test_a_combined_schema_reads_only_below_its_directory(layout: Path, tmp_path: Path) -> None:
    xs = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'
    (layout / "fv" / "antwort.xsd").write_text(
        f'<xs:schema {xs} targetNamespace="urn:fv" elementFormDefault="qualified">'
        '<xs:element name="antwort" type="xs:string"/></xs:schema>',
        encoding="utf-8",
    )
    (layout / "fv" / "fall.xsd").write_text(
        f'<xs:schema {xs} targetNamespace="urn:fv" elementFormDefault="qualified">'
        '<xs:element name="fall" type="xs:integer"/></xs:schema>',
        encoding="utf-8",
    )
    files = [layout / "fv" / "antwort.xsd", layout / "fv" / "fall.xsd"]
    schema = combined_schema(layout, "urn:fv", includes=files)
    assert schema.validate(_doc('<fall xmlns="urn:fv">7</fall>'))
    assert schema.validate(_doc('<antwort xmlns="urn:fv">ja</antwort>'))
    assert not schema.validate(_doc('<fall xmlns="urn:fv">sieben</fall>'))
    outside = tmp_path / "outside.xsd"
    outside.write_text(files[1].read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(Permanent, match=r"cannot compile the schemas of urn:fv: .*outside\.xsd"):
        combined_schema(layout, "urn:fv", includes=[outside])
