"""A simulated ADVIS: reads its XTA mailbox, validates each message against the XAusländer XSDs,
assigns case numbers and answers the sender with an ``advis.rueckmeldung``.

It is the generic xoev simulator (`hub_fachverfahren.xoev`) with ADVIS's preset: the messages' reference
is their ``nachrichtenkopf/nachrichtUUID``, validation follows the ADVIS validation policy
(`hub_advis.schema`: every XSD in ``<schemas>/xauslaender/<version>/``), a malformed or invalid message
is refused *with an error answer* (status ``abgelehnt``, ``fehler``) when its nachrichtUUID can be read,
case numbers are ``ABH-00001`` …. It takes every message type in its mailbox: the OZG messages the hub
forwards (in) and the Ausländerbehörde's own (out).

Control endpoints (as the xoev simulator): ``POST /control/receive`` (read the mailbox once),
``POST /control/decide`` (JSON ``{"reference", "status", "pdf"}``: a status change, with a decision
PDF), ``GET /control/cases``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from hub_fachverfahren.xoev import SIMULATOR as XOEV
from hub_fachverfahren.xoev import XoevFachverfahren
from lxml import etree

from hub import Simulator

from ..answers import ANSWER_TYPE, REFUSED
from ..exchange import BUSINESS_SCENARIO, SERVICE
from ..schema import DEFAULT_VERSION, InvalidMessage, SchemaSettings, load_schemas

ANSWER_TEMPLATE: Final = files(__package__).joinpath("advis-rueckmeldung.xml.j2").read_text("utf-8")

PRESET: Final[dict[str, Any]] = {
    "reference": "/*/nachrichtenkopf/nachrichtUUID",
    "namespaces": {},
    "answer_template": ANSWER_TEMPLATE,
    "answer_type": ANSWER_TYPE,
    "service": SERVICE,
    "business_scenario": BUSINESS_SCENARIO,
    "prefix": "ABH",
    "answer_refusals": True,
    "refusal_status": REFUSED,
}


@dataclass
class AdvisFachverfahren(XoevFachverfahren):
    """The xoev simulator's behaviour with ADVIS's validation (options `validation`, `schema_version`)."""

    answer_namespace: str = ""  # default: the namespace of the XAusländer XSDs
    validation: bool = True
    schema_version: str = DEFAULT_VERSION

    def __post_init__(self) -> None:
        settings = SchemaSettings(validate=self.validation, schema_version=self.schema_version)
        # Loaded at start: without the XSDs the simulated ADVIS refuses to start, as the connector does.
        self.xauslaender = load_schemas(self.schemas, settings, purpose="the advis simulator")
        if not self.answer_namespace:
            if self.xauslaender is None:
                raise InvalidMessage("the advis simulator without validation needs `answer_namespace`")
            self.answer_namespace = self.xauslaender.namespace

    def validate(self, document: etree._Element) -> None:
        """Raise ValueError unless `document` meets the XAusländer schema (when validating)."""
        if self.xauslaender is None:
            return
        try:
            self.xauslaender.validate(document)
        except InvalidMessage as exc:
            raise ValueError(str(exc)) from None


def make_app(
    xta_url: str = "http://127.0.0.1:8090",
    account: str = "vbe:advis",
    schemas: str | Path | None = None,
    data_dir: str | Path | None = None,
    **options: Any,
) -> web.Application:
    """The simulated ADVIS reading the mailbox of `account` at `xta_url`; `options` override the preset."""
    return XOEV.make_app(
        xta_url, account, schemas, data_dir, model=AdvisFachverfahren, **{**PRESET, **options}
    )


SIMULATOR = Simulator(
    name="advis",
    description="ADVIS (Kommunix) behind its XTA mailbox: XAusländer messages validated, case numbers "
    "ABH-…, answers (advis.rueckmeldung) with case number and status, error answers for refused ones",
    make_app=make_app,
)
