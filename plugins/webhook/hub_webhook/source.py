"""The generic webhook source: any form server or portal that posts JSON, XML or multipart.

``POST /intake/<connector>/<service>`` with

- ``application/json`` (or ``application/*+json``) when `format: json`;
- ``application/xml``, ``text/xml`` (or ``application/*+xml``) when `format: xml`;
- ``multipart/form-data``: with `format: form` its fields are the data, with `json`/`xml` the part
  `data_part` carries it; every file part is an attachment, streamed into the blob store;
- ``application/x-www-form-urlencoded`` when `format: form`.

The request is authenticated first (`auth`), then parsed (hardened: strict JSON, XML without DTDs or
entities, bounded sizes and nesting), validated against the schema when one is configured, and read by
the configured paths: the external id (required), the service (else the URL's), the applicant, the
form fields and the attachments (JSON/XML: base64 under `attachments`).

The original kept on the application: a JSON or XML body exactly as sent; a multipart or urlencoded body
as the canonical JSON of its fields and files (`hub.formdata.submission`, format
``aktenhub.webhook.submission/1``), which references the files' blobs rather than holding them twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web
from lxml import etree

from hub import (
    Application,
    Attachment,
    BadSubmission,
    CheckResult,
    ConnectorConfig,
    ConnectorContext,
    Intake,
    Manifest,
    OriginalSubmission,
    Source,
    jsonpaths,
    submission_fingerprint,
)
from hub.formdata.applicant import applicant, first_text
from hub.formdata.jsonbody import base64_content, check_json_charset, parse_json, store_file
from hub.formdata.multipart import CHUNK, content_type_of, read_body, read_multipart, read_urlencoded
from hub.formdata.submission import CANONICAL_MEDIA_TYPE, Submission, show
from hub.xml import UnsafeXml, parse_xml

from . import __version__
from .auth import Authenticator, BodySignature
from .config import BodyFormat, WebhookConfig
from .paths import Data
from .redaction import redact
from .validation import check_json, check_xml, json_validator, xsd

log = logging.getLogger(__name__)

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
CANONICAL_FORMAT = "aktenhub.webhook.submission/1"
MAX_EXTERNAL_ID = 200
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _is_json(media: str) -> bool:
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _is_xml(media: str) -> bool:
    return media in ("application/xml", "text/xml") or (
        media.startswith("application/") and media.endswith("+xml")
    )


class WebhookSource(Source[WebhookConfig]):
    """Webhook source for any sender that posts JSON, XML or multipart, read by configured paths."""

    kind: ClassVar[str] = "webhook"
    Config: ClassVar[type[ConnectorConfig]] = WebhookConfig
    manifest: ClassVar[Manifest] = Manifest(
        name="Generic webhook intake",
        version=__version__,
        standards=("RFC 8259 JSON", "XML 1.0", "RFC 7578 multipart/form-data", "RFC 2104 HMAC"),
        description="Submissions any form server or portal posts (Form Solutions, service portals) as "
        "JSON, XML or multipart, authenticated by token or HMAC signature, read by JSONPath/XPath",
    )

    def __init__(self, config: WebhookConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.authenticator = Authenticator(config.auth)

    async def check(self) -> CheckResult:
        """Nothing remote to reach: the sender pushes. Reports how it must authenticate."""
        auth = self.config.auth
        how = (
            f"token in header {auth.token.header}"
            if auth.token is not None
            else f"HMAC-{auth.hmac.algorithm.upper()} in header {auth.hmac.header}"
            if auth.hmac is not None
            else "none"
        )
        return CheckResult(
            ok=True,
            message=f"senders push {self.config.format.value} data, authenticated by {how}",
            details={"format": self.config.format.value, "auth": how, "external_id": self.config.external_id},
        )

    async def receive(self, request: web.Request, service: str) -> Intake:
        """Authenticate, parse and validate the body, read it by the configured paths."""
        signature = self.authenticator.begin(request)
        media, charset = content_type_of(request)
        cfg = self.config
        if media in (MULTIPART, URLENCODED):
            return await self._form_body(request, service, media, charset, signature)
        if (cfg.format == BodyFormat.JSON and _is_json(media)) or (
            cfg.format == BodyFormat.XML and _is_xml(media)
        ):
            raw = await read_body(request, int(cfg.max_json_size), cfg.format.value.upper())
            if signature is not None:
                signature.update(raw)
                signature.verify()
            data = self._data(raw, charset)
            original = (raw, media + (f"; charset={charset}" if charset else ""))
            return await self._intake(data, service, [], original, attachments_inline=True)
        raise BadSubmission(
            f"unsupported content type {show(media)}: this connector takes {self._accepted()}", 415
        )

    async def redact_original(self, original: OriginalSubmission, fields: Sequence[str]) -> bytes | None:
        """The kept original without these fields (spent credentials), else unchanged (see `redaction`)."""
        content = await self.context.blobs.read_bytes(original.blob)
        try:
            return redact(content, original.media_type, fields, self.config, CANONICAL_FORMAT)
        except (ValueError, BadSubmission) as exc:
            # The core keeps the original marked and never files it.
            log.warning("webhook original not redactable source=%s reason=%s", self.name, exc)
            return None

    def _accepted(self) -> str:
        if self.config.format == BodyFormat.JSON:
            return f"application/json or {MULTIPART} (setting `format: json`)"
        if self.config.format == BodyFormat.XML:
            return f"application/xml, text/xml or {MULTIPART} (setting `format: xml`)"
        return f"{MULTIPART} or {URLENCODED} (setting `format: form`)"

    async def _form_body(
        self,
        request: web.Request,
        service: str,
        media: str,
        charset: str | None,
        signature: BodySignature | None,
    ) -> Intake:
        cfg = self.config
        if cfg.format != BodyFormat.FORM and (media == URLENCODED or cfg.data_part is None):
            raise BadSubmission(
                f"{media} carries no {cfg.format.value} data here: set `data_part` to the part that holds it",
                415,
            )
        if media == URLENCODED:
            if signature is not None:
                raise BadSubmission(
                    f"with a signature this connector takes {MULTIPART}, not {URLENCODED}", 415
                )
            submission, _ = await read_urlencoded(request, cfg, charset)
        else:
            submission = await read_multipart(
                request,
                cfg,
                self.context.blobs,
                charset,
                chunks=signature.feed(request.content.iter_chunked(CHUNK)) if signature else None,
                verify=signature.verify if signature else None,
            )
        if submission.empty:
            raise BadSubmission("the submission is empty: no fields and no files")
        original = (submission.canonical_json(service, CANONICAL_FORMAT), CANONICAL_MEDIA_TYPE)
        if cfg.format == BodyFormat.FORM:
            data = Data(BodyFormat.FORM.value, submission.form())
            return await self._intake(data, service, submission.attachments, original)
        data, attachments = await self._data_part(submission)
        return await self._intake(data, service, attachments, original)

    async def _data_part(self, submission: Submission) -> tuple[Data, list[Attachment]]:
        """The data of a multipart body's `data_part` (a text or a file part), and its other files."""
        name = self.config.data_part or ""
        limit = int(self.config.max_json_size)
        texts = submission.fields.get(name, [])
        files = [a for a in submission.attachments if a.field == name]
        if len(texts) + len(files) != 1:
            raise BadSubmission(f"the multipart body must carry exactly one part {show(name)} with the data")
        if texts:
            raw = texts[0].encode("utf-8")
            charset = "utf-8"
        else:
            if files[0].size > limit:
                raise BadSubmission(f"part {show(name)} exceeds the limit of {limit} bytes", 413)
            raw = await self.context.blobs.read_bytes(files[0].blob)
            charset = None
        return self._data(raw, charset), [a for a in submission.attachments if a.field != name]

    def _data(self, raw: bytes, charset: str | None) -> Data:
        """The body's JSON or XML data, parsed hardened and validated against the configured schema."""
        cfg = self.config
        if cfg.format == BodyFormat.JSON:
            check_json_charset(charset)
            document = parse_json(raw, cfg.max_json_depth)
            if cfg.json_schema is not None:
                check_json(json_validator(cfg.json_schema), document)
            return Data(BodyFormat.JSON.value, document)
        try:
            root = parse_xml(raw, limit=int(cfg.max_json_size))
        except UnsafeXml as exc:
            raise BadSubmission(f"the XML data is refused: {exc}") from None
        if _depth(root) > cfg.max_json_depth:
            raise BadSubmission(f"the XML data is nested deeper than {cfg.max_json_depth} levels")
        if cfg.xsd is not None:
            check_xml(xsd(cfg.xsd), root)
        return Data(BodyFormat.XML.value, root, cfg.namespaces)

    async def _intake(
        self,
        data: Data,
        url_service: str,
        files: list[Attachment],
        original: tuple[bytes, str],
        *,
        attachments_inline: bool = False,
    ) -> Intake:
        cfg = self.config
        external_id = self._external_id(data)
        service = self._service(data, url_service)
        party = applicant(cfg.applicant, data.value)
        inline = self._inline_attachments(data) if attachments_inline else []
        form = self._form(data)
        # Everything is checked: only now do the files of a JSON or XML body go to the blob store.
        attachments = list(files)
        for number, (name, media_type, content) in enumerate(inline, start=len(files) + 1):
            attachments.append(await store_file(self.context.blobs, content, name, media_type, None, number))
        fingerprint = submission_fingerprint(service, form, attachments)
        content, media_type = original
        kept = await self.context.blobs.write_bytes(content)
        log.debug(
            "webhook submission parsed source=%s service=%s fields=%d files=%d",
            self.name,
            service,
            len(form),
            len(attachments),
        )
        return Intake(
            Application(
                source=self.name,
                external_id=external_id,
                service=service,
                applicant=party,
                form=form,
                attachments=attachments,
                original=OriginalSubmission(
                    media_type=media_type, blob=kept.ref, size=kept.size, sha256=kept.sha256
                ),
                correlations={self.name: external_id},
                fingerprint=fingerprint,
            ),
            on_changed=cfg.on_changed_resend,
        )

    def _external_id(self, data: Data) -> str:
        path = self.config.external_id
        value = data.value(path)
        if isinstance(value, list):
            raise BadSubmission(f"{show(path)} (the submission id) selects more than one value", 422)
        text = first_text(value)
        if text is None:
            raise BadSubmission(f"the submission has no id at {show(path)}", 422)
        if len(text) > MAX_EXTERNAL_ID or not text.isprintable():
            raise BadSubmission(
                f"the submission id at {show(path)} must be printable, at most {MAX_EXTERNAL_ID} characters",
                422,
            )
        return text

    def _service(self, data: Data, url_service: str) -> str:
        path = self.config.service
        if path is None:
            return url_service
        value = data.value(path)
        text = None if isinstance(value, list) else first_text(value)
        if text is None:
            return url_service
        if not SERVICE_NAME.match(text):
            raise BadSubmission(
                f"the service at {show(path)} must be 1-100 letters, digits, '.', '_' or '-'", 422
            )
        if not self.context.routed(text):
            raise BadSubmission(f"no route takes service {text!r} from {self.name!r}", 422)
        return text

    def _form(self, data: Data) -> dict[str, Any]:
        """The form data: the configured fields, else everything the data holds."""
        if self.config.fields:
            return {name: data.value(path) for name, path in self.config.fields.items()}
        if data.fmt == BodyFormat.XML.value:
            return {etree.QName(data.document).localname: _xml_form(data.document)}
        if isinstance(data.document, dict):
            return dict(data.document)
        return {"data": data.document}

    def _inline_attachments(self, data: Data) -> list[tuple[str, str | None, bytes]]:
        """The base64 files of a JSON or XML body, decoded and checked; their content leaves the form."""
        paths = self.config.attachments
        if paths is None:
            return []
        nodes = data.nodes(paths.each)
        if len(nodes) > self.config.max_files:
            raise BadSubmission(f"too many files: at most {self.config.max_files} are accepted", 413)
        files = []
        for number, node in enumerate(nodes, start=1):
            item = data.within(node)
            content = item.value(paths.content)
            if not isinstance(content, str):
                raise BadSubmission(f"attachment {number} has no base64 content at {show(paths.content)}")
            name = first_text(item.value(paths.name)) or f"anhang-{number}"
            media_type = first_text(item.value(paths.media_type)) if paths.media_type else None
            files.append((name, media_type, base64_content(content, int(self.config.max_file_size), number)))
            _drop(item, paths.content)
        return files


def _drop(item: Data, path: str) -> None:
    """Remove an attachment's content from the data (it lives in the blob store, not in the form)."""
    if item.fmt == BodyFormat.JSON.value:
        jsonpaths.compiled(path).filter(lambda _: True, item.document)
        return
    for node in item.nodes(path):
        if isinstance(node, etree._Element):
            node.text = None


def _depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def _xml_form(element: etree._Element) -> Any:
    """An element as form data: its text if it has no child elements, else child name -> value (a list
    for a repeated child). Attributes and namespaces are left out: `fields` reads them by XPath."""
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return (element.text or "").strip()
    form: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in children:
        key = etree.QName(child).localname
        value = _xml_form(child)
        if key in repeated:
            form[key].append(value)
        elif key in form:
            form[key] = [form[key], value]
            repeated.add(key)
        else:
            form[key] = value
    return form
