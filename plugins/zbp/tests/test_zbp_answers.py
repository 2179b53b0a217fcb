"""A Fachverfahren's answer in the citizen's mailbox: the status, and the decision as an attachment."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import pytest
from hub_zbp.envelope import PayloadKind, ZbpAttachment, ZbpMessage, application_uuid, seal
from hub_zbp.keys import GeneratedAuthor
from hub_zbp.notifier import ZbpNotifier
from zbp_helpers import FILE_NUMBER, MAILBOX, SIGNER, StartZbp, Zbp, application, make_notifier

from hub import (
    AnswerStatus,
    Application,
    Attachment,
    ConnectorContext,
    Permanent,
    Receipt,
    ReceiptKind,
)
from hub.blobs import BlobStore

DECISION = b"%PDF-1.4 Bescheid UA-2026-17 " + bytes(range(256)) * 300


async def decision(blobs: BlobStore) -> Attachment:
    info = await blobs.write_bytes(DECISION)
    return Attachment(
        name="Bescheid.pdf", media_type="application/pdf", size=info.size, sha256=info.sha256, blob=info.ref
    )


def status(
    app: Application,
    answer_status: AnswerStatus,
    *,
    answer_id: str = "fv-answer-1",
    message: str | None = None,
    documents: list[Attachment] | None = None,
) -> Receipt:
    """The receipt the core's answer-notify step hands the notifier."""
    return Receipt(
        application_id=app.id,
        kind=ReceiptKind.STATUS,
        file_number=app.file_number,
        answer_id=answer_id,
        status=answer_status,
        case_number="UA-2026-17",
        message=message,
        documents=documents or [],
    )


@pytest.mark.parametrize(
    ("answer_status", "zbp_status", "text"),
    [
        (AnswerStatus.ACCEPTED, "PROCESSING", "In Bearbeitung"),
        (AnswerStatus.IN_PROGRESS, "PROCESSING", "In Bearbeitung"),
        (AnswerStatus.ACTION_REQUIRED, "ACTION_REQUIRED", "Bitte reichen Sie Unterlagen nach"),
        (AnswerStatus.DECIDED, "COMPLETED", "Bescheid erlassen"),
    ],
)
async def test_answer_status_becomes_the_zbp_status(
    answer_status: AnswerStatus,
    zbp_status: str,
    text: str,
    start_zbp: StartZbp,
    connector_context: ConnectorContext,
    author: GeneratedAuthor,
) -> None:
    zbp = await start_zbp(trusted_certificates=(author.certificate_pem,), mailboxes=(MAILBOX,))
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()

    await notifier.notify(app, status(app, answer_status))

    (update,) = zbp.state.status_updates(MAILBOX)
    payload = update.answer()["payload"]
    assert payload["status"] == zbp_status
    assert payload["applicationId"] == application_uuid(app.id)
    details = payload["statusDetails"]["de"]
    assert details.startswith(text) and len(details) <= 50
    assert "Groß" not in details and "Jürgen" not in details  # no personal data beyond the handle
    assert not zbp.state.messages(MAILBOX)  # no text, no document: the status says it all


async def test_decision_travels_as_an_attachment_bound_by_the_signature(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor, blobs: BlobStore
) -> None:
    zbp = await start_zbp(trusted_certificates=(author.certificate_pem,), mailboxes=(MAILBOX,))
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()
    document = await decision(blobs)

    await notifier.notify(app, status(app, AnswerStatus.DECIDED, documents=[document]))

    (update,) = zbp.state.status_updates(MAILBOX)
    assert update.answer()["payload"]["status"] == "COMPLETED"
    (message,) = zbp.state.messages(MAILBOX)
    shown = message.answer()
    assert shown["payload"]["attachments"] == [
        {
            "filename": "Bescheid.pdf",
            "sha512sum": hashlib.sha512(DECISION).hexdigest(),
            "contentLength": len(DECISION),
        }
    ]
    (received,) = shown["attachments"]
    assert received["sha256"] == hashlib.sha256(DECISION).hexdigest()
    assert received["mimeType"] == "application/pdf" and received["size"] == len(DECISION)
    assert shown["payload"]["reference"] == FILE_NUMBER
    assert "Bescheid erlassen" in shown["payload"]["content"]
    assert "\n\n" not in shown["payload"]["content"]  # the empty {message} line is left out


async def test_each_answer_is_sent_once_and_another_answer_again(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor, blobs: BlobStore
) -> None:
    zbp = await start_zbp()
    notifier = make_notifier(connector_context, author, zbp.url)
    app = application()
    document = await decision(blobs)
    nachforderung = status(app, AnswerStatus.ACTION_REQUIRED, message="Bitte reichen Sie den Lageplan nach.")
    bescheid = status(app, AnswerStatus.DECIDED, answer_id="fv-answer-2", documents=[document])

    await notifier.notify(app, nachforderung)
    await notifier.notify(app, nachforderung)  # a retry after SIGKILL, a replay: nothing twice
    await notifier.notify(app, bescheid)
    await notifier.notify(app, bescheid)

    updates = [u.answer()["payload"]["status"] for u in zbp.state.status_updates(MAILBOX)]
    assert updates == ["ACTION_REQUIRED", "COMPLETED"]
    messages = [m.answer()["payload"] for m in zbp.state.messages(MAILBOX)]
    assert len(messages) == 2
    assert "Bitte reichen Sie den Lageplan nach." in messages[0]["content"]
    assert "attachments" not in messages[0] and len(messages[1]["attachments"]) == 1
    assert zbp.state.requests["POST /api/v1/messages"] == 4  # two answered "duplicate"


