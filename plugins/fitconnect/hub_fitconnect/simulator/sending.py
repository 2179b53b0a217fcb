"""The sender side of the simulated Submission API: destinations and keys, announce, upload, submit."""

from __future__ import annotations

import re
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from hub.simulation import read_body

from .. import jose
from ..wire import (
    SCOPE_SEND_DESTINATION,
    SCOPE_SEND_REGION,
    SUBMIT_SUBMISSION,
    AuthenticationTags,
)
from . import faults
from .callbacks import schedule_callback
from .common import (
    JOSE,
    STATE,
    Uuid,
    destination_of,
    json_body,
    require_media_type,
    state_of,
    submission_of,
    token_of,
    uuid_param,
    version_of,
)
from .problems import Refused
from .state import Status, Submission, Token, may_send

Compact = Annotated[str, StringConstraints(min_length=1, pattern=r"^[a-zA-Z0-9\-_=.]+$")]


ServiceUrn = Annotated[
    str,
    StringConstraints(
        min_length=7, max_length=255, pattern=r"^urn:[a-z0-9][a-z0-9-]{0,31}:[a-z0-9()+,.:=@;$_!*'%/?#-]+$"
    ),
]


class _Body(BaseModel):
    # The OpenAPI allows fields it does not name (no additionalProperties: false): they are ignored.
    model_config = ConfigDict(extra="ignore")


class ServiceTypeIn(_Body):
    """CreateSubmission.serviceType (``name`` and ``identifier`` required)."""

    name: str
    identifier: ServiceUrn
    description: str | None = None


class CallbackIn(_Body):
    """CreateCallback: an https URL and a secret of 32 to 512 characters."""

    url: Annotated[str, StringConstraints(min_length=9, pattern=r"^https://.+")]
    secret: Annotated[str, StringConstraints(min_length=32, max_length=512)]


class CreateSubmission(_Body):
    """``POST /submissions`` (v1: ``serviceType``; v2 as deployed clients send it: ``publicService``)."""

    destinationId: Uuid
    announcedAttachments: list[Uuid]
    serviceType: ServiceTypeIn | None = None
    publicService: ServiceTypeIn | None = None
    caseId: Uuid | None = None
    callback: CallbackIn | None = None

    def service(self, version: str) -> ServiceTypeIn:
        """The announced service; `Refused` unless the version's one field names it."""
        if version == "v1" or self.publicService is None:
            if self.serviceType is None:
                raise Refused(400, "invalid-request", "serviceType: Field required")
            return self.serviceType
        if self.serviceType is not None and self.serviceType.identifier != self.publicService.identifier:
            raise Refused(400, "invalid-request", "serviceType and publicService name different services")
        return self.publicService


class SubmitSubmission(_Body):
    """``PUT /submissions/{id}``."""

    encryptedMetadata: Compact
    encryptedData: Compact | None = None


def _check_jwe(token: str, what: str) -> None:
    """The Zustelldienst cannot decrypt, but it refuses what is not a JWE of FIT-Connect's algorithms."""
    try:
        header = jose.jwe_header(token)
    except jose.JoseError as exc:
        raise Refused(422, "invalid-jwe", f"{what} is not a compact JWE: {exc.detail}") from None
    if header.get("alg") != jose.ENCRYPTION_ALG or header.get("enc") != jose.CONTENT_ENCRYPTION:
        raise Refused(422, "invalid-jwe", f"{what} must be encrypted with RSA-OAEP-256 and A256GCM")
    if not all(token.split(".")[1:]):
        raise Refused(422, "invalid-jwe", f"{what} has an empty segment")


def _as_sender(token: Token, submission: Submission) -> None:
    if token.client.client_id != submission.sender:
        raise Refused(403, "forbidden", "the submission belongs to another sender")


async def jwks(request: web.Request) -> web.Response:
    """``GET /.well-known/jwks.json``: the key that verifies the Zustelldienst's events."""
    state = request.app[STATE]
    key = state.service_key
    return web.json_response({"keys": [state.authority.published(key)]})


async def info(request: web.Request) -> web.Response:
    """``GET /{v}/info``."""
    return web.json_response({"version": {"major": 1, "minor": 1, "patch": 3}})


async def get_destination(request: web.Request) -> web.Response:
    """``GET /destinations/{id}``: the public view."""
    state = state_of(request)
    token_of(request)
    destination = destination_of(state, request.match_info["destinationId"])
    return web.json_response(destination.public_view(), headers={"Cache-Control": "no-cache"})


async def get_destination_key(request: web.Request) -> web.Response:
    """``GET /destinations/{id}/keys/{kid}``: the encryption key or a signature key (public JWK)."""
    state = state_of(request)
    destination = destination_of(state, request.match_info["destinationId"])
    kid = request.match_info["keyId"]
    keys = [destination.encryption_key, *destination.signature_keys]
    key = next((k for k in keys if jose.key_id(k) == kid), None)
    if key is None:
        raise Refused(404, "key-not-found", "no such key")
    return web.json_response(state.authority.published(key), headers={"Cache-Control": "no-cache"})


