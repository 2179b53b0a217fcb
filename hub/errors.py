"""Error classes that tell the core how to treat a failure.

Connectors raise `Retryable` for conditions that may pass (timeouts, 5xx, connection refused) and
`Permanent` for conditions that will not pass by trying again (4xx validation, mapping errors). Any other
exception counts as retryable. The core owns retry timing; a plugin never sleeps and retries itself.
"""

from __future__ import annotations


class AktenhubError(Exception):
    """Base class of all errors the hub raises on purpose."""


class Retryable(AktenhubError):
    """A step failed for a reason that may pass; the core retries it with backoff."""


class Permanent(AktenhubError):
    """A step failed for a reason that retrying will not fix; the task becomes dead at once."""


class StorageFull(Retryable):
    """The journal's or the blob store's filesystem is full or over quota; passes when space returns."""

    def __init__(self, where: str, cause: str) -> None:
        super().__init__(f"{where}: {cause}")
        self.where = where
        self.cause = cause


# 4xx answers that pass by themselves: the server gave up waiting (408), too early (425), throttling (429).
TRANSIENT_CLIENT_ERRORS = frozenset({408, 425, 429})


def transient_http_status(status: int) -> bool:
    """Whether an HTTP error status may pass by trying again (5xx, 408, 425, 429): then `Retryable`."""
    return status >= 500 or status in TRANSIENT_CLIENT_ERRORS


class Rejection(AktenhubError):
    """A business outcome: the application is refused (e.g. trust level too low), with a reason.

    Not an error of the hub: the application ends in state ``rejected`` and the applicant is answered.
    """

    def __init__(self, reason: str, code: str = "rejected") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class BadSubmission(AktenhubError):
    """An incoming submission is malformed or not allowed; answered with a 4xx and nothing stored."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ConfigError(AktenhubError):
    """The configuration is invalid; the message names the file, the key path and what is expected."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class PluginError(AktenhubError):
    """A plugin could not be loaded or conflicts with another one."""