async def test_failed_status_and_documents_switched_off(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor, blobs: BlobStore
) -> None:
    zbp = await start_zbp()
    app = application()
    document = await decision(blobs)
    notifier = make_notifier(connector_context, author, zbp.url, send_documents=False)

    missing = document.model_copy(update={"blob": "sha256:" + "0" * 64})
    loud = make_notifier(connector_context, author, zbp.url)
    with pytest.raises(Permanent, match="not in the blob store"):
        await loud.notify(app, status(app, AnswerStatus.DECIDED, answer_id="lost", documents=[missing]))
    await notifier.notify(app, status(app, AnswerStatus.FAILED, answer_id="fv-error"))
    assert not zbp.state.items  # the Fachverfahren's import error is no news for the applicant
    await notifier.notify(app, status(app, AnswerStatus.DECIDED, documents=[document]))
    assert [u.answer()["payload"]["status"] for u in zbp.state.status_updates(MAILBOX)] == ["COMPLETED"]
    assert not zbp.state.messages(MAILBOX)  # without the document there is nothing more to say


# -- the simulator checks the files against the signed list ---------------------------------------------


async def post_message(
    zbp: Zbp, notifier: ZbpNotifier, author: GeneratedAuthor, listed: list[ZbpAttachment], files: list[bytes]
) -> tuple[int, Any]:
    app = application()
    message = ZbpMessage(
        stork_qaa_level=3,
        mailboxUuid=MAILBOX,
        sender="Rhein-Sieg-Kreis",
        title="Bescheid",
        content="Ihr Bescheid",
        service="Jagdschein",
        applicationId=application_uuid(app.id),
        reference=FILE_NUMBER,
        attachments=listed or None,
    )
    envelope = seal(message, author.author(), SIGNER, ["THIRD_PARTY"]).model_dump_json().encode()
    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(envelope, {"Content-Type": "application/json"})
    part.set_content_disposition("form-data", name="envelope")
    for content in files:
        file_part = writer.append(content, {"Content-Type": "application/pdf"})
        file_part.set_content_disposition("form-data", name="attachment", filename="Bescheid.pdf")
    async with (
        aiohttp.ClientSession() as http,
        http.post(zbp.url + "/api/v1/messages", data=writer) as response,
    ):
        return response.status, await response.json()


def listed(content: bytes, name: str = "Bescheid.pdf") -> ZbpAttachment:
    return ZbpAttachment(
        filename=name, sha512sum=hashlib.sha512(content).hexdigest(), contentLength=len(content)
    )


async def test_simulator_refuses_files_that_do_not_match_the_signed_list(
    start_zbp: StartZbp, connector_context: ConnectorContext, author: GeneratedAuthor
) -> None:
    zbp = await start_zbp(max_attachment=len(DECISION))
    notifier = make_notifier(connector_context, author, zbp.url)
    other = DECISION.replace(b"UA-2026-17", b"UA-2026-99")

    cases = [
        ([listed(DECISION)], []),  # listed, not sent
        ([], [DECISION]),  # sent, not listed
        ([listed(DECISION)], [other]),  # changed on the way
        ([listed(DECISION, "Anderer.pdf")], [DECISION]),
        ([listed(DECISION)], [DECISION, DECISION]),
    ]
    for signed, sent in cases:
        code, answer = await post_message(zbp, notifier, author, signed, sent)
        assert code == 422 and "attachment" in answer["error"], (signed, sent, answer)
    code, answer = await post_message(zbp, notifier, author, [listed(DECISION + b"x")], [DECISION + b"x"])
    assert code == 413
    assert not zbp.state.items

    code, answer = await post_message(zbp, notifier, author, [listed(DECISION)], [DECISION])
    assert code == 201 and not answer["duplicate"]
    (message,) = zbp.state.messages(MAILBOX)
    assert message.kind is PayloadKind.MESSAGE and len(message.files) == 1


async def test_simulator_refuses_malformed_multipart_messages(start_zbp: StartZbp) -> None:
    zbp = await start_zbp()

    async def post(path: str, body: bytes, content_type: str) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        async with (
            aiohttp.ClientSession() as http,
            http.post(zbp.url + path, data=body, headers=headers) as response,
        ):
            return response.status, await response.json()

    def form(*parts: tuple[str, str | None, bytes]) -> bytes:
        chunks = []
        for name, filename, content in parts:
            disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
            chunks.append(f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n")
        return b"".join(chunks) + b"--b--\r\n"

    multipart = "multipart/form-data; boundary=b"
    cases = [
        ("/api/v1/messages", b"--b\r\n", "multipart/form-data"),  # no boundary
        ("/api/v1/messages", b"--b\r\nContent-Disposition: form-data; name=envelope\r\n\r\n{", multipart),
        ("/api/v1/messages", form(("attachment", "a.pdf", b"x"), ("envelope", None, b"{}")), multipart),
        ("/api/v1/messages", form(("attachment", "a.pdf", b"x")), multipart),
        ("/api/v1/messages", form(("envelope", None, b"{}"), ("attachment", None, b"x")), multipart),
        ("/api/v1/messages", form(("envelope", None, b"{}"), ("other", None, b"x")), multipart),
        ("/api/v1/messages", form(("envelope", None, b"not json")), multipart),
    ]
    for path, body, content_type in cases:
        status, answer = await post(path, body, content_type)
        assert status == 400 and answer["error"], (body, answer)
    status, answer = await post("/api/v1/status", form(("envelope", None, b"{}")), multipart)
    assert status == 415 and "application/json" in answer["error"]
    assert not zbp.state.items
