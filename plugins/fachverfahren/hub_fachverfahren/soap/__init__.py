"""`type: soap`: a Fachverfahren reached through one operation of its WSDL (zeep on the shared session)."""

from __future__ import annotations

from hub import Simulator

from .config import SoapConfig
from .simulator import make_app
from .sink import SoapSink

SIMULATOR = Simulator(
    name="fachverfahren-soap",
    description=(
        "a SOAP Fachverfahren (its own WSDL): requests validated against the WSDL's schema, "
        "client faults for misfits, server faults on demand, one Vorgang per ExterneKennung"
    ),
    make_app=make_app,
)

__all__ = ["SIMULATOR", "SoapConfig", "SoapSink"]
