"""Settings of the Bauportal.NRW source and of its answers (the notifier)."""

from __future__ import annotations

from typing import Annotated

from hub_xta import MailboxSourceConfig, XtaSettings
from pydantic import AfterValidator, ByteSize, Field, field_validator

from hub import AnswerStatus, ConnectorConfig

from .xbau import Behoerde, check_dvdv

# The authority's kennung goes into every answer's head: a malformed one fails the XBau Schematron.
Authority = Annotated[Behoerde, AfterValidator(check_dvdv)]

DEFAULT_MAX_MESSAGE = ByteSize(32 * 1024**2)


class BauportalNrwConfig(MailboxSourceConfig):
    """``type: bauportal-nrw``: the Bauaufsicht's XTA mailbox, read for XBau building applications."""

    authority: Authority = Field(
        description="the Bauaufsicht itself as XBau names it (kennung, name): the reader of the applications"
    )
    service: str = Field("bauantrag", min_length=1, description="service (Leistung) of the applications")
    max_message: ByteSize = Field(
        DEFAULT_MAX_MESSAGE, description="largest XBau message (the XML, not its Anlagen) that is parsed"
    )
    schematron: bool = Field(
        False,
        description="check a schema-valid 0200 against the official XBau Schematron rules too "
        "(<schemas>/xbau/2.6/schematron); a message that breaks one is refused (1100 with the findings)",
    )


class BauportalNrwAnswersConfig(ConnectorConfig):
    """``type: bauportal-nrw-answers``: XBau receipts (1120, 1121) and rejections (1100) to the portal."""

    xta: XtaSettings = Field(description="the XTA server and our account (the Author of the answers)")
    authority: Authority = Field(description="the Bauaufsicht as XBau names it: the autor of the answers")
    information: list[str] = Field(
        default_factory=lambda: [
            "Ihr Bauantrag ist bei der unteren Bauaufsichtsbehörde eingegangen.",
            "Die Bearbeitung beginnt mit der Prüfung der Vollständigkeit.",
        ],
        description="paragraphs of the receipt's text (1120 information)",
    )

    send_aktenzeichen: bool = Field(True, description="send the Aktenzeichen (1121) after the receipt")
    rejection_codes: dict[str, str] = Field(
        default_factory=lambda: {
            "schema": "X001",
            "schematron": "X001",
            "xml": "X001",
            "anlagen": "A001",
            # S: 'nicht spezifikationskonform': a message type the process does not foresee here
            "unsupported_message_type": "S001",
        },
        description="Fehlerkennzahl (code list xbau-fehlerkennzahlen) per rejection kind of the source; "
        "a configured mapping replaces the whole default",
    )
    default_rejection_code: str = Field("X001", description="Fehlerkennzahl of other rejections")
    rejection_codes_version: str = Field("2.2", description="listVersionID of xbau-fehlerkennzahlen")
    max_returned_message: ByteSize = Field(
        DEFAULT_MAX_MESSAGE,
        description="a refused message up to this size goes back inside the 1100 (base64), as XBau asks",
    )
    status_codes: dict[AnswerStatus, Annotated[str, Field(pattern=r"^\S{1,50}$")]] = Field(
        default_factory=dict,
        description="a Fachverfahren's answer status → code of the list 'XBau Status Bauportal' "
        "(urn:xoev-de:xbau:codeliste:statusbauportal, from XRepository) sent in a 1170; a status "
        "without a code sends no 1170",
    )
    status_list_version: str = Field(
        "3.0", min_length=1, description="listVersionID of 'XBau Status Bauportal' the codes are from"
    )
    status_reason: bool = Field(
        True, description="send the Fachverfahren's text for the applicant as the 1170's begruendung"
    )
    business_scenario: str = Field(
        "XBAU_DATA", description="XTA business scenario if the original message's cannot be used"
    )
    test: bool = Field(False, description="mark the XTA messages as test messages")

    @field_validator("information")
    @classmethod
    def _no_empty_paragraph(cls, value: list[str]) -> list[str]:
        if any(not paragraph.strip() for paragraph in value):
            raise ValueError(
                "a paragraph is empty: XBau forbids empty elements (Schematron sch-xbau-gen-001)"
            )
        return value
