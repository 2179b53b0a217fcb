"""K3's Vorgang: the case data K3 receives, whichever transport carries it.

The import manifest (``k3-import.xml.j2``) writes the same data as XML; the `rest` transport sends this
model as its JSON body (``k3-rest.yaml`` describes it) and the `sql` transport writes its flat form
into the staging row. The mapping stays the same for all three: `payloads.<target>.fields` are K3's
Fachdaten.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub import Application, FileRecord

# The e-file the Akte lives in; its object id is the correlation `<name>.akte` of the e-file target.
EFILE = "enaio"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class Antragsteller(_Model):
    """The applicant as K3 records them."""

    vorname: str | None = None
    nachname: str
    geburtsdatum: str | None = None
    strasse: str | None = None
    plz: str | None = None
    ort: str | None = None


class EAkte(_Model):
    """The Akte in the e-file: the clerk opens it from K3 by its Aktenzeichen (or object id)."""

    system: str = EFILE
    aktenzeichen: str
    objekt_id: str | None = Field(None, alias="objektId")


class K3Vorgang(_Model):
    """One application as a K3 Vorgang (JSON body of the `rest` transport)."""

    aktenhub_id: str = Field(alias="aktenhubId", description="the reference K3's answers quote")
    leistung: str
    eingang: str
    antragsnummer: str | None = None
    antragsteller: Antragsteller
    eakte: EAkte
    fachdaten: dict[str, str]

    def body(self) -> dict[str, Any]:
        """The JSON body: K3's names, absent values left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def columns(self) -> dict[str, str | None]:
        """The flat form for a staging row: one value per column a `columns:` entry may name.

        The Fachdaten come as one JSON text (`fachdaten`) and each under its own name, so that an
        operator can give a field its own column; K3's names win over a field of the same name.
        """
        person, akte = self.antragsteller, self.eakte
        applicant = ", ".join(part for part in (person.nachname, person.vorname) if part)
        return {
            **self.fachdaten,
            "antragsnummer": self.antragsnummer,
            "eingang": self.eingang,
            "antragsteller": applicant,
            "vorname": person.vorname,
            "nachname": person.nachname,
            "geburtsdatum": person.geburtsdatum,
            "strasse": person.strasse,
            "plz": person.plz,
            "ort": person.ort,
            "eakte_aktenzeichen": akte.aktenzeichen,
            "eakte_objekt_id": akte.objekt_id,
            "fachdaten": json.dumps(self.fachdaten, ensure_ascii=False, sort_keys=True),
        }


def k3_vorgang(
    application: Application, record: FileRecord, reference: str, fields: dict[str, str]
) -> K3Vorgang:
    """The K3 Vorgang of one delivery of an application (`reference`: what K3's answers will quote)."""
    party = application.applicant
    address = party.address
    return K3Vorgang(
        aktenhub_id=reference,
        leistung=record.service,
        eingang=application.received_at.isoformat(),
        antragsnummer=application.external_id or None,
        antragsteller=Antragsteller(
            vorname=party.given_name or None,
            nachname=party.family_name or party.organisation or "-",
            geburtsdatum=party.birth_date or None,
            strasse=address.street if address else None,
            plz=address.postal_code if address else None,
            ort=address.city if address else None,
        ),
        eakte=EAkte(
            aktenzeichen=record.file_number or application.file_number or "",
            objekt_id=application.correlations.get(f"{EFILE}.akte"),
        ),
        fachdaten=fields,
    )
