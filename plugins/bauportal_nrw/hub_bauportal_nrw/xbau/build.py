"""Building XBau messages: the building application 0200 (tests, demo) and the answers 1120, 1121, 1100, 1170.

Every builder returns the serialized message (UTF-8 with declaration). Callers that send a message
validate it first (`XBauSchemas.check`); the builders follow the schemas' element order and
qualification:

- XBau 2.6 (``xbau:``) declares its elements qualified, except those it marks ``form="unqualified"``
  (the message head ``nachrichtenkopf.g2g``, an Anlage's metadata, the plot's address);
- the Kernmodul's elements (``xbauk:`` types) are unqualified; a reference to another message
  (``bn-g2g:Identifikation.NachrichtType``) is qualified in the Basisnachricht namespace;
- a code (xoev-code ``Code``) is ``<code>`` with the list's ``listURI``/``listVersionID`` as attributes.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree

from .models import (
    ANLAGEN_LIST,
    BUNDESLAND_LIST,
    FEHLERKENNZAHLEN_LIST,
    KERNMODUL_MESSAGES,
    STATUS_BAUPORTAL_LIST,
    VERZEICHNISDIENST_LIST,
    Address,
    Bauantrag,
    Behoerde,
    MessageIdentity,
    Person,
)
from .schema import BN_G2G, XBAU, XBAUK

PRODUKT = "Aktenhub"
PRODUKTHERSTELLER = "Aktenhub-Projekt"
PRODUKTVERSION = "0.1.0"
ERREICHBARKEIT_LIST = ("urn:de:xoev:codeliste:erreichbarkeit", "3")
ERREICHBARKEIT_EMAIL = "01"
ERREICHBARKEIT_TELEFON = "02"

Node = etree._Element


def _add(parent: Node, name: str, text: str | None = None, ns: str | None = None, **attrs: str) -> Node:
    """A child element; `ns` None: unqualified (the Kernmodul's and the message head's elements)."""
    tag = f"{{{ns}}}{name}" if ns else name
    element = etree.SubElement(parent, tag, attrs or None)
    if text is not None:
        element.text = text
    return element


def _x(parent: Node, name: str, text: str | None = None, **attrs: str) -> Node:
    """A child in the XBau 2.6 namespace (qualified)."""
    return _add(parent, name, text, XBAU, **attrs)


def _code(
    parent: Node, name: str, code: str, list_uri: str | None, version: str | None, ns: str | None
) -> Node:
    attrs = {}
    if list_uri is not None:
        attrs["listURI"] = list_uri
    if version is not None:
        attrs["listVersionID"] = version
    element = _add(parent, name, None, ns, **attrs)
    _add(element, "code", code)
    return element


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _created(identity: MessageIdentity) -> str:
    """A message's creation time: as received if it was read from a message, else ours in UTC."""
    return identity.erstellungszeitpunkt or _timestamp(identity.created)


def _serialize(root: Node) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _behoerde(parent: Node, name: str, behoerde: Behoerde) -> None:
    element = _add(parent, name)
    _code(
        element,
        "verzeichnisdienst",
        behoerde.verzeichnisdienst,
        VERZEICHNISDIENST_LIST,
        behoerde.verzeichnisdienst_version,
        None,
    )
    _add(element, "kennung", behoerde.kennung)
    _add(element, "name", behoerde.name)


def _head(root: Node, identity: MessageIdentity, leser: Behoerde, autor: Behoerde) -> None:
    head = _add(root, "nachrichtenkopf.g2g")
    ident = _add(head, "identifikation.nachricht")
    _add(ident, "nachrichtenUUID", identity.uuid)
    _code(ident, "nachrichtentyp", identity.code, identity.list_uri, identity.list_version, None)
    _add(ident, "erstellungszeitpunkt", _created(identity))
    _behoerde(head, "leser", leser)
    _behoerde(head, "autor", autor)


