"""Alert mails to Funktionspostfächer, received by a real SMTP server (aiosmtpd) on loopback.

Dead applications of a route become one mail listing their ids, targets and error codes, to the route's
addresses (or the default ones), with no personal data; a mail the server could not take stays queued
in the journal and is sent exactly once when the server is back, after a restart of the hub too.
"""

from __future__ import annotations

import re
import ssl
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from hub.alerts import CertificateExpiry
from hub.config import parse_config
from hub.errors import ConfigError
from hub.mailer import Mailer
from hub.models import ApplicationState
from hub.plugins import load_plugins
from hub.testing import fakes
from hub.testing.harness import RunningHub
from hub.testing.pki import make_certificate, make_pki

SMTP_USER, SMTP_PASSWORD = "aktenhub", "smtp-secret-0123456789"
ENV = {"SMTP_PASSWORD": SMTP_PASSWORD}
SENT_OR_FAILED = "aktenhub_alert_mails_total"
BAUAMT, IT = "bauamt-postfach@kreis.example", "it-betrieb@kreis.example"


class Inbox:
    """The SMTP server's side: every mail accepted, with the credentials it was sent with."""

    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, EmailMessage]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append((envelope, message))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth: Any
    ) -> AuthResult:
        ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(auth.login.decode())
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself on failure


# the test server takes AUTH without TLS on loopback (aiosmtpd warns about that)
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture
def smtp_port(reserved_port: Callable[[], int]) -> int:
    return reserved_port()


class MailServer:
    """Starts and stops an aiosmtpd server on a fixed loopback port (requiring AUTH, as relays do).

    `tls`: none (AUTH in the clear, loopback only), starttls (required before AUTH and MAIL), ssl (SMTPS).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller: Controller | None = None

    def start(self, tls: str = "none", context: ssl.SSLContext | None = None) -> None:
        options: dict[str, Any] = {"auth_require_tls": False}
        if tls == "starttls":
            options = {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        elif tls == "ssl":
            # TLS from the first byte; aiosmtpd counts only STARTTLS as TLS for its AUTH rule
            options = {"ssl_context": context, "auth_require_tls": False}
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self.inbox.authenticate,
            auth_required=True,
            **options,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mail_server(smtp_port: int) -> Iterator[MailServer]:
    server = MailServer(smtp_port)
    yield server
    server.stop()


class Clock:
    """Real time plus an offset the test adds to (retries of a mail fall due by time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def alerts(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "tls": "none",
            "username": SMTP_USER,
            "password": "${SMTP_PASSWORD}",
            "timeout_seconds": 5,
        },
        "from": "aktenhub@kreis.example",
        "to": IT,
        "routes": {"bauamt": [BAUAMT]},
        "interval_seconds": 3600,  # the test runs the mailer itself; the schedule only runs at start
        "link": "https://aktenhub.kreis.example/api/v1/applications/{application_id}",
        **extra,
    }


CONNECTORS = {
    "portal": {"type": "test-json"},
    "mikropro": {"type": "test-recording", "poison": True},
    "k3": {"type": "test-recording", "poison": True},
}
ROUTES = [
    {"name": "bauamt", "from": "portal", "when": {"service": "bauantrag"}, "to": ["mikropro"]},
    {"name": "umwelt", "from": "portal", "when": {"service": "abfall"}, "to": ["k3"]},
]


async def started(running: RunningHub) -> Mailer:
    """The hub's mailer once the run its start schedules is over (the test runs it from then on)."""
    mailer = running.hub.mailer
    assert mailer is not None
    await running.wait_for(lambda: mailer.runs >= 1, 10, "the mailer's run at start")
    return mailer


async def dead_again(running: RunningHub, application_id: str) -> bool:
    tasks = await running.journal.tasks(application_id)
    return any(t.step == "deliver" and t.state == "dead" and t.attempts >= 2 for t in tasks)