async def list_destination_keys(request: web.Request) -> web.Response:
    """``GET /v2/destinations/{id}/keys``: the destination's public keys as a JWKS (v2, as deployed)."""
    state = state_of(request)
    destination = destination_of(state, request.match_info["destinationId"])
    keys = [destination.encryption_key, *destination.signature_keys]
    body = {"keys": [state.authority.published(k) for k in keys]}
    return web.json_response(body, headers={"Cache-Control": "no-cache"})


async def create_submission(request: web.Request) -> web.Response:
    """``POST /submissions``: announce a submission, its attachments and its service."""
    state = state_of(request)
    token = token_of(request)
    body: CreateSubmission = await json_body(request, CreateSubmission)
    announced_service = body.service(version_of(request))
    if not any(s.startswith((SCOPE_SEND_REGION, SCOPE_SEND_DESTINATION)) for s in token.scopes):
        raise Refused(403, "forbidden", "the token lacks a send scope")
    destination = destination_of(state, body.destinationId)
    if destination.status != "active":
        raise Refused(422, "destination-inactive", f"the destination is {destination.status}")
    if not destination.regions(announced_service.identifier):
        raise Refused(422, "service-not-offered", "the destination does not offer this service")
    if not may_send(token.scopes, destination, announced_service.identifier):
        raise Refused(403, "forbidden", "the token's send scopes do not cover this destination and service")
    if len(set(body.announcedAttachments)) != len(body.announcedAttachments):
        raise Refused(400, "invalid-request", "announcedAttachments repeats an id")
    if body.caseId is not None:
        case = state.cases.get(body.caseId)
        if case is None or case.destination_id != destination.destination_id:
            raise Refused(404, "case-not-found", "no such case at this destination")
    service = announced_service.model_dump(exclude_none=True)
    submission = state.announce(
        destination, service, list(body.announcedAttachments), body.caseId, token.client.client_id
    )
    return web.json_response(submission.reference(), status=201)


async def upload_attachment(request: web.Request) -> web.Response:
    """``PUT /submissions/{id}/attachments/{attachmentId}``: one announced attachment as a JWE."""
    state = state_of(request)
    token = token_of(request)
    submission = submission_of(state, request.match_info["submissionId"])
    _as_sender(token, submission)
    attachment_id = uuid_param(request.match_info["attachmentId"], "attachmentId")
    require_media_type(request, JOSE)
    if submission.status is not Status.CREATED:
        raise Refused(422, "submission-already-submitted", "attachments can only be added before submitting")
    if attachment_id not in submission.announced:
        raise Refused(422, "attachment-not-announced", "the attachment was not announced with the submission")
    raw = await read_body(request, state.options.max_attachment_bytes, "the attachment")
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise Refused(422, "invalid-jwe", "the attachment is not a compact JWE") from None
    if not re.fullmatch(r"[a-zA-Z0-9\-_=.]+", text):
        raise Refused(422, "invalid-jwe", "the attachment is not a compact JWE")
    _check_jwe(text, "the attachment")
    submission.attachments[attachment_id] = text
    return web.Response(status=204)


async def submit_submission(request: web.Request) -> web.Response:
    """``PUT /submissions/{id}``: the encrypted metadata (and data) complete the submission."""
    state = state_of(request)
    token = token_of(request)
    submission = submission_of(state, request.match_info["submissionId"])
    _as_sender(token, submission)
    body: SubmitSubmission = await json_body(request, SubmitSubmission)
    if submission.status is not Status.CREATED:
        raise Refused(422, "submission-already-submitted", "the submission was already submitted")
    missing = [a for a in submission.announced if a not in submission.attachments]
    if missing:
        raise Refused(422, "missing-attachments", f"announced attachments not uploaded: {', '.join(missing)}")
    _check_jwe(body.encryptedMetadata, "encryptedMetadata")
    if body.encryptedData is not None:
        _check_jwe(body.encryptedData, "encryptedData")
    submission.encrypted_metadata = body.encryptedMetadata
    submission.encrypted_data = body.encryptedData
    faults.tamper(state, submission)
    submission.tags = _tags_of(submission)
    submission.status = Status.SUBMITTED
    submission.submitted = state.clock.now()
    payload = {"authenticationTags": submission.tags.model_dump(exclude_none=True)}
    state.service_event(submission, SUBMIT_SUBMISSION, payload)
    schedule_callback(request.app, submission)
    return web.json_response(submission.reduced(), status=202)


def _tags_of(submission: Submission) -> AuthenticationTags:
    assert submission.encrypted_metadata is not None
    data = submission.encrypted_data
    return AuthenticationTags(
        metadata=jose.authentication_tag(submission.encrypted_metadata),
        data=jose.authentication_tag(data) if data else None,
        attachments={a: jose.authentication_tag(submission.attachments[a]) for a in submission.announced},
    )
