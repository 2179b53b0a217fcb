"""The simulated Submission API (sender and receiver side, ``/v1`` and ``/v2``) and its token endpoint."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import unquote_plus

from aiohttp import hdrs, web
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from hub.simulation import (
    basic_credentials,
    bearer_token,
    parse_json,
    read_body,
    secret_matches,
)

from .. import jose
from ..wire import (
    ACCEPT_SUBMISSION,
    REJECT_SUBMISSION,
    SCOPE_SEND_DESTINATION,
    SCOPE_SEND_REGION,
    SCOPE_SUBSCRIBE,
    SUBMIT_SUBMISSION,
    AuthenticationTags,
    Problem,
)
from . import faults
from .callbacks import schedule_callback
from .problems import OAuthRefused, Refused, oauth_error
from .state import Destination, SimState, Status, Submission, Token, may_send, subscribed

STATE = web.AppKey("fitconnect_simulator_state", SimState)
JOSE = "application/jose"
MAX_EVENT_BYTES = 256 * 1024
# iat of a receiver's event may run ahead of the Zustelldienst's clock by this much (clock skew).
IAT_LEEWAY_SECONDS = 60

# The string form of a UUID (RFC 4122), as the OpenAPI's `format: uuid` and a Java service read it.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
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


# -- helpers ----------------------------------------------------------------------------------------


def _version(request: web.Request) -> str:
    return request.path.split("/", 2)[1]


def _state(request: web.Request) -> SimState:
    state = request.app[STATE]
    state.tick()
    return state


def _token(request: web.Request) -> Token:
    value = bearer_token(request.headers.get(hdrs.AUTHORIZATION, ""))
    token = request.app[STATE].token(value) if value else None
    if token is None:
        raise Refused(401, "unauthorized", "a valid access token is required (missing, unknown or expired)")
    return token


def _uuid(value: str, what: str) -> str:
    if not re.fullmatch(UUID_PATTERN, value):
        raise Refused(400, "invalid-request", f"{what} is not a UUID")
    return value


def _media_type(request: web.Request, expected: str) -> None:
    if request.content_type != expected:
        raise Refused(
            415, "unsupported-media-type", f"expected Content-Type {expected}, got {request.content_type!r}"
        )


async def _json_body(request: web.Request, model: type[BaseModel]) -> Any:
    _media_type(request, "application/json")
    raw = await read_body(request, request.app[STATE].options.max_json_bytes)
    try:
        return model.model_validate(parse_json(raw))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"])) or "the body"
        raise Refused(400, "invalid-request", f"{where}: {first['msg']}") from None


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


def _submission(state: SimState, submission_id: str) -> Submission:
    submission = state.submissions.get(_uuid(submission_id, "submissionId"))
    if submission is None:
        raise Refused(404, "submission-not-found", "no such submission")
    return submission


def _as_receiver(token: Token, destination_id: str) -> None:
    if destination_id not in subscribed(token.scopes):
        raise Refused(403, "forbidden", f"the token lacks scope {SCOPE_SUBSCRIBE}{destination_id}")


def _as_sender(token: Token, submission: Submission) -> None:
    if token.client.client_id != submission.sender:
        raise Refused(403, "forbidden", "the submission belongs to another sender")


def _content(submission: Submission) -> None:
    if submission.status in (Status.ACCEPTED, Status.REJECTED):
        raise Refused(404, "submission-not-found", "the submission was completed and its content deleted")
    if submission.status is not Status.SUBMITTED:
        raise Refused(404, "submission-not-found", "the submission has not been submitted")


def _page(request: web.Request) -> tuple[int, int]:
    def number(name: str, default: int, low: int, high: int | None) -> int:
        text = request.query.get(name)
        if text is None:
            return default
        if (
            not text.isascii()
            or not text.isdigit()
            or int(text) < low
            or (high is not None and int(text) > high)
        ):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise Refused(400, "invalid-request", f"{name} must be an integer {bound}")
        return int(text)

    return number("limit", 100, 1, 500), number("offset", 0, 0, None)


# -- token endpoint ---------------------------------------------------------------------------------


async def token_endpoint(request: web.Request) -> web.Response:
    """``POST /token``: client credentials by ``client_secret_basic`` or ``client_secret_post``."""
    state = request.app[STATE]
    basic = basic_credentials(request.headers.get(hdrs.AUTHORIZATION, ""))
    if basic is not None:  # RFC 6749, section 2.3.1: both parts are form-urlencoded
        basic = (unquote_plus(basic[0]), unquote_plus(basic[1]))
    try:
        if request.content_type != "application/x-www-form-urlencoded":
            raise OAuthRefused(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            raise OAuthRefused(400, "unsupported_grant_type", "only client_credentials is supported")
        posted = (str(form.get("client_id", "")), str(form.get("client_secret", "")))
        if basic and posted[1]:
            raise OAuthRefused(400, "invalid_request", "client authentication by more than one method")
        client_id, secret = basic or posted
        client = state.clients.get(client_id)
        if not secret_matches(secret, client.secret if client else None) or client is None:
            raise OAuthRefused(401, "invalid_client", "client authentication failed")
        requested = str(form.get("scope", "")).split()
        if not set(requested) <= client.scopes:
            raise OAuthRefused(400, "invalid_scope", "a requested scope is not granted to this client")
        scopes = frozenset(requested) or client.scopes
    except OAuthRefused as refused:
        return oauth_error(refused, basic is not None)
    value, _ = state.issue_token(client, scopes)
    answer = {
        "access_token": value,
        "token_type": "Bearer",
        "expires_in": state.options.token_lifetime_seconds,
        "scope": " ".join(sorted(scopes)),
    }
    return web.json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def jwks(request: web.Request) -> web.Response:
    """``GET /.well-known/jwks.json``: the key that verifies the Zustelldienst's events."""
    state = request.app[STATE]
    key = state.service_key
    return web.json_response({"keys": [jose.public_jwk(key) | {"x5c": state.authority.chain(key)}]})


