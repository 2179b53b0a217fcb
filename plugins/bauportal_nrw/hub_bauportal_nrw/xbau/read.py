"""Reading a building application (``baugenehmigung.antrag.0200``) into typed data.

`read_antrag` expects a message that passed schema validation: every mandatory element is there.
XBau mixes qualified and unqualified elements (see `build.py`); the reader matches local names, which
the validated structure makes unambiguous. `read_head` reads what it can of the message head of any
document, valid or not, for the answer to a refused message.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .build import ERREICHBARKEIT_EMAIL, ERREICHBARKEIT_TELEFON
from .models import UUID_PATTERN, Address, Anlage, Behoerde, Flurstueck, MessageIdentity, Person

Node = etree._Element


class Head(BaseModel):
    """The message head (``nachrichtenkopf.g2g``): identity, reader, author."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: MessageIdentity
    leser: Behoerde
    autor: Behoerde


class AntragData(BaseModel):
    """A building application as read from its XBau message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    head: Head
    referenz: str
    antragsteller: list[Person]
    bezeichnung: str
    massnahmen: list[str] = Field(default_factory=list, description="codes of 'baumassnahmeart'")
    bauherren: list[Person] = Field(default_factory=list)
    gebaeude: int | None = None
    weitere_angaben: list[str] = Field(default_factory=list)
    grundstueck_anschrift: Address | None = None
    flurstuecke: list[Flurstueck]
    anlagen: list[Anlage]


def _local(element: Node) -> str:
    return etree.QName(element).localname


def _children(element: Node, name: str) -> Iterator[Node]:
    for child in element:
        if isinstance(child.tag, str) and _local(child) == name:
            yield child


def _child(element: Node | None, *path: str) -> Node | None:
    for name in path:
        if element is None:
            return None
        element = next(_children(element, name), None)
    return element


def _text(element: Node | None, *path: str) -> str | None:
    found = _child(element, *path)
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def _required(element: Node | None, *path: str) -> str:
    value = _text(element, *path)
    if value is None:
        raise ValueError(f"element {'/'.join(path)} is missing or empty")
    return value


def _code(element: Node | None) -> tuple[str | None, str | None, str | None]:
    if element is None:
        return None, None, None
    return _text(element, "code"), element.get("listURI"), element.get("listVersionID")


def read_head(root: Node) -> Head | None:
    """The message head, or None if it cannot be read (e.g. missing or malformed)."""
    head = _child(root, "nachrichtenkopf.g2g")
    try:
        ident = _child(head, "identifikation.nachricht")
        code, list_uri, version = _code(_child(ident, "nachrichtentyp"))
        created = _required(ident, "erstellungszeitpunkt")
        identity = MessageIdentity(
            uuid=_required(ident, "nachrichtenUUID"),
            code=code or "",
            list_uri=list_uri or "",
            list_version=version or "",
            created=_datetime(created),
            erstellungszeitpunkt=created,
        )
        return Head(
            identity=identity, leser=_behoerde(_child(head, "leser")), autor=_behoerde(_child(head, "autor"))
        )
    except (ValueError, ValidationError):
        return None


def _datetime(value: str) -> datetime:
    """An xs:dateTime as far as Python reads it; only for sorting and display, never echoed."""
    # Valid xs:dateTime Python cannot hold (24:00:00, years beyond 9999): the day, or nothing, will do.
    for candidate in (value, value[:10]):
        try:
            return datetime.fromisoformat(candidate)
        except ValueError:
            continue
    return datetime.min


def read_referenz(root: Node) -> str | None:
    """The referenzAntragsservice of any 0200 document (valid or not), if it is a UUID."""
    value = _text(root, "referenzAntragsservice", "referenzAntragsservice")
    return value if value is not None and UUID_PATTERN.match(value) else None


def _behoerde(element: Node | None) -> Behoerde:
    code, _, version = _code(_child(element, "verzeichnisdienst"))
    return Behoerde(
        kennung=_required(element, "kennung"),
        name=_required(element, "name"),
        verzeichnisdienst=code or "DVDV",
        verzeichnisdienst_version=version or "1",
    )


def read_antrag(root: Node) -> AntragData:
    """The application's data from a schema-valid 0200 message."""
    head = read_head(root)
    if head is None:
        raise ValueError("the message head (nachrichtenkopf.g2g) cannot be read")
    vorhaben = _child(root, "bauvorhaben")
    gegenstand = _child(vorhaben, "gegenstand")
    grundstueck = _child(vorhaben, "verortung", "baugrundstueck")
    plots: list[Flurstueck] = []
    address: Address | None = None
    for parcel in _children(grundstueck, "grundstueck") if grundstueck is not None else ():
        if address is None and (found := _child(parcel, "anschrift")) is not None:
            address = _address(found)
        for plot in _children(parcel, "flurstueck"):
            kodierung = _child(plot, "kodierungFlurstueck")
            gemarkung = _child(kodierung, "gemarkung")
            name = _text(gemarkung, "bezeichnung")
            number = _text(gemarkung, "nummer")
            plots.append(
                Flurstueck(
                    gemarkung=name or number or "",
                    gemarkung_nummer=number,
                    flur=_text(kodierung, "flur"),
                    zaehler=_required(kodierung, "zaehler"),
                    nenner=_text(kodierung, "nenner"),
                    bundesland=_code(_child(plot, "bundesland"))[0] or "",
                )
            )
    beteiligte = _child(vorhaben, "beteiligte")
    bauherren = [
        _person(_child(b, "bauherr"))
        for b in (_children(beteiligte, "bauherr") if beteiligte is not None else ())
    ]
    anzahl = _text(gegenstand, "anzahlDerGebaeude", "anzahlDerGebaeudeImBauvorhaben")
    return AntragData(
        head=head,
        referenz=_required(root, "referenzAntragsservice", "referenzAntragsservice"),
        antragsteller=[_person(a) for a in _children(root, "antragsteller")],
        bezeichnung=_required(vorhaben, "bezeichnungDesBauvorhabens"),
        massnahmen=[
            c for c in (_code(m)[0] for m in _children_of(gegenstand, "artDerMassnahme")) if c is not None
        ],
        bauherren=bauherren,
        gebaeude=int(anzahl) if anzahl is not None else None,
        weitere_angaben=[t for t in (_text(e) for e in _children_of(vorhaben, "weitereAngaben")) if t],
        grundstueck_anschrift=address,
        flurstuecke=plots,
        anlagen=[_anlage(a) for a in _children_of(_child(root, "anlagen"), "anlage")],
    )


