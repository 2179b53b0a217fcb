"""Hostile index files change nothing: the batch is refused as a whole, held, and moved to failed/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hub_scanstation.batch import BatchRefused, read_batch
from hub_scanstation.config import ScanStationConfig
from hub_scanstation.simulator import scanned_pages
from scan_helpers import ENV, HUB_OPTIONS, ROUTES, SOURCE, Enaio, applications, connectors, poll

from hub.testing import RunningHub

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE ImportSession [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<ImportSession><Batches><Batch Name="X"><Documents><Document FormTypeName="&secret;">
<Pages><Page ImportFileName="0001.pdf"/></Pages></Document></Documents></Batch></Batches></ImportSession>"""


def _index(names: list[str]) -> bytes:
    pages = "".join(
        f'<Document FormTypeName="SCHREIBEN"><Pages><Page ImportFileName="{n}"/></Pages></Document>'
        for n in names
    )
    batch = f"<Batch Name='H'><Documents>{pages}</Documents></Batch>"
    return f"<ImportSession><Batches>{batch}</Batches></ImportSession>".encode()


def _batch(folder: Path, index: bytes) -> Path:
    folder.mkdir()
    (folder / "0001.pdf").write_bytes(scanned_pages(["Inhalt"]))
    (folder / "index.xml").write_bytes(index)
    return folder


CONFIG = ScanStationConfig(type="scanstation", hot_folder=Path("/nonexistent"))


@pytest.mark.parametrize(
    ("index", "code", "words"),
    [
        (XXE, "index", "index file refused"),
        (_index(["../../../etc/passwd"]), "index", "not a plain name inside the batch"),
        (_index(["/etc/passwd"]), "index", "not a plain name inside the batch"),
        (_index(["..\\..\\boot.ini"]), "index", "not a plain name inside the batch"),
        (_index([".."]), "index", "not a plain name inside the batch"),
        (b"<ImportSession>" + b"<x/>" * 2_000_000 + b"</ImportSession>", "oversize", "more than"),
        (b"<ImportSession><Batches>", "index", "not well-formed"),
        (b"<ImportSession/>", "index", "lists no document"),
    ],
    ids=["xxe", "traversal", "absolute", "backslashes", "dotdot", "oversize", "malformed", "empty"],
)
def test_hostile_index_is_refused(tmp_path: Path, index: bytes, code: str, words: str) -> None:
    batch = _batch(tmp_path / "H", index)
    with pytest.raises(BatchRefused) as refused:
        read_batch(batch, CONFIG)
    assert refused.value.code == code
    assert words in refused.value.reason


def test_symbolic_link_out_of_the_batch_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.pdf"
    secret.write_bytes(scanned_pages(["geheim"]))
    batch = _batch(tmp_path / "H", _index(["0002.pdf"]))
    os.symlink(secret, batch / "0002.pdf")
    with pytest.raises(BatchRefused) as refused:
        read_batch(batch, CONFIG)
    assert refused.value.code == "missing_file" and "not a regular file" in refused.value.reason


def test_csv_without_the_file_column_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "C"
    folder.mkdir()
    (folder / "index.csv").write_bytes(b"Name;Datei\nx;0001.pdf\n")
    config = ScanStationConfig(
        type="scanstation", hot_folder=tmp_path, index={"format": "csv", "file": "*.csv"}
    )
    with pytest.raises(BatchRefused) as refused:
        read_batch(folder, config)
    assert "no column 'Dateiname'" in refused.value.reason


async def test_hostile_batch_through_the_hub_changes_nothing(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running: RunningHub = await hub_factory(connectors(enaio.url, hot_folder), ROUTES, env=ENV, **HUB_OPTIONS)
    batch = _batch(hot_folder / "H", XXE)
    (batch / "H.ready").write_bytes(b"")

    assert await poll(running) == 0
    assert await applications(running) == []
    held = (await running.journal.held_lookup(SOURCE, ("H",)))["H"]
    assert held.reason_code == "index"
    assert (hot_folder / "failed" / "H" / "AKTENHUB-FEHLER.txt").exists()
    assert enaio.posteingang() == []

    # An operator closes it: the failed batch is deleted for good.
    await running.hub.connectors[SOURCE].close_upstream("H")
    assert not (hot_folder / "failed" / "H").exists()


def test_index_naming_a_file_that_was_not_scanned_is_refused(tmp_path: Path) -> None:
    batch = _batch(tmp_path / "H", _index(["index.xml"]))
    with pytest.raises(BatchRefused) as refused:
        read_batch(batch, CONFIG)
    assert refused.value.code == "index" and "no scanned PDF or TIFF" in refused.value.reason


def test_unknown_barcode_format_is_refused_when_the_configuration_loads() -> None:
    with pytest.raises(ValueError, match="Code93x"):
        ScanStationConfig(type="scanstation", hot_folder=Path("/x"), cover_sheets={"formats": ["Code93x"]})
