"""`type: rest`: create the case through one operation of the Fachverfahren's OpenAPI description.

The request body is the route mapping's `payloads.<connector>`,
checked against the operation's description before it is sent: a body that does not fit is a
`Permanent` failure naming each misfit, and the Fachverfahren never sees it. The idempotency key
(application id and revision) makes a repeated delivery the same case on a system that honours it;
the case's id is also checkpointed, so a retry after a lost answer's checkpoint is the only repeat.

Answers come back as callbacks to `POST /callback/<connector>`, or by polling an operation that lists
them (`answers:`), each acknowledged upstream only after the return channel stored it; both are read
by the configured `answer_fields` (see `hub_fachverfahren.answers`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
from aiohttp.payload import AsyncIterablePayload

from hub import (
    Answer,
    BadSubmission,
    CallbackAuth,
    CheckResult,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    Document,
    FileRecord,
    HttpAnswer,
    Manifest,
    Outbound,
    Permanent,
    Retryable,
    Sink,
    jsonpaths,
)

from ..answers import AnswerReader, Unreadable, bad_submission, take_answers
from ..cases import JsonObject, case_delivery, payload_of
from .config import RestConfig
from .openapi import InvalidRequest, OpenApiDocument, Operation, load_document

log = logging.getLogger(__name__)

_CHECKPOINT = "rest.case"
_DOCUMENTS = "rest.documents"  # indexes of the record's documents uploaded


class RestSink(Sink[RestConfig]):
    """Delivers an application as a case into a Fachverfahren with an OpenAPI-described JSON API."""

    kind: ClassVar[str] = "rest"
    Config = RestConfig
    Payload = JsonObject
    manifest = Manifest(
        name="rest",
        version="0.1.0",
        standards=("OpenAPI 3.0", "OpenAPI 3.1", "JSONPath", "OAuth 2.0 client credentials"),
        description="any Fachverfahren with a JSON API described by an OpenAPI 3 file",
    )

    def __init__(self, config: RestConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.document: OpenApiDocument = load_document(config.openapi, config.base_url)
        self.operation: Operation = self.document.operation(config.operation)
        self.http: Outbound = context.outbound(config, system=f"the Fachverfahren {context.name!r}")
        self.reader = AnswerReader(
            config.answer_fields,
            config.status_map,
            context.blobs,
            max_decision_bytes=config.max_decision_bytes,
            http=self.http,
        )
        if config.answers is not None:
            self.answer_poll_interval = config.answers.interval

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Create the case (once), upload its documents (each once); return its id and case number."""
        done = ctx.checkpoints.get(_CHECKPOINT)
        duplicate = isinstance(done, dict)
        if not isinstance(done, dict):
            done, duplicate = await self._create(record, ctx)
        if self.config.documents is not None:
            await self._upload(record, ctx, str(done["reference"]))
        return case_delivery(self.name, done, duplicate=duplicate)

    async def _create(self, record: FileRecord, ctx: DeliveryContext) -> tuple[dict[str, Any], bool]:
        headers = {}
        if self.config.idempotency_header:
            headers[self.config.idempotency_header] = idempotency_key(record)
        what = f"{self.config.operation} for application {record.application_id}"
        answer = await self._call(self.operation, what, body=self._body(record), headers=headers)
        created = answer.json(what) if answer.body else {}
        case_number = jsonpaths.text(self.config.case_number, created)
        reference = jsonpaths.text(self.config.reference, created) if self.config.reference else case_number
        if reference is None:
            raise Permanent(
                f"{what}: the answer holds no case at {self.config.reference or self.config.case_number}"
            )
        done = {"reference": reference, "case_number": case_number}
        await ctx.checkpoint(_CHECKPOINT, done)
        log.info("case created connector=%s application=%s", self.name, record.application_id)
        return done, answer.status == 200 and self._replayed(answer.headers)

    async def _upload(self, record: FileRecord, ctx: DeliveryContext, reference: str) -> None:
        """Each document streamed from the blob store as multipart/form-data, checkpointed one by one."""
        upload = self.config.documents
        assert upload is not None
        operation = self.document.operation(upload.operation)
        uploaded = list(ctx.checkpoints.get(_DOCUMENTS, []))
        for index, document in enumerate(record.documents):
            if index in uploaded:
                continue
            blob = document.blob
            if blob is None:
                raise Permanent(f"document {index} ({document.type}) has no content: nothing to upload")

            def body(blob: str = blob, document: Document = document) -> aiohttp.MultipartWriter:
                writer = aiohttp.MultipartWriter("form-data")
                part = AsyncIterablePayload(ctx.blobs.read(blob), content_type=document.media_type)
                part.set_content_disposition(
                    "form-data", quote_fields=False, name=upload.field, filename=document.name
                )
                writer.append_payload(part)
                return writer

            headers = {}
            if self.config.idempotency_header:
                headers[self.config.idempotency_header] = f"{idempotency_key(record)}-document-{index}"
            what = f"{upload.operation} document {index} for application {record.application_id}"
            await self._call(
                operation, what, data=body, headers=headers, values={upload.parameter: reference}
            )
            uploaded.append(index)
            await ctx.checkpoint(_DOCUMENTS, uploaded)

    async def _call(
        self,
        operation: Operation,
        what: str,
        *,
        body: Any = None,
        data: Callable[[], aiohttp.MultipartWriter] | None = None,
        headers: Mapping[str, str] | None = None,
        values: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """One call of a described operation, checked against the description before it is sent."""
        values = {**self.config.parameters, **(values or {})}
        path = operation.fill_path(values)
        query = {k: v for k, v in values.items() if operation.parameters.get(k) == "query"}
        sent = {k: v for k, v in values.items() if operation.parameters.get(k) == "header"}
        sent.update(headers or {})
        try:
            planned = self.document.planned(
                operation, path, body=body, query=query, headers=sent, content_type="multipart/form-data"
            )
            self.document.check(planned, body=data is None)
        except InvalidRequest as exc:
            raise Permanent(
                f"the request to {operation.operation_id} does not fit {self.config.openapi.name}: {exc}"
            ) from None
        return await self.http.request(
            operation.method, path, what, json=body, data=data, headers=sent, params=query or None
        )

    @staticmethod
    def _replayed(headers: Mapping[str, str]) -> bool:
        # Stripe-style servers mark an answer repeated for a known idempotency key.
        return any(k.lower() == "idempotent-replayed" and v.lower() == "true" for k, v in headers.items())

    def _body(self, record: FileRecord) -> Any:
        if not self.operation.takes_json:
            return None
        return payload_of(self, record, f"it is the body of {self.config.operation}")

    def callback_auth(self) -> CallbackAuth | None:
        """The configured callback authentication (None: no callbacks)."""
        return self.config.callback

    async def callback_answers(self, body: bytes, headers: Mapping[str, str]) -> Sequence[Answer]:
        """The answers in a callback of the Fachverfahren (decisions already in the blob store)."""
        try:
            data = json.loads(body)
        except ValueError:
            raise BadSubmission("the callback body is not JSON") from None
        try:
            items = self.reader.items(data)
            if not items:
                raise Unreadable(f"nothing at {self.config.answer_fields.each}")
            return [await self.reader.answer(item) for item in items]
        except Unreadable as exc:
            raise bad_submission(exc) from None

    async def poll_answers(self) -> int:
        """Fetch new answers, hand each to the return channel, then acknowledge it upstream."""
        polling = self.config.answers
        if polling is None:
            return 0
        what = f"{polling.operation} (answers)"
        listed = await self._call(self.document.operation(polling.operation), what)

        async def acknowledge(answer: Answer) -> None:
            assert polling is not None and polling.acknowledge is not None
            values = {polling.parameter: answer.answer_id} if polling.parameter else {}
            operation = self.document.operation(polling.acknowledge)
            await self._call(operation, f"{polling.acknowledge} {answer.answer_id}", values=values)

        items = self.reader.items(listed.json(what) if listed.body else [])
        return await take_answers(
            self.reader, items, self.context, acknowledge if polling.acknowledge else None
        )

    async def check(self) -> CheckResult:
        """The description loaded and the operation found; the API reachable with our credentials."""
        details = {**self.http.describe(), "operation": f"{self.operation.method} {self.operation.path}"}
        try:
            # With OAuth2 this fetches a token: the credentials are tried, too.
            answer = await self.http.send("GET", "", "reachability check")
        except (Retryable, Permanent) as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        if answer.status in (401, 403):
            return CheckResult(ok=False, message=f"credentials refused ({answer.status})", details=details)
        if answer.status >= 500:
            return CheckResult(ok=False, message=f"the API answers {answer.status}", details=details)
        return CheckResult(ok=True, message="the API answers", details=details)


def idempotency_key(record: FileRecord) -> str:
    """The key one delivery of one revision of an application carries, in every attempt."""
    return f"aktenhub-{record.application_id}-{record.revision}"
