"""The journal's contract (`hub.testing.journal_contract`) on every backend: SQLite and PostgreSQL."""

from hub.testing.journal_contract import *  # noqa: F403 - the suite's tests and fixtures
