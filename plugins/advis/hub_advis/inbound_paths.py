"""Where the values of an incoming XAusländer message are: configurable XPath 1.0, read into an application.

The defaults name the elements of the published XAusländer structure by their local names (namespace-
agnostic, so a new XAusländer version with a new namespace URI still reads): the message head
``nachrichtenkopf`` with ``nachrichtUUID``, and the applicant, a natural person with ``familienname``,
``vorname``, ``geburtsdatum`` and, where ADVIS knows the person already, ``personId``. An operator
checks them against the XRepository schema of the version the OZG service sends and changes a path
without code; the plugin's tests read its test fixture (not the official schema) with the defaults.
"""

from __future__ import annotations

from typing import Any, Self

from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

_PERSON_CHILD = "*[local-name()='{0}']"


def _child(name: str) -> str:
    return _PERSON_CHILD.format(name)


def _top(*names: str) -> str:
    return "/*/" + "/".join(_child(n) for n in names)


DEFAULT_DETAILS = {
    "antragsnummer": _top("antragsdaten", "antragsnummer"),
    "eingangsdatum": _top("antragsdaten", "eingangsdatum"),
    "aufenthaltszweck": _top("aufenthaltszweck", "code"),
    "geltungsdauer_monate": _top("beantragteGeltungsdauerMonate"),
}


class Unreadable(ValueError):
    """A value the application needs is not in the message (the text names the path, not values)."""


class MessagePerson(BaseModel):
    """The person an XAusländer message is about, as read from it."""

    model_config = ConfigDict(frozen=True)

    familienname: str
    vorname: str | None = None
    geburtsdatum: str
    geburtsname: str | None = None
    geburtsort: str | None = None
    person_id: str | None = None


class MessageValues(BaseModel):
    """What the hub reads from an XAusländer message."""

    model_config = ConfigDict(frozen=True)

    nachricht_uuid: str | None
    nachrichtentyp: str
    person: MessagePerson
    details: dict[str, str] = Field(default_factory=dict)


class XAuslaenderPaths(BaseModel):
    """XPath 1.0 expressions for the values of an incoming message; the person's are relative to `person`."""

    model_config = ConfigDict(extra="forbid")

    namespaces: dict[str, str] = Field(default_factory=dict, description="XPath prefixes -> namespace URIs")
    nachricht_uuid: str = Field(
        _top("nachrichtenkopf", "nachrichtUUID"),
        description="the message's UUID (the intake is idempotent on it; none: the XTA message id)",
    )
    person: str = Field(
        "/*/*[*[local-name()='familienname'] and *[local-name()='geburtsdatum']][1]",
        description="the applicant's element: by default the first child of the message that is a "
        "natural person (has familienname and geburtsdatum)",
    )
    familienname: str = _child("familienname")
    vorname: str | None = _child("vorname")
    geburtsdatum: str = _child("geburtsdatum")
    geburtsname: str | None = _child("geburtsname")
    geburtsort: str | None = _child("geburtsort")
    person_id: str | None = Field(
        _child("personId"), description="ADVIS's person id, where the message carries it"
    )
    details: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_DETAILS),
        description="further values for the mapping (form.antrag.<name>), absolute paths; a path that "
        "finds nothing leaves its value out",
    )
    _compiled: dict[str, etree.XPath] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _compile(self) -> Self:
        paths: dict[str, str | None] = {
            "nachricht_uuid": self.nachricht_uuid,
            "person": self.person,
            "familienname": self.familienname,
            "vorname": self.vorname,
            "geburtsdatum": self.geburtsdatum,
            "geburtsname": self.geburtsname,
            "geburtsort": self.geburtsort,
            "person_id": self.person_id,
            **{f"details.{k}": v for k, v in self.details.items()},
        }
        for name, path in paths.items():
            if path is None:
                continue
            try:
                self._compiled[name] = etree.XPath(path, namespaces=self.namespaces)
            except etree.XPathSyntaxError as exc:
                raise ValueError(f"{name}: not an XPath 1.0 expression ({exc}): {path}") from None
        return self

    def read(self, root: etree._Element) -> MessageValues:
        """The values of a (validated) message; `Unreadable` if the person cannot be read."""
        found = self._compiled["person"](root)
        person = found[0] if isinstance(found, list) and found else None
        if not isinstance(person, etree._Element):
            raise Unreadable(f"no applicant (a natural person) at `person`: {self.person}")
        values: dict[str, Any] = {}
        for name in ("familienname", "vorname", "geburtsdatum", "geburtsname", "geburtsort", "person_id"):
            if name in self._compiled:
                values[name] = _value(self._compiled[name](person))
        for required in ("familienname", "geburtsdatum"):
            if not values.get(required):
                raise Unreadable(
                    f"the applicant has no {required} at `{required}`: {getattr(self, required)}"
                )
        details = {
            name: value
            for name in self.details
            if (value := _value(self._compiled[f"details.{name}"](root))) is not None
        }
        return MessageValues(
            nachricht_uuid=_value(self._compiled["nachricht_uuid"](root)),
            nachrichtentyp=etree.QName(root).localname,
            person=MessagePerson(**{k: v for k, v in values.items() if v is not None}),
            details=details,
        )


def _value(result: Any) -> str | None:
    """An XPath result as one text: a string as it is, a node by its string value, the first of a list."""
    if isinstance(result, list):
        if not result:
            return None
        result = result[0]
    if isinstance(result, etree._Element):
        text = "".join(result.itertext())
    elif isinstance(result, bool):
        text = "true" if result else ""
    elif isinstance(result, float):
        text = str(int(result)) if result.is_integer() else str(result)
    else:
        text = str(result)
    text = " ".join(text.split())
    return text or None
