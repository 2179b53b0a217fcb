"""The built FVDaten.SGOAblegen.0605: valid against xdomea.xsd, and saying what the record says."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hub_xdomea import message as message_module
from hub_xdomea.formats import FileFormat, file_format
from hub_xdomea.message import package_name, process_id
from hub_xdomea.sink import XdomeaSink
from lxml import etree
from xdomea_helpers import AKTENZEICHEN, NS, X, assert_valid, filed_record, make_sink, read_zip, zips_in

from hub import (
    Address,
    Application,
    ConnectorContext,
    Document,
    DocumentContent,
    FileRecord,
    FolderSpec,
    Party,
    Permanent,
)
from hub.blobs import BlobStore
from hub.testing import default_record, delivery_context, make_application

FILED = "x:SchriftgutobjektZumAblegen/x:Schriftgutobjekt"


@pytest.fixture
def sink(xdomea_context: ConnectorContext, tmp_path: Path) -> XdomeaSink:
    return make_sink(xdomea_context, "directory", path=str(tmp_path / "import"))


async def deliver_and_read(
    sink: XdomeaSink, record: FileRecord, app: Application, blobs: BlobStore
) -> etree._Element:
    """Deliver into the import directory and return the root of the message in the ZIP."""
    await sink.deliver(record, delivery_context(app, blobs))
    [path] = zips_in(sink.directory)
    return read_zip(path).root


def text(element: etree._Element, path: str) -> str | None:
    value: str | None = element.findtext(path, namespaces=X)
    return value


def fields_of(element: etree._Element) -> dict[str, str]:
    """The loose Feld entries of an object's AnwendungsspezifischeErweiterung."""
    return {
        text(f, "x:Name") or "": text(f, "x:Wert") or ""
        for f in element.iterfind("x:AnwendungsspezifischeErweiterung/x:Feld", X)
    }


def group_of(element: etree._Element, name: str) -> dict[str, str]:
    """One Feldgruppe of an object's AnwendungsspezifischeErweiterung."""
    for group in element.iterfind("x:AnwendungsspezifischeErweiterung/x:Feldgruppe", X):
        if text(group, "x:Name") == name:
            return {text(f, "x:Name") or "": text(f, "x:Wert") or "" for f in group.iterfind("x:Feld", X)}
    return {}


async def applicant_application(blobs: BlobStore) -> Application:
    app = await make_application(
        blobs,
        service="baugenehmigung",
        files={"Lageplan.pdf": b"%PDF-1.4 Lageplan\n", "Ansicht Süd.jpg": b"\xff\xd8\xff Ansicht"},
        form={"vorname": "Jürgen", "nachname": "Groß-Öztürk", "ort": "Siegburg"},
    )
    app.applicant = Party(
        given_name="Jürgen",
        family_name="Groß-Öztürk",
        birth_date="1971-01-11",
        address=Address(street="Kaiserstraße 12", postal_code="53721", city="Siegburg"),
    )
    return app


