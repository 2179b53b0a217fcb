"""What an answer to a building application needs, kept on the application as correlations.

The source knows the original message (its XTA metadata, its XBau head); the notifier, running later
and perhaps in another process, only has the application. So the source writes a `ReplyTo` into the
application's correlations as flat ``bauportal.<path>`` entries (readable for operators: the XTA
message id, the XBau message UUID, the portal's kennung), and the notifier reads it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub_xta import PartyId
from pydantic import BaseModel, ConfigDict, ValidationError

from hub import Permanent

from .xbau import Behoerde, MessageIdentity

PREFIX = "bauportal."


class ReplyTo(BaseModel):
    """The original message and its sender: whom to answer, how, and what to refer to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    xta_message_id: str
    xta_author: PartyId
    xta_service: str
    xta_scenario: str
    xta_scenario_list: str | None = None
    xta_scenario_version: str | None = None
    xta_process: str | None = None
    original: MessageIdentity
    portal: Behoerde  # the autor of the original message: the leser of the answers
    addressee: Behoerde | None = None  # the leser of the original message
    referenz: str | None = None  # referenzAntragsservice
    rejection: str | None = None  # the kind of refusal (schema, xml, anlagen), if refused

    def correlations(self) -> dict[str, str]:
        """The flat correlation entries."""
        flat: dict[str, str] = {}
        _flatten(self.model_dump(mode="json", exclude_none=True), PREFIX.rstrip("."), flat)
        return flat

    @classmethod
    def from_correlations(cls, correlations: Mapping[str, str]) -> ReplyTo:
        """Read it back; `Permanent` if the application did not come from a Bauportal.NRW source."""
        nested: dict[str, Any] = {}
        for key, value in correlations.items():
            if not key.startswith(PREFIX):
                continue
            *parents, last = key[len(PREFIX) :].split(".")
            node = nested
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        if not nested:
            raise Permanent("the application did not come from a Bauportal.NRW source: no XBau sender known")
        try:
            return cls.model_validate(nested)
        except ValidationError as exc:
            raise Permanent(f"the application's XBau sender data is incomplete: {exc}") from None


def _flatten(value: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}", out)
    else:
        out[path] = str(value)
