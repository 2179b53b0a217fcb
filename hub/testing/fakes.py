"""Fake connectors for tests: a JSON webhook source, recording sinks, notifier and identity provider.

`AnsweringSink` is a fake Fachverfahren: it records deliveries and gives answers back (queued by the
test with `issue`, taken by `poll_answers` or sent to `POST /callback/<name>`); `RecordingEfile` is an
e-file that also records what answers change (`record_answer`).

Register the module as an extra plugin: ``start_hub(settings, extra_plugins=[hub.testing.fakes])``.
Their state lives on the connector instance (``running.hub.connectors["name"]``), never in globals.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from hub.answers import Answer, AnswerRecord, CallbackAuth, UnknownApplication
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
    Attachment,
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
    file_number: str | None = Field(None, description="the number the target gives (Delivery.file_number)")
    record_dir: Path | None = Field(
        None, description="also keep what answers change as files here, and deliveries under deliveries/"
    )
    hold_file: Path | None = Field(
        None, description="after filing an answer, hang if this file exists (a test kills the hub then)"
    )
    hold_delivery_file: Path | None = Field(
        None,
        description="after recording a delivery, hang if this file exists (a test kills the hub then, or "
        "lets it answer with `release_deliveries()`)",
    )


class Ledger:
    """What a fake target did, as files in a directory: it outlives the hub process (crash tests)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def called(self) -> None:
        """Count one call (a line in calls.log)."""
        with (self.directory / "calls.log").open("a", encoding="utf-8") as log:
            log.write("call\n")

    def record(self, key: str, data: str) -> bool:
        """Keep `data` under `key` unless kept before; True if it is new (written atomically)."""
        path = self.directory / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"
        if path.exists():
            return False
        part = path.with_suffix(".part")
        part.write_text(data, encoding="utf-8")
        os.replace(part, path)
        return True

    def records(self) -> list[str]:
        """Everything kept, as written."""
        return [p.read_text(encoding="utf-8") for p in sorted(self.directory.glob("*.json"))]

    def calls(self) -> int:
        """How many calls were counted."""
        log = self.directory / "calls.log"
        return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


