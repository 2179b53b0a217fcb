"""An e-mail as the hub takes it: headers that matter, its body and its attachments as files.

Python's `email` parser (policy `default`) reads what it can and records defects instead of failing;
a message it can still read is taken with its defects noted (form field `mail_defects`). Beyond use is
a message without a single header field (binary garbage, a truncated upload): it is quarantined.

The files: the text body (`nachricht.txt`, UTF-8), the HTML body as its own file (`nachricht.html`),
every attachment and every inline part with content (images of an HTML body) under its own file name;
a forwarded message (``message/rfc822``) stays one file, ``.eml``, rather than being taken apart.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import PurePosixPath

MAX_ID = 250  # characters of a Message-ID used as the external id; longer ones are digested
BODY_TEXT, BODY_HTML = "nachricht.txt", "nachricht.html"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


class Unreadable(ValueError):
    """The message is malformed beyond use."""


@dataclass(frozen=True)
class MailFile:
    """One file of a message: body or attachment."""

    name: str
    media_type: str
    data: bytes


@dataclass
class Mail:
    """What the hub reads from one message."""

    raw: bytes
    message_id: str | None
    sender: str | None  # the From address, lower case
    to: list[str]
    subject: str
    date: str | None
    return_path: str | None  # None: no Return-Path header; "": the null sender <>
    auto_submitted: str | None
    precedence: str | None
    list_id: str | None
    files: list[MailFile] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The external id: the normalised Message-ID, else a digest of the whole message."""
        return self.message_id or "sha256:" + hashlib.sha256(self.raw).hexdigest()

    @property
    def sender_domain(self) -> str | None:
        """The domain of the From address."""
        return self.sender.rpartition("@")[2] if self.sender and "@" in self.sender else None


def normalise_message_id(value: str | None) -> str | None:
    """The Message-ID without angle brackets, folding and white space; None if there is none usable."""
    if not value:
        return None
    text = re.sub(r"\s+", "", str(value))
    match = re.search(r"<([^<>]+)>", text)
    found = match.group(1) if match else text.strip("<>")
    if not found:
        return None
    if len(found) > MAX_ID:
        return "sha256:" + hashlib.sha256(found.encode("utf-8", "replace")).hexdigest()
    return found


def header_message_id(header: bytes) -> str | None:
    """The normalised Message-ID of a header block alone (the overview, before the download)."""
    parsed = BytesParser(policy=policy.compat32).parsebytes(header, headersonly=True)
    return normalise_message_id(parsed.get("Message-ID"))


def header_sender(header: bytes) -> str | None:
    """The From address of a header block alone."""
    parsed = BytesParser(policy=policy.compat32).parsebytes(header, headersonly=True)
    return _first_address(str(parsed.get("From", "")))


def header_key(header: bytes) -> str:
    """A message's key known before its download: Message-ID, else a digest of its header block."""
    return header_message_id(header) or "sha256h:" + hashlib.sha256(header).hexdigest()


def parse_mail(raw: bytes) -> Mail:
    """Read a message; `Unreadable` when it is malformed beyond use."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise Unreadable("not an e-mail message: no header fields")
    try:
        mail = Mail(
            raw=raw,
            message_id=normalise_message_id(_header(message, "Message-ID")),
            sender=_first_address(_header(message, "From")),
            to=[a.lower() for _, a in getaddresses([_header(message, "To") or ""]) if a],
            subject=_header(message, "Subject") or "",
            date=_header(message, "Date"),
            return_path=_return_path(message),
            auto_submitted=_header(message, "Auto-Submitted"),
            precedence=_header(message, "Precedence"),
            list_id=_header(message, "List-Id"),
        )
        _Collector(mail).walk(message)
    except (LookupError, ValueError, TypeError, AttributeError) as exc:
        raise Unreadable(f"cannot read the message: {type(exc).__name__}: {exc}") from None
    return mail


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value).strip()


def _first_address(value: str | None) -> str | None:
    found = [a for _, a in getaddresses([value or ""]) if "@" in a]
    return found[0].lower() if found else None


def _return_path(message: Message) -> str | None:
    value = _header(message, "Return-Path")
    if value is None:
        return None
    return value.strip().strip("<>").strip()


class _Collector:
    """Walks a message's MIME tree into files, noting every defect on the way."""

    def __init__(self, mail: Mail) -> None:
        self.mail = mail
        self.names: set[str] = set()
        self.counter = 0

    def walk(self, part: EmailMessage) -> None:
        self._defects(part)
        if part.get_content_type() == "message/rfc822":
            self._nested(part)
        elif part.is_multipart():
            for sub in part.iter_parts():
                if isinstance(sub, EmailMessage):
                    self.walk(sub)
        else:
            self._leaf(part)

    def _defects(self, part: Message) -> None:
        for defect in part.defects:
            name = type(defect).__name__
            if name not in self.mail.defects:
                self.mail.defects.append(name)

    def _nested(self, part: EmailMessage) -> None:
        inner = part.get_payload(0) if part.is_multipart() else None
        data = inner.as_bytes(policy=policy.default) if isinstance(inner, Message) else b""
        subject = str(inner.get("Subject", "")) if isinstance(inner, Message) else ""
        name = part.get_filename() or (subject[:80] + ".eml" if subject.strip() else "")
        self._add(name, "message/rfc822", data, ".eml")

    def _leaf(self, part: EmailMessage) -> None:
        media_type = part.get_content_type()
        attached = part.get_content_disposition() == "attachment" or part.get_filename() is not None
        if not attached and media_type in ("text/plain", "text/html"):
            body = BODY_TEXT if media_type == "text/plain" else BODY_HTML
            if body not in self.names:
                text = _text(part)
                self.names.add(body)
                self.mail.files.append(MailFile(body, f"{media_type}; charset=utf-8", text.encode("utf-8")))
                return
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            return  # an empty part carries nothing to file
        self._add(
            part.get_filename() or "", media_type, data, mimetypes.guess_extension(media_type) or ".bin"
        )

    def _add(self, name: str, media_type: str, data: bytes, extension: str) -> None:
        self.counter += 1
        cleaned = _UNSAFE.sub("_", PurePosixPath(name.replace("\\", "/")).name).strip(" .")
        cleaned = cleaned[-120:] if cleaned else f"anhang-{self.counter}{extension}"
        unique, n = cleaned, 1
        while unique in self.names or unique in (BODY_TEXT, BODY_HTML):
            n += 1
            stem, dot, ext = cleaned.rpartition(".")
            unique = f"{stem}-{n}.{ext}" if dot and stem else f"{cleaned}-{n}"
        self.names.add(unique)
        self.mail.files.append(MailFile(unique, media_type, data))


def _text(part: EmailMessage) -> str:
    """A text part's content; an unknown or lying charset is read as Latin-1 rather than refused."""
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError):
        pass
    data = part.get_payload(decode=True)
    return data.decode("latin-1") if isinstance(data, bytes) else ""
