"""The receiver side of the simulated Submission API: pickup, submissions, attachments, the event log."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from hub.simulation import read_body

from .. import jose
from ..wire import (
    ACCEPT_SUBMISSION,
    REJECT_SUBMISSION,
    SCOPE_SUBSCRIBE,
    Problem,
)
from .common import (
    JOSE,
    page_of,
    require_media_type,
    state_of,
    submission_of,
    token_of,
    uuid_param,
    version_of,
)
from .problems import Refused
from .state import SimState, Status, Submission, Token, subscribed

MAX_EVENT_BYTES = 256 * 1024


# iat of a receiver's event may run ahead of the Zustelldienst's clock by this much (clock skew).
IAT_LEEWAY_SECONDS = 60


def _as_receiver(token: Token, destination_id: str) -> None:
    if destination_id not in subscribed(token.scopes):
        raise Refused(403, "forbidden", f"the token lacks scope {SCOPE_SUBSCRIBE}{destination_id}")


def _content(submission: Submission) -> None:
    if submission.status in (Status.ACCEPTED, Status.REJECTED):
        raise Refused(404, "submission-not-found", "the submission was completed and its content deleted")
    if submission.status is not Status.SUBMITTED:
        raise Refused(404, "submission-not-found", "the submission has not been submitted")


async def list_submissions(request: web.Request) -> web.Response:
    """``GET /submissions?destinationId=&limit=&offset=``: submissions ready for pickup."""
    state = state_of(request)
    token = token_of(request)
    limit, offset = page_of(request)
    allowed = subscribed(token.scopes)
    wanted = request.query.get("destinationId")
    if wanted is not None:
        uuid_param(wanted, "destinationId")
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


def _readable(request: web.Request) -> tuple[SimState, Submission]:
    """The state and the submission the path names, if this receiver may read its content now."""
    state = state_of(request)
    token = token_of(request)  # before the id: no one unauthenticated learns which ids exist
    submission = submission_of(state, request.match_info["submissionId"])
    _as_receiver(token, submission.destination_id)
    _content(submission)
    return state, submission


async def get_submission(request: web.Request) -> web.Response:
    """``GET /submissions/{id}``: the submission with its encrypted metadata and data."""
    state, submission = _readable(request)
    submission.fetched = submission.fetched or state.clock.now()
    body = submission.reduced()
    if version_of(request) == "v2":
        body["publicService"] = submission.service_type
    body["encryptedMetadata"] = submission.encrypted_metadata
    if submission.encrypted_data is not None:
        body["encryptedData"] = submission.encrypted_data
    return web.json_response(body)


async def get_attachment(request: web.Request) -> web.Response:
    """``GET /submissions/{id}/attachments/{attachmentId}``: the attachment's JWE."""
    _, submission = _readable(request)
    content = submission.attachments.get(uuid_param(request.match_info["attachmentId"], "attachmentId"))
    if content is None:
        raise Refused(404, "attachment-not-found", "no such attachment")
    return web.Response(text=content, content_type=JOSE)


async def get_events(request: web.Request) -> web.Response:
    """``GET /cases/{caseId}/events``: the event log, to the case's sender and receiver."""
    state = state_of(request)
    token = token_of(request)
    limit, offset = page_of(request)
    case = state.cases.get(uuid_param(request.match_info["caseId"], "caseId"))
    if case is None:
        raise Refused(404, "case-not-found", "no such case")
    senders = {s.sender for s in state.submissions.values() if s.case_id == case.case_id}
    if case.destination_id not in subscribed(token.scopes) and token.client.client_id not in senders:
        raise Refused(403, "forbidden", "the token may not read this case")
    return _event_page(case.events, limit, offset)


async def get_submission_events(request: web.Request) -> web.Response:
    """``GET /v2/submissions/{id}/events``: the events of one submission (v2, as deployed)."""
    state = state_of(request)
    token = token_of(request)
    limit, offset = page_of(request)
    submission = submission_of(state, request.match_info["submissionId"])
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
    state = state_of(request)
    token = token_of(request)
    case = state.cases.get(uuid_param(request.match_info["caseId"], "caseId"))
    if case is None:
        raise Refused(404, "case-not-found", "no such case")
    _as_receiver(token, case.destination_id)
    require_media_type(request, JOSE)
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
