"""`type: rest`: create the case through one operation of the Fachverfahren's OpenAPI description.

The request body is the route mapping's `payloads.<connector>` (or the payload `payload:` names),
checked against the operation's description before it is sent: a body that does not fit is a
`Permanent` failure naming each misfit, and the Fachverfahren never sees it. The idempotency key
(application id and revision) makes a repeated delivery the same case on a system that honours it;
the case's id is also checkpointed, so a retry after a lost answer's checkpoint is the only repeat.

Answers come back as callbacks to `POST /callback/<connector>` (see `callbacks.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from hub import (
    Answer,
    CallbackAuth,
    CheckResult,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    FileRecord,
    Manifest,
    Outbound,
    Permanent,
    Sink,
)

from ..cases import case_delivery
from . import jsonpaths
from .callbacks import CallbackReader
from .config import RestConfig
from .openapi import InvalidRequest, OpenApiDocument, Operation, load_document

log = logging.getLogger(__name__)

_CHECKPOINT = "rest.case"


class RestSink(Sink[RestConfig]):
    """Delivers an application as a case into a Fachverfahren with an OpenAPI-described JSON API."""

    kind: ClassVar[str] = "rest"
    Config = RestConfig
    manifest = Manifest(
        name="rest",
        version="0.1.0",
        standards=("OpenAPI 3.0", "OpenAPI 3.1", "JSONPath (RFC 9535)", "OAuth 2.0 client credentials"),
        description="any Fachverfahren with a JSON API described by an OpenAPI 3 file",
    )

    def __init__(self, config: RestConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.document: OpenApiDocument = load_document(config.openapi, config.base_url)
        self.operation: Operation = self.document.operation(config.operation)
        self.http: Outbound = context.outbound(config, system=f"the Fachverfahren {context.name!r}")
        self.callbacks = CallbackReader(config, context, self.http)

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Create the case (once) and return its id and case number."""
        done = ctx.checkpoints.get(_CHECKPOINT)
        if isinstance(done, dict):
            return case_delivery(self.name, done, duplicate=True)
        body = self._body(record)
        values = {**self.config.parameters}
        path = self.operation.fill_path(values)
        query = {k: v for k, v in values.items() if self.operation.parameters.get(k) == "query"}
        headers = {k: v for k, v in values.items() if self.operation.parameters.get(k) == "header"}
        if self.config.idempotency_header:
            headers[self.config.idempotency_header] = idempotency_key(record)
        try:
            self.document.check(
                self.document.planned(self.operation, path, body=body, query=query, headers=headers)
            )
        except InvalidRequest as exc:
            raise Permanent(
                f"the request to {self.config.operation} does not fit {self.config.openapi.name}: {exc}"
            ) from None
        what = f"{self.config.operation} for application {record.application_id}"
        answer = await self.http.request(
            self.operation.method, path, what, json=body, headers=headers, params=query or None
        )
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
        return case_delivery(
            self.name, done, duplicate=answer.status == 200 and self._replayed(answer.headers)
        )

    @staticmethod
    def _replayed(headers: Mapping[str, str]) -> bool:
        # Stripe-style servers mark an answer repeated for a known idempotency key.
        return any(k.lower() == "idempotent-replayed" and v.lower() == "true" for k, v in headers.items())

    def _body(self, record: FileRecord) -> Any:
        key = self.config.payload or self.name
        if not self.operation.takes_json:
            return None
        body = record.payloads.get(key)
        if body is None:
            raise Permanent(
                f"the route's mapping gives no payloads.{key} for {self.config.operation}: "
                "add it to the mapping file (it is the request body)"
            )
        return body

    def callback_auth(self) -> CallbackAuth | None:
        """The configured callback authentication (None: no callbacks)."""
        return self.config.callback

    async def callback_answers(self, body: bytes, headers: Mapping[str, str]) -> Sequence[Answer]:
        """The answers in a callback of the Fachverfahren (decisions already in the blob store)."""
        return await self.callbacks.answers(body)

    async def check(self) -> CheckResult:
        """The description loaded and the operation found; the API reachable with our credentials."""
        details = {**self.http.describe(), "operation": f"{self.operation.method} {self.operation.path}"}
        answer = await self.http.send("GET", "", "reachability check")
        if answer.status in (401, 403):
            return CheckResult(ok=False, message=f"credentials refused ({answer.status})", details=details)
        if answer.status >= 500:
            return CheckResult(ok=False, message=f"the API answers {answer.status}", details=details)
        return CheckResult(ok=True, message="the API answers", details=details)


def idempotency_key(record: FileRecord) -> str:
    """The key one delivery of one revision of an application carries, in every attempt."""
    return f"aktenhub-{record.application_id}-{record.revision}"
