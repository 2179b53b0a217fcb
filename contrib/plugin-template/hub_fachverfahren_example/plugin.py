"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, Simulator, hookimpl

from .simulator import make_app
from .sink import ExampleFachverfahrenSink


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The example Fachverfahren sink (``type: fachverfahren-example``)."""
    return [ExampleFachverfahrenSink]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of the example Fachverfahren's REST import interface."""
    return [
        Simulator(
            name="fachverfahren-example",
            description="Example Fachverfahren REST import API v1 (cases, documents, Basic auth, "
            "idempotency keys; answer queue GET /api/answers, DELETE /api/answers/{id}; a clerk's answer: "
            "POST /_sim/cases/{id}/answers; knobs fail_next, latency_seconds, required_form_fields, "
            "drop_upload, answer_on_create)",
            make_app=make_app,
        )
    ]
