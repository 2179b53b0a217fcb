"""Refusals of the simulated Submission API and token endpoint, in FIT-Connect's shapes.

The API answers RFC 7807 ``application/problem+json`` (``type``, ``title``, ``status``, ``detail``); the
token endpoint answers RFC 6749 ``{"error": ..., "error_description": ...}``.
"""

from __future__ import annotations

from aiohttp import web

from ..wire import API_PROBLEM_PREFIX

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Refused(Exception):
    """A request the simulated API refuses: status, a problem type slug and a detail."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail


def problem(status: int, slug: str, detail: str, instance: str | None = None) -> web.Response:
    """An RFC 7807 answer of the Submission API."""
    body: dict[str, object] = {
        "type": API_PROBLEM_PREFIX + slug,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    response = web.json_response(body, status=status, content_type=PROBLEM_JSON)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


class OAuthRefused(Exception):
    """A token request refused (RFC 6749 section 5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def oauth_error(refused: OAuthRefused, basic: bool) -> web.Response:
    """The token endpoint's error answer; a 401 to Basic credentials names the scheme to use."""
    response = web.json_response(
        {"error": refused.error, "error_description": refused.description}, status=refused.status
    )
    response.headers["Cache-Control"] = "no-store"
    if refused.status == 401 and basic:
        response.headers["WWW-Authenticate"] = 'Basic realm="fit-connect"'
    return response
