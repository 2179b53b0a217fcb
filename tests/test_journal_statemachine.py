"""The journal's state machine (`hub.testing.journal_statemachine`) on every backend."""

from __future__ import annotations

from hub.testing.journal_backends import JournalBackend
from hub.testing.journal_contract import journal_backend  # noqa: F401 - the fixture, once per backend
from hub.testing.journal_statemachine import run_journal_machine


def test_the_journal_holds_what_the_model_says(journal_backend: JournalBackend) -> None:  # noqa: F811
    run_journal_machine(journal_backend)