async def test_message_is_valid_and_carries_akte_vorgang_documents(
    sink: XdomeaSink, blobs: BlobStore, xdomea_xsd: etree.XMLSchema
) -> None:
    app = await applicant_application(blobs)
    record = filed_record(app)
    await sink.deliver(record, delivery_context(app, blobs))
    [path] = zips_in(sink.directory)
    package = read_zip(path)
    assert_valid(xdomea_xsd, package.xml)
    root = package.root
    assert etree.QName(root).localname == "FVDaten.SGOAblegen.0605"

    # Kopf: a stable ProzessID (UUID) derived from the application, sender and receiver from config.
    pid = text(root, "x:Kopf/x:ProzessID")
    assert pid == process_id(app.id) == str(uuid.UUID(pid or ""))
    assert path.name == package_name(pid) == f"{pid}_FVDaten.SGOAblegen.0605.zip"
    assert package.message_name == f"{pid}_FVDaten.SGOAblegen.0605.xml"
    assert text(root, "x:Kopf/x:Nachrichtentyp/code") == "0605"
    assert text(root, "x:Kopf/x:Absender/x:Behoerdenkennung/x:Behoerdenschluessel/code") == "05382000"
    assert text(root, "x:Kopf/x:Absender/x:Organisationseinheit/x:Name") == "Amt 63, Bauaufsicht (Aktenhub)"
    assert text(root, "x:Kopf/x:Empfaenger/x:Institution/x:Name") == "Rhein-Sieg-Kreis"
    assert text(root, "x:Kopf/x:SendendesSystem/x:Produktname") == "Aktenhub"
    assert text(root, "x:Kopf/x:Importbestaetigung") == "1"
    assert text(root, "x:Kopf/x:Stapel") == "0"

    # One filed object: the Akte, with the Vorgang in it and the documents in the Vorgang.
    [sgo] = root.findall("x:SchriftgutobjektZumAblegen", X)
    assert text(sgo, "x:FachverfahrenObjektID") == app.id
    akte = sgo.find("x:Schriftgutobjekt/x:Akte", X)
    assert akte is not None
    assert text(akte, "x:AllgemeineMetadaten/x:Kennzeichen") == AKTENZEICHEN
    assert text(akte, "x:AllgemeineMetadaten/x:Betreff") == f"Bauakte {AKTENZEICHEN}"
    assert text(akte, "x:Typ") == "Bauakte"
    assert fields_of(akte) == {"Bauherr": "Groß-Öztürk", "Gemarkung": "Siegburg", "Flur": "7"}
    assert group_of(akte, "Suchkriterien") == {"Aktenzeichen": AKTENZEICHEN}
    assert text(akte, "x:Kontakt/x:Name/x:Familienname/x:Name") == "Groß-Öztürk"
    assert text(akte, "x:Kontakt/x:Geburt/x:Datum") == "1971-01-11"

    vorgang = akte.find("x:Akteninhalt/x:Vorgang", X)
    assert vorgang is not None
    assert text(vorgang, "x:AllgemeineMetadaten/x:Betreff") == "Neubau Einfamilienhaus"
    assert text(vorgang, "x:Typ") == "Baugenehmigungsverfahren"
    assert text(vorgang, "x:Laufzeit/x:Beginn") == "2025-03-01"
    assert fields_of(vorgang) == {"Vorhaben": "EFH"}
    assert group_of(vorgang, "Antrag")["AntragsID"] == app.id

    documents = vorgang.findall("x:Dokument", X)
    assert [text(d, "x:Typ") for d in documents] == ["Anlage", "Anlage", "Originalantrag"]
    assert [text(d, "x:AllgemeineMetadaten/x:Betreff") for d in documents] == [
        "Anlage 1: Lageplan.pdf",
        "Anlage 2: Ansicht Süd.jpg",
        "Antrag wie eingegangen",
    ]
    assert [text(d, "x:DatumDesSchreibens") for d in documents] == ["2025-03-03", "2025-03-03", "2025-03-01"]
    assert fields_of(documents[0]) == {"Anlagenart": "Bauvorlage"}
    assert group_of(documents[0], "Herkunft") == {
        "Inhalt": "attachment",
        "Medientyp": "application/pdf",
        "Anlage": "Lageplan.pdf",
    }
    assert text(documents[1], "x:Absender/x:Anschrift/x:Ort") == "Siegburg"
    formats = [text(d, "x:Version/x:Format/x:Name/code") for d in documents]
    assert formats == ["018", "011", "045"]  # pdf, jpg, text (the original is form data)

    # Every Primärdokument names a file in the ZIP, under the document's UUID; nothing else is in it.
    names = [text(d, "x:Version/x:Format/x:Primaerdokument/x:Dateiname") for d in documents]
    originals = [text(d, "x:Version/x:Format/x:Primaerdokument/x:DateinameOriginal") for d in documents]
    assert originals == ["Lageplan.pdf", "Ansicht Süd.jpg", "Originalantrag"]
    assert sorted(package.files) == sorted(n for n in names if n)
    for document, name in zip(documents, names, strict=True):
        assert name is not None and name.startswith(text(document, "x:Identifikation/x:ID") or "-")
    assert names[2] is not None and names[2].endswith("_Originalantrag.txt")


def test_file_formats_follow_the_code_list() -> None:
    assert file_format("Lageplan.PDF", "application/octet-stream") == FileFormat("018")
    assert file_format("scan", "image/tiff") == FileFormat("023")
    assert file_format("antrag.json", "application/json") == FileFormat("100", "json")
    assert file_format("plan.dwg", "application/acad") == FileFormat("100", "dwg")
    assert file_format("daten", "application/x-unknown") == FileFormat("100", "application/x-unknown")


async def test_the_same_application_gives_the_same_ids(
    blobs: BlobStore, xdomea_context: ConnectorContext
) -> None:
    app = await applicant_application(blobs)
    builder = message_module.MessageBuilder(make_sink(xdomea_context, "directory", path="/x").config, "1")
    first = builder.build(filed_record(app), app, app.received_at)
    again = builder.build(filed_record(app), app, app.received_at)
    ids = [e.text for e in first.root.iter(f"{{{NS}}}ID")]
    assert ids == [e.text for e in again.root.iter(f"{{{NS}}}ID")]
    assert len(set(ids)) == len(ids) == 5  # Akte, Vorgang, three documents
    other = await make_application(blobs, external_id="another")
    assert process_id(other.id) != first.process_id


async def test_a_revision_is_a_new_message_with_new_documents_in_the_same_akte_and_vorgang(
    blobs: BlobStore, xdomea_context: ConnectorContext
) -> None:
    app = await applicant_application(blobs)
    builder = message_module.MessageBuilder(make_sink(xdomea_context, "directory", path="/x").config, "1")
    first = builder.build(filed_record(app), app, app.received_at)
    revised = app.model_copy(update={"revision": 2})
    second = builder.build(filed_record(revised).model_copy(update={"revision": 2}), revised, app.received_at)
    assert second.process_id == process_id(app.id, 2) != first.process_id
    ids = [e.text for e in first.root.iter(f"{{{NS}}}ID")]
    again = [e.text for e in second.root.iter(f"{{{NS}}}ID")]
    assert again[:2] == ids[:2]  # Akte and Vorgang
    assert not set(again[2:]) & set(ids[2:])  # the documents are new ones


