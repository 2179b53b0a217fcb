"""The plugin module, registered under entry point group ``aktenhub`` (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hub import Connector, DemoScenario, Simulator, hookimpl

from .demo import BundIdScenario
from .identity import BundIdIdentity
from .simulator import make_app


@hookimpl
def aktenhub_connector_types() -> Sequence[type[Connector[Any]]]:
    """The BundID identity provider (``type: bundid``)."""
    return [BundIdIdentity]


@hookimpl
def aktenhub_simulators() -> Sequence[Simulator]:
    """A simulator of the BundID identity provider."""
    return [
        Simulator(
            name="bundid",
            description="BundID IdP: GET /metadata, POST /sim/response {person, level, means, audience, "
            "destination, fault} → signed base64 SAML response for the reference test persons; faults "
            "unsigned, other-key, altered, wrapped, expired, not-yet-valid, wrong-audience, "
            "wrong-destination, wrong-issuer, status-error, replayed, level-too-low, doctype, multivalued, "
            "duplicated-attribute; "
            "options reference, sp_entity_id, acs_url, key_file, metadata_file",
            make_app=make_app,
        )
    ]


@hookimpl
def aktenhub_demo_scenarios() -> Sequence[DemoScenario]:
    """The BundID simulator and identity connector for the demo."""
    return [BundIdScenario()]
