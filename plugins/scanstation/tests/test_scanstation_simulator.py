"""The scan station simulator exports batches as capture software does; index files read back as written."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from hub_scanstation.config import IndexSettings
from hub_scanstation.index import read_index
from hub_scanstation.simulator import make_app
from scan_helpers import AZ_YILMAZ, mixed_batch


async def test_simulator_exports_a_batch_over_http(tmp_path: Path) -> None:
    hot = tmp_path / "export"
    async with TestClient(TestServer(make_app(hot_folder=str(hot)))) as client:
        resp = await client.post(
            "/sim/batches", json=mixed_batch("B0009", index="csv").model_dump(mode="json")
        )
        assert resp.status == 201
        assert (await resp.json())["files"][-1] == "B0009.ready"  # the marker last
        resp = await client.post("/sim/batches", json={"name": "../escape", "documents": [{}]})
        assert resp.status == 400
        listed = await (await client.get("/sim/folders")).json()
    assert listed == {"hot": ["B0009"], "done": [], "failed": []}
    assert sorted(p.name for p in (hot / "B0009").iterdir()) == [
        "0001.pdf",
        "0002.pdf",
        "0003.pdf",
        "B0009.ready",
        "index.csv",
    ]


def test_csv_with_bom_and_german_dates(tmp_path: Path) -> None:
    text = (
        "Stapel;Dateiname;Dokumentart;Aktenzeichen;Nachname;Vorname;Geburtsdatum;Seiten;Scandatum;"
        "Bediener;Scanner;Aufloesung;Farbmodus\r\n"
        f"S1;0001.pdf;WIDERSPRUCH;{AZ_YILMAZ};Groß;Jürgen;01.02.1980;2;07.12.2026 08:15;Platz 2;"
        "fi-7600;300 dpi;Graustufen\r\n"
    )
    [document] = read_index(b"\xef\xbb\xbf" + text.encode("utf-8"), IndexSettings(format="csv", file="*.csv"))
    assert document.batch == "S1" and document.aktenzeichen == AZ_YILMAZ
    assert document.person.family_name == "Groß" and document.person.birth_date == "1980-02-01"
    assert document.scan.scanned_at == "2026-12-07T08:15:00"
    assert document.scan.resolution_dpi == 300 and document.pages == 2


def test_kofax_xml_with_configured_field_names(tmp_path: Path) -> None:
    xml = (
        b"<ImportSession><Batches><Batch Name='K1'><Documents><Document FormTypeName='ANTRAG'>"
        b"<IndexFields><IndexField Name='AZ' Value='63-2026-1'/><IndexField Name='Eingang' Value='x'/>"
        b"</IndexFields><Pages><Page ImportFileName='a.pdf'/></Pages></Document></Documents></Batch>"
        b"</Batches></ImportSession>"
    )
    settings = IndexSettings(
        fields={
            "file": "Pages/Page/@ImportFileName",
            "batch": "ancestor::Batch/@Name",
            "aktenzeichen": "IndexFields/IndexField[@Name='AZ']/@Value",
            "extra": {"eingang": "IndexFields/IndexField[@Name='Eingang']/@Value"},
        }
    )
    [document] = read_index(xml, settings)
    assert (document.batch, document.aktenzeichen, document.file) == ("K1", "63-2026-1", "a.pdf")
    assert document.document_type is None and document.extra == {"eingang": "x"}
