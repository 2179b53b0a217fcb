"""A simulated SOAP Fachverfahren (`fachverfahren.wsdl` beside this file), strict as a real one.

It answers with the decision PDF of the REST simulator (one fixture for both).

``POST /soap/vorgaenge`` takes SOAP 1.1 ``VorgangAnlegen`` with HTTP Basic credentials and the WSDL's
SOAPAction; the body element is validated against the schema in the WSDL's ``types`` (lxml): a misfit
is a ``soap:Client`` fault (HTTP 500, as SOAP 1.1 demands), as is a wrong action or envelope. The same
``ExterneKennung`` again answers with the same Vorgang. ``fail_next`` answers ``soap:Server`` faults.

``AntwortenAbholen`` lists the status changes not yet acknowledged by ``AntwortQuittieren``.

Operator endpoints: ``GET /_sim/vorgaenge``, ``POST /_sim/vorgaenge/{ExterneKennung}/status``
``{"status": "BESCHIEDEN", "message": "...", "bescheid": true, "answer_id": optional}`` (an answer to fetch),
``POST /_sim/faults`` ``{"fail_next": N, "latency_seconds": s}``.
"""

from __future__ import annotations

import base64
import hmac
import itertools
from collections import Counter
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from hub.simulation import (
    FaultKnobs,
    SimulatedFaults,
    basic_credentials,
    fault_middleware,
    fault_routes,
    parse_json,
)

from ..rest.simulator import DECISION_PDF

WSDL = Path(__file__).with_name("fachverfahren.wsdl")
PATH = "/soap/vorgaenge"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
XSD = "http://www.w3.org/2001/XMLSchema"
FV = "urn:aktenhub:sim:fachverfahren:1"
DEFAULT_USERS = {"hub": "simulator-soap-password-1"}
MAX_BODY = 1024**2
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


class Knobs(FaultKnobs):
    """Faults an operator turns on through ``POST /_sim/faults``: failed requests get a soap:Server fault."""


class SoapFvState(SimulatedFaults[Knobs]):
    """What the simulated SOAP Fachverfahren holds: Vorgänge by ExterneKennung, counters, knobs."""

    def __init__(self, users: dict[str, str], knobs: Knobs) -> None:
        wsdl = etree.parse(str(WSDL), _PARSER)
        schema = wsdl.find(f".//{{{XSD}}}schema")
        assert schema is not None
        self.schema = etree.XMLSchema(schema)
        self.users = users
        self.knobs = knobs
        self.cases: dict[str, dict[str, str]] = {}  # ExterneKennung -> Vorgang
        self.requests = 0
        self.pending: dict[str, dict[str, str]] = {}  # answers not yet acknowledged, by AntwortId
        self.acknowledged: Counter[str] = Counter()  # AntwortId -> acknowledgements
        self._answers = itertools.count(1)
        self._ids = itertools.count(1)


STATE = web.AppKey("soap_fv_state", SoapFvState)


