"""Dead letters as operators sort them: dead steps grouped by target, error code and error text.

A target that fails for one reason fails many applications with texts that differ only in the ids,
numbers and quoted values they name ("record 4711 refused", "record 4712 refused"). `error_group`
normalises a text so that such failures fall into one group: what the console's dead-letter page
shows, and what a bulk replay or abandon of that group selects (`ApplicationFilter.error_group`).
The journal applies the same function in SQL (`hub.journal.dead_sql`), so the group counted is
the group acted on.

Viewers see groups by target and error code only: the error text may quote personal data.
"""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, Field

from hub.models import UtcDateTime

MAX_GROUP_TEXT = 300  # characters of a normalised error text; the rest does not split groups
# In forms and filters: the group of steps without an error code (or text), unlike "any".
NONE_MARK = "-"

# One pass over the text; each alternative names its placeholder.
_VARYING = re.compile(
    # uuids, the hub's own ids (app_<hex>) and other long hex runs: one id is like any other
    r"(?P<id>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b[a-z]+_[0-9a-f]{16,}\b|\b[0-9a-f]{12,}\b)"
    # quoted values: a field's content, a file name, a person's name
    r"|(?P<quoted>'[^']*'|\"[^\"]*\"|„[^“”]*[“”]|«[^»]*»)"
    r"|(?P<number>\d+)"
    r"|(?P<space>\s+)",
    re.IGNORECASE,
)
_PLACEHOLDERS = {"id": "<id>", "quoted": "<...>", "number": "#", "space": " "}


def error_group(text: str | None) -> str:
    """The normalised form of an error text: ids, numbers and quoted values replaced by placeholders."""
    if not text:
        return ""
    normalised = _VARYING.sub(lambda m: _PLACEHOLDERS[m.lastgroup or "space"], text).strip()
    return normalised[:MAX_GROUP_TEXT].rstrip()


def group_digest(group: str) -> str:
    """A short stable name of an error group for the audit trail, which must not keep its text."""
    return hashlib.sha256(group.encode()).hexdigest()[:10]


class DeadGroup(BaseModel):
    """Dead steps of one target that failed the same way."""

    target: str
    error_code: str | None = Field(description="the error's class; None: the step recorded none")
    error_group: str | None = Field(
        description="the normalised error text; None for viewers (it may quote personal data)"
    )
    steps: int = Field(description="dead steps in the group")
    applications: int = Field(description="applications they belong to")
    oldest: UtcDateTime = Field(description="when the first of them went dead")
    newest: UtcDateTime = Field(description="when the last of them went dead")


class DeadLetters(BaseModel):
    """The dead steps a filter selects, grouped; `more` if groups beyond the limit were left out."""

    groups: list[DeadGroup]
    steps: int
    applications: int
    more: bool = False
