"""FIT-Connect's callback: ``POST /intake/<connector>/callback`` names new submissions to pick up.

The callback is checked before anything is believed: ``callback-timestamp`` (Unix seconds) no older than
5 minutes and not in the future beyond a little clock skew, ``callback-authentication`` the hex
HMAC-SHA512 of ``"{timestamp}.{raw body}"`` with the secret of a destination the body names, compared
in constant time; then the body's shape. A refused callback changes nothing. An accepted one is
answered 200 at once; its submissions are taken in the background by the same idempotent path as the
safety poll, which also takes whatever a failed or lost callback left behind.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import ValidationError

from hub import IntakeFunc, WebhookRoute

from .config import CALLBACK_MAX_AGE
from .wire import (
    CALLBACK_AUTHENTICATION,
    CALLBACK_NEW_SUBMISSIONS,
    CALLBACK_TIMESTAMP,
    CallbackBody,
    callback_mac_matches,
)

if TYPE_CHECKING:
    from .source import FitConnectSource

log = logging.getLogger(__name__)

# A callback's body is a short list of ids; anything larger is not one.
MAX_BODY = 256 * 1024
# Clocks differ a little: a timestamp this far in the future still counts as now.
SKEW = 30


def _refused(status: int, detail: str) -> web.Response:
    return web.json_response(
        {"type": "about:blank", "title": "callback refused", "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


def callback_route(source: FitConnectSource, intake: IntakeFunc) -> WebhookRoute:
    """The callback route of one source."""

    async def handle(request: web.Request) -> web.StreamResponse:
        timestamp = request.headers.get(CALLBACK_TIMESTAMP, "")
        mac = request.headers.get(CALLBACK_AUTHENTICATION, "")
        if not timestamp.isdigit() or not mac:
            return _refused(401, f"{CALLBACK_TIMESTAMP} and {CALLBACK_AUTHENTICATION} are required")
        age = time.time() - int(timestamp)
        if age > CALLBACK_MAX_AGE or age < -SKEW:
            return _refused(401, "the callback timestamp is outside the accepted window (5 minutes)")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _refused(413, "the body is too large for a callback")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            return _refused(413, "the body is too large for a callback")
        # The HMAC proves the body; only then is it read. Which secret: that of a destination the
        # body names, so the body is parsed first, but nothing of it is used before the check.
        try:
            parsed = CallbackBody.model_validate_json(body)
        except ValidationError:
            parsed = None
        secrets = [
            d.callback_secret.get_secret_value()
            for d in source.config.destinations
            if d.callback_secret is not None
            and (parsed is None or any(s.destinationId.lower() == d.id.lower() for s in parsed.submissions))
        ]
        if not any(callback_mac_matches(secret, timestamp, body, mac) for secret in secrets):
            log.warning("fitconnect callback refused: wrong HMAC source=%s", source.name)
            return _refused(401, f"{CALLBACK_AUTHENTICATION} does not match")
        if parsed is None:
            return _refused(400, "the body is not a FIT-Connect callback")
        if parsed.type != CALLBACK_NEW_SUBMISSIONS:
            return web.Response(status=200)  # new events: nothing the subscriber acts on
        ours = [s for s in parsed.submissions if source.config.destination(s.destinationId) is not None]
        if len(ours) != len(parsed.submissions):
            return _refused(400, "the callback names a destination not taken by this connector")
        source.callback_intake(ours, intake)
        return web.Response(status=200)

    return WebhookRoute("POST", "callback", handle)
