"""Building ``FVDaten.SGOAblegen.0605`` (xdomea 3.0.0) for a record: Akte, Vorgang, documents, primary files.

The shape of the message:

- one ``SchriftgutobjektZumAblegen`` holding the **Akte** with the **Vorgang** inside (``Akteninhalt``)
  and the documents inside the Vorgang; without a Vorgang the documents sit in the Akte; without an Akte
  the Vorgang is the filed object; without both, each document is filed on its own (a Stapel);
- each document has one ``Version`` with one ``Format`` whose ``Primaerdokument/Dateiname`` is the
  file's name in the ZIP: ``<document UUID>_<file name>`` (xdomea's ``stringDateinameType``);
- index fields fill xdomea's own elements where it has a place (Betreff, Kennzeichen, Bemerkung,
  dates, see `FieldPlaces`); every other index field is a ``Feld`` of the
  ``AnwendungsspezifischeErweiterung``, with the Akte's search fields as the Feldgruppe
  "Suchkriterien" and the application's own data (id, source, service) as the Feldgruppe "Antrag".

Identifiers are UUIDs derived from the application id (``uuid5``), so the same application always
gives the same ProzessID and object IDs: a DMS recognises a message delivered again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from lxml import etree

from hub import Application, Document, FileRecord, FolderSpec, Party, Permanent, revision_key

from .config import CodeValue, Contact, SystemInfo, XdomeaConfig
from .formats import LIST_URI as FORMAT_LIST_URI
from .formats import LIST_VERSION as FORMAT_LIST_VERSION
from .formats import OTHER as OTHER_FORMAT
from .formats import file_format, media_type_extension
from .schema import NS

BERLIN = ZoneInfo("Europe/Berlin")
MESSAGE_TYPE = "FVDaten.SGOAblegen.0605"
MESSAGE_CODE = "0605"
MESSAGE_LIST_URI = "urn:xoev-de:xdomea:codeliste:nachrichtentyp"
MESSAGE_LIST_VERSION = "2.0"
MEDIUM_LIST_URI = "urn:xoev-de:xdomea:codeliste:medium"
MEDIUM_LIST_VERSION = "1.0"
MEDIUM_ELECTRONIC = "001"
EXTENSION_ID = "urn:aktenhub:xdomea:erweiterung"
EXTENSION_NAME = "Aktenhub"
EXTENSION_VERSION = "1"
PRODUCT = "Aktenhub"
# Namespace of every UUID this plugin derives (uuid5 of "urn:aktenhub:xdomea").
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:aktenhub:xdomea")
MAX_FILE_NAME = 150  # characters of a primary file's name after the UUID

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_GERMAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


def process_id(application_id: str, revision: int = 1) -> str:
    """The ProzessID of an application's message: the same for every delivery of that revision.

    A later revision of the application (a corrected re-send) is a message of its own; its Akte and
    Vorgang keep their ids, so the DMS files its documents beside the earlier ones.
    """
    return str(uuid.uuid5(ID_NAMESPACE, f"prozess/{revision_key(application_id, revision)}"))


def message_file_name(pid: str) -> str:
    """``<ProzessID>_FVDaten.SGOAblegen.0605.xml``: the message's name inside the ZIP."""
    return f"{pid}_{MESSAGE_TYPE}.xml"


def package_name(pid: str) -> str:
    """``<ProzessID>_FVDaten.SGOAblegen.0605.zip``: the ZIP's name."""
    return f"{pid}_{MESSAGE_TYPE}.zip"


def object_id(application_id: str, what: str) -> str:
    """A stable UUID for one object (``akte``, ``vorgang``, ``dokument/3``) of an application."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{what}/{application_id}"))


@dataclass(frozen=True)
class PrimaryFile:
    """A document's file: its name in the ZIP and where its content is."""

    index: int  # the document's position in the record
    name: str  # entry name in the ZIP = Primaerdokument/Dateiname
    original_name: str
    blob: str
    media_type: str


