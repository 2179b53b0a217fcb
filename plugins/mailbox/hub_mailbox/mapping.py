"""The mail mapping file: which service and which form fields a message gets, by sender and subject.

The first rule whose conditions all hold decides. A rule's `subject` pattern is searched in the
subject; its named groups become form fields (e.g. ``(?P<aktenzeichen>63-\\d{4}/\\d{2})`` puts the
Aktenzeichen into the form, so the route's mapping files the message into that Akte). A rule with
`refuse` sends matching mail to quarantine. Mail no rule matches is taken with the connector's
`service`, or quarantined when the file says ``unmatched: refuse``. Example::

    rules:
      - subject: '(?P<aktenzeichen>\\d{2}-\\d{4}-\\d{5})'
        service: bauantrag
      - sender_domains: [auslaenderbehoerde.example]
        service: aufenthalt
        fields: {kanal: behoerde}
      - subject: '(?i)newsletter'
        refuse: Newsletter werden nicht angenommen
    unmatched: take
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub import Permanent

from .message import Mail


class MailRule(BaseModel):
    """One rule: conditions (all must hold) and what a matching message gets."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="for operators: which rule decided (form field mail_rule)")
    sender: re.Pattern[str] | None = Field(
        None, description="regex matching the whole From address (lower case)"
    )
    sender_domains: list[str] = Field(
        default_factory=list, description="the From address's domain is one of these"
    )
    subject: re.Pattern[str] | None = Field(
        None, description="regex searched in the subject; named groups → fields"
    )
    service: str | None = Field(
        None, description="service (Leistung) of the application (default: the connector's)"
    )
    fields: dict[str, str] = Field(default_factory=dict, description="further form fields, as given")
    refuse: str | None = Field(None, description="quarantine matching mail, with this reason")

    def match(self, mail: Mail) -> dict[str, str] | None:
        """The fields a match captures from the subject; None if the rule does not match."""
        if self.sender is not None and not (mail.sender and self.sender.fullmatch(mail.sender)):
            return None
        domains = {d.lower() for d in self.sender_domains}
        if domains and mail.sender_domain not in domains:
            return None
        if self.subject is None:
            return {}
        found = self.subject.search(mail.subject)
        if found is None:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}


class MailMapping(BaseModel):
    """A mapping file."""

    model_config = ConfigDict(extra="forbid")

    rules: list[MailRule] = Field(default_factory=list)
    unmatched: Literal["take", "refuse"] = Field(
        "take", description="mail no rule matches: take or quarantine"
    )

    @classmethod
    def load(cls, path: Path) -> MailMapping:
        """Read and check a mapping file; `Permanent` naming the file and the problem."""
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls.model_validate(data)
        except (OSError, yaml.YAMLError) as exc:
            raise Permanent(f"mail mapping {path}: {exc}") from None
        except ValidationError as exc:
            raise Permanent(f"mail mapping {path}: {exc}") from None

    def decide(self, mail: Mail, default_service: str) -> Mapped | Refused:
        """What this message becomes."""
        for rule in self.rules:
            captured = rule.match(mail)
            if captured is None:
                continue
            if rule.refuse is not None:
                return Refused(rule.refuse)
            fields = {**rule.fields, **captured}
            if rule.name:
                fields["mail_rule"] = rule.name
            return Mapped(rule.service or default_service, fields)
        if self.unmatched == "refuse":
            return Refused("no rule of the mail mapping matches")
        return Mapped(default_service, {})


@dataclass(frozen=True)
class Mapped:
    """A message's service and the form fields the mapping gives it."""

    service: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Refused:
    """The mapping refuses the message (it goes to quarantine)."""

    reason: str
