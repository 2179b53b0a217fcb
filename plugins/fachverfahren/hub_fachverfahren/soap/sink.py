"""`type: soap`: create the case through one operation of the Fachverfahren's WSDL.

The operation's arguments are the route mapping's `payloads.<connector>`; zeep checks them against
the WSDL's schema while building the envelope (a misfit is `Permanent`, nothing is sent). SOAP faults:
a client fault (``Client``/``Sender``: the system refuses the content) is `Permanent`, a server fault
(``Server``/``Receiver``) is `Retryable`, both with the fault string (`hub.soap.fault_error`); HTTP
failures are classified by the outbound helper. The case's id is checkpointed, so a retry does not
create a second case; a system that dedups by an id in the arguments (the application id, mapped)
also survives a lost checkpoint. Answers come back by a polling operation (`answers:`).
"""

from __future__ import annotations

import logging
from typing import ClassVar

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
    Sink,
    jsonpaths,
)

from ..answers import AnswerReader, take_answers
from ..cases import JsonObject, case_delivery, payload_of
from .config import SoapConfig
from .wsdl import SoapService, describe_port

log = logging.getLogger(__name__)

_CHECKPOINT = "soap.case"


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
        endpoint = config.http_endpoint()
        self.http: Outbound = context.outbound(endpoint, system=f"the Fachverfahren {context.name!r}")
        port = describe_port(config.wsdl, config.service, config.port)
        self.soap = SoapService(config.wsdl, port, self.http, endpoint.base_url)
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
        result = await self.soap.call(self.config.operation, arguments, what)
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

    async def poll_answers(self) -> int:
        """Fetch new answers, hand each to the return channel, then acknowledge it upstream."""
        polling = self.config.answers
        if polling is None:
            return 0
        result = await self.soap.call(polling.operation, polling.arguments, f"{polling.operation} (answers)")

        async def acknowledge(answer: Answer) -> None:
            assert polling is not None and polling.acknowledge is not None
            arguments = {polling.parameter: answer.answer_id} if polling.parameter else {}
            await self.soap.call(polling.acknowledge, arguments, f"{polling.acknowledge} {answer.answer_id}")

        items = self.reader.items(result if result is not None else [])
        return await take_answers(
            self.reader, items, self.context, acknowledge if polling.acknowledge else None
        )

    async def check(self) -> CheckResult:
        """The WSDL loaded and the operation found; where requests go."""
        details = {**self.http.describe(), "operation": self.config.operation}
        return CheckResult(ok=True, message="the WSDL describes the operation", details=details)