async def submit(running: RunningHub, service: str, ident: str) -> str:
    form = {"id": ident, "form": {"nachname": "Groß", "strasse": "Kaiserstraße 1"}}
    status, body = await running.post(f"/intake/portal/{service}", json=form)
    assert status == 202, body
    application_id = str(body["application_id"])
    assert await running.wait_for_state(application_id, [ApplicationState.DEAD]) is ApplicationState.DEAD
    return application_id


async def test_dead_applications_one_mail_per_route_to_its_postfach(
    hub_factory: Any, mail_server: MailServer
) -> None:
    mail_server.start()
    running = await hub_factory(CONNECTORS, ROUTES, env=ENV, alerts=alerts(mail_server.port))
    bau = [await submit(running, "bauantrag", f"b{i}") for i in range(3)]
    umwelt = await submit(running, "abfall", "u1")
    mailer = await started(running)

    assert await mailer.run() == 2
    by_recipient = {tuple(env.rcpt_tos): msg for env, msg in mail_server.inbox.mails}
    assert set(by_recipient) == {(BAUAMT,), (IT,)}
    assert mail_server.inbox.logins == [SMTP_USER, SMTP_USER]
    bau_mail = by_recipient[(BAUAMT,)]
    body = bau_mail.get_content()
    assert "3 gescheiterte Anträge, Route bauamt" in bau_mail["Subject"]
    for application_id in bau:
        assert f"- {application_id}  Schritt deliver  Ziel mikropro  Fehler Permanent" in body
        assert f"https://aktenhub.kreis.example/api/v1/applications/{application_id}" in body
    assert umwelt not in body
    umwelt_body = by_recipient[(IT,)].get_content()
    assert umwelt in umwelt_body and "Ziel k3" in umwelt_body
    for content in (body, umwelt_body):  # no personal data: neither the form nor the error's text
        assert "Groß" not in content and "Kaiserstraße" not in content and "mandatory" not in content

    # Reported once: a second run finds nothing new; a new death on the route is a new mail.
    assert await mailer.run() == 0
    later = await submit(running, "bauantrag", "b9")
    assert await mailer.run() == 1
    assert len(mail_server.inbox.mails) == 3
    last = mail_server.inbox.mails[-1][1].get_content()
    assert later in last and not any(a in last for a in bau)

    # Replayed and dead again: news again.
    await running.hub.operations.replay(bau[0], "ops", "Mikropro wieder erreichbar?")
    await running.wait_for(lambda: dead_again(running, bau[0]), 30, "the replay to die")
    assert await mailer.run() == 1
    again = mail_server.inbox.mails[-1][1].get_content()
    assert bau[0] in again and bau[1] not in again and later not in again


async def test_smtp_down_then_up_the_mail_is_sent_once_over_a_restart(
    hub_factory: Any, mail_server: MailServer
) -> None:
    clock = Clock()
    settings = {"alerts": alerts(mail_server.port), "env": ENV, "clock": clock}
    running = await hub_factory(CONNECTORS, ROUTES, **settings)
    dead = [await submit(running, "abfall", "u1"), await submit(running, "bauantrag", "b1")]
    mailer = await started(running)

    assert await mailer.run() == 0  # nothing listens on the port: queued, not lost
    # Two mails (two routes) wait; the second was not tried once the server proved unreachable.
    assert await metric(running, SENT_OR_FAILED, 'kind="dead",outcome="failed"') == 1.0
    assert await metric(running, "aktenhub_alert_mails_unsent") == 2.0
    # due now: the untried one only; the failed one waits for the interval
    assert [a.attempts for a in await running.journal.due_alerts()] == [0]
    await running.runner.cleanup()
    await running.hub.stop()

    mail_server.start()
    clock.offset += 3600  # the retries fall due
    restarted = await hub_factory(CONNECTORS, ROUTES, **settings)  # its start runs the mailer once

    await restarted.wait_for(lambda: len(mail_server.inbox.mails) == 2, 10, "the queued mails")
    restarted_mailer = await started(restarted)
    assert await restarted_mailer.run() == 0
    clock.offset += 3600
    assert await restarted_mailer.run() == 0
    assert len(mail_server.inbox.mails) == 2
    bodies = sorted(msg.get_content() for _, msg in mail_server.inbox.mails)
    assert all(sum(a in body for a in dead) == 1 for body in bodies)
    assert sum(a in body for a in dead for body in bodies) == 2
    assert await restarted.journal.unsent_alerts() == 0
    assert await metric(restarted, SENT_OR_FAILED, 'kind="dead",outcome="sent"') == 2.0
    assert await metric(restarted, "aktenhub_alert_mails_unsent") == 0.0


