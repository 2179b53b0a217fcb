"""The BundID IdP simulator: signed SAML responses for the reference test persons, and every failure case.

Run it with ``aktenhub simulate bundid --port 8096``; tests and the demo use `IdpSimulator` directly or
start `make_app` on a loopback test server.
"""

from __future__ import annotations

from .app import IDP, SimulatorOptions, make_app
from .idp import (
    DEFAULT_ACS_URL,
    DEFAULT_IDP_ENTITY_ID,
    DEFAULT_SP_ENTITY_ID,
    Fault,
    IdpSimulator,
    KeyPair,
    SimulatorError,
    default_reference,
    generate_key_pair,
    render_template,
)

__all__ = [
    "DEFAULT_ACS_URL",
    "DEFAULT_IDP_ENTITY_ID",
    "DEFAULT_SP_ENTITY_ID",
    "IDP",
    "Fault",
    "IdpSimulator",
    "KeyPair",
    "SimulatorError",
    "SimulatorOptions",
    "default_reference",
    "generate_key_pair",
    "make_app",
    "render_template",
]
