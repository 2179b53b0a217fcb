"""The e-mail Funktionspostfach for Aktenhub: an IMAP folder as a source (``type: mailbox``)."""

from __future__ import annotations

from .config import AcknowledgementSettings, ImapSettings, MailboxConfig, SmtpSettings, TlsMode
from .mapping import MailMapping, MailRule
from .message import Mail, MailFile, Unreadable, parse_mail
from .source import MailboxSource

__all__ = [
    "AcknowledgementSettings",
    "ImapSettings",
    "Mail",
    "MailFile",
    "MailMapping",
    "MailRule",
    "MailboxConfig",
    "MailboxSource",
    "SmtpSettings",
    "TlsMode",
    "Unreadable",
    "parse_mail",
]