@dataclass(frozen=True)
class Message:
    """A built message, not yet validated or serialised."""

    process_id: str
    root: etree._Element
    files: tuple[PrimaryFile, ...]
    file_number: str | None

    @property
    def file_name(self) -> str:
        """The message's file name inside the ZIP."""
        return message_file_name(self.process_id)

    @property
    def package_name(self) -> str:
        """The ZIP's file name."""
        return package_name(self.process_id)

    def serialize(self) -> bytes:
        """The message as UTF-8 XML with declaration."""
        return bytes(etree.tostring(self.root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# -- small helpers ----------------------------------------------------------------------------------


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def clean_text(value: str) -> str:
    """Text without characters XML 1.0 cannot carry (control characters, lone surrogates)."""
    return _XML_ILLEGAL.sub(" ", value)


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    if text is not None:
        element.text = clean_text(text)
    return element


def _code(
    parent: etree._Element,
    name: str,
    code: str,
    *,
    list_uri: str | None = None,
    list_version: str | None = None,
    code_name: str | None = None,
) -> etree._Element:
    element = _el(parent, name)
    if list_uri is not None:
        element.set("listURI", list_uri)
    if list_version is not None:
        element.set("listVersionID", list_version)
    # `code` and `name` of xoev-code:Code are unqualified.
    etree.SubElement(element, "code").text = clean_text(code)
    if code_name:
        etree.SubElement(element, "name").text = clean_text(code_name)
    return element


def _code_value(parent: etree._Element, name: str, value: CodeValue) -> None:
    _code(
        parent,
        name,
        value.code,
        list_uri=value.list_uri,
        list_version=value.list_version,
        code_name=value.name,
    )


def parse_date(value: str) -> date | None:
    """A date written as DD.MM.YYYY or YYYY-MM-DD (or an ISO timestamp), else None."""
    text = value.strip()
    german = _GERMAN_DATE.match(text)
    try:
        if german:
            return date(int(german.group(3)), int(german.group(2)), int(german.group(1)))
        if "T" in text or " " in text:
            moment = datetime.fromisoformat(text)
            return (moment.astimezone(BERLIN) if moment.tzinfo else moment).date()
        return date.fromisoformat(text)
    except ValueError:
        return None


def _local_date(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


def _local_time(moment: datetime) -> str:
    return moment.astimezone(BERLIN).isoformat(timespec="seconds")


def primary_file_name(document_uuid: str, name: str, media_type: str) -> str:
    """``<UUID>_<name>``: the document's name made safe for a ZIP entry and every file system."""
    safe = clean_text(_UNSAFE_IN_NAME.sub("_", name)).strip(" .")
    extension = media_type_extension(media_type)
    if not safe:
        safe = "dokument"
    stem, dot, ext = safe.rpartition(".")
    if not dot and extension:
        stem, ext = safe, extension
    elif not dot:
        stem, ext = safe, ""
    if len(stem) + len(ext) + 1 > MAX_FILE_NAME:
        stem = stem[: MAX_FILE_NAME - len(ext) - 1].rstrip(" .") or "dokument"
    return f"{document_uuid}_{stem}.{ext}" if ext else f"{document_uuid}_{stem}"


class _Fields:
    """A folder's or document's index fields; taking one for an xdomea element removes it from the rest."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {k: v for k, v in values.items() if v is not None}

    def take(self, names: Iterable[str]) -> str | None:
        """The first non-empty field of `names`; that field is then used up."""
        for name in names:
            value = self._values.get(name)
            if value is not None and value.strip():
                del self._values[name]
                return value.strip()
        return None

    def take_date(self, names: Iterable[str]) -> date | None:
        """The first field of `names` that holds a date; a field that is no date stays in the rest."""
        for name in names:
            value = self._values.get(name)
            parsed = parse_date(value) if value else None
            if parsed is not None:
                del self._values[name]
                return parsed
        return None

    def rest(self) -> dict[str, str]:
        """The fields not used for an xdomea element."""
        return dict(self._values)


# -- the builder ------------------------------------------------------------------------------------


class MessageBuilder:
    """Builds the 0605 message of one record."""

    def __init__(self, settings: XdomeaConfig, version: str) -> None:
        self.settings = settings
        self.places = settings.fields
        self.version = version

    def build(self, record: FileRecord, app: Application, created_at: datetime) -> Message:
        """The message for `record` (raises `Permanent` for a record that cannot be filed)."""
        if record.akte is None and record.vorgang is None and not record.documents:
            raise Permanent("the record has no Akte, no Vorgang and no documents: nothing to file")
        pid = process_id(app.id, record.revision)
        root = etree.Element(_q(MESSAGE_TYPE), nsmap={"xdomea": NS})
        files: list[PrimaryFile] = []
        file_number: str | None = None
        if record.akte is not None or record.vorgang is not None:
            objects = 1
            self._header(root, pid, created_at, objects)
            sgo = self._filed_object(root, app.id, None)
            if record.akte is not None:
                file_number = self._akte(_el(sgo, "Schriftgutobjekt"), record, record.akte, app, files)
            else:
                assert record.vorgang is not None
                self._vorgang(_el(sgo, "Schriftgutobjekt"), record, record.vorgang, app, None, files, 1)
            self._ablageort(sgo)
        else:
            objects = len(record.documents)
            self._header(root, pid, created_at, objects)
            for index, document in enumerate(record.documents):
                stack_number = index + 1 if objects > 1 else None
                sgo = self._filed_object(
                    root, f"{revision_key(app.id, record.revision)}/{index}", stack_number
                )
                self._document(_el(sgo, "Schriftgutobjekt"), index, document, app, files, standalone=True)
                self._ablageort(sgo)
        return Message(pid, root, tuple(files), file_number or record.file_number)

    # -- Kopf

    def _header(self, root: etree._Element, pid: str, created_at: datetime, objects: int) -> None:
        s = self.settings
        head = _el(root, "Kopf")
        _el(head, "ProzessID", pid)
        _code(
            head,
            "Nachrichtentyp",
            MESSAGE_CODE,
            list_uri=MESSAGE_LIST_URI,
            list_version=MESSAGE_LIST_VERSION,
        )
        _el(head, "Erstellungszeitpunkt", _local_time(created_at))
        self._authority(_el(head, "Absender"), s.sender)
        self._authority(_el(head, "Empfaenger"), s.receiver)
        sending = s.sending_system
        self._system(
            _el(head, "SendendesSystem"),
            SystemInfo(
                instanz_id=sending.instanz_id,
                produktname=sending.produktname or PRODUCT,
                version=sending.version or self.version,
            ),
        )
        if s.receiving_system is not None:
            self._system(_el(head, "EmpfangendesSystem"), s.receiving_system)
        _el(head, "Empfangsbestaetigung", "1" if s.receipt_requested else "0")
        _el(head, "Importbestaetigung", "1")  # fixed="1" in the schema
        _el(head, "Erstellerkennung", s.creator)
        if s.creator_role:
            _el(head, "ErstellerRolle", s.creator_role)
        _el(head, "Stapel", "1" if objects > 1 else "0")
        if objects > 1:
            _el(head, "Stapellaenge", str(objects))

    def _authority(self, contact: etree._Element, authority: Contact) -> None:
        if authority.behoerdenschluessel is not None or authority.praefix is not None:
            kennung = _el(contact, "Behoerdenkennung")
            if authority.behoerdenschluessel is not None:
                _code_value(kennung, "Behoerdenschluessel", authority.behoerdenschluessel)
            if authority.praefix is not None:
                _code_value(kennung, "Praefix", authority.praefix)
        if authority.institution or authority.kurzbezeichnung:
            institution = _el(contact, "Institution")
            if authority.institution:
                _el(institution, "Name", authority.institution)
            if authority.kurzbezeichnung:
                _el(institution, "Kurzbezeichnung", authority.kurzbezeichnung)
        if authority.organisationseinheit:
            _el(_el(contact, "Organisationseinheit"), "Name", authority.organisationseinheit)

    @staticmethod
    def _system(element: etree._Element, system: SystemInfo) -> None:
        if system.instanz_id:
            _el(element, "InstanzID", system.instanz_id)
        if system.produktname:
            _el(element, "Produktname", system.produktname)
        if system.version:
            _el(element, "Version", system.version)

    # -- SchriftgutobjektZumAblegen

    @staticmethod
    def _filed_object(root: etree._Element, fv_object_id: str, stack_number: int | None) -> etree._Element:
        sgo = _el(root, "SchriftgutobjektZumAblegen")
        if stack_number is not None:
            _el(sgo, "NummerImStapel", str(stack_number))
        _el(sgo, "FachverfahrenObjektID", fv_object_id)
        return sgo

    def _ablageort(self, sgo: etree._Element) -> None:
        if self.settings.ablageort:
            _el(sgo, "Ablageort", self.settings.ablageort)

    # -- Akte, Vorgang, Dokument

    def _akte(
        self,
        parent: etree._Element,
        record: FileRecord,
        akte: FolderSpec,
        app: Application,
        files: list[PrimaryFile],
    ) -> str | None:
        element = _el(parent, "Akte")
        fields = _Fields(akte.fields)
        aktenzeichen = fields.take(self.places.kennzeichen) or record.file_number or app.file_number
        title = fields.take(self.places.betreff) or _folder_title(akte)
        remark = fields.take(self.places.bemerkung)
        self._identification(element, object_id(app.id, "akte"), None)
        self._general(element, title, aktenzeichen, remark)
        _el(element, "Typ", akte.type)
        if record.vorgang is not None or record.documents:
            content = _el(element, "Akteninhalt")
            if record.vorgang is not None:
                self._vorgang(content, record, record.vorgang, app, title, files, 1)
            else:
                for index, document in enumerate(record.documents):
                    self._document(content, index, document, app, files)
        contact = self._applicant(app.applicant)
        if contact is not None:
            element.append(contact)
        groups = []
        if akte.search:
            groups.append(
                (
                    "Suchkriterien",
                    "Indexfelder, an denen eine bestehende Akte dieser Art erkannt wird",
                    dict(akte.search),
                )
            )
        if record.vorgang is None:
            groups.append(_application_group(app))
        self._extension(element, groups, fields.rest())
        return aktenzeichen

    def _vorgang(
        self,
        parent: etree._Element,
        record: FileRecord,
        vorgang: FolderSpec,
        app: Application,
        akte_title: str | None,
        files: list[PrimaryFile],
        number: int,
    ) -> None:
        element = _el(parent, "Vorgang")
        fields = _Fields(vorgang.fields)
        title = fields.take(self.places.betreff) or _folder_title(vorgang)
        kennzeichen = fields.take(self.places.kennzeichen)
        remark = fields.take(self.places.bemerkung)
        begins = fields.take_date(self.places.posteingangsdatum) or _local_date(app.received_at)
        self._identification(element, object_id(app.id, "vorgang"), number if akte_title else None)
        self._general(element, title, kennzeichen, remark)
        if akte_title:
            _el(element, "Aktenbetreff", akte_title)
        _el(element, "Typ", vorgang.type)
        _el(_el(element, "Laufzeit"), "Beginn", begins.isoformat())
        for index, document in enumerate(record.documents):
            self._document(element, index, document, app, files)
        groups = []
        if vorgang.search:
            groups.append(
                (
                    "Suchkriterien",
                    "Indexfelder, an denen ein bestehender Vorgang erkannt wird",
                    dict(vorgang.search),
                )
            )
        groups.append(_application_group(app))
        self._extension(element, groups, fields.rest())

    def _document(
        self,
        parent: etree._Element,
        index: int,
        document: Document,
        app: Application,
        files: list[PrimaryFile],
        *,
        standalone: bool = False,
    ) -> None:
        what = f"document {index} (type {document.type!r})"
        if document.blob is None:
            raise Permanent(f"{what} has no content (no blob reference): nothing to file")
        element = _el(parent, "Dokument")
        fields = _Fields(document.fields)
        document_uuid = object_id(revision_key(app.id, app.revision), f"dokument/{index}")
        title = fields.take(self.places.betreff) or _document_title(document.name)
        kennzeichen = fields.take(self.places.kennzeichen)
        remark = fields.take(self.places.bemerkung)
        foreign = fields.take(self.places.fremdes_geschaeftszeichen)
        received = fields.take_date(self.places.posteingangsdatum) or _local_date(app.received_at)
        written = fields.take_date(self.places.datum_des_schreibens)
        self._identification(element, document_uuid, None if standalone else index + 1)
        self._general(element, title, kennzeichen, remark)
        if foreign:
            _el(element, "FremdesGeschaeftszeichen", foreign)
        _el(element, "Posteingangsdatum", received.isoformat())
        if written is not None:
            _el(element, "DatumDesSchreibens", written.isoformat())
        _el(element, "Typ", document.type)
        name = primary_file_name(document_uuid, document.name, document.media_type)
        version = _el(element, "Version")
        _el(version, "Nummer", "1")
        form = _el(version, "Format")
        fmt = file_format(name, document.media_type)
        _code(form, "Name", fmt.code, list_uri=FORMAT_LIST_URI, list_version=FORMAT_LIST_VERSION)
        if fmt.code == OTHER_FORMAT and fmt.other_name:
            _el(form, "SonstigerName", fmt.other_name)
        _el(form, "Version", "")  # the format's version is not known
        primary = _el(form, "Primaerdokument")
        _el(primary, "Dateiname", name)
        _el(primary, "DateinameOriginal", document.name)
        _el(primary, "DatumUhrzeit", _local_time(app.received_at))
        sender = self._applicant(app.applicant, tag="Absender")
        if sender is not None:
            element.append(sender)
        origin: dict[str, str] = {"Inhalt": document.content.value, "Medientyp": document.media_type}
        if document.attachment:
            origin["Anlage"] = document.attachment
        groups = [("Herkunft", "Woher das Dokument in Aktenhub stammt", origin)]
        if standalone:
            groups.append(_application_group(app))
        self._extension(element, groups, fields.rest())
        files.append(PrimaryFile(index, name, document.name, document.blob, document.media_type))

    # -- shared pieces

    @staticmethod
    def _identification(parent: etree._Element, uuid_text: str, number: int | None) -> None:
        identification = _el(parent, "Identifikation")
        _el(identification, "ID", uuid_text)
        if number is not None:
            _el(identification, "NummerImUebergeordnetenContainer", str(number))

    @staticmethod
    def _general(
        parent: etree._Element, title: str | None, kennzeichen: str | None, remark: str | None
    ) -> None:
        general = _el(parent, "AllgemeineMetadaten")
        if title:
            _el(general, "Betreff", title)
        if kennzeichen:
            _el(general, "Kennzeichen", kennzeichen)
        if remark:
            _el(general, "Bemerkung", remark)
        _code(
            general, "Medium", MEDIUM_ELECTRONIC, list_uri=MEDIUM_LIST_URI, list_version=MEDIUM_LIST_VERSION
        )

    def _applicant(self, party: Party, tag: str = "Kontakt") -> etree._Element | None:
        """The applicant as a KontaktType element (not attached), or None without a name."""
        if not self.settings.applicant_contact:
            return None
        if not (party.family_name or party.given_name or party.organisation):
            return None
        contact = etree.Element(_q(tag))
        if party.organisation:
            _el(_el(contact, "Institution"), "Name", party.organisation)
        if party.family_name or party.given_name:
            name = _el(contact, "Name")
            if party.family_name:
                _el(_el(name, "Familienname"), "Name", party.family_name)
            if party.given_name:
                _el(_el(name, "Vorname"), "Name", party.given_name)
        address = party.address
        if address is not None and (address.street or address.postal_code or address.city):
            anschrift = _el(contact, "Anschrift")
            if address.street:
                _el(anschrift, "Strasse", address.street)
            if address.postal_code:
                _el(anschrift, "Postleitzahl", address.postal_code)
            if address.city:
                _el(anschrift, "Ort", address.city)
        born = parse_date(party.birth_date) if party.birth_date else None
        if born is not None:
            _el(_el(contact, "Geburt"), "Datum", born.isoformat())
        return contact

    @staticmethod
    def _extension(
        parent: etree._Element, groups: list[tuple[str, str, dict[str, str]]], fields: Mapping[str, str]
    ) -> None:
        groups = [g for g in groups if g[2]]
        if not groups and not fields:
            return
        extension = _el(parent, "AnwendungsspezifischeErweiterung")
        _el(extension, "Kennung", EXTENSION_ID)
        _el(extension, "Name", EXTENSION_NAME)
        _el(extension, "Beschreibung", "Indexdaten und Herkunft aus Aktenhub")
        _el(extension, "Versionsnummer", EXTENSION_VERSION)
        for name, description, values in groups:
            group = _el(extension, "Feldgruppe")
            _el(group, "Name", name)
            _el(group, "Beschreibung", description)
            _fields(group, values)
        _fields(extension, fields)


def _fields(parent: etree._Element, values: Mapping[str, str]) -> None:
    for name, value in values.items():
        field = _el(parent, "Feld")
        _el(field, "Name", name)
        _el(field, "Wert", value)


def _application_group(app: Application) -> tuple[str, str, dict[str, str]]:
    values = {
        "AntragsID": app.id,
        "Quelle": app.source,
        "ExterneID": app.external_id,
        "Leistung": app.service,
        "Eingang": _local_time(app.received_at),
    }
    return ("Antrag", "Der Antrag in Aktenhub, aus dem die Schriftgutobjekte stammen", values)


def _folder_title(folder: FolderSpec) -> str:
    described = ", ".join(v for v in folder.search.values() if v and v.strip())
    return f"{folder.type} {described}" if described else folder.type


def _document_title(name: str) -> str:
    stem, dot, _ = name.rpartition(".")
    return (stem if dot and stem else name).strip() or "Dokument"
