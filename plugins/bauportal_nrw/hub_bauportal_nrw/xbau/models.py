"""Typed pieces of XBau messages: authorities of the message head, message identities, the Bauantrag."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

# XBau Schematron sch-xbau-001/002: a DVDV Behördenkennung is a prefix of three lower-case letters,
# a colon and digits (e.g. 'vbe:053820004').
DVDV_KENNUNG = re.compile(r"^[a-z]{3}:\d+$")
UUID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Code lists the message heads use (listURI, listVersionID).
XBAU_MESSAGES = ("urn:xoev-de:xbau:codeliste:xbau-nachrichten", "4.0")
KERNMODUL_MESSAGES = ("urn:xoev-de:xbau-kernmodul:codeliste:xbau-kernmodul-nachrichten", "3.0")
VERZEICHNISDIENST_LIST = "urn:xoev-de:kosit:codeliste:verzeichnisdienst"
FEHLERKENNZAHLEN_LIST = "urn:xoev-de:xbau:codeliste:xbau-fehlerkennzahlen"
ANLAGEN_LIST = "urn:xoev-de:xbau:codeliste:anlagen"
BUNDESLAND_LIST = "urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:bundesland"
# "XBau Status Bauportal", the code list XBau-Hochbau binds to Code.XBau-StatusAntragsportal (1170).
STATUS_BAUPORTAL_LIST = "urn:xoev-de:xbau:codeliste:statusbauportal"

ANTRAG = "baugenehmigung.antrag.0200"
EINGANGSBESTAETIGUNG = "prozessnachrichten.eingangsbestaetigung.1120"
AKTENZEICHEN = "prozessnachrichten.aktenzeichen.1121"
RUECKWEISUNG = "prozessnachrichten.rueckweisung.G2G.1100"
RUECKNAHME = "prozessnachrichten.ruecknahme.1130"
STATUS_ANTRAGSPORTAL = "prozessnachrichten.statusFuerAntragsportal.1170"
MESSAGE_CODES = {
    ANTRAG: "0200",
    EINGANGSBESTAETIGUNG: "1120",
    AKTENZEICHEN: "1121",
    RUECKWEISUNG: "1100",
    RUECKNAHME: "1130",
    STATUS_ANTRAGSPORTAL: "1170",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def new_uuid() -> str:
    """A new message UUID as XBau writes it."""
    return str(uuid.uuid4())


def _uuid(value: str) -> str:
    if not UUID_PATTERN.match(value):
        raise ValueError("expected a UUID (8-4-4-4-12 hex digits)")
    return value


class Behoerde(_Model):
    """An authority or public service as the message head names it (leser/autor)."""

    kennung: str = Field(min_length=1, description="e.g. the DVDV Behördenkennung 'vbe:053820004'")
    name: str = Field(min_length=1, description="the authority's name")
    verzeichnisdienst: str = Field("DVDV", min_length=1, description="directory the kennung is from")
    verzeichnisdienst_version: str = Field("1", min_length=1, description="listVersionID of that code")


def check_dvdv(behoerde: Behoerde) -> Behoerde:
    """`behoerde` itself if its kennung fits its directory; ValueError naming the rule otherwise."""
    if behoerde.verzeichnisdienst == "DVDV" and not DVDV_KENNUNG.match(behoerde.kennung):
        raise ValueError(
            f"kennung {behoerde.kennung!r} is no DVDV Behördenkennung: expected a prefix of three "
            "lower-case letters, a colon and digits, e.g. 'vbe:053820004' (XBau rule sch-xbau-001/002)"
        )
    return behoerde


class MessageIdentity(_Model):
    """``identifikation.nachricht``: a message's UUID, type and creation time."""

    uuid: str
    code: str = Field(description="the message type code, e.g. '0200' or '1120'")
    list_uri: str = XBAU_MESSAGES[0]
    list_version: str = XBAU_MESSAGES[1]
    created: datetime
    erstellungszeitpunkt: str | None = Field(
        None,
        description="the creation time exactly as the message wrote it: a reference to the message "
        "(bezugNachricht, idNachricht) repeats it unchanged (fraction of seconds, zone or none)",
    )

    @field_validator("uuid")
    @classmethod
    def _check_uuid(cls, value: str) -> str:
        return _uuid(value)

    @field_validator("created")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Address(_Model):
    """A postal address (Anschrift)."""

    strasse: str | None = None
    hausnummer: str | None = None
    postleitzahl: str | None = None
    ort: str | None = None


class Person(_Model):
    """An applicant or Bauherr: a natural person or an organisation."""

    id: str = Field(default_factory=new_uuid)
    vorname: str | None = None
    familienname: str | None = None
    organisation: str | None = None
    anschrift: Address = Field(default_factory=Address)
    email: str | None = None
    telefon: str | None = None

    @property
    def display_name(self) -> str:
        """Name as a clerk reads it."""
        names = " ".join(n for n in (self.vorname, self.familienname) if n)
        return names or self.organisation or ""


class Flurstueck(_Model):
    """A plot: Gemarkung, Flur, Flurstück (Zähler/Nenner)."""

    gemarkung: str
    gemarkung_nummer: str | None = None
    flur: str | None = None
    zaehler: str
    nenner: str | None = None
    bundesland: str = Field("05", description="Destatis key; 05 = Nordrhein-Westfalen")

    @property
    def nummer(self) -> str:
        """'345/2' from Zähler and Nenner."""
        return f"{self.zaehler}/{self.nenner}" if self.nenner else self.zaehler


class Anlage(_Model):
    """An Anlage (Bauvorlage) of a building application: metadata; the content travels beside it."""

    bezeichnung: str
    anlageart: str = Field(description="code of the XBau code list 'anlagen'")
    anlageart_version: str = "3.0"
    mime_type: str = "application/pdf"
    mime_list_uri: str = "urn:xoev-de:xbau:codeliste:xbau-mimetypes"
    mime_list_version: str = "1.0"
    versionsnummer: int = 1
    datum: date
    dokumentid: str | None = Field(None, description="reference to the transport attachment (anhang)")
    dateiname: str | None = None
    size: int | None = None
    sha256: str | None = None
    link: str | None = Field(None, description="instead of an attachment: a URI (verlinkung)")


class Bauantrag(_Model):
    """What a test or the demo needs for a ``baugenehmigung.antrag.0200``."""

    identity: MessageIdentity
    autor: Behoerde
    leser: Behoerde
    referenz: str = Field(default_factory=new_uuid, description="referenzAntragsservice (a UUID)")
    antragsteller: list[Person] = Field(min_length=1)
    bezeichnung: str = Field(description="bezeichnungDesBauvorhabens")
    massnahme: str = Field("11", description="code of 'baumassnahmeart', 11 = Errichtung")
    gebaeude: int = 1
    grundstueck_anschrift: Address | None = None
    flurstuecke: list[Flurstueck] = Field(min_length=1)
    anlagen: list[Anlage] = Field(min_length=1)
    produkt: str = "Bauportal.NRW"
    produkthersteller: str = "Land Nordrhein-Westfalen"
