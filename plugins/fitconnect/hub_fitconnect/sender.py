"""A FIT-Connect sender: submits as an online service does (used by tests, the demo and the simulator CLI).

Steps, as docs.fitko.de describes sending: a token (client credentials, a ``send:`` scope), the
destination and its public encryption key, metadata naming the sha512 of the data and of every
attachment, everything encrypted to that key (JWE RSA-OAEP-256 / A256GCM), the submission announced
with its attachment ids, each attachment uploaded, then submitted with the encrypted metadata and data.

`SenderFaults` makes the sender itself send what a receiver must refuse (a wrong key id, a ciphertext
that does not decrypt, a hash that does not match), independent of the simulator's faults.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from jwcrypto import jwk

from . import jose, tamper
from .wire import (
    METADATA_SCHEMA_PREFIX,
    AuthenticationTags,
    Destination,
    Problem,
    SubmissionCreated,
    sha512_hex,
)

DEFAULT_METADATA_VERSION = "1.0.0"


class SendError(Exception):
    """The Submission API or the token endpoint refused a step; `status` and the RFC 7807 problem if any."""

    def __init__(self, step: str, status: int, problem: Problem | None, text: str) -> None:
        super().__init__(f"{step}: HTTP {status}: {problem.detail if problem else text[:200]}")
        self.step = step
        self.status = status
        self.problem = problem


@dataclass(frozen=True)
class Attachment:
    """A file sent with the submission."""

    content: bytes
    filename: str
    mime_type: str = "application/pdf"
    purpose: str = "attachment"  # form | attachment | report
    attachment_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class SenderFaults:
    """What the sender gets wrong on purpose (tests of the receiver's refusals)."""

    metadata_kid: str | None = None  # name this kid in the metadata JWE's header
    corrupt_data: bool = False  # alter the data's ciphertext (it will not decrypt)
    wrong_data_hash: bool = False  # the metadata names a hash the data does not have
    wrong_attachment_hash: bool = False  # the first attachment's hash does not match


@dataclass(frozen=True)
class Sent:
    """A submitted submission: its ids, the metadata as sent (plaintext) and the authentication tags."""

    destination_id: str
    submission_id: str
    case_id: str
    metadata: dict[str, Any]
    tags: AuthenticationTags


def build_metadata(
    service_identifier: str,
    service_name: str | None,
    data: bytes | None,
    data_schema_uri: str | None,
    data_mime_type: str,
    attachments: Sequence[Attachment],
    *,
    version: str = DEFAULT_METADATA_VERSION,
    faults: SenderFaults = SenderFaults(),
) -> dict[str, Any]:
    """The metadata of a submission (``$schema`` names the metadata schema version)."""
    attachment_entries = []
    for index, attachment in enumerate(attachments):
        content = b"not the content" if faults.wrong_attachment_hash and index == 0 else attachment.content
        attachment_entries.append(
            {
                "hash": {"type": "sha512", "content": sha512_hex(content)},
                "purpose": attachment.purpose,
                "filename": attachment.filename,
                "mimeType": attachment.mime_type,
                "attachmentId": attachment.attachment_id,
            }
        )
    structure: dict[str, Any] = {"attachments": attachment_entries}
    if data is not None:
        if data_schema_uri is None:
            raise ValueError("data needs its schema URI")
        hashed = b"not the data" if faults.wrong_data_hash else data
        structure["data"] = {
            "hash": {"type": "sha512", "content": sha512_hex(hashed)},
            "submissionSchema": {"schemaUri": data_schema_uri, "mimeType": data_mime_type},
        }
    service: dict[str, Any] = {"identifier": service_identifier}
    if service_name:
        service["name"] = service_name
    # Metadata 2.x names the service `publicService` (1.x: `publicServiceType`).
    service_field = "publicServiceType" if version.startswith("1.") else "publicService"
    return {
        "$schema": f"{METADATA_SCHEMA_PREFIX}{version}/metadata.schema.json",
        service_field: service,
        "contentStructure": structure,
    }


class Sender:
    """An online service's client of the Submission API (one token per sender, renewed before it expires)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
    ) -> None:
        self._session = session
        self._api = api_url.rstrip("/")
        self._token_url = token_url
        self._client = (client_id, client_secret)
        self._scope = scope
        self._token: tuple[str, float] | None = None

    async def _access_token(self) -> str:
        if self._token is not None and self._token[1] > time.monotonic() + 10:
            return self._token[0]
        form = {"grant_type": "client_credentials"}
        if self._scope:
            form["scope"] = self._scope
        # client_secret_basic: id and secret form-urlencoded before base64 (RFC 6749, section 2.3.1).
        pair = ":".join(quote_plus(part) for part in self._client)
        basic = {"Authorization": "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")}
        async with self._session.post(self._token_url, data=form, headers=basic) as answer:
            body = await answer.json(content_type=None)
            if answer.status != 200:
                raise SendError("token", answer.status, None, json.dumps(body))
        self._token = (str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 60)))
        return self._token[0]

    async def _call(self, step: str, method: str, path: str, expected: int, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {await self._access_token()}", **kwargs.pop("headers", {})}
        async with self._session.request(method, self._api + path, headers=headers, **kwargs) as answer:
            text = await answer.text()
            if answer.status != expected:
                problem = None
                if answer.content_type == "application/problem+json":
                    problem = Problem.model_validate_json(text)
                raise SendError(step, answer.status, problem, text)
            return json.loads(text) if text else None

    async def destination(self, destination_id: str) -> tuple[Destination, jwk.JWK]:
        """The destination and its public encryption key (checked: RSA-OAEP-256, ``wrapKey``)."""
        found = Destination.model_validate(
            await self._call("destination", "GET", f"/destinations/{destination_id}", 200)
        )
        raw = await self._call(
            "key", "GET", f"/destinations/{destination_id}/keys/{found.encryptionKid}", 200
        )
        if raw.get("alg") != jose.ENCRYPTION_ALG or "wrapKey" not in raw.get("key_ops", []):
            raise SendError("key", 200, None, "the destination's key is not an RSA-OAEP-256 wrapKey key")
        return found, jwk.JWK(**{k: v for k, v in raw.items() if k != "x5c"})

    async def send(
        self,
        destination_id: str,
        service_identifier: str,
        *,
        service_name: str = "Verwaltungsleistung",
        data: bytes | None = None,
        data_schema_uri: str | None = None,
        data_mime_type: str = "application/json",
        attachments: Sequence[Attachment] = (),
        case_id: str | None = None,
        metadata_version: str = DEFAULT_METADATA_VERSION,
        faults: SenderFaults = SenderFaults(),
    ) -> Sent:
        """Announce, upload, submit; the submitted submission's ids, metadata and authentication tags."""
        _, key = await self.destination(destination_id)
        metadata = build_metadata(
            service_identifier,
            service_name,
            data,
            data_schema_uri,
            data_mime_type,
            attachments,
            version=metadata_version,
            faults=faults,
        )
        encrypted_metadata = jose.encrypt(json.dumps(metadata).encode("utf-8"), key, "application/json")
        if faults.metadata_kid is not None:
            encrypted_metadata = tamper.with_kid(encrypted_metadata, faults.metadata_kid)
        encrypted_data = jose.encrypt(data, key, data_mime_type) if data is not None else None
        if encrypted_data is not None and faults.corrupt_data:
            encrypted_data = tamper.corrupted(encrypted_data)
        # v2 as deployed clients call it names the service `publicService` (v1: `serviceType`).
        service_field = "publicService" if self._api.endswith("/v2") else "serviceType"
        announcement: dict[str, Any] = {
            "destinationId": destination_id,
            "announcedAttachments": [a.attachment_id for a in attachments],
            service_field: {"name": service_name, "identifier": service_identifier},
        }
        if case_id is not None:
            announcement["caseId"] = case_id
        created = SubmissionCreated.model_validate(
            await self._call("announce", "POST", "/submissions", 201, json=announcement)
        )
        encrypted_attachments: dict[str, str] = {}
        for attachment in attachments:
            token = jose.encrypt(attachment.content, key, attachment.mime_type)
            encrypted_attachments[attachment.attachment_id] = token
            await self._call(
                "upload",
                "PUT",
                f"/submissions/{created.submissionId}/attachments/{attachment.attachment_id}",
                204,
                data=token.encode("ascii"),
                headers={"Content-Type": "application/jose"},
            )
        submit: dict[str, Any] = {"encryptedMetadata": encrypted_metadata}
        if encrypted_data is not None:
            submit["encryptedData"] = encrypted_data
        await self._call("submit", "PUT", f"/submissions/{created.submissionId}", 202, json=submit)
        tags = AuthenticationTags(
            metadata=jose.authentication_tag(encrypted_metadata),
            data=jose.authentication_tag(encrypted_data) if encrypted_data else None,
            attachments={a: jose.authentication_tag(t) for a, t in encrypted_attachments.items()},
        )
        return Sent(destination_id, created.submissionId, created.caseId, metadata, tags)
