"""The e-mail part of `aktenhub demo` (placeholder until the scenario is written)."""

from __future__ import annotations

from hub import DemoScenario


class MailboxScenario(DemoScenario):
    """E-mails into a throw-away Dovecot."""

    name = "mailbox"
