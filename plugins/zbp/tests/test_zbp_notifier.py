"""The ZBP notifier against its simulator: receipts, rejections, idempotency, refusals, faults, check()."""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hub_zbp.config import ZbpConfig
from hub_zbp.envelope import PayloadKind, ZbpStatus, application_uuid, seal
from hub_zbp.keys import GeneratedAuthor
from hub_zbp.notifier import idempotency_key
from hub_zbp.simulator import STATE, make_app
from hub_zbp.transport import Accepted, Submission, Transport
from pydantic import ValidationError
from zbp_helpers import (
    FILE_NUMBER,
    MAILBOX,
    SENDER,
    SIGNER,
    StartZbp,
    application,
    closed_loopback_port,
    make_notifier,
    notifier_settings,
    receipt,
)

from hub import ConnectorContext, Permanent, ReceiptKind, Retryable, TrustLevel
from hub.testing.pki import make_pki, server_context


async def test_receipt_puts_signed_status_and_message_into_the_mailbox(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp(trusted_certificates=(author.certificate_pem,), mailboxes=(MAILBOX,))
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()

    await notifier.notify(app, receipt(app))

    (status,) = zbp.state.status_updates(MAILBOX)
    (message,) = zbp.state.messages(MAILBOX)
    status_payload = status.answer()["payload"]
    assert status_payload["status"] == "RECEIVED"
    # a UUID, derived from the application id: the same for every re-send
    assert uuid.UUID(status_payload["applicationId"]).version == 5
    assert status_payload["applicationId"] == application_uuid(app.id)
    assert status_payload["publicServiceName"] == {"de": "Jagdschein beantragen"}
    assert status_payload["senderName"] == SENDER
    assert status_payload["statusDetails"] == {"de": f"Eingegangen, Aktenzeichen {FILE_NUMBER}"}
    assert status_payload["createdDate"].endswith("Z")
    message_payload = message.answer()["payload"]
    assert message_payload["mailboxUuid"] == MAILBOX
    assert message_payload["reference"] == FILE_NUMBER
    assert message_payload["stork_qaa_level"] == TrustLevel.SUBSTANTIELL.rank == 3
    assert message_payload["applicationId"] == status_payload["applicationId"]
    assert message_payload["service"] == "Jagdschein beantragen"
    assert FILE_NUMBER in message_payload["content"]
    assert message_payload["sender"] == SENDER
    for item in (status, message):
        assert item.opened.signer == SIGNER
        assert item.opened.roles == ("THIRD_PARTY",)
        assert item.opened.certificate_sha256 == author.author().fingerprint
        assert (item.opened.expires_at - item.opened.issued_at).total_seconds() == 300


class _Recording:
    """A transport that keeps the envelopes (to check them independently of the simulator)."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Submission] = []

    async def send(self, submission: Submission) -> Accepted:
        self.sent.append(submission)
        return Accepted(id=str(len(self.sent)), duplicate=False)

    async def probe(self) -> Any:
        raise NotImplementedError

    def describe(self) -> dict[str, str]:
        return {"transport": self.name}


async def test_envelope_verifies_with_the_certificates_key(
    connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    notifier = make_notifier(connector_context, author, "http://127.0.0.1:9")
    recording = _Recording()
    notifier.transport = recording
    app = application()
    await notifier.notify(app, receipt(app))

    assert [s.kind for s in recording.sent] == [PayloadKind.STATUS, PayloadKind.MESSAGE]
    for submission in recording.sent:
        envelope = submission.envelope
        assert submission.idempotency_key == f"{app.id}/received/{submission.kind.value}"
        certificate = x509.load_pem_x509_certificate(envelope.authorCertificate.encode())
        key = certificate.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(
            base64.b64decode(envelope.sha512sum),
            envelope.content.encode("utf-8"),
            padding.PKCS1v15(),
            hashes.SHA512(),
        )
        assert jwt.get_unverified_header(envelope.authorToken)["alg"] == "RS512"
        claims = jwt.decode(envelope.authorToken, key, algorithms=["RS512"])
        assert claims["signer"] == SIGNER and claims["roles"] == ["THIRD_PARTY"]
        assert 0 < claims["exp"] - claims["iat"] <= 300


async def test_rejection_sends_the_reason_with_status_completed(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application(file_number=None, level=TrustLevel.NORMAL)
    # the core's reason is for the journal; the citizen reads the German text of the code
    reason = "Vertrauensniveau zu niedrig: normal erreicht, substantiell erforderlich"
    german = "Das Vertrauensniveau der Anmeldung reicht nicht."

    await notifier.notify(app, receipt(app, ReceiptKind.REJECTED, reason, "level-too-low"))

    (message,) = zbp.state.messages(MAILBOX)
    payload = message.answer()["payload"]
    assert f"Grund: {german}" in payload["content"]
    assert payload["reference"] == app.id  # no Aktenzeichen was assigned
    assert payload["stork_qaa_level"] == 2
    assert "nicht angenommen" in payload["title"]
    (status,) = zbp.state.status_updates(MAILBOX)
    assert status.answer()["payload"]["status"] == "COMPLETED"
    assert status.answer()["payload"]["statusDetails"]["de"] == german


@pytest.mark.parametrize(("setting", "expected"), [("ACTION_REQUIRED", ["ACTION_REQUIRED"]), (None, [])])
async def test_rejection_status_is_configurable(
    start_zbp: StartZbp,
    connector_context: ConnectorContext,
    author: GeneratedAuthor,
    setting: str | None,
    expected: list[str],
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url, rejection_status=setting)
    app = application()
    await notifier.notify(app, receipt(app, ReceiptKind.REJECTED, "Unterlagen unvollständig"))
    assert [s.answer()["payload"]["status"] for s in zbp.state.status_updates(MAILBOX)] == expected
    assert len(zbp.state.messages(MAILBOX)) == 1


async def test_texts_are_configurable(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    texts = {"received": {"title": "Eingang {file_number}", "content": "Danke. {sender}", "status": "Da."}}
    notifier = make_notifier(connector_context, author, zbp.url, texts=texts)
    app = application()
    await notifier.notify(app, receipt(app))
    (message,) = zbp.state.messages(MAILBOX)
    assert message.answer()["payload"]["title"] == f"Eingang {FILE_NUMBER}"
    assert message.answer()["payload"]["content"] == f"Danke. {SENDER}"


async def test_status_text_is_cut_to_50_characters_at_a_word_boundary(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    status = "Ihr Antrag ist eingegangen und wird bearbeitet. Aktenzeichen: {reference}"
    texts = {"received": {"title": "Eingang", "content": "Danke.", "status": status}}
    notifier = make_notifier(connector_context, author, zbp.url, texts=texts)
    app = application()
    await notifier.notify(app, receipt(app))
    (update,) = zbp.state.status_updates(MAILBOX)
    details = update.answer()["payload"]["statusDetails"]["de"]
    assert details == "Ihr Antrag ist eingegangen und wird bearbeitet…"
    assert len(details) <= 50


async def test_signer_is_the_certificate_common_name(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    assert notifier.signer == "Rhein-Sieg-Kreis ZBP" == SIGNER
    # the author certificate is reported to /metrics
    (certificate,) = notifier.certificates()
    assert (certificate.purpose, certificate.subject, certificate.not_after) == (
        "author",
        author.author().certificate.subject.rfc4514_string(),
        author.author().certificate.not_valid_after_utc,
    )
    # a signer that is not the certificate's CN is refused by the receiving side
    other = make_notifier(connector_context, author, zbp.url, signer="rhein-sieg-kreis")
    app = application()
    with pytest.raises(Permanent):
        await other.notify(app, receipt(app))
    assert "CN" in zbp.state.refusals[-1]["error"]
    await notifier.notify(app, receipt(app))
    (message,) = zbp.state.messages(MAILBOX)
    assert message.opened.signer == SIGNER and message.opened.roles == ("THIRD_PARTY",)


async def test_sending_again_puts_nothing_twice_into_the_mailbox(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()
    # An earlier attempt got the status update through, then failed before the message.
    (status_payload, _) = [p for _, p in notifier.payloads(app, receipt(app), MAILBOX)]

    first = await notifier.transport.send(
        Submission(
            kind=PayloadKind.STATUS,
            envelope=seal(status_payload, author.author(), SIGNER, ["THIRD_PARTY"]),
            mailbox=MAILBOX,
            idempotency_key=idempotency_key(app.id, ReceiptKind.RECEIVED, PayloadKind.STATUS),
        )
    )
    assert not first.duplicate

    await notifier.notify(app, receipt(app))  # the retry
    await notifier.notify(app, receipt(app))  # and once more, e.g. replayed by an operator

    assert len(zbp.state.status_updates(MAILBOX)) == 1
    assert len(zbp.state.messages(MAILBOX)) == 1
    assert zbp.state.requests["POST /api/v1/messages"] == 2  # the second was answered "duplicate"
    # A rejection of the same application is another receipt: it is sent.
    await notifier.notify(app, receipt(app, ReceiptKind.REJECTED, "zurückgezogen"))
    assert len(zbp.state.messages(MAILBOX)) == 2


class _Tampering:
    """Changes the content after signing, as a man in the middle would."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name

    async def send(self, submission: Submission) -> Accepted:
        envelope = submission.envelope.model_copy(
            update={"content": submission.envelope.content.replace(FILE_NUMBER, "99-2026-99999")}
        )
        return await self.inner.send(
            Submission(submission.kind, envelope, submission.mailbox, submission.idempotency_key)
        )

    async def probe(self) -> Any:
        return await self.inner.probe()

    def describe(self) -> dict[str, str]:
        return self.inner.describe()


async def test_tampered_envelope_is_refused_permanently(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    notifier.transport = _Tampering(notifier.transport)
    app = application()
    with pytest.raises(Permanent, match=r"\(401\).*sha512sum does not verify"):
        await notifier.notify(app, receipt(app))
    assert zbp.state.items == []


async def test_untrusted_author_is_refused_permanently(
    start_zbp: StartZbp,
    connector_context: ConnectorContext,
    author: GeneratedAuthor,
    other_author: GeneratedAuthor,
) -> None:
    zbp = await start_zbp(trusted_certificates=(author.certificate_pem,))
    notifier = make_notifier(connector_context, other_author, zbp.url)
    app = application()
    with pytest.raises(Permanent, match="not trusted"):
        await notifier.notify(app, receipt(app))
    assert zbp.state.items == []


async def test_unknown_mailbox_is_refused_permanently_without_naming_it(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp(mailboxes=("pk-someone-else",))
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()
    with pytest.raises(Permanent, match=r"\(404\): unknown mailbox") as caught:
        await notifier.notify(app, receipt(app))
    assert MAILBOX not in str(caught.value)  # the error goes into the journal: no personal data


async def test_unavailable_zbp_is_retryable_and_the_retry_sends_once(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp(fail_next=1)
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()
    with pytest.raises(Retryable, match="503"):
        await notifier.notify(app, receipt(app))
    assert zbp.state.items == []
    await notifier.notify(app, receipt(app))
    assert len(zbp.state.status_updates(MAILBOX)) == len(zbp.state.messages(MAILBOX)) == 1


async def test_unreachable_zbp_is_retryable(
    connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    notifier = make_notifier(connector_context, author, f"http://127.0.0.1:{closed_loopback_port()}")
    app = application()
    with pytest.raises(Retryable, match="connection"):
        await notifier.notify(app, receipt(app))


async def test_credentials_are_sent_and_refusal_is_permanent(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp(token="zbp-token-1")
    app = application()
    wrong = make_notifier(connector_context, author, zbp.url, token="wrong")
    with pytest.raises(Permanent, match=r"\(401\)"):
        await wrong.notify(app, receipt(app))
    right = make_notifier(connector_context, author, zbp.url, token="zbp-token-1")
    await right.notify(app, receipt(app))
    assert len(zbp.state.messages(MAILBOX)) == 1

    basic = await start_zbp(username="aktenhub", password="pw-1")
    notifier = make_notifier(connector_context, author, basic.url, username="aktenhub", password="pw-1")
    await notifier.notify(app, receipt(app))
    assert len(basic.state.messages(MAILBOX)) == 1


@pytest.mark.parametrize(
    ("mailbox", "level", "reason"),
    [
        (None, TrustLevel.HOCH, "no-mailbox-handle"),
        ("  ", TrustLevel.HOCH, "no-mailbox-handle"),
        (MAILBOX, None, "identity-not-verified"),
    ],
)
async def test_nothing_to_send_completes_without_sending(
    start_zbp: StartZbp,
    connector_context: ConnectorContext,
    author: GeneratedAuthor,
    caplog: pytest.LogCaptureFixture,
    mailbox: str | None,
    level: TrustLevel | None,
    reason: str,
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application(mailbox=mailbox, level=level)
    with caplog.at_level(logging.INFO, logger="hub_zbp"):
        await notifier.notify(app, receipt(app))
    assert zbp.state.items == [] and sum(zbp.state.requests.values()) == 0
    (line,) = [r.getMessage() for r in caplog.records if r.name.startswith("hub_zbp")]
    assert f"application={app.id}" in line and f"reason={reason}" in line
    assert MAILBOX not in line


async def test_unverified_identity_may_be_allowed(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url, require_verified_identity=False)
    app = application(level=None)
    await notifier.notify(app, receipt(app))
    (message,) = zbp.state.messages(MAILBOX)
    assert message.answer()["payload"]["stork_qaa_level"] == 1


async def test_logs_carry_no_personal_data(
    start_zbp: StartZbp,
    connector_context: ConnectorContext,
    author: GeneratedAuthor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()
    with caplog.at_level(logging.INFO):
        await notifier.notify(app, receipt(app))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len([line for line in lines if line.startswith("zbp sent")]) == 2
    for line in lines:
        assert MAILBOX not in line and "Groß" not in line and FILE_NUMBER not in line


async def test_expired_certificate_is_permanent_and_sends_nothing(
    start_zbp: StartZbp, connector_context: ConnectorContext, expired_author: GeneratedAuthor
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, expired_author, zbp.url)
    app = application()
    with pytest.raises(Permanent, match="certificate is expired"):
        await notifier.notify(app, receipt(app))
    assert sum(zbp.state.requests.values()) == 0
    result = await notifier.check()
    assert not result.ok and "expired" in result.message


async def test_check(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp(token="t-1")
    good = await make_notifier(connector_context, author, zbp.url, token="t-1").check()
    assert good.ok, good.message
    assert good.details["signer"] == SIGNER and int(good.details["certificate_days_left"]) >= 364
    refused = await make_notifier(connector_context, author, zbp.url, token="nope").check()
    assert not refused.ok and "401" in refused.message
    gone = await make_notifier(
        connector_context, author, f"http://127.0.0.1:{closed_loopback_port()}"
    ).check()
    assert not gone.ok and "connection" in gone.message


async def test_diagnostics_hide_secrets(connector_context: ConnectorContext, author: GeneratedAuthor) -> None:
    notifier = make_notifier(connector_context, author, "http://127.0.0.1:9", token="secret-token")
    state = await notifier.diagnostics()
    text = repr(state)
    assert "PRIVATE KEY" not in text and "secret-token" not in text and "CERTIFICATE" not in text
    assert state["author"]["sha256"] == author.author().fingerprint


def test_configuration_reads_files_and_checks_the_pair(
    tmp_path: Path, author: GeneratedAuthor, other_author: GeneratedAuthor
) -> None:
    key_path, certificate_path = author.write(tmp_path)
    config = ZbpConfig.model_validate(
        notifier_settings(
            author,
            "http://127.0.0.1:9/",
            author_key=f"file:{key_path}",
            author_certificate=str(certificate_path),
        )
    )
    assert config.author().fingerprint == author.author().fingerprint
    assert config.base_url == "http://127.0.0.1:9"

    with pytest.raises(ValidationError, match="does not belong to the author certificate"):
        ZbpConfig.model_validate(
            notifier_settings(author, "http://x", author_certificate=other_author.certificate_pem)
        )
    with pytest.raises(ValidationError, match="not a PEM private key") as caught:
        ZbpConfig.model_validate(notifier_settings(author, "http://x", author_key="nonsense"))
    assert "nonsense" not in str(caught.value).split("input_value")[0]
    with pytest.raises(ValidationError, match="cannot read the certificate file"):
        ZbpConfig.model_validate(
            notifier_settings(author, "http://x", author_certificate=str(tmp_path / "missing.pem"))
        )
    with pytest.raises(ValidationError, match="unknown placeholder"):
        ZbpConfig.model_validate(
            notifier_settings(
                author,
                "http://x",
                texts={"received": {"title": "{applicant}", "content": "x", "status": "y"}},
            )
        )
    with pytest.raises(ValidationError, match="either token"):
        ZbpConfig.model_validate(notifier_settings(author, "http://x", token="t", username="u", password="p"))
    with pytest.raises(ValidationError, match="rejection_status"):
        ZbpConfig.model_validate(notifier_settings(author, "http://x", rejection_status="REJECTED"))


def test_statuses_are_the_zbp_ones() -> None:
    assert {s.value for s in ZbpStatus} == {
        "INITIATED",
        "SUBMITTED",
        "RECEIVED",
        "PROCESSING",
        "ACTION_REQUIRED",
        "COMPLETED",
    }


async def test_mutual_tls_through_the_tls_setting(
    connector_context: ConnectorContext, author: GeneratedAuthor, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path, prefix="zbp")
    app_ = make_app()
    server = TestServer(app_, host="127.0.0.1", scheme="https")
    await server.start_server(ssl=server_context(pki))
    url = f"https://127.0.0.1:{server.port}"
    try:
        app = application()
        tls = {"ca": str(pki.ca), "cert": str(pki.client_cert), "key": str(pki.client_key)}
        notifier = make_notifier(connector_context, author, url, tls=tls)
        await notifier.notify(app, receipt(app))
        assert len(app_[STATE].messages(MAILBOX)) == 1
        without_certificate = make_notifier(connector_context, author, url, tls={"ca": str(pki.ca)})
        with pytest.raises(Retryable):
            await without_certificate.notify(app, receipt(app, ReceiptKind.REJECTED, reason="x"))
        assert len(app_[STATE].messages(MAILBOX)) == 1  # nothing more arrived
        assert notifier.transport.describe()["auth"] == "none"
    finally:
        await server.close()