def _root(name: str, ns: str, standard: str, version: str, produkt: str, hersteller: str) -> Node:
    nsmap = {"xbau": XBAU} if ns == XBAU else {"xbauk": XBAUK, "bn-g2g": BN_G2G}
    root = etree.Element(f"{{{ns}}}{name}", nsmap=nsmap)
    root.set("produkt", produkt)
    root.set("produkthersteller", hersteller)
    root.set("produktversion", PRODUKTVERSION)
    root.set("standard", standard)
    root.set("version", version)
    return root


# -- the building application (0200) ---------------------------------------------------------------


def build_antrag(antrag: Bauantrag) -> bytes:
    """A ``baugenehmigung.antrag.0200`` as Bauportal.NRW sends it (for tests and the demo)."""
    root = _root(
        "baugenehmigung.antrag.0200", XBAU, "XBau-Hochbau", "2.6", antrag.produkt, antrag.produkthersteller
    )
    _head(root, antrag.identity, antrag.leser, antrag.autor)
    referenz = _x(root, "referenzAntragsservice")
    _add(referenz, "referenzAntragsservice", antrag.referenz)
    for person in antrag.antragsteller:
        _akteur(_x(root, "antragsteller"), person)
    vorhaben = _x(root, "bauvorhaben")
    _x(vorhaben, "bezeichnungDesBauvorhabens", antrag.bezeichnung)
    beteiligte = _x(vorhaben, "beteiligte")
    for person in antrag.antragsteller:
        bauherr = _x(beteiligte, "bauherr")
        _akteur(_x(bauherr, "bauherr"), person)
    _akteur(_x(beteiligte, "gebuehrenpflichtiger"), antrag.antragsteller[0])
    gegenstand = _x(vorhaben, "gegenstand")
    anzahl = _x(gegenstand, "anzahlDerGebaeude")
    _x(anzahl, "anzahlDerGebaeudeImBauvorhaben", str(antrag.gebaeude))
    _code(gegenstand, "artDerMassnahme", antrag.massnahme, None, None, XBAU)
    verortung = _x(vorhaben, "verortung")
    grundstueck = _x(_x(verortung, "baugrundstueck"), "grundstueck")
    if antrag.grundstueck_anschrift is not None:
        _anschrift(_x(grundstueck, "anschrift"), antrag.grundstueck_anschrift)
    for plot in antrag.flurstuecke:
        flurstueck = _x(grundstueck, "flurstueck")
        _code(flurstueck, "bundesland", plot.bundesland, BUNDESLAND_LIST, "2010-04-01", None)
        kodierung = _add(flurstueck, "kodierungFlurstueck")
        gemarkung = _add(kodierung, "gemarkung")
        if plot.gemarkung_nummer:
            _add(gemarkung, "nummer", plot.gemarkung_nummer)
        else:
            _add(gemarkung, "bezeichnung", plot.gemarkung)
        if plot.flur:
            _add(kodierung, "flur", plot.flur)
        _add(kodierung, "zaehler", plot.zaehler)
        if plot.nenner:
            _add(kodierung, "nenner", plot.nenner)
    anlagen = _x(root, "anlagen")
    for anlage in antrag.anlagen:
        # The Anlage and its metadata are declared unqualified (form="unqualified") in XBau 2.6.
        element = _add(anlagen, "anlage")
        _add(element, "bezeichnung", anlage.bezeichnung)
        _add(element, "versionsnummer", str(anlage.versionsnummer))
        _add(element, "datum", anlage.datum.isoformat())
        _code(element, "anlageart", anlage.anlageart, ANLAGEN_LIST, anlage.anlageart_version, None)
        _code(element, "mimeType", anlage.mime_type, anlage.mime_list_uri, anlage.mime_list_version, None)
        where = _add(element, "anhangOderVerlinkung")
        if anlage.link is not None:
            link = _add(where, "verlinkung")
            _add(link, "uriVerlinkung", anlage.link)
            if anlage.dateiname:
                _add(link, "dateiname", anlage.dateiname)
        else:
            attrs = {}
            if anlage.size:
                attrs["filesize"] = str(anlage.size)
            if anlage.sha256:
                attrs["hashValue"] = anlage.sha256
            anhang = _add(where, "anhang", None, None, **attrs)
            _add(anhang, "dokumentid", anlage.dokumentid or anlage.dateiname or anlage.bezeichnung)
            _add(anhang, "dateiname", anlage.dateiname or anlage.bezeichnung)
    return _serialize(root)


