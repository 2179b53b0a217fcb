"""The receiver side of FIT-Connect's Submission API: pickup list, submission, attachments, event log.

One `Receiver` per destination: its OAuth2 token carries the scope ``subscribe:destination:<id>``.
Every failure is classified by the hub's outbound helper (`Retryable`: timeouts, 5xx, 429;
`Permanent`: other 4xx); a submission the API no longer hands out (404: accepted, rejected or deleted
meanwhile) is `SubmissionGone`, so the source can tell it from a fault. Attachments arrive as the JWE
the API returns (read up to `max_attachment`), never more than one at a time in memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Literal, TypeVar

from pydantic import ValidationError

from hub import OAuth2ClientCredentials, Permanent
from hub.outbound import HttpEndpoint, Outbound, server_message

from .jose import JoseError, Keyring, load_keys
from .wire import SCOPE_SUBSCRIBE, EventLog, Submission, SubmissionForPickup, SubmissionsForPickup

SYSTEM = "FIT-Connect"
JOSE = "application/jose"
# Pages of the event log (the API's limit is 500).
EVENT_PAGE = 500
# The submission service's keys are read again after this many seconds, or at once for an unknown kid.
JWKS_SECONDS = 3600.0

EventAnswer = Literal["stored", "conflict"]
M = TypeVar("M", SubmissionsForPickup, Submission, EventLog)


class SubmissionGone(Permanent):
    """The API no longer hands this submission out (404): accepted, rejected or deleted meanwhile."""


class EventRefused(Permanent):
    """The API refused our event as invalid (422): a fault of ours (key, tags), never retried blindly."""


def subscriber_endpoint(api: HttpEndpoint, destination_id: str) -> HttpEndpoint:
    """The API endpoint whose token is scoped to one destination (``subscribe:destination:<id>``)."""
    auth = api.auth
    if not isinstance(auth, OAuth2ClientCredentials):
        raise Permanent("the Submission API needs OAuth2 client credentials")
    scoped = auth.model_copy(update={"scope": SCOPE_SUBSCRIBE + destination_id})
    return api.model_copy(update={"auth": scoped})


class Receiver:
    """The calls a subscriber makes for one destination, on the Submission API version configured."""

    def __init__(self, outbound: Outbound, destination_id: str, version: str, *, max_attachment: int) -> None:
        self.http = outbound
        self.destination_id = destination_id
        self.prefix = f"/{version}"
        self.max_attachment = max_attachment

    async def pickup(self, page_size: int) -> AsyncIterator[SubmissionForPickup]:
        """Every submission waiting for this destination, page by page (``limit``/``offset``)."""
        offset = 0
        while True:
            params = {"destinationId": self.destination_id, "limit": str(page_size), "offset": str(offset)}
            what = "list submissions for pickup"
            answer = await self.http.request("GET", f"{self.prefix}/submissions", what, params=params)
            page = _model(SubmissionsForPickup, answer.body, what)
            for item in page.submissions:
                yield item
            offset += len(page.submissions)
            if not page.submissions or offset >= page.totalCount:
                return

    async def submission(self, submission_id: str) -> Submission:
        """A submission with its encrypted metadata and data and its attachment ids."""
        what = f"fetch submission {submission_id}"
        answer = await self.http.request(
            "GET", f"{self.prefix}/submissions/{submission_id}", what, accept=(404,)
        )
        if answer.status == 404:
            raise SubmissionGone(f"{what}: not (or no longer) ready for pickup")
        return _model(Submission, answer.body, what)

    async def attachment(self, submission_id: str, attachment_id: str) -> str:
        """An attachment as the JWE the API returns (compact serialization)."""
        what = f"fetch attachment {attachment_id} of submission {submission_id}"
        path = f"{self.prefix}/submissions/{submission_id}/attachments/{attachment_id}"
        answer = await self.http.request(
            "GET", path, what, limit=self.max_attachment, accept=(404,), headers={"Accept": JOSE}
        )
        if answer.status == 404:
            raise SubmissionGone(f"{what}: not (or no longer) available")
        return _ascii(answer.body, what)

    async def events(self, case_id: str) -> list[str]:
        """The case's event log (signed SETs), oldest first, all pages."""
        tokens: list[str] = []
        while True:
            what = f"read the event log of case {case_id}"
            params = {"limit": str(EVENT_PAGE), "offset": str(len(tokens))}
            answer = await self.http.request(
                "GET", f"{self.prefix}/cases/{case_id}/events", what, params=params
            )
            page = _model(EventLog, answer.body, what)
            tokens += page.eventLog
            if not page.eventLog or len(tokens) >= page.totalCount:
                return tokens

    async def post_event(self, case_id: str, token: str, what: str) -> EventAnswer:
        """Post our signed event: ``stored`` (204), ``conflict`` (409: the state does not allow it)."""
        answer = await self.http.request(
            "POST",
            f"{self.prefix}/cases/{case_id}/events",
            what,
            data=token.encode("ascii"),
            headers={"Content-Type": JOSE},
            accept=(409, 422),
        )
        if answer.status == 409:
            return "conflict"
        if answer.status == 422:
            raise EventRefused(f"{what}: {SYSTEM} refused the event (422): {server_message(answer.body)}")
        return "stored"


class ServiceKeys:
    """The submission service's public signature keys (its JWKS), cached; read again for an unknown kid."""

    def __init__(self, outbound: Outbound, url: str) -> None:
        self.http = outbound
        self.url = url
        self._keys: Keyring | None = None
        self._read_at = 0.0

    async def keyring(self, kid: str | None = None) -> Keyring:
        """The keys; read (again) when none are cached, they are old, or `kid` is not among them."""
        stale = time.monotonic() - self._read_at > JWKS_SECONDS
        if self._keys is None or stale or (kid is not None and self._keys.get(kid) is None):
            what = "read the submission service's keys"
            answer = await self.http.request("GET", self.url, what, auth=False)
            try:
                document = json.loads(answer.body)
                if not isinstance(document, dict):
                    raise ValueError("not a JSON object")
                self._keys = Keyring(load_keys(document))
            except (JoseError, ValueError) as exc:
                raise Permanent(f"{what}: {self.url} holds no usable JWKS: {exc}") from None
            self._read_at = time.monotonic()
        return self._keys


def _ascii(body: bytes, what: str) -> str:
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise Permanent(f"{what}: the answer is not a compact JWE") from None


def _model(model: type[M], body: bytes, what: str) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise Permanent(
            f"{what}: {SYSTEM} answered in an unexpected shape ({exc.error_count()} errors)"
        ) from None
