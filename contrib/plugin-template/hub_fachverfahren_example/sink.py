"""The sink: delivers an application as a case, with its documents, to the Fachverfahren's REST import API.

One delivery is several requests: find or create the case, then upload each document. A crash or an error
between them must neither lose nor repeat work, so

- the case is created with ``Idempotency-Key: <application id>`` and, before creating, looked up by that
  key: an attempt whose checkpoint was lost finds the case an earlier attempt created;
- the case and each uploaded document are checkpointed (`DeliveryContext.checkpoint`), so a retry
  resumes with the next document instead of starting over;
- each upload carries its own idempotency key, so an upload whose answer was lost is not stored twice.

Failures are classified for the core, which owns retrying: no answer in time, no connection, 5xx, 408
and 429 are `Retryable`; other 4xx (bad request, credentials refused, validation) are `Permanent` with
the server's message. Logs carry ids and counts, never the applicant's data or document names.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub import (
    BlobNotFound,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Delivery,
    DeliveryContext,
    Document,
    FileRecord,
    Manifest,
    Permanent,
    Retryable,
    Secret,
    Sink,
    transient_http_status,
)

from . import __version__

log = logging.getLogger(__name__)

STANDARD = "Example Fachverfahren REST import API v1"
CASE_CHECKPOINT = "case"
DOCUMENTS_CHECKPOINT = "documents"
MAX_ANSWER = 1024**2  # bytes; the API answers with small JSON documents
MAX_MESSAGE = 300  # characters of a server's error message kept in our error

_Answer = TypeVar("_Answer", bound=BaseModel)


class ExampleFachverfahrenConfig(ConnectorConfig):
    """Settings of a ``type: fachverfahren-example`` connector."""

    base_url: str = Field(
        description="root of the Fachverfahren's import API (without /api), e.g. https://fv.kreis.example"
    )
    username: str = Field(min_length=1, pattern=r"^[^:]+$", description="the hub's technical user")
    password: Secret = Field(description="its password: a ${ENV} reference or file:/path")
    timeout_seconds: float = Field(
        60.0, gt=0, le=3600, description="longest one request may take, a document upload included"
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http(s) URL, e.g. https://fv.kreis.example")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("the URL takes no query, fragment or credentials (set username/password)")
        return value.rstrip("/")


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


class ExampleFachverfahrenSink(Sink[ExampleFachverfahrenConfig]):
    """Delivers each application as one case with its documents into the example Fachverfahren."""

    kind: ClassVar[str] = "fachverfahren-example"
    Config: ClassVar[type[ConnectorConfig]] = ExampleFachverfahrenConfig
    manifest: ClassVar[Manifest] = Manifest(
        name="Example Fachverfahren",
        version=__version__,
        standards=(STANDARD,),
        description="Cases and their documents through the Fachverfahren's REST import interface "
        "(HTTP Basic authentication, idempotency keys)",
    )

    def __init__(self, config: ExampleFachverfahrenConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        if not isinstance(config, ExampleFachverfahrenConfig):
            raise TypeError(f"expected ExampleFachverfahrenConfig, got {type(config).__name__}")
        self.settings = config
        self._authorization = basic_authorization(config.username, config.password.get_secret_value())
        self._counters: Counter[str] = Counter()

    # -- operators -------------------------------------------------------------------------------------

    async def check(self) -> CheckResult:
        """The import API answers its health check and accepts the configured user."""
        details = {"base_url": self.settings.base_url, "username": self.settings.username}
        try:
            answer = await self._call("GET", "/api/health", "health check")
        except (Retryable, Permanent) as exc:
            return CheckResult(ok=False, message=str(exc), details=details)
        version = answer.get("version") if isinstance(answer, dict) else None
        details["api_version"] = str(version or "unknown")
        return CheckResult(
            ok=True,
            message=f"{self.settings.base_url} answers and accepts user {self.settings.username}",
            details=details,
        )

    async def diagnostics(self) -> dict[str, Any]:
        """Configuration (the password masked) and what this process has delivered since it started."""
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
        return Delivery(
            target=self.name,
            reference=case.id,
            file_number=case.case_number,
            correlations={"case": case.id},
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
        found = _parse(
            _CaseList,
            await self._call("GET", "/api/cases", "case lookup", params={"idempotency_key": key}),
            "case lookup",
        ).cases
        created = not found
        if found:
            case = found[0]
        else:
            app = ctx.application
            body = {
                "service": record.service,
                "application_id": app.id,
                "applicant_name": app.applicant.display_name,
                "form": app.form,
                "documents": [
                    {"name": d.name, "type": d.type, "media_type": d.media_type} for d in record.documents
                ],
            }
            answer = await self._call(
                "POST", "/api/cases", "case creation", json=body, headers={"Idempotency-Key": key}
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
        answer = await self._call(
            "POST",
            f"/api/cases/{quote(case.id, safe='')}/documents",
            what,
            params={"name": document.name, "type": document.type},
            data=ctx.blobs.read(blob),
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

    # -- HTTP ------------------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, what: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        """One request to the API with the hub's shared session; the JSON answer, or a classified error."""
        timeout = self.settings.timeout_seconds
        try:
            async with self.context.http.request(
                method,
                self.settings.base_url + path,
                headers={**(headers or {}), "Authorization": self._authorization},
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
                **kwargs,
            ) as response:
                status = response.status
                text = await _read_limited(response, what)
        except TimeoutError:
            raise Retryable(f"{what}: no answer from {self.settings.base_url} within {timeout:g} s") from None
        except aiohttp.ClientConnectionError as exc:
            raise Retryable(
                f"{what}: connection to {self.settings.base_url} failed: {type(exc).__name__}: {exc}"
            ) from None
        except aiohttp.ClientError as exc:
            raise Retryable(f"{what}: {type(exc).__name__}: {exc}") from None
        if 200 <= status < 300:
            return _json(text, what)
        message = _server_message(text)
        if status in (401, 403):
            raise Permanent(
                f"{what}: the Fachverfahren refused user {self.settings.username!r} ({status}): {message}; "
                "check username, password and the user's rights, then replay"
            )
        if 400 <= status < 500 and not transient_http_status(status):
            raise Permanent(f"{what}: the Fachverfahren refused the request ({status}): {message}")
        raise Retryable(f"{what}: the Fachverfahren answered {status}: {message}")


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic authentication (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


async def _read_limited(response: aiohttp.ClientResponse, what: str) -> str:
    data = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_ANSWER:
            raise Retryable(f"{what}: the answer is larger than {MAX_ANSWER} bytes")
    return data.decode("utf-8", errors="replace")


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        # A proxy's error page with status 200, say: may pass once the network is fixed.
        raise Retryable(f"{what}: the answer is not JSON: {text[:80]!r}") from None


def _parse(model: type[_Answer], answer: Any, what: str) -> _Answer:
    try:
        return model.model_validate(answer)
    except ValidationError as exc:
        raise Retryable(f"{what}: unexpected answer: {exc.errors(include_url=False)[0]['msg']}") from None


def _server_message(text: str) -> str:
    """The ``error`` of a JSON error answer, else the start of the text."""
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        message: str = answer["error"]
    else:
        message = text.strip() or "(no message)"
    return message[:MAX_MESSAGE]


def _uploaded(ctx: DeliveryContext) -> dict[str, str]:
    """Documents uploaded by earlier attempts: record index (as text) → the Fachverfahren's document id."""
    saved = ctx.checkpoints.get(DOCUMENTS_CHECKPOINT)
    if not isinstance(saved, dict):
        return {}
    return {str(k): str(v) for k, v in saved.items()}
