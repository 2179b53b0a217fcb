"""`type: soap`: create the case through one operation of the Fachverfahren's WSDL.

The operation's arguments are the route mapping's `payloads.<connector>`; zeep checks them against
the WSDL's schema while building the envelope (a misfit is `Permanent`, nothing is sent). SOAP faults:
a client fault (``Client``/``Sender``: the system refuses the content) is `Permanent`, a server fault
(``Server``/``Receiver``) is `Retryable`, both with the fault string. HTTP failures are classified by
the outbound helper. The case's id is checkpointed, so a retry does not create a second case; a
system that dedups by an id in the arguments (the application id, mapped) also survives a lost checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import zeep.exceptions

from hub import (
    Answer,
    CheckResult,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    FileRecord,
    Manifest,
    Outbound,
    Permanent,
    Retryable,
    Sink,
)
from hub.outbound import classify

from .. import jsonpaths
from ..answers import AnswerReader, take_answers
from ..cases import JsonObject, case_delivery, payload_of
from .config import SoapConfig
from .wsdl import SoapService, load_service

log = logging.getLogger(__name__)

_CHECKPOINT = "soap.case"
_CLIENT_FAULTS = ("client", "sender")
MAX_FAULT = 300


class SoapSink(Sink[SoapConfig]):
    """Delivers an application as a case into a Fachverfahren with a SOAP service."""

    kind: ClassVar[str] = "soap"
    Config = SoapConfig
    Payload = JsonObject
    manifest = Manifest(
        name="soap",
        version="0.1.0",
        standards=("SOAP 1.1", "SOAP 1.2", "WSDL 1.1"),
        description="any Fachverfahren with a SOAP service described by a WSDL",
    )

    def __init__(self, config: SoapConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.soap: SoapService = load_service(config.wsdl, config.service, config.port)
        self.http: Outbound = context.outbound(
            config.http_endpoint(), system=f"the Fachverfahren {context.name!r}"
        )
        self.reader = AnswerReader(
            config.answer_fields,
            config.status_map,
            context.blobs,
            max_decision_bytes=config.max_decision_bytes,
        )
        if config.answers is not None:
            self.answer_poll_interval = config.answers.interval

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Call the operation (once) and return the case's id and number."""
        done = ctx.checkpoints.get(_CHECKPOINT)
        if isinstance(done, dict):
            return case_delivery(self.name, done, duplicate=True)
        arguments = payload_of(self, record, f"they are the arguments of {self.config.operation}")
        what = f"{self.config.operation} for application {record.application_id}"
        try:
            result = await self._call(self.config.operation, arguments, what)
        except ValueError as exc:
            raise Permanent(
                f"the arguments do not fit {self.config.operation} of {self.config.wsdl.name}: {exc}"
            ) from None
        case_number = jsonpaths.text(self.config.case_number, result)
        reference = jsonpaths.text(self.config.reference, result) if self.config.reference else case_number
        if reference is None:
            raise Permanent(
                f"{what}: the answer holds no case at {self.config.reference or self.config.case_number}"
            )
        done = {"reference": reference, "case_number": case_number}
        await ctx.checkpoint(_CHECKPOINT, done)
        log.info("case created connector=%s application=%s", self.name, record.application_id)
        return case_delivery(self.name, done, duplicate=False)

    async def _call(self, operation: str, arguments: Mapping[str, Any], what: str) -> Any:
        """One SOAP call: the result as plain data; `ValueError` for arguments that do not fit the WSDL."""
        address = self.http.endpoint.base_url
        body, headers = self.soap.envelope(operation, arguments, address)
        answer = await self.http.send("POST", address, what, data=body, headers=headers)
        return self._result(operation, answer.status, answer.headers, answer.body, what)

    async def poll_answers(self) -> int:
        """Fetch new answers, hand each to the return channel, then acknowledge it upstream."""
        polling = self.config.answers
        if polling is None:
            return 0
        what = f"{polling.operation} (answers)"
        try:
            result = await self._call(polling.operation, polling.arguments, what)
        except ValueError as exc:
            raise Permanent(f"the arguments do not fit {polling.operation}: {exc}") from None

        async def acknowledge(answer: Answer) -> None:
            assert polling is not None and polling.acknowledge is not None
            arguments = {polling.parameter: answer.answer_id} if polling.parameter else {}
            try:
                await self._call(polling.acknowledge, arguments, f"{polling.acknowledge} {answer.answer_id}")
            except ValueError as exc:
                raise Permanent(f"the arguments do not fit {polling.acknowledge}: {exc}") from None

        items = self.reader.items(result if result is not None else [])
        return await take_answers(
            self.reader, items, self.context, acknowledge if polling.acknowledge else None
        )

    def _result(self, operation: str, status: int, headers: Mapping[str, str], body: bytes, what: str) -> Any:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        media = content_type.split(";")[0].strip().lower()
        if media not in ("text/xml", "application/soap+xml", "application/xml", "multipart/related"):
            classify(status, body, what, self.http.system)  # a proxy's error page, say
            raise Retryable(f"{what}: the answer is not SOAP ({media or 'no content type'})")
        try:
            return self.soap.result(operation, status, headers, body)
        except zeep.exceptions.Fault as fault:
            code = str(fault.code or "").rpartition(":")[2].lower()
            message = f"{what}: SOAP fault {fault.code}: {str(fault.message)[:MAX_FAULT]}"
            if code in _CLIENT_FAULTS:
                raise Permanent(message) from None
            raise Retryable(message) from None
        except zeep.exceptions.Error as exc:
            classify(status, body, what, self.http.system)
            raise Permanent(f"{what}: the answer does not fit the WSDL: {str(exc)[:MAX_FAULT]}") from None

    async def check(self) -> CheckResult:
        """The WSDL loaded and the operation found; where requests go."""
        details = {**self.http.describe(), "operation": self.config.operation}
        return CheckResult(ok=True, message="the WSDL describes the operation", details=details)
