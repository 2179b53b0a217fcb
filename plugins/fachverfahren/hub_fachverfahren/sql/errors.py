"""Database errors as the hub's error classes: what a retry may heal, and what only a fix heals.

Messages name the error's kind and the database's own first line (which names the column or
constraint), never the statement's parameters (they may hold personal data).
"""

from __future__ import annotations

from sqlalchemy import exc as sa

from hub import Permanent, Retryable


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    # The async adapters print "<class 'asyncpg.exceptions.X'>: message"
    if text.startswith("<class '") and "'>: " in text:
        text = text.split("'>: ", 1)[1]
    return text[:300]


def classify(error: BaseException, what: str) -> Retryable | Permanent:
    """The hub's error for a failure while `what` (e.g. "inserting the staging row")."""
    if isinstance(error, TimeoutError):
        return Retryable(f"database did not answer in time while {what}")
    if isinstance(error, OSError):
        return Retryable(f"database unreachable while {what}: {error.strerror or type(error).__name__}")
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return Retryable(f"database connection lost while {what}: {_first_line(error)}")
    if isinstance(error, sa.DataError):
        # The database's message quotes the value: name only the kind.
        return Permanent(f"a value does not fit its column's type or length while {what}")
    if isinstance(error, sa.IntegrityError | sa.ProgrammingError):
        return Permanent(f"the database refused {what}: {_first_line(error)}")
    if isinstance(error, sa.OperationalError | sa.InterfaceError | sa.InternalError):
        # Connection refused, server shutting down, deadlock, serialization failure: all pass.
        return Retryable(f"database error while {what}: {_first_line(error)}")
    if isinstance(error, sa.NotSupportedError):
        return Permanent(f"the database does not support {what}: {_first_line(error)}")
    return Retryable(f"database error while {what}: {_first_line(error)}")