class RecordedPayload(BaseModel):
    """What the recording sink reads from a mapping's `payloads.<target>`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    count: int = 0


class RecordingSink(Sink[RecordingSinkConfig]):
    """Keeps deliveries in memory, one per application (idempotent), with switchable faults."""

    kind = "test-recording"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = RecordingSinkConfig
    Payload = RecordedPayload

    def __init__(self, config: RecordingSinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self.poison = config.poison  # tests switch this off to model "the sink was fixed"
        self.delivered: dict[str, FileRecord] = {}
        self.payloads: dict[str, RecordedPayload] = {}  # what each delivery read, typed
        self.attempts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0  # the most deliveries that ran at once
        self._released = asyncio.Event()

    def release_deliveries(self) -> None:
        """Let the deliveries `hold_delivery_file` holds answer (and every later one at once)."""
        self._released.set()

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        n = self.attempts[record.application_id] = self.attempts.get(record.application_id, 0) + 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.config.delay_seconds:
                await asyncio.sleep(self.config.delay_seconds)  # a slow target
        finally:
            self.in_flight -= 1
        if self.poison:
            raise Permanent("the target refused the record: field Aktenzeichen is mandatory")
        if n <= self.config.fail_first:
            raise Retryable(f"503 Service Unavailable (attempt {n})")
        duplicate = record.application_id in self.delivered
        self.delivered[record.application_id] = record
        self.payloads[record.application_id] = self.payload(record, RecordedPayload)
        if self.config.record_dir is not None:
            ledger = Ledger(self.config.record_dir / "deliveries")
            ledger.called()
            key = f"{record.application_id}/{record.revision}"
            duplicate = not ledger.record(key, record.model_dump_json())
        hold = self.config.hold_delivery_file
        if hold is not None and hold.exists():
            await self._released.wait()  # a target that took it and has not answered (yet)
        return Delivery(
            target=self.name,
            reference=f"rec-{record.application_id}",
            file_number=self.config.file_number,
            duplicate=duplicate,
        )


class RecordingEfile(RecordingSink):
    """A recording e-file: its number is the Aktenzeichen, and it records what answers change."""

    kind = "test-efile"
    is_efile = True

    def __init__(self, config: RecordingSinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self.answered: dict[str, AnswerRecord] = {}  # by answer id: filed once each
        self.answer_calls = 0

    async def record_answer(self, record: AnswerRecord, ctx: DeliveryContext) -> Delivery:
        self.answer_calls += 1
        if self.poison:
            raise Permanent("the e-file refused the index update: field FV_AZ is unknown")
        duplicate = record.answer_id in self.answered
        self.answered.setdefault(record.answer_id, record)
        if self.config.record_dir is not None:
            ledger = Ledger(self.config.record_dir)
            ledger.called()
            duplicate = not ledger.record(record.answer_id, record.model_dump_json())
        hold = self.config.hold_file
        if hold is not None and hold.exists():
            await asyncio.Event().wait()  # a target that filed but never answers: the test kills the hub
        return Delivery(
            target=self.name,
            reference=f"doc-{record.answer_id}",
            correlations={"decision": f"doc-{record.answer_id}"} if record.documents else {},
            duplicate=duplicate,
        )


class AnsweringSinkConfig(RecordingSinkConfig):
    """Settings of the answering sink (a fake Fachverfahren)."""

    answer_poll_seconds: float | None = Field(None, gt=0, description="poll for answers this often")
    callback_secret: SecretStr | None = Field(None, description="take callbacks signed with this secret")
    callback_scheme: str = Field("hmac-sha256", pattern="^(hmac-sha256|token)$")


class CallbackDecision(BaseModel):
    """A decision carried in a callback body, base64-encoded."""

    name: str
    media_type: str = "application/pdf"
    content_base64: str


class AnsweringSink(RecordingSink):
    """A fake Fachverfahren: records deliveries (reference ``rec-<application id>``) and answers.

    The test queues answers with `issue`; `poll_answers` hands each to the core and acknowledges it
    (removes it from the queue, notes it in `acknowledged`) only after the core stored it. Callbacks
    carry ``{"answers": [<Answer as JSON, "decision" as {name, media_type, content_base64}>]}``.
    """

    kind = "test-answering"
    Config: ClassVar[type[ConnectorConfig]] = AnsweringSinkConfig

    def __init__(self, config: AnsweringSinkConfig, context: Any) -> None:
        super().__init__(config, context)
        self.answer_poll_interval = config.answer_poll_seconds
        self.outbox: dict[str, Answer] = {}  # answers given, not yet acknowledged
        self.acknowledged: list[str] = []
        self.refused: list[str] = []  # answers the hub knew no application for

    def issue(self, answer: Answer) -> None:
        """The Fachverfahren gives an answer (taken at the next poll)."""
        self.outbox[answer.answer_id] = answer

    async def poll_answers(self) -> int:
        taken = 0
        for answer_id, answer in list(self.outbox.items()):
            try:
                await self.context.answer(answer)
            except UnknownApplication:
                self.refused.append(answer_id)  # a real system moves it to an error folder
            else:
                taken += 1
                self.acknowledged.append(answer_id)
            del self.outbox[answer_id]
        return taken

    def callback_auth(self) -> CallbackAuth | None:
        config = self.config
        assert isinstance(config, AnsweringSinkConfig)
        if config.callback_secret is None:
            return None
        scheme = "token" if config.callback_scheme == "token" else "hmac-sha256"
        return CallbackAuth(secret=config.callback_secret, scheme=scheme)

    async def callback_answers(self, body: bytes, headers: Mapping[str, str]) -> Sequence[Answer]:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadSubmission("callback body is not JSON") from None
        items = data.get("answers") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise BadSubmission('expected {"answers": [...]}', 422)
        answers = []
        for item in items:
            try:
                decision = item.pop("decision", None)
                answer = Answer.model_validate(item)
                if decision is not None:
                    answer.decision = await self._store(CallbackDecision.model_validate(decision))
            except (ValidationError, ValueError) as exc:
                raise BadSubmission(f"not an answer: {exc}", 422) from None
            answers.append(answer)
        return answers

    async def _store(self, decision: CallbackDecision) -> Attachment:
        content = base64.b64decode(decision.content_base64, validate=True)
        info = await self.context.blobs.write_bytes(content)
        return Attachment(
            name=decision.name,
            media_type=decision.media_type,
            size=info.size,
            sha256=info.sha256,
            blob=info.ref,
        )


class RecordingNotifierConfig(ConnectorConfig):
    """Settings of the recording notifier."""

    record_dir: Path | None = Field(
        None, description="also keep status receipts as files here, the other receipts under receipts/"
    )


class RecordingNotifier(Notifier[RecordingNotifierConfig]):
    """Keeps receipts in memory (status receipts once per answer, also as files with `record_dir`)."""

    kind = "test-notifier"
    manifest = MANIFEST
    Config: ClassVar[type[ConnectorConfig]] = RecordingNotifierConfig

    def __init__(self, config: RecordingNotifierConfig, context: Any) -> None:
        super().__init__(config, context)
        self.receipts: dict[tuple[str, str], Receipt] = {}
        self.statuses: dict[tuple[str, str], Receipt] = {}  # status receipts by (application, answer id)
        self.status_calls = 0

    async def notify(self, application: Application, receipt: Receipt) -> dict[str, str]:
        """Record the receipt; the "message id" it returns is ``msg-<application>-<kind or answer>``."""
        ids = {"message": f"msg-{application.id}-{receipt.answer_id or receipt.kind.value}"}
        if receipt.answer_id is not None:
            self.status_calls += 1
            self.statuses[(application.id, receipt.answer_id)] = receipt
            if self.config.record_dir is not None:
                ledger = Ledger(self.config.record_dir)
                ledger.called()
                ledger.record(f"{application.id}/{receipt.answer_id}", receipt.model_dump_json())
            return ids
        self.receipts[(application.id, receipt.kind.value)] = receipt
        if self.config.record_dir is not None:
            ledger = Ledger(self.config.record_dir / "receipts")
            ledger.called()
            ledger.record(f"{application.id}/{receipt.kind.value}", receipt.model_dump_json())
        return ids


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
    return [JsonSource, RecordingSink, RecordingEfile, AnsweringSink, RecordingNotifier, FormLevelIdentity]
