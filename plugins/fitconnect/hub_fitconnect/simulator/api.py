"""The simulated Submission API's routes (``/v1`` and ``/v2``): sender side, receiver side, token endpoint."""

from __future__ import annotations

from aiohttp import web

from .common import STATE
from .oauth import token_endpoint
from .receiving import (
    get_attachment,
    get_events,
    get_submission,
    get_submission_events,
    list_submissions,
    post_event,
)
from .sending import (
    create_submission,
    get_destination,
    get_destination_key,
    info,
    jwks,
    list_destination_keys,
    submit_submission,
    upload_attachment,
)

__all__ = ["STATE", "api_routes", "jwks", "token_endpoint"]


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