@pytest.mark.parametrize("tls", ["starttls", "ssl"])
async def test_tls_modes_verify_the_server_by_the_configured_ca(
    hub_factory: Any, mail_server: MailServer, tmp_path: Path, tls: str
) -> None:
    pki = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    mail_server.start(tls, context)
    smtp = {**alerts(mail_server.port)["smtp"], "tls": tls}
    trusting = alerts(mail_server.port, smtp={**smtp, "ca_file": str(pki.ca)})
    running = await hub_factory(CONNECTORS, ROUTES, env=ENV, alerts=trusting)
    mailer = await started(running)
    await submit(running, "abfall", "u1")
    assert await mailer.run() == 1
    assert mail_server.inbox.logins == [SMTP_USER]  # logged in, and only over TLS (the server demands it)

    # Without the Kreis' CA the same server is not trusted: nothing is sent, the mail waits.
    strict = await hub_factory(
        CONNECTORS, ROUTES, env=ENV, alerts=alerts(mail_server.port, smtp=smtp), subdir="b"
    )
    strict_mailer = await started(strict)
    await submit(strict, "abfall", "u2")
    assert await strict_mailer.run() == 0
    assert len(mail_server.inbox.mails) == 1
    [waiting] = await strict.journal.due_alerts() or [None]
    assert waiting is None and await strict.journal.unsent_alerts() == 1


async def test_check_logs_in_to_the_mail_server_and_sends_nothing(
    hub_factory: Any, mail_server: MailServer
) -> None:
    mail_server.start()
    running = await hub_factory(CONNECTORS, ROUTES, env=ENV, alerts=alerts(mail_server.port))
    wrong = await hub_factory(
        CONNECTORS, ROUTES, env={"SMTP_PASSWORD": "wrong"}, alerts=alerts(mail_server.port), subdir="b"
    )

    [check] = [c for c in await running.hub.operations.check() if c.name == "alerts"]
    assert check.ok and check.kind == "smtp", check.message
    assert (
        f"mail server 127.0.0.1:{mail_server.port} (none) accepted the connection and the login"
        == check.message
    )
    [refused] = [c for c in await wrong.hub.operations.check() if c.name == "alerts"]
    assert not refused.ok and "SMTPAuthenticationError" in refused.message
    assert "wrong" not in refused.message
    assert mail_server.inbox.logins == [SMTP_USER] and mail_server.inbox.mails == []


async def test_certificates_about_to_expire_one_mail_a_day(hub_factory: Any, mail_server: MailServer) -> None:
    mail_server.start()
    running = await hub_factory(CONNECTORS, ROUTES, env=ENV, alerts=alerts(mail_server.port))
    mailer = await started(running)
    now = datetime.now(UTC)

    async def listing() -> list[CertificateExpiry]:
        return [
            CertificateExpiry("xta: client certificate", "CN=Kreis XTA", now + timedelta(days=10)),
            CertificateExpiry("bundid: idp-signing", "CN=BundID IdP", now - timedelta(days=1)),
        ]

    mailer.certificates = listing
    assert await mailer.run() == 1
    assert await mailer.run() == 0  # the same day: not again
    [(envelope, msg)] = mail_server.inbox.mails
    body = msg.get_content()
    assert envelope.rcpt_tos == [IT]
    assert "- xta: client certificate  CN=Kreis XTA  gültig bis " in body and "(noch 9 Tage)" in body
    assert "- bundid: idp-signing  CN=BundID IdP" in body and "(abgelaufen)" in body


