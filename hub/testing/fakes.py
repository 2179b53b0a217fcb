"""Fake connectors for tests: a JSON webhook source, a recording sink, notifier and identity provider.

Register the module as an extra plugin: ``start_hub(settings, extra_plugins=[hub.testing.fakes])``.
Their state lives on the connector instance (``running.hub.connectors["name"]``), never in globals.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web
from pydantic import Field

from hub.connectors import (
    Connector,
    ConnectorConfig,
    DeliveryContext,
    IdentityProvider,
    Intake,
    Manifest,
    Notifier,
    Sink,
    Source,
    Verification,
)
from hub.errors import BadSubmission, Permanent, Rejection, Retryable
from hub.hookspecs import hookimpl
from hub.models import (
    Application,
    Delivery,
    FileRecord,
    Identity,
    OriginalSubmission,
    Receipt,
    TrustLevel,
)

MANIFEST = Manifest(name="aktenhub test fakes", version="1", standards=("none",))


class JsonSourceConfig(ConnectorConfig):
    """Settings of the JSON source."""

    redacts: bool = Field(True, description="false: a source that cannot redact its original")


class JsonSource(Source[JsonSourceConfig]):
    """Takes `{"id": ..., "form": {...}}` as JSON at `POST /intake/<name>/<service>`."""

    kind = "test-json"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = JsonSourceConfig

    async def redact_original(self, original: OriginalSubmission, fields: Sequence[str]) -> bytes | None:
        """The body without these form fields (written again as compact JSON)."""
        assert isinstance(self.config, JsonSourceConfig)
        if not self.config.redacts:
            return None
        body = json.loads(await self.context.blobs.read_bytes(original.blob))
        body["form"] = {k: v for k, v in body.get("form", {}).items() if k not in fields}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def receive(self, request: web.Request, service: str) -> Intake:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadSubmission("body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("form", {}), dict):
            raise BadSubmission("expected a JSON object with `form`")
        original = await self.context.blobs.write_bytes(raw)
        return Intake(
            Application(
                source=self.name,
                external_id=str(body.get("id") or hashlib.sha256(raw).hexdigest()),
                service=service,
                form=body.get("form", {}),
                original=OriginalSubmission(
                    media_type="application/json",
                    blob=original.ref,
                    size=original.size,
                    sha256=original.sha256,
                ),
            )
        )


class RecordingSinkConfig(ConnectorConfig):
    """Settings of the recording sink."""

    fail_first: int = Field(0, ge=0, description="raise Retryable on the first N attempts")
    poison: bool = Field(False, description="raise Permanent on every attempt")
    delay_seconds: float = Field(0.0, ge=0)


class RecordingSink(Sink[RecordingSinkConfig]):
    """Keeps deliveries in memory, one per application (idempotent), with switchable faults."""

    kind = "test-recording"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = RecordingSinkConfig

    def __init__(self, config: RecordingSinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self.settings = config
        self.poison = config.poison  # tests switch this off to model "the sink was fixed"
        self.delivered: dict[str, FileRecord] = {}
        self.attempts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0  # the most deliveries that ran at once

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        n = self.attempts[record.application_id] = self.attempts.get(record.application_id, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.settings.delay_seconds:
                await asyncio.sleep(self.settings.delay_seconds)  # a slow target
        finally:
            self.in_flight -= 1
        if self.poison:
            raise Permanent("the target refused the record: field Aktenzeichen is mandatory")
        if n <= self.settings.fail_first:
            raise Retryable(f"503 Service Unavailable (attempt {n})")
        duplicate = record.application_id in self.delivered
        self.delivered[record.application_id] = record
        return Delivery(target=self.name, reference=f"rec-{record.application_id}", duplicate=duplicate)


class RecordingNotifier(Notifier[ConnectorConfig]):
    """Keeps receipts in memory."""

    kind = "test-notifier"
    manifest = MANIFEST

    def __init__(self, config: RecordingSinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self.receipts: dict[tuple[str, str], Receipt] = {}

    async def notify(self, application: Application, receipt: Receipt) -> None:
        self.receipts[(application.id, receipt.kind.value)] = receipt


class FormLevelIdentity(IdentityProvider[ConnectorConfig]):
    """Takes the trust level from form field `level` (untergeordnet..hoch); no field → rejected."""

    kind = "test-identity"
    manifest = MANIFEST

    async def verify(self, application: Application, minimum_level: TrustLevel | None) -> Verification:
        level = application.form.get("level")
        if not isinstance(level, str) or level not in {t.value for t in TrustLevel}:
            raise Rejection("no identity in the submission", code="no-identity")
        return Verification(
            identity=Identity(
                verified=True, provider="test", asserted_by="form-server", level=TrustLevel(level)
            )
        )


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The fakes."""
    return [JsonSource, RecordingSink, RecordingNotifier, FormLevelIdentity]
