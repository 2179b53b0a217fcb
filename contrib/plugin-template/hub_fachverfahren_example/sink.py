"""The sink: delivers an application as a case, with its documents, to the Fachverfahren's REST import API,
and takes the Fachverfahren's answers (case number, status, decision) back to the hub.

One delivery is several requests: find or create the case, then upload each document. A crash or an error
between them must neither lose nor repeat work, so

- the case is created with ``Idempotency-Key: <application id>`` and, before creating, looked up by that
  key: an attempt whose checkpoint was lost finds the case an earlier attempt created;
- the case and each uploaded document are checkpointed (`DeliveryContext.checkpoint`), so a retry
  resumes with the next document instead of starting over;
- each upload carries its own idempotency key, so an upload whose answer was lost is not stored twice.

Answers are fetched from the Fachverfahren's answer queue (`poll_answers`): each one is handed to the
core (`context.answer`, durable and idempotent on the answer's id) and only then acknowledged, so an
answer whose acknowledgement is lost comes again and changes nothing the second time.

HTTP goes through `hub.Outbound` (the hub's shared session, authentication, bounded reads): it turns
timeouts, lost connections, 5xx, 408 and 429 into `Retryable` and other 4xx into `Permanent` with the
server's message. The core owns retrying. Logs carry ids and counts, never the applicant's data.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub import (
    Answer,
    AnswerStatus,
    Attachment,
    BlobNotFound,
    CheckResult,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    Document,
    FileRecord,
    HttpAnswer,
    Manifest,
    Permanent,
    Retryable,
    Sink,
    UnknownApplication,
)

from . import __version__
from .config import ExampleFachverfahrenConfig, ExampleFachverfahrenPayload

log = logging.getLogger(__name__)

STANDARD = "Example Fachverfahren REST import API v1"
SYSTEM = "the example Fachverfahren"  # how errors name the remote system
CASE_CHECKPOINT = "case"
DOCUMENTS_CHECKPOINT = "documents"
ANSWER_BATCH = 50  # answers fetched per poll
MAX_DECISION = 50 * 1024**2  # bytes of a decision document
CHUNK = 64 * 1024

# The Fachverfahren's case states, as the hub's return channel knows them.
STATUSES = {
    "received": AnswerStatus.ACCEPTED,
    "in-progress": AnswerStatus.IN_PROGRESS,
    "documents-requested": AnswerStatus.ACTION_REQUIRED,
    "decided": AnswerStatus.DECIDED,
    "import-refused": AnswerStatus.FAILED,
}

_Model = TypeVar("_Model", bound=BaseModel)


class _Case(BaseModel):
    """A case as the API returns it (fields this sink does not use are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    case_number: str = Field(min_length=1)


class _CaseList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cases: list[_Case]


class _StoredDocument(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    sha256: str


class _Decision(BaseModel):
    model_config = ConfigDict(extra="ignore")

    document_id: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=255)
    media_type: str = Field(min_length=1, max_length=255)


class _Answer(BaseModel):
    """One entry of the Fachverfahren's answer queue."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=200)
    case_id: str = Field(min_length=1)
    case_number: str = Field(min_length=1, max_length=200)
    application_id: str = Field(min_length=1)
    status: str
    message: str | None = Field(None, max_length=2000)
    decision: _Decision | None = None


class _AnswerList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    answers: list[_Answer]


class ExampleFachverfahrenSink(Sink[ExampleFachverfahrenConfig]):
    """Delivers each application as one case with its documents, and fetches the case's answers."""

    kind: ClassVar[str] = "fachverfahren-example"
    Config = ExampleFachverfahrenConfig
    Payload = ExampleFachverfahrenPayload
    manifest: ClassVar[Manifest] = Manifest(
        name="Example Fachverfahren",
        version=__version__,
        standards=(STANDARD,),
        description="Cases and their documents through the Fachverfahren's REST import interface "
        "(idempotency keys); case number, status and decision back from its answer queue",
    )

    def __init__(self, config: ExampleFachverfahrenConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.http = context.outbound(config, system=SYSTEM)
        self.answer_poll_interval = config.answer_poll_seconds
        self._counters: Counter[str] = Counter()

    # -- operators -------------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """The import API answers its health check and accepts the configured credentials."""
        details = self.http.describe()
        try:
            answer = (await self.http.request("GET", "/api/health", "health check")).json("health check")
        except (Retryable, Permanent) as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        version = answer.get("version") if isinstance(answer, dict) else None
        details["api_version"] = str(version or "unknown")
        return CheckResult(ok=True, message=f"{self.config.base_url} answers and accepts us", details=details)

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration (secrets masked) and what this process has delivered and fetched since it started."""
        state = await super().diagnostics()
        state["counters"] = dict(self._counters)
        return state

    # -- delivery --------------------------------------------------------------------------------------

    async def deliver(self, record: FileRecord, ctx: DeliveryContext) -> Delivery:
        """Find or create the application's case, then upload the documents not uploaded yet."""
        app = ctx.application
        if record.application_id != app.id:
            raise Permanent(f"record belongs to application {record.application_id}, the context to {app.id}")
        blobs = await self._document_blobs(record, ctx)  # before anything is created: all or nothing to send
        case, created = await self._case(record, ctx)
        uploaded = _uploaded(ctx)
        sent = 0
        for index, (document, blob) in enumerate(zip(record.documents, blobs, strict=True)):
            if str(index) in uploaded:
                continue
            uploaded[str(index)] = await self._upload(case, app.id, index, document, blob, ctx)
            await ctx.checkpoint(DOCUMENTS_CHECKPOINT, dict(uploaded))
            sent += 1
        log.info(
            "delivered application=%s target=%s case=%s case_created=%s documents=%d uploaded_now=%d",
            app.id,
            self.name,
            case.id,
            created,
            len(record.documents),
            sent,
        )
        # The case number is a correlation of the application, never its Aktenzeichen: the e-file's
        # Aktenzeichen stays the application's file number.
        return Delivery(
            target=self.name,
            reference=case.id,
            correlations={"case": case.id, "case_number": case.case_number},
            duplicate=not created and sent == 0,
            details={"documents": len(record.documents)},
        )

    async def _document_blobs(self, record: FileRecord, ctx: DeliveryContext) -> list[str]:
        """Each document's blob reference; a document without content cannot be delivered, ever."""
        refs = []
        for index, document in enumerate(record.documents):
            what = f"document {index} (type {document.type!r})"
            if document.blob is None:
                raise Permanent(f"{what} has no content (no blob reference): nothing to deliver")
            try:
                present = await ctx.blobs.exists(document.blob)
            except BlobNotFound:  # not even a valid reference
                present = False
            if not present:
                raise Permanent(f"{what} references {document.blob!r}, which is not in the blob store")
            refs.append(document.blob)
        return refs

    async def _case(self, record: FileRecord, ctx: DeliveryContext) -> tuple[_Case, bool]:
        """The case from an earlier attempt (checkpoint, else looked up by key), or a new one."""
        saved = ctx.checkpoints.get(CASE_CHECKPOINT)
        if saved is not None:
            try:
                return _Case.model_validate(saved), False
            except ValidationError:
                pass  # written by another version of this plugin: look the case up instead
        key = ctx.application.id
        params = {"idempotency_key": key}
        found = _parse(
            _CaseList,
            await self.http.request("GET", "/api/cases", "case lookup", params=params),
            "case lookup",
        )
        created = not found.cases
        if found.cases:
            case = found.cases[0]
        else:
            app = ctx.application
            payload = self.payload(record, ExampleFachverfahrenPayload)
            body = {
                "service": payload.verfahren or record.service,
                "subject": payload.subject,
                "application_id": app.id,
                "applicant_name": app.applicant.display_name,
                "form": app.form if payload.fields is None else payload.fields,
                "documents": [
                    {"name": d.name, "type": d.type, "media_type": d.media_type} for d in record.documents
                ],
            }
            headers = {"Idempotency-Key": key}
            answer = await self.http.request(
                "POST", "/api/cases", "case creation", json=body, headers=headers
            )
            case = _parse(_Case, answer, "case creation")
            self._counters["cases_created"] += 1
        await ctx.checkpoint(CASE_CHECKPOINT, case.model_dump(mode="json"))
        return case, created

    async def _upload(
        self,
        case: _Case,
        application_id: str,
        index: int,
        document: Document,
        blob: str,
        ctx: DeliveryContext,
    ) -> str:
        """Stream one document from the blob store into the case; returns the Fachverfahren's id for it."""
        what = f"upload of document {index}"
        answer = await self.http.request(
            "POST",
            f"/api/cases/{quote(case.id, safe='')}/documents",
            what,
            params={"name": document.name, "type": document.type},
            data=lambda: ctx.blobs.read(blob),  # a fresh stream should the request be sent again
            headers={
                "Content-Type": document.media_type,
                "Idempotency-Key": f"{application_id}/documents/{index}",
            },
        )
        stored = _parse(_StoredDocument, answer, what)
        algorithm, _, digest = blob.partition(":")
        if algorithm == "sha256" and stored.sha256 != digest:
            raise Permanent(
                f"{what}: the Fachverfahren stored content with another sha256 than sent "
                f"(case {case.id}, document {stored.id}); remove the document there, then replay"
            )
        self._counters["documents_uploaded"] += 1
        return stored.id

    # -- answers ---------------------------------------------------------------------------------------

    async def poll_answers(self) -> int:
        """Fetch the answer queue; hand each answer to the core, then acknowledge it there."""
        queue = await self.http.request(
            "GET", "/api/answers", "answer fetch", params={"limit": str(ANSWER_BATCH)}
        )
        taken = 0
        for item in _parse(_AnswerList, queue, "answer fetch").answers:
            try:
                outcome = await self.context.answer(await self._answer(item))
            except UnknownApplication:
                # Not ours (another hub, or purged): left in the queue for the Fachverfahren's operators.
                log.warning("answer for no application of this hub answer=%s case=%s", item.id, item.case_id)
                self._counters["answers_unknown"] += 1
                continue
            what = f"acknowledgement of answer {item.id}"
            # 404: acknowledged before (our earlier acknowledgement's answer was lost)
            await self.http.request("DELETE", f"/api/answers/{quote(item.id, safe='')}", what, accept=(404,))
            self._counters["answers_duplicate" if outcome.duplicate else "answers_taken"] += 1
            taken += 1
        return taken

    async def _answer(self, item: _Answer) -> Answer:
        """The queue entry as the hub's `Answer`, its decision document streamed into the blob store."""
        status = STATUSES.get(item.status)
        if status is None:
            raise Permanent(f"answer {item.id}: unknown case status {item.status!r}")
        decision = None
        if item.decision is not None:
            decision = await self._download(item.case_id, item.decision)
        return Answer(
            answer_id=item.id,
            application_id=item.application_id,
            reference=item.case_id,
            status=status,
            case_number=item.case_number,
            status_text=item.status,
            message=item.message,
            error=item.message if status is AnswerStatus.FAILED else None,
            decision=decision,
        )

    async def _download(self, case_id: str, decision: _Decision) -> Attachment:
        """Stream a decision document from the Fachverfahren into the blob store."""
        path = (
            f"/api/cases/{quote(case_id, safe='')}/documents/{quote(decision.document_id, safe='')}/content"
        )
        async with self.http.stream("GET", path, "decision download") as response:
            stored = await self.context.blobs.write(response.content.iter_chunked(CHUNK), limit=MAX_DECISION)
        return Attachment(
            name=decision.name,
            media_type=decision.media_type,
            size=stored.size,
            sha256=stored.sha256,
            blob=stored.ref,
        )


def _parse(model: type[_Model], answer: HttpAnswer, what: str) -> _Model:
    """The answer as `model`; an answer of another shape may be a proxy's page: `Retryable`."""
    try:
        return model.model_validate(answer.json(what))
    except ValidationError as exc:
        raise Retryable(f"{what}: unexpected answer: {exc.errors(include_url=False)[0]['msg']}") from None


def _uploaded(ctx: DeliveryContext) -> dict[str, str]:
    """Documents uploaded by earlier attempts: record index (as text) → the Fachverfahren's document id."""
    saved = ctx.checkpoints.get(DOCUMENTS_CHECKPOINT)
    if not isinstance(saved, dict):
        return {}
    return {str(k): str(v) for k, v in saved.items()}
