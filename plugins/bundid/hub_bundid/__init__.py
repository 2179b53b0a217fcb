"""Aktenhub plugin for BundID, the federal citizen account: an identity provider and an IdP simulator.

The identity provider (``type: bundid``) verifies the signed SAML response a form server forwards
(``mode: saml``) or takes the identity fields a form server already verified (``mode: form-fields``).
The simulator (``aktenhub simulate bundid``) issues signed responses for the reference test persons,
including every failure case the verifier must refuse.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