def _akteur(parent: Node, person: Person) -> None:
    if person.organisation and not person.familienname:
        org = _add(parent, "organisation")
        _add(org, "id", person.id)
        _add(_add(org, "name"), "name", person.organisation)
        _anschrift(_add(org, "anschrift"), person.anschrift)
        _kommunikation(org, person)
        return
    natural = _add(parent, "natuerlichePerson")
    _add(natural, "id", person.id)
    name = _add(natural, "name")
    _add(_add(name, "familienname"), "name", person.familienname or "")
    _add(_add(name, "vorname"), "name", person.vorname or "")
    _anschrift(_add(natural, "anschrift"), person.anschrift)
    _kommunikation(natural, person)


def _kommunikation(parent: Node, person: Person) -> None:
    for code, value in ((ERREICHBARKEIT_EMAIL, person.email), (ERREICHBARKEIT_TELEFON, person.telefon)):
        if value:
            element = _add(parent, "kommunikation")
            _code(element, "kanal", code, ERREICHBARKEIT_LIST[0], ERREICHBARKEIT_LIST[1], None)
            _add(element, "kennung", value)


def _anschrift(element: Node, address: Address) -> None:
    for name in ("strasse", "hausnummer", "postleitzahl", "ort"):
        value = getattr(address, name)
        if value:
            _add(element, name, value)


# -- the answers (Kernmodul process messages) --------------------------------------------------------


def _answer_root(name: str) -> Node:
    return _root(name, XBAUK, "XBau-Kernmodul", "1.3.0", PRODUKT, PRODUKTHERSTELLER)


def _bezug(parent: Node, referenz: str | None, vorgang: str | None, original: MessageIdentity) -> None:
    bezug = _add(parent, "bezug")
    if referenz:
        _add(bezug, "referenz", referenz)
    if vorgang:
        _add(bezug, "vorgang", vorgang)
    _identity(_add(bezug, "bezugNachricht"), original)


def _identity(element: Node, identity: MessageIdentity) -> None:
    # bn-g2g:Identifikation.NachrichtType (a reference to another message) is the qualified one of
    # the Basisnachricht; the message head's own identification is unqualified.
    _add(element, "nachrichtenUUID", identity.uuid, BN_G2G)
    _code(element, "nachrichtentyp", identity.code, identity.list_uri, identity.list_version, BN_G2G)
    _add(element, "erstellungszeitpunkt", _created(identity), BN_G2G)


def kernmodul_identity(uuid: str, code: str, created: datetime) -> MessageIdentity:
    """The identity of a Kernmodul process message (1100, 1120, 1121)."""
    return MessageIdentity(
        uuid=uuid,
        code=code,
        list_uri=KERNMODUL_MESSAGES[0],
        list_version=KERNMODUL_MESSAGES[1],
        created=created,
    )


def build_eingangsbestaetigung(
    identity: MessageIdentity,
    *,
    leser: Behoerde,
    autor: Behoerde,
    original: MessageIdentity,
    referenz: str | None,
    vorgang: str | None = None,
    information: Sequence[str] = (),
) -> bytes:
    """``prozessnachrichten.eingangsbestaetigung.1120``: the application has arrived."""
    return _referring(
        "prozessnachrichten.eingangsbestaetigung.1120",
        identity,
        leser,
        autor,
        original,
        referenz,
        vorgang,
        information,
    )


