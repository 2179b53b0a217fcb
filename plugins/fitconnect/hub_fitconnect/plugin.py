"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The FIT-Connect subscriber (``type: fitconnect``)."""
    from .source import FitConnectSource

    return [FitConnectSource]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of FIT-Connect (Submission API, OAuth token endpoint, destinations and their keys)."""
    from .simulator import make_app

    return [
        Simulator(
            name="fitconnect",
            description="FIT-Connect: OAuth token endpoint, Submission API /v1 and /v2 (sender and receiver "
            "side), signed events, callbacks with HMAC, deadlines on /_sim/clock; knobs fail_next, "
            "wrong_kid_next, corrupt_ciphertext_next, metadata_hash_mismatch_next, stale_callback_next, "
            "wrong_callback_mac_next, fail_events_next, hold_events_next, expire_tokens; "
            "POST /_sim/destinations creates a destination",
            make_app=make_app,
            options={"announce": True, "default_destination": True},
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """An EfA service's submissions through FIT-Connect into the e-file and a Fachverfahren."""
    from .demo import FitConnectScenario

    return [FitConnectScenario()]