def _children_of(element: Node | None, name: str) -> list[Node]:
    return list(_children(element, name)) if element is not None else []


def _person(akteur: Node | None) -> Person:
    natural = _child(akteur, "natuerlichePerson")
    if natural is not None:
        name = _child(natural, "name")
        return Person(
            id=_required(natural, "id"),
            vorname=_text(name, "vorname", "name"),
            familienname=_text(name, "familienname", "name"),
            anschrift=_address(_child(natural, "anschrift")),
            **_kommunikation(natural),
        )
    org = _child(akteur, "organisation")
    if org is None:
        raise ValueError("an Akteur is neither natuerlichePerson nor organisation")
    return Person(
        id=_required(org, "id"),
        organisation=_required(org, "name", "name"),
        anschrift=_address(_child(org, "anschrift")),
        **_kommunikation(org),
    )


def _kommunikation(element: Node) -> dict[str, str]:
    found: dict[str, str] = {}
    for channel in _children(element, "kommunikation"):
        value = _text(channel, "kennung")
        code = _code(_child(channel, "kanal"))[0]
        if value is None:
            continue
        if code == ERREICHBARKEIT_EMAIL or (code is None and "@" in value):
            found.setdefault("email", value)
        elif code == ERREICHBARKEIT_TELEFON:
            found.setdefault("telefon", value)
    return found


def _address(element: Node | None) -> Address:
    if element is None:
        return Address()
    street = _text(element, "strasse")
    number = _text(element, "hausnummer")
    if street is None and (combined := _text(element, "strasseHausnummer")):
        street, number = combined, None
    return Address(
        strasse=street,
        hausnummer=number,
        postleitzahl=_text(element, "postleitzahl"),
        ort=_text(element, "ort"),
    )


def _anlage(element: Node) -> Anlage:
    art, _, art_version = _code(_child(element, "anlageart"))
    mime, mime_uri, mime_version = _code(_child(element, "mimeType"))
    where = _child(element, "anhangOderVerlinkung")
    anhang = _child(where, "anhang")
    link = _child(where, "verlinkung")
    size = anhang.get("filesize") if anhang is not None else None
    return Anlage(
        bezeichnung=_required(element, "bezeichnung"),
        anlageart=art or "",
        anlageart_version=art_version or "",
        mime_type=mime or "application/octet-stream",
        mime_list_uri=mime_uri or "",
        mime_list_version=mime_version or "",
        versionsnummer=int(_required(element, "versionsnummer")),
        datum=date.fromisoformat(_required(element, "datum")),
        dokumentid=_text(anhang, "dokumentid"),
        dateiname=_text(anhang, "dateiname") or _text(link, "dateiname"),
        size=int(size) if size else None,
        sha256=anhang.get("hashValue") if anhang is not None else None,
        link=_text(link, "uriVerlinkung"),
    )
