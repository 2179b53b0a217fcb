"""Notifications to people: the `alerts:` section and the mails it sends (sending: `hub.mailer`).

Two kinds of mail go to Funktionspostfächer, never to applicants:

- **dead applications**: per route and interval one mail listing the applications whose step went dead
  since the last one, with the target and the error code (the error's class, never its text: a
  connector's message may quote form fields), to the route's addresses or else the default ones;
- **certificates about to expire**: once a day one mail listing them, to the default addresses (which
  ones are about to expire, the certificate listing decides: `Hub.certificate_listing`).

A mail holds ids, connector names, error codes and dates only: no personal data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hub.secret import ConfigPath, Secret

# addr-spec without display name or comments: enough to refuse a typo, the MTA decides the rest
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+$")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def _address(value: object) -> object:
    if isinstance(value, str) and not _ADDRESS.match(value):
        raise ValueError("expected a mail address like it-betrieb@kreis.example")
    return value


Address = Annotated[str, BeforeValidator(_address)]


def _addresses(value: object) -> object:
    return [value] if isinstance(value, str) else value


Addresses = Annotated[list[Address], BeforeValidator(_addresses)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SmtpConfig(_Strict):
    """The mail server alerts are handed to."""

    host: str
    port: int | None = Field(None, ge=1, le=65535, description="default: 587 starttls, 465 ssl, 25 none")
    tls: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="starttls: upgrade after connecting; ssl: TLS from the start (SMTPS)"
    )
    username: str | None = None
    password: Secret | None = Field(None, description="a ${ENV} reference, never a literal")
    ca_file: ConfigPath | None = Field(None, description="CA certificates to verify the server by")
    timeout_seconds: float = Field(30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _credentials(self) -> SmtpConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (both or neither)")
        return self

    @property
    def effective_port(self) -> int:
        """The configured port, or the usual one for the TLS mode."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.tls]


class AlertsConfig(_Strict):
    """The `alerts:` section: who hears by mail of dead applications and expiring certificates."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    smtp: SmtpConfig
    from_: Address = Field(alias="from")
    to: Addresses = Field(min_length=1, description="the default Funktionspostfach (or several)")
    routes: dict[str, Addresses] = Field(
        default_factory=dict, description="route name -> addresses for its dead applications"
    )
    interval_seconds: float = Field(300.0, gt=0, description="how often dead applications are gathered")
    link: str | None = Field(
        None,
        description="URL of an application in the admin API or console, with {application_id}, "
        "e.g. https://aktenhub.kreis.example/api/v1/applications/{application_id}",
    )

    @field_validator("link")
    @classmethod
    def _link_names_application(cls, value: str | None) -> str | None:
        if value is not None and "{application_id}" not in value:
            raise ValueError("expected a URL with {application_id} in it")
        return value

    def recipients(self, route: str | None) -> list[str]:
        """Where a route's dead applications are reported."""
        return list(self.routes.get(route or "", self.to))


@dataclass(frozen=True)
class DeadTask:
    """A dead step as an alert lists it: ids and codes only."""

    task_id: int
    dead_at: float  # when it went dead (its task's last change): dead again after a replay is news
    application_id: str
    route: str | None
    step: str
    target: str
    error_code: str | None
    attempts: int


@dataclass(frozen=True)
class CertificateExpiry:
    """A certificate or key the hub uses or trusts that is about to expire or expired."""

    name: str  # e.g. "xta: client certificate"
    subject: str
    not_after: datetime


@dataclass(frozen=True)
class AlertDraft:
    """A mail to queue; `key` makes queueing it twice a no-op."""

    key: str
    kind: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    # the dead steps it reports, so that none is reported twice (empty for other kinds)
    reports: tuple[tuple[int, float], ...] = ()


def dead_alerts(config: AlertsConfig, dead: Sequence[DeadTask]) -> list[AlertDraft]:
    """One mail per route listing its newly dead applications."""
    by_route: dict[str | None, list[DeadTask]] = {}
    for task in dead:
        by_route.setdefault(task.route, []).append(task)
    drafts = []
    for route, tasks in sorted(by_route.items(), key=lambda item: item[0] or ""):
        applications = sorted({t.application_id for t in tasks})
        name = route or "(ohne Route)"
        lines = [
            f"Aktenhub: {len(applications)} Antrag/Anträge auf der Route {name} sind gescheitert (dead) "
            "und warten auf eine Entscheidung (erneut ausführen oder aufgeben).",
            "",
        ]
        for task in sorted(tasks, key=lambda t: (t.application_id, t.task_id)):
            lines.append(
                f"- {task.application_id}  Schritt {task.step}  Ziel {task.target or '-'}  "
                f"Fehler {task.error_code or 'unbekannt'}  Versuche {task.attempts}"
            )
            if config.link is not None:
                lines.append(f"  {config.link.replace('{application_id}', task.application_id)}")
        lines += ["", "Diese Nachricht enthält keine personenbezogenen Daten; Details im Admin-API/Konsole."]
        first = min(tasks, key=lambda t: (t.dead_at, t.task_id))
        drafts.append(
            AlertDraft(
                key=f"dead:{route or ''}:{first.task_id}@{first.dead_at!r}",
                kind="dead",
                recipients=tuple(config.recipients(route)),
                subject=f"[Aktenhub] {len(applications)} gescheiterte Anträge, Route {name}",
                body="\n".join(lines) + "\n",
                reports=tuple((t.task_id, t.dead_at) for t in tasks),
            )
        )
    return drafts


def certificate_alert(
    config: AlertsConfig, expiring: Sequence[CertificateExpiry], now: datetime
) -> AlertDraft | None:
    """The day's mail on the certificates about to expire or expired (None: there are none)."""
    if not expiring:
        return None
    lines = [
        f"Aktenhub: {len(expiring)} Zertifikat(e) oder Schlüssel laufen bald ab oder sind abgelaufen.",
        "",
    ]
    for cert in sorted(expiring, key=lambda c: c.not_after):
        days = (cert.not_after - now).total_seconds() / 86400
        state = "abgelaufen" if days < 0 else f"noch {int(days)} Tage"
        until = cert.not_after.isoformat(timespec="minutes")
        lines.append(f"- {cert.name}  {cert.subject}  gültig bis {until}  ({state})")
    return AlertDraft(
        key=f"certificates:{now.date().isoformat()}",
        kind="certificates",
        recipients=tuple(config.to),
        subject=f"[Aktenhub] {len(expiring)} Zertifikat(e) laufen bald ab",
        body="\n".join(lines) + "\n",
    )
