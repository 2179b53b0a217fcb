"""A Fachverfahren profile: one connector type that hands every call to a generic transport's connector.

Vendors such as K3 or Mikropro publish no interface; what an installation offers is one of the generic
transports (import folder, staging table, REST, XÖV over XTA) with the vendor's formats. A profile
(`hub_k3`, `hub_mikropro`) presets those formats in its configuration, builds the transport's own
connector from it and delegates to it here, so no transport is implemented twice and a profile overrides
only what it adds (e.g. shaping the record, or choosing between building and forwarding a message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from hub import (
    Answer,
    CallbackAuth,
    CertificateInfo,
    CheckResult,
    ConnectorConfig,
    Delivery,
    DeliveryContext,
    FileRecord,
    Sink,
)

from .xoev import XoevSink

ConfigT = TypeVar("ConfigT", bound=ConnectorConfig)


class TransportProfile(Sink[ConfigT]):
    """A sink that is a vendor's preset of a generic transport: `use` the transport's connector in
    `__init__`; every call not overridden goes to it."""

    transport: Sink[Any]
    transport_name: str

    def use(self, name: str, transport: Sink[Any]) -> None:
        """Delegate to `transport` (the generic connector built from the profile's settings)."""
        self.transport_name = name
        self.transport = transport
        self.answer_poll_interval = transport.answer_poll_interval

    async def start(self) -> None:
        """Start the transport (e.g. its database engine)."""
        await self.transport.start()

    async def stop(self) -> None:
        """Stop the transport."""
        await self.transport.stop()

    async def check(self) -> CheckResult:
        """The transport's check, naming the transport."""
        result = await self.transport.check()
        return result.model_copy(update={"details": {**result.details, "transport": self.transport_name}})

    def certificates(self) -> Sequence[CertificateInfo]:
        """The transport's certificates (e.g. the XTA client certificate)."""
        return self.transport.certificates()

    async def diagnostics(self) -> dict[str, Any]:
        """The transport's redacted state, named as the profile's."""
        state = await self.transport.diagnostics()
        return {**state, "kind": self.kind, "transport": self.transport_name}

    async def blob_references(self) -> set[str]:
        """Blobs the transport keeps outside the journal."""
        return await self.transport.blob_references()

    async def forget(self, application_ids: Sequence[str]) -> set[str]:
        """What the transport keeps of purged applications, forgotten."""
        return await self.transport.forget(application_ids)

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Deliver by the transport."""
        return await self.transport.deliver(record, ctx)

    async def poll_answers(self) -> int:
        """The Fachverfahren's new answers, the transport's way."""
        return await self.transport.poll_answers()

    def callback_auth(self) -> CallbackAuth | None:
        """The transport's callback authentication (rest with `callback:`)."""
        return self.transport.callback_auth()

    async def callback_answers(self, body: bytes, headers: Mapping[str, str]) -> Sequence[Answer]:
        """The Fachverfahren's answers in a callback."""
        return await self.transport.callback_answers(body, headers)

    async def close_upstream(self, message_id: str) -> None:
        """Close a held answer message for good (an operator decided so); only XTA holds messages."""
        if isinstance(self.transport, XoevSink):
            await self.transport.close_upstream(message_id)
