"""What the simulated Fachverfahren have in common: a clerk's decision as a PDF, the control request."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from hub.simulation import MalformedRequest, parse_json, read_body

MAX_CONTROL = 64 * 1024


@dataclass(frozen=True)
class Decision:
    """``POST /control/decide``: which case, the new status, a message, whether a PDF goes with it."""

    reference: str
    status: str
    message: str | None
    pdf: bool


async def read_decision(request: web.Request) -> Decision:
    """The decision a control request asks for; `MalformedRequest` for a body that is not one."""
    body = parse_json(await read_body(request, MAX_CONTROL))
    if not isinstance(body, dict) or not isinstance(body.get("reference"), str):
        raise MalformedRequest('expected JSON {"reference": ..., "status": ..., "message": ..., "pdf": ...}')
    message = body.get("message")
    return Decision(
        reference=body["reference"],
        status=str(body.get("status", "beschieden")),
        message=str(message) if message is not None else None,
        pdf=bool(body.get("pdf", True)),
    )


def decision_pdf(text: str) -> bytes:
    """A minimal one-page PDF: enough for a decision that is filed and attached, not rendered."""
    return f"%PDF-1.4\n% {text}\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n".encode()
