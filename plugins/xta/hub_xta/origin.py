"""The XTA transport data of the message an application came in, kept on the application.

A connector that forwards the message unchanged (the `xoev` transport's `forward: original`) runs later,
perhaps in another process, and only has the application: so the source records the message's service,
business scenario, message type and payload schema as correlations ``xta.<field>`` beside ``xta`` (the
message id), readable for operators, and the forward reads them back.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from .models import MessageLabels, MessageMetaData

PREFIX = "xta."


class XtaOrigin(MessageLabels):
    """Under which service and message type an application's message came over XTA."""

    @classmethod
    def of(cls, metadata: MessageMetaData) -> XtaOrigin:
        """The transport data of a fetched message."""
        return cls.model_validate(metadata.model_dump(include=set(cls.model_fields)))

    def correlations(self) -> dict[str, str]:
        """The flat correlation entries ``xta.<field>``."""
        return {f"{PREFIX}{k}": v for k, v in self.model_dump(exclude_none=True).items()}

    @classmethod
    def from_correlations(cls, correlations: Mapping[str, str]) -> XtaOrigin | None:
        """Read it back; None if the application's source recorded none (or not all of it)."""
        found = {k[len(PREFIX) :]: v for k, v in correlations.items() if k.startswith(PREFIX)}
        try:
            return cls.model_validate({k: v for k, v in found.items() if k in cls.model_fields})
        except ValidationError:
            return None