@pytest.mark.parametrize("shape", ["akte-only", "vorgang-only", "documents-only", "no-file-number"])
async def test_every_record_shape_is_valid(
    shape: str, sink: XdomeaSink, blobs: BlobStore, xdomea_xsd: etree.XMLSchema
) -> None:
    app = await applicant_application(blobs)
    record = filed_record(app)
    if shape == "akte-only":
        record.vorgang = None
    elif shape == "vorgang-only":
        record.akte = None
    elif shape == "documents-only":
        record = default_record(app)
    else:
        record = filed_record(app, aktenzeichen=None)
    root = await deliver_and_read(sink, record, app, blobs)
    assert_valid(xdomea_xsd, etree.tostring(root))
    sgos = root.findall("x:SchriftgutobjektZumAblegen", X)
    documents = root.findall(".//x:Dokument", X)
    assert len(documents) == len(record.documents)
    if shape == "akte-only":
        assert root.find(f"{FILED}/x:Akte/x:Akteninhalt/x:Dokument", X) is not None
    elif shape == "vorgang-only":
        assert [etree.QName(e).localname for e in root.findall(f"{FILED}/*", X)] == ["Vorgang"]
    elif shape == "documents-only":
        # Each document is filed on its own: a Stapel of as many objects.
        assert len(sgos) == len(record.documents) == 3
        assert text(root, "x:Kopf/x:Stapel") == "1"
        assert text(root, "x:Kopf/x:Stapellaenge") == "3"
        assert [text(s, "x:NummerImStapel") for s in sgos] == ["1", "2", "3"]
    else:
        akte = root.find(".//x:Akte", X)
        assert akte is not None and text(akte, "x:AllgemeineMetadaten/x:Kennzeichen") is None


async def test_record_file_number_is_the_aktenzeichen_without_a_field(
    sink: XdomeaSink, blobs: BlobStore
) -> None:
    app = await applicant_application(blobs)
    record = filed_record(app)
    assert record.akte is not None
    del record.akte.fields["Aktenzeichen"]
    record.file_number = "63-2025-00777"
    root = await deliver_and_read(sink, record, app, blobs)
    assert text(root, ".//x:Akte/x:AllgemeineMetadaten/x:Kennzeichen") == "63-2025-00777"


async def test_text_xml_cannot_carry_is_cleaned(
    sink: XdomeaSink, blobs: BlobStore, xdomea_xsd: etree.XMLSchema
) -> None:
    app = await applicant_application(blobs)
    record = filed_record(app)
    record.documents[0].fields["Bemerkung"] = "Seite\x0c2\x00 fehlt"
    record.documents[0].name = "../../etc/pass:wd\x01.pdf"
    root = await deliver_and_read(sink, record, app, blobs)
    assert_valid(xdomea_xsd, etree.tostring(root))
    document = root.find(".//x:Dokument", X)
    assert document is not None
    assert text(document, "x:AllgemeineMetadaten/x:Bemerkung") == "Seite 2  fehlt"
    name = text(document, "x:Version/x:Format/x:Primaerdokument/x:Dateiname") or ""
    assert "/" not in name and ":" not in name and name.endswith("__.._etc_pass_wd_.pdf")


async def test_an_invalid_message_is_never_written(
    sink: XdomeaSink, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Nachrichtentyp outside the code list: xdomea.xsd refuses it, so the sink must not send it.
    monkeypatch.setattr(message_module, "MESSAGE_CODE", "0999")
    app = await applicant_application(blobs)
    with pytest.raises(Permanent, match=r"not valid against xdomea\.xsd.*line \d+: .*0999"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs))
    assert not sink.directory.exists() or list(sink.directory.iterdir()) == []


async def test_without_the_schema_nothing_is_sent(blobs: BlobStore, tmp_path: Path) -> None:
    context = ConnectorContext(name="xdomea", blobs=blobs, schemas=tmp_path / "nowhere", data_dir=tmp_path)
    sink = make_sink(context, "directory", path=str(tmp_path / "import"))
    app = await applicant_application(blobs)
    with pytest.raises(Permanent, match="xdomea schema not found"):
        await sink.deliver(filed_record(app), delivery_context(app, blobs))
    check = await sink.check()
    assert not check.ok and "xdomea schema not found" in check.message


async def test_a_record_without_anything_to_file_is_refused(sink: XdomeaSink, blobs: BlobStore) -> None:
    app = await applicant_application(blobs)
    empty = FileRecord(application_id=app.id, service=app.service)
    with pytest.raises(Permanent, match="nothing to file"):
        await sink.deliver(empty, delivery_context(app, blobs))
    no_content = FileRecord(
        application_id=app.id,
        service=app.service,
        akte=FolderSpec(type="Bauakte"),
        documents=[Document(type="Antrag", name="Antrag.pdf", content=DocumentContent.RENDITION)],
    )
    with pytest.raises(Permanent, match=r"document 0 .* has no content"):
        await sink.deliver(no_content, delivery_context(app, blobs))