async def info(request: web.Request) -> web.Response:
    """``GET /{v}/info``."""
    return web.json_response({"version": {"major": 1, "minor": 1, "patch": 3}})


# -- destinations -----------------------------------------------------------------------------------


def _destination(state: SimState, destination_id: str) -> Destination:
    destination = state.destinations.get(_uuid(destination_id, "destinationId"))
    if destination is None:
        raise Refused(404, "destination-not-found", "no such destination")
    return destination


async def get_destination(request: web.Request) -> web.Response:
    """``GET /destinations/{id}``: the public view."""
    state = _state(request)
    _token(request)
    destination = _destination(state, request.match_info["destinationId"])
    return web.json_response(destination.public_view(), headers={"Cache-Control": "no-cache"})


async def get_destination_key(request: web.Request) -> web.Response:
    """``GET /destinations/{id}/keys/{kid}``: the encryption key or a signature key (public JWK)."""
    state = _state(request)
    destination = _destination(state, request.match_info["destinationId"])
    kid = request.match_info["keyId"]
    keys = [destination.encryption_key, *destination.signature_keys]
    key = next((k for k in keys if jose.key_id(k) == kid), None)
    if key is None:
        raise Refused(404, "key-not-found", "no such key")
    return web.json_response(
        jose.public_jwk(key) | {"x5c": state.authority.chain(key)}, headers={"Cache-Control": "no-cache"}
    )


async def list_destination_keys(request: web.Request) -> web.Response:
    """``GET /v2/destinations/{id}/keys``: the destination's public keys as a JWKS (v2, as deployed)."""
    state = _state(request)
    destination = _destination(state, request.match_info["destinationId"])
    keys = [destination.encryption_key, *destination.signature_keys]
    body = {"keys": [jose.public_jwk(k) | {"x5c": state.authority.chain(k)} for k in keys]}
    return web.json_response(body, headers={"Cache-Control": "no-cache"})


# -- sender side ------------------------------------------------------------------------------------


async def create_submission(request: web.Request) -> web.Response:
    """``POST /submissions``: announce a submission, its attachments and its service."""
    state = _state(request)
    token = _token(request)
    body: CreateSubmission = await _json_body(request, CreateSubmission)
    announced_service = body.service(_version(request))
    if not any(s.startswith((SCOPE_SEND_REGION, SCOPE_SEND_DESTINATION)) for s in token.scopes):
        raise Refused(403, "forbidden", "the token lacks a send scope")
    destination = _destination(state, body.destinationId)
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
    state = _state(request)
    token = _token(request)
    submission = _submission(state, request.match_info["submissionId"])
    _as_sender(token, submission)
    attachment_id = _uuid(request.match_info["attachmentId"], "attachmentId")
    _media_type(request, JOSE)
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
    state = _state(request)
    token = _token(request)
    submission = _submission(state, request.match_info["submissionId"])
    _as_sender(token, submission)
    body: SubmitSubmission = await _json_body(request, SubmitSubmission)
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