async def test_the_hubs_own_listing_mails_a_certificate_about_to_expire(
    hub_factory: Any, mail_server: MailServer, tmp_path: Path
) -> None:
    # The same assessment as `aktenhub check` and the metric: a certificate the operator listed for the
    # hub's reverse proxy expires in 5 days, one for its CA in a year.
    mail_server.start()
    files = [
        {"purpose": "tls-server", "path": str(make_certificate(tmp_path, "proxy.kreis.example", 5))},
        {"purpose": "tls-ca", "path": str(make_certificate(tmp_path, "Kreis CA", 365))},
    ]
    running = await hub_factory(
        CONNECTORS,
        ROUTES,
        env=ENV,
        alerts=alerts(mail_server.port),
        certificates={"warn_days": 30, "files": files},
    )
    mailer = await started(running)  # its run at start mailed the expiring one
    [(envelope, msg)] = mail_server.inbox.mails
    body = msg.get_content()
    assert envelope.rcpt_tos == [IT]
    assert "- hub: tls-server  CN=proxy.kreis.example  gültig bis " in body
    assert "Kreis CA" not in body
    assert await mailer.run() == 0  # the same day: not again


async def metric(running: RunningHub, name: str, labels: str = "") -> float | None:
    """A sample of /metrics (`labels` as written there, e.g. 'kind="dead",outcome="sent"')."""
    status, text = await running.get("/metrics")
    assert status == 200
    sample = re.escape(f"{name}{{{labels}}}" if labels else name)
    found = re.search(rf"^{sample} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def problems(text: str) -> list[str]:
    base = textwrap.dedent(
        """\
        blobs: /tmp/blobs
        connectors:
          portal: {type: test-json}
          k3: {type: test-recording}
        routes:
          - {name: umwelt, from: portal, to: [k3]}
        """
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(base + textwrap.dedent(text), "aktenhub.yaml", load_plugins([fakes]), env=ENV)
    return exc.value.problems


def test_config_refuses_a_written_password_and_unknown_routes() -> None:
    found = problems(
        """\
        alerts:
          smtp:
            host: mail.kreis.example
            username: aktenhub
            password: hunter2-literal
          from: aktenhub@kreis.example
          to: [it-betrieb@kreis.example]
          routes:
            bauamt: [bauamt@kreis.example]
        """
    )
    assert found == [
        "aktenhub.yaml:15: alerts.routes.bauamt: no route named 'bauamt' (routes: umwelt)",
        "aktenhub.yaml:11: alerts.smtp.password: expected a ${ENV_NAME} reference, not the password itself",
    ]


def test_config_refuses_a_bad_address_and_a_link_without_the_id() -> None:
    found = problems(
        """\
        alerts:
          smtp: {host: mail.kreis.example}
          from: aktenhub@kreis.example
          to: [it-betrieb@kreis.example, not-an-address]
          link: https://aktenhub.kreis.example/ui/
        """
    )
    assert found == [
        "aktenhub.yaml:10: alerts.to[1]: Value error, expected a mail address like it-betrieb@kreis.example "
        "(got 'not-an-address')",
        "aktenhub.yaml:11: alerts.link: Value error, expected a URL with {application_id} in it "
        "(got 'https://aktenhub.kreis.example/ui/')",
    ]


def test_config_needs_username_and_password_together() -> None:
    found = problems(
        """\
        alerts:
          smtp: {host: mail.kreis.example, username: aktenhub}
          from: aktenhub@kreis.example
          to: it-betrieb@kreis.example
        """
    )
    assert found == [
        "aktenhub.yaml:8: alerts.smtp: Value error, username and password go together (both or neither)"
    ]


def test_config_defaults_the_port_by_tls_mode() -> None:
    plugins = load_plugins([fakes])
    text = (
        "blobs: /tmp/blobs\nalerts:\n  smtp: {host: mail.kreis.example, tls: ssl}\n"
        "  from: a@kreis.example\n  to: b@kreis.example\n"
    )
    config = parse_config(text, "aktenhub.yaml", plugins, env=ENV)
    assert config.hub.alerts is not None and config.hub.alerts.smtp.effective_port == 465
