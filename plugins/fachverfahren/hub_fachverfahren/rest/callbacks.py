"""A Fachverfahren's callback JSON into `Answer`s, by the JSONPaths the operator configured.

The decision (Bescheid) comes inline as base64 or as a URL the hub fetches with the connector's own
credentials; either way it is streamed into the blob store before the answer is handed on, so the
answer the core stores durably already holds it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import ValidationError

from hub import (
    Answer,
    Attachment,
    BadSubmission,
    BlobInfo,
    BlobTooLarge,
    ConnectorContext,
    Outbound,
)

from . import jsonpaths
from .config import CallbackFields, RestConfig

MAX_ANSWERS = 100  # answers in one callback


class CallbackReader:
    """Reads one connector's callbacks."""

    def __init__(self, config: RestConfig, context: ConnectorContext, http: Outbound) -> None:
        self.config = config
        self.fields: CallbackFields = config.callback_fields
        self.context = context
        self.http = http
        self._statuses = {word.casefold(): status for word, status in config.status_map.items()}

    async def answers(self, body: bytes) -> list[Answer]:
        """The answers of one callback body; `BadSubmission` (4xx) for a body that holds none."""
        try:
            data = json.loads(body)
        except ValueError:
            raise BadSubmission("the callback body is not JSON") from None
        items = jsonpaths.every(self.fields.each, data)
        if not items:
            raise BadSubmission(f"the callback holds no answer at {self.fields.each}", 422)
        if len(items) > MAX_ANSWERS:
            raise BadSubmission(f"more than {MAX_ANSWERS} answers in one callback", 413)
        return [await self._answer(item) for item in items]

    async def _answer(self, item: Any) -> Answer:
        f = self.fields
        word = jsonpaths.text(f.status, item)
        if word is None:
            raise BadSubmission(f"the callback holds no status at {f.status}", 422)
        status = self._statuses.get(word.casefold())
        if status is None:
            raise BadSubmission(f"unknown status {word[:50]!r}: map it in `status_map`", 422)
        values: dict[str, Any] = {
            "answer_id": jsonpaths.text(f.answer_id, item),
            "application_id": jsonpaths.text(f.application_id, item),
            "reference": jsonpaths.text(f.reference, item),
            "status": status,
            "case_number": jsonpaths.text(f.case_number, item),
            "status_text": jsonpaths.text(f.status_text, item) or word,
            "message": jsonpaths.text(f.message, item),
            "error": jsonpaths.text(f.error, item),
        }
        if values["answer_id"] is None:
            raise BadSubmission(f"the callback holds no answer id at {f.answer_id}", 422)
        if values["application_id"] is None and values["reference"] is None:
            raise BadSubmission("the callback names no case (neither application id nor reference)", 422)
        try:
            answer = Answer.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise BadSubmission(f"the callback is no usable answer: {problems}"[:500], 422) from None
        decision = await self._decision(item)
        return answer.model_copy(update={"decision": decision}) if decision else answer

    async def _decision(self, item: Any) -> Attachment | None:
        f = self.fields
        name = jsonpaths.text(f.decision_name, item) or "Bescheid.pdf"
        media_type = jsonpaths.text(f.decision_media_type, item) or "application/pdf"
        encoded = jsonpaths.text(f.decision_base64, item)
        url = jsonpaths.text(f.decision_url, item)
        limit = self.config.max_decision_bytes
        try:
            if encoded is not None:
                try:
                    content = base64.b64decode(encoded, validate=True)
                except binascii.Error:
                    raise BadSubmission("the decision's content is not base64", 422) from None
                info = await self.context.blobs.write_bytes(content, limit)
            elif url is not None:
                info = await self._fetch(url, limit)
            else:
                return None
        except BlobTooLarge:
            raise BadSubmission(f"the decision is larger than {limit} bytes", 413) from None
        return Attachment(name=name, media_type=media_type, size=info.size, sha256=info.sha256, blob=info.ref)

    async def _fetch(self, url: str, limit: int) -> BlobInfo:
        what = "fetching the decision"
        # Only from the Fachverfahren itself: the request carries its credentials.
        if "://" in url and not url.startswith(self.config.base_url.rstrip("/") + "/"):
            raise BadSubmission(f"the decision's URL is not below {self.config.base_url}", 422)
        async with self.http.stream("GET", url, what) as response:

            async def chunks() -> AsyncIterator[bytes]:
                async for chunk in response.content.iter_chunked(64 * 1024):
                    yield chunk

            return await self.context.blobs.write(chunks(), limit)