def build_ruecknahme(
    identity: MessageIdentity,
    *,
    leser: Behoerde,
    autor: Behoerde,
    original: MessageIdentity,
    referenz: str | None,
    information: Sequence[str] = (),
) -> bytes:
    """``prozessnachrichten.ruecknahme.1130``: the applicant withdraws an application (portal simulator)."""
    return _referring(
        "prozessnachrichten.ruecknahme.1130", identity, leser, autor, original, referenz, None, information
    )


def _referring(
    name: str,
    identity: MessageIdentity,
    leser: Behoerde,
    autor: Behoerde,
    original: MessageIdentity,
    referenz: str | None,
    vorgang: str | None,
    information: Sequence[str],
) -> bytes:
    """A Kernmodul message that refers to another (``bezug``) with an optional text (1120, 1130)."""
    root = _answer_root(name)
    _head(root, identity, leser, autor)
    _bezug(root, referenz, vorgang, original)
    if information:
        text = _add(root, "information")
        for paragraph in information:
            _add(text, "textabsatz", paragraph)
    return _serialize(root)


def build_aktenzeichen(
    identity: MessageIdentity,
    *,
    leser: Behoerde,
    autor: Behoerde,
    original: MessageIdentity,
    referenz: str | None,
    aktenzeichen: str,
) -> bytes:
    """``prozessnachrichten.aktenzeichen.1121``: the file number (Aktenzeichen) assigned to it."""
    root = _answer_root("prozessnachrichten.aktenzeichen.1121")
    _head(root, identity, leser, autor)
    _bezug(root, referenz, aktenzeichen, original)
    return _serialize(root)


def build_rueckweisung(
    identity: MessageIdentity,
    *,
    leser: Behoerde,
    autor: Behoerde,
    original: MessageIdentity,
    original_message: bytes,
    reasons: Sequence[tuple[str, str | None]],
    reasons_version: str,
) -> bytes:
    """``prozessnachrichten.rueckweisung.G2G.1100``: the message is refused, with the findings.

    `reasons`: (Fehlerkennzahl, text). The refused message goes back base64-encoded, as the schema
    demands.
    """
    root = _answer_root("prozessnachrichten.rueckweisung.G2G.1100")
    _head(root, identity, leser, autor)
    data = _add(root, "rueckweisungDaten")
    for code, text in reasons:
        grund = _add(data, "rueckweisungsgrund")
        _code(grund, "grund", code, FEHLERKENNZAHLEN_LIST, reasons_version, None)
        if text:
            _add(grund, "fehlertext", text)
    _identity(_add(data, "idNachricht"), original)
    _add(data, "nachricht", base64.b64encode(original_message).decode("ascii"))
    return _serialize(root)


def build_status_antragsportal(
    identity: MessageIdentity,
    *,
    leser: Behoerde,
    autor: Behoerde,
    original: MessageIdentity,
    referenz: str | None,
    vorgang: str | None,
    status: str,
    status_list_version: str,
    begruendung: Sequence[str] = (),
) -> bytes:
    """``prozessnachrichten.statusFuerAntragsportal.1170``: the case's new status, for the portal.

    `status`: a code of the list "XBau Status Bauportal" in version `status_list_version`.
    `begruendung`: paragraphs explaining the change; they travel as HTML 5 paragraphs, base64-encoded
    (``xbauk:TextFormatiert``).
    """
    root = _answer_root("prozessnachrichten.statusFuerAntragsportal.1170")
    _head(root, identity, leser, autor)
    _bezug(root, referenz, vorgang, original)
    _code(root, "statusAntragsportal", status, STATUS_BAUPORTAL_LIST, status_list_version, None)
    paragraphs = [p.strip() for p in begruendung if p.strip()]
    if paragraphs:
        markup = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
        _add(_add(root, "begruendung"), "text", base64.b64encode(markup.encode("utf-8")).decode("ascii"))
    return _serialize(root)
