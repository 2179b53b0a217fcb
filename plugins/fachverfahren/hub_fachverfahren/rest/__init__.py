"""`type: rest`: a Fachverfahren reached through one operation of its OpenAPI 3 description."""

from __future__ import annotations

from hub import Simulator

from .config import AnswerPolling, RestConfig
from .simulator import make_app
from .sink import RestSink, idempotency_key

SIMULATOR = Simulator(
    name="fachverfahren-rest",
    description=(
        "a Fachverfahren with an OpenAPI-described JSON API: OAuth2 client credentials, requests "
        "validated against its description, Idempotency-Key, signed status callbacks with the decision"
    ),
    make_app=make_app,
)

__all__ = ["SIMULATOR", "AnswerPolling", "RestConfig", "RestSink", "idempotency_key"]