# -- receiver side ----------------------------------------------------------------------------------


async def list_submissions(request: web.Request) -> web.Response:
    """``GET /submissions?destinationId=&limit=&offset=``: submissions ready for pickup."""
    state = _state(request)
    token = _token(request)
    limit, offset = _page(request)
    allowed = subscribed(token.scopes)
    wanted = request.query.get("destinationId")
    if wanted is not None:
        _uuid(wanted, "destinationId")
        _as_receiver(token, wanted)
        allowed = {wanted}
    elif not allowed:
        raise Refused(403, "forbidden", f"the token lacks a {SCOPE_SUBSCRIBE}<id> scope")
    ready = state.pickup(allowed)
    page = ready[offset : offset + limit]
    body = {
        "count": len(page),
        "offset": offset,
        "totalCount": len(ready),
        "submissions": [s.reference() for s in page],
    }
    return web.json_response(body)


async def get_submission(request: web.Request) -> web.Response:
    """``GET /submissions/{id}``: the submission with its encrypted metadata and data."""
    state = _state(request)
    token = _token(request)
    submission = _submission(state, request.match_info["submissionId"])
    _as_receiver(token, submission.destination_id)
    _content(submission)
    submission.fetched = submission.fetched or state.clock.now()
    body = submission.reduced()
    if _version(request) == "v2":
        body["publicService"] = submission.service_type
    body["encryptedMetadata"] = submission.encrypted_metadata
    if submission.encrypted_data is not None:
        body["encryptedData"] = submission.encrypted_data
    return web.json_response(body)


async def get_attachment(request: web.Request) -> web.Response:
    """``GET /submissions/{id}/attachments/{attachmentId}``: the attachment's JWE."""
    state = _state(request)
    token = _token(request)
    submission = _submission(state, request.match_info["submissionId"])
    _as_receiver(token, submission.destination_id)
    _content(submission)
    content = submission.attachments.get(_uuid(request.match_info["attachmentId"], "attachmentId"))
    if content is None:
        raise Refused(404, "attachment-not-found", "no such attachment")
    return web.Response(text=content, content_type=JOSE)


async def get_events(request: web.Request) -> web.Response:
    """``GET /cases/{caseId}/events``: the event log, to the case's sender and receiver."""
    state = _state(request)
    token = _token(request)
    limit, offset = _page(request)
    case = state.cases.get(_uuid(request.match_info["caseId"], "caseId"))
    if case is None:
        raise Refused(404, "case-not-found", "no such case")
    senders = {s.sender for s in state.submissions.values() if s.case_id == case.case_id}
    if case.destination_id not in subscribed(token.scopes) and token.client.client_id not in senders:
        raise Refused(403, "forbidden", "the token may not read this case")
    return _event_page(case.events, limit, offset)


async def get_submission_events(request: web.Request) -> web.Response:
    """``GET /v2/submissions/{id}/events``: the events of one submission (v2, as deployed)."""
    state = _state(request)
    token = _token(request)
    limit, offset = _page(request)
    submission = _submission(state, request.match_info["submissionId"])
    if (
        submission.destination_id not in subscribed(token.scopes)
        and token.client.client_id != submission.sender
    ):
        raise Refused(403, "forbidden", "the token may not read this submission's events")
    subject = f"submission:{submission.submission_id}"
    events = [
        t for t in state.cases[submission.case_id].events if jose.unverified_claims(t)["sub"] == subject
    ]
    return _event_page(events, limit, offset)


def _event_page(events: list[str], limit: int, offset: int) -> web.Response:
    page = events[offset : offset + limit]
    return web.json_response(
        {"count": len(page), "offset": offset, "totalCount": len(events), "eventLog": page}
    )


