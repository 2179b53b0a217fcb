"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, hookimpl

from .demo import MailboxScenario
from .source import MailboxSource


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The e-mail Funktionspostfach source (``type: mailbox``)."""
    return [MailboxSource]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """E-mails into a throw-away Dovecot, taken in by the hub (skipped without Dovecot)."""
    return [MailboxScenario()]
