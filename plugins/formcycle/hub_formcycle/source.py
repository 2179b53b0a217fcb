"""The FormCycle source: takes the submissions FormCycle's "HTTP-Request" workflow action sends.

FormCycle posts one request per submission to ``/intake/<connector>/<service>``, one parameter per form
element (its name or alias; repeated elements repeat the parameter), as
``application/x-www-form-urlencoded`` or, with uploaded files, ``multipart/form-data``. A shared token in
a configurable header authenticates the request; it is checked before a byte of the body is read.

The original submission kept on the application (`Application.original`):

- urlencoded: the body exactly as sent (it holds no files and is bounded by ``max_form_size``);
- multipart: the canonical JSON of the submission (fields, plus each attachment's field, name, media
  type, size and sha256, which reference the attachments' blobs), media type ``application/json``. The
  raw multipart body is not kept: it would have to be stored a second time beside the files it contains
  (or be held in memory), and its random boundary carries no information. The canonical form is
  sufficient to reconstruct the submission for audit and replay.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from hub import (
    Application,
    BadSubmission,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Intake,
    Manifest,
    OriginalSubmission,
    Source,
    submission_fingerprint,
)
from hub.formdata.jsonbody import read_json
from hub.formdata.multipart import content_type_of, read_multipart, read_urlencoded
from hub.formdata.submission import CANONICAL_MEDIA_TYPE, Submission, lookup, show

from . import __version__
from .applicant import map_applicant
from .config import BodyKind, FormCycleConfig
from .redaction import CANONICAL_FORMAT, redact

log = logging.getLogger(__name__)

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_EXTERNAL_ID = 200


class FormCycleSource(Source[FormCycleConfig]):
    """Webhook source for XIMA FormCycle's HTTP-Request workflow action."""

    kind: ClassVar[str] = "formcycle"
    Config: ClassVar[type[ConnectorConfig]] = FormCycleConfig
    manifest: ClassVar[Manifest] = Manifest(
        name="FormCycle HTTP-Request",
        version=__version__,
        standards=("XIMA FormCycle HTTP-Request action",),
        description="Submissions pushed by FormCycle's HTTP-Request workflow action "
        "(urlencoded or multipart/form-data), authenticated by a shared token header",
    )

    def __init__(self, config: FormCycleConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self._token = config.token.get_secret_value().encode("utf-8")  # compared on every post

    async def check(self) -> CheckResult:
        """Nothing remote to reach: FormCycle pushes. Reports that the token is configured."""
        return CheckResult(
            ok=True,
            message=f"shared token configured, expected in header {self.config.token_header}; "
            "FormCycle pushes submissions, so there is nothing remote to reach",
            details={
                "token_header": self.config.token_header,
                "id_field": self.config.id_field or "(none: hash of the submission)",
            },
        )

    async def receive(self, request: web.Request, service: str) -> Intake:
        """Authenticate, parse the body (files streamed into the blob store), build the application."""
        self._authenticate(request)
        submission, original_bytes, original_type = await self._read(request, service)
        if submission.empty:
            raise BadSubmission("the submission is empty: no parameters and no files")
        form = submission.form()
        for header, field in self.config.header_fields.items():
            value = request.headers.get(header)
            if value is None:
                continue
            if len(value) > self.config.max_header_field_size:
                raise BadSubmission(f"header {show(header)} exceeds the limit", 413)
            if field in form:
                raise BadSubmission(f"parameter {show(field)} is sent both as a header and in the body")
            form[field] = value
        fingerprint = submission_fingerprint(service, form, submission.attachments)
        external_id, from_field = self._external_id(form, fingerprint)
        original = await self.context.blobs.write_bytes(original_bytes)
        log.debug(
            "formcycle submission parsed source=%s service=%s parameters=%d files=%d",
            self.name,
            service,
            len(form),
            len(submission.attachments),
        )
        return Intake(
            Application(
                source=self.name,
                external_id=external_id,
                service=service,
                applicant=map_applicant(self.config.applicant_fields, form),
                form=form,
                attachments=submission.attachments,
                original=OriginalSubmission(
                    media_type=original_type,
                    blob=original.ref,
                    size=original.size,
                    sha256=original.sha256,
                ),
                correlations={"formcycle": external_id} if from_field else {},
                fingerprint=fingerprint,
            ),
            on_changed=self.config.on_changed_resend,
        )

    async def _read(self, request: web.Request, service: str) -> tuple[Submission, bytes, str]:
        """The submission, and the original to keep (bytes and media type), by content type."""
        content_type, charset = content_type_of(request)
        body = self.config.body
        forms = body in (BodyKind.FORM, BodyKind.ANY)
        if forms and content_type == MULTIPART:
            submission = await read_multipart(request, self.config, self.context.blobs, charset)
            return submission, submission.canonical_json(service, CANONICAL_FORMAT), CANONICAL_MEDIA_TYPE
        if forms and content_type == URLENCODED:
            submission, raw = await read_urlencoded(request, self.config, charset)
            return submission, raw, URLENCODED + (f"; charset={charset}" if charset else "")
        # FormCycle lets the action's author choose the custom body's type: any JSON media type.
        is_json = content_type == JSON or (
            content_type.startswith("application/") and content_type.endswith("+json")
        )
        if body in (BodyKind.JSON, BodyKind.ANY) and is_json:
            submission = await read_json(
                request, self.config, self.context.blobs, charset, self.config.json_attachments
            )
            # Attachments are in the blob store: kept once, referenced from the canonical form.
            return submission, submission.canonical_json(service, CANONICAL_FORMAT), CANONICAL_MEDIA_TYPE
        accepted = {
            BodyKind.FORM: f"{MULTIPART} or {URLENCODED}",
            BodyKind.JSON: JSON,
            BodyKind.ANY: f"{MULTIPART}, {URLENCODED} or {JSON}",
        }[body]
        raise BadSubmission(
            f"unsupported content type {show(content_type)}: this connector takes {accepted} "
            f"(setting `body: {body.value}`)",
            415,
        )

    async def redact_original(self, original: OriginalSubmission, fields: Sequence[str]) -> bytes | None:
        """The kept original without these fields, everything else unchanged (see `redaction`)."""
        content = await self.context.blobs.read_bytes(original.blob)
        try:
            return redact(original, content, fields, self.config)
        except (ValueError, BadSubmission) as exc:
            # Not a format this connector wrote (or no longer readable as one): the core keeps it
            # marked and never files it.
            log.warning("formcycle original not redactable source=%s reason=%s", self.name, exc)
            return None

    def _authenticate(self, request: web.Request) -> None:
        header = self.config.token_header
        given = request.headers.getall(header, [])
        if not given:
            raise BadSubmission(f"missing {header} header", 401)
        if len(given) > 1:
            # Two tokens are ambiguous: a proxy in front may have checked the other one.
            raise BadSubmission(f"{header} header given more than once", 401)
        presented = given[0]
        if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self._token):
            raise BadSubmission(f"invalid token in {header} header", 401)

    def _external_id(self, form: dict[str, Any], fingerprint: str) -> tuple[str, bool]:
        """FormCycle's id from `id_field` when sent, else the submission's content fingerprint."""
        id_field = self.config.id_field
        raw = lookup(form, id_field) if id_field else None
        if isinstance(raw, list):
            raise BadSubmission(f"parameter {show(id_field or '')} (the submission id) must be sent once")
        if isinstance(raw, dict | bool):
            raise BadSubmission(f"parameter {show(id_field or '')} (the submission id) must be a string")
        value = "" if raw is None else str(raw).strip()
        if not value:
            return f"sha256:{fingerprint}", False
        if len(value) > MAX_EXTERNAL_ID or not value.isprintable():
            raise BadSubmission(
                f"parameter {show(id_field or '')} (the submission id) must be printable and at most "
                f"{MAX_EXTERNAL_ID} characters"
            )
        return value, True