async def post_event(request: web.Request) -> web.Response:
    """``POST /cases/{caseId}/events``: the receiver's accept or reject (a SET) → 204, 409, 422."""
    state = _state(request)
    token = _token(request)
    case = state.cases.get(_uuid(request.match_info["caseId"], "caseId"))
    if case is None:
        raise Refused(404, "case-not-found", "no such case")
    _as_receiver(token, case.destination_id)
    _media_type(request, JOSE)
    raw = await read_body(request, MAX_EVENT_BYTES, "the event")
    if state.knobs.fail_events_next:
        state.knobs.fail_events_next -= 1
        raise Refused(503, "server-error", "service temporarily unavailable (simulated)")
    if state.knobs.hold_events_next:
        state.knobs.hold_events_next -= 1
        await state.hold()
    text = raw.decode("ascii", errors="replace").strip()
    if not re.fullmatch(r"[a-zA-Z0-9\-_=]+\.[a-zA-Z0-9\-_=]+\.[a-zA-Z0-9\-_=]+", text):
        raise Refused(400, "invalid-request", "the body is not a compact JWS")
    destination = state.destinations[case.destination_id]
    try:
        claims = jose.verify_event(text, destination.signature_keys)
    except jose.JoseError as exc:
        raise Refused(
            422, "invalid-event", f"the event does not verify ({exc.reason}): {exc.detail}"
        ) from None
    submission = state.submissions.get(claims.submission_id)
    checks = [
        (claims.iss == destination.destination_id, "iss must be the destination id"),
        (claims.txn == f"case:{case.case_id}", "txn must name this case"),
        (
            submission is not None and submission.case_id == case.case_id,
            "sub must name a submission of this case",
        ),
        (
            claims.event in (ACCEPT_SUBMISSION, REJECT_SUBMISSION),
            "only accept-submission or reject-submission",
        ),
        (claims.iat <= state.clock.now().timestamp() + IAT_LEEWAY_SECONDS, "iat lies in the future"),
    ]
    for ok, detail in checks:
        if not ok:
            raise Refused(422, "invalid-event", detail)
    assert submission is not None
    if submission.status is not Status.SUBMITTED:
        raise Refused(409, "invalid-state-transition", f"the submission is {submission.status.value}")
    if claims.event == ACCEPT_SUBMISSION:
        if claims.authentication_tags != submission.tags:
            raise Refused(422, "invalid-event", "authenticationTags do not match the submission")
        state.finish(submission, Status.ACCEPTED)
    else:
        _check_problems(claims.payload)
        state.finish(submission, Status.REJECTED)
    case.events.append(text)
    return web.Response(status=204)


def _check_problems(payload: dict[str, Any]) -> None:
    problems = payload.get("problems")
    if not isinstance(problems, list) or not problems:
        raise Refused(422, "invalid-event", "a reject names at least one problem")
    for entry in problems:
        try:
            found = Problem.model_validate(entry)
        except ValidationError:
            raise Refused(422, "invalid-event", "a problem needs type and title") from None
        if not found.type.startswith("https://") or not found.detail or not found.instance:
            raise Refused(422, "invalid-event", "a problem needs a type URI, detail and instance")


def api_routes(version: str) -> list[web.RouteDef]:
    """The Submission API's routes under ``/{version}``."""
    base = f"/{version}"
    routes = [
        web.get(f"{base}/info", info),
        web.get(f"{base}/destinations/{{destinationId}}", get_destination),
        web.get(f"{base}/destinations/{{destinationId}}/keys/{{keyId}}", get_destination_key),
        web.get(f"{base}/submissions", list_submissions),
        web.post(f"{base}/submissions", create_submission),
        web.get(f"{base}/submissions/{{submissionId}}", get_submission),
        web.put(f"{base}/submissions/{{submissionId}}", submit_submission),
        web.get(f"{base}/submissions/{{submissionId}}/attachments/{{attachmentId}}", get_attachment),
        web.put(f"{base}/submissions/{{submissionId}}/attachments/{{attachmentId}}", upload_attachment),
        web.get(f"{base}/cases/{{caseId}}/events", get_events),
        web.post(f"{base}/cases/{{caseId}}/events", post_event),
    ]
    if version == "v2":  # what deployed v2 clients call beyond the v1 paths (optiGov/php-fitconnect)
        routes += [
            web.get(f"{base}/destinations/{{destinationId}}/keys", list_destination_keys),
            web.get(f"{base}/submissions/{{submissionId}}/events", get_submission_events),
        ]
    return routes