def fault(code: str, message: str, status: int = 500) -> web.Response:
    """A SOAP 1.1 fault answer."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP11}"><soap:Body><soap:Fault>'
        f"<faultcode>soap:{code}</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    )
    return web.Response(status=status, body=body.encode(), content_type="text/xml", charset="utf-8")


def _unavailable(status: int, message: str) -> web.StreamResponse:
    return fault("Server", message, status)


async def _anlegen(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    expected = state.users.get(credentials[0]) if credentials else None
    if credentials is None or expected is None or not hmac.compare_digest(expected, credentials[1]):
        return web.Response(status=401, text="unauthorized", headers={"WWW-Authenticate": 'Basic realm="fv"'})
    if request.content_type != "text/xml":
        return fault("Client", f"SOAP 1.1 needs text/xml, not {request.content_type[:50]}")
    action = request.headers.get("SOAPAction", "").strip('"')
    name = action.rpartition(":")[2]
    if action != f"{FV}:{name}" or name not in _OPERATIONS:
        return fault("Client", "unknown SOAPAction")
    state.requests += 1
    try:
        envelope = etree.fromstring(await request.read(), _PARSER)
    except etree.XMLSyntaxError as exc:
        return fault("Client", f"not XML: {exc}"[:300])
    body = envelope.find(f"{{{SOAP11}}}Body") if envelope.tag == f"{{{SOAP11}}}Envelope" else None
    call = body[0] if body is not None and len(body) == 1 else None
    if call is None or call.tag != f"{{{FV}}}{name}":
        return fault("Client", f"expected a SOAP 1.1 envelope with one {name}")
    if not state.schema.validate(call):
        error = state.schema.error_log.last_error
        reason = f"line {error.line}: {error.message}" if error is not None else "invalid"
        return fault("Client", f"{name} does not fit the schema: {reason}"[:300])
    try:
        result = _OPERATIONS[name](state, call)
    except LookupError as exc:
        return fault("Client", str(exc))
    envelope = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11, "fv": FV})
    etree.SubElement(envelope, f"{{{SOAP11}}}Body").append(result)
    answer = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return web.Response(body=answer, content_type="text/xml", charset="utf-8")


def _element(tag: str, *children: etree._Element, text: str | None = None) -> etree._Element:
    element = etree.Element(f"{{{FV}}}{tag}")
    element.text = text
    element.extend(children)
    return element


def _anlegen_call(state: SoapFvState, call: etree._Element) -> etree._Element:
    kennung = call.findtext(f"{{{FV}}}ExterneKennung") or ""
    case = state.cases.get(kennung)
    if case is None:
        n = next(state._ids)
        case = {
            "VorgangsId": f"S-{n:05d}",
            "Aktenzeichen": f"FV/{n:04d}/2026",
            "Leistung": call.findtext(f"{{{FV}}}Leistung") or "",
        }
        state.cases[kennung] = case
    vorgang = _element(
        "Vorgang",
        _element("VorgangsId", text=case["VorgangsId"]),
        _element("Aktenzeichen", text=case["Aktenzeichen"]),
    )
    return _element("VorgangAnlegenAntwort", vorgang)


def _abholen(state: SoapFvState, call: etree._Element) -> etree._Element:
    limit = int(call.findtext(f"{{{FV}}}MaxAnzahl") or 100)
    answers = []
    for answer in list(state.pending.values())[:limit]:
        parts = [_element(k, text=answer[k]) for k in ("AntwortId", "VorgangsId", "Aktenzeichen", "Status")]
        if answer.get("Hinweis"):
            parts.append(_element("Hinweis", text=answer["Hinweis"]))
        if answer.get("Bescheid"):
            content = base64.b64encode(DECISION_PDF).decode()
            parts.append(
                _element(
                    "Bescheid",
                    _element("Dateiname", text=answer["Bescheid"]),
                    _element("Inhalt", text=content),
                )
            )
        answers.append(_element("Antwort", *parts))
    return _element("AntwortenAbholenAntwort", *answers)


def _quittieren(state: SoapFvState, call: etree._Element) -> etree._Element:
    answer_id = call.findtext(f"{{{FV}}}AntwortId") or ""
    if state.pending.pop(answer_id, None) is None:
        raise LookupError(f"no pending answer {answer_id[:50]!r}")
    state.acknowledged[answer_id] += 1
    return _element("AntwortQuittierenAntwort")


_OPERATIONS = {
    "VorgangAnlegen": _anlegen_call,
    "AntwortenAbholen": _abholen,
    "AntwortQuittieren": _quittieren,
}


async def _sim_status(request: web.Request) -> web.Response:
    """A new status of a Vorgang (by ExterneKennung), waiting for the hub to fetch it."""
    state = request.app[STATE]
    case = state.cases.get(request.match_info["kennung"])
    if case is None:
        return web.json_response({"error": "no such Vorgang"}, status=404)
    order = parse_json(await request.read())
    if not isinstance(order, dict) or not isinstance(order.get("status"), str):
        return web.json_response(
            {"error": 'expected {"status": ..., "message": ..., "bescheid": bool}'}, status=400
        )
    # The same answer given again (as a system does until it is acknowledged) keeps its id.
    answer_id = str(order.get("answer_id") or f"A-{next(state._answers):05d}")
    state.pending[answer_id] = {
        "AntwortId": answer_id,
        "VorgangsId": case["VorgangsId"],
        "Aktenzeichen": case["Aktenzeichen"],
        "Status": order["status"],
        "Hinweis": str(order.get("message") or ""),
        "Bescheid": f"Bescheid-{case['VorgangsId']}.pdf" if order.get("bescheid") else "",
    }
    return web.json_response({"answer_id": answer_id})


async def _sim_cases(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].cases)


def _refused_knob(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _shutdown(app: web.Application) -> None:
    app[STATE].release()


def make_app(users: dict[str, str] | None = None, **knobs: Any) -> web.Application:
    """The simulated SOAP Fachverfahren at ``/soap/vorgaenge``."""
    state = SoapFvState(dict(users or DEFAULT_USERS), Knobs.model_validate(knobs))
    app = web.Application(middlewares=[fault_middleware(STATE, _unavailable)], client_max_size=MAX_BODY)
    app[STATE] = state
    app.on_shutdown.append(_shutdown)
    app.router.add_post(PATH, _anlegen)
    app.router.add_get("/_sim/vorgaenge", _sim_cases)
    app.router.add_post("/_sim/vorgaenge/{kennung}/status", _sim_status)
    app.router.add_routes(fault_routes(STATE, _refused_knob))
    return app


__all__ = ["DEFAULT_USERS", "PATH", "STATE", "WSDL", "SoapFvState", "make_app"]
