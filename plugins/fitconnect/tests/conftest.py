"""Keys for the FIT-Connect tests, generated once per session (RSA generation is slow)."""

from __future__ import annotations

import pytest
from hub_fitconnect import jose
from jwcrypto import jwk

# 2048 bits keep the suite fast; production keys are 4096 (the simulator checks that only when asked).
TEST_KEY_SIZE = 2048


@pytest.fixture(scope="session")
def encryption_key() -> jwk.JWK:
    """A destination's private encryption key."""
    return jose.generate_encryption_key(size=TEST_KEY_SIZE)


@pytest.fixture(scope="session")
def other_encryption_key() -> jwk.JWK:
    """A second private encryption key (rollover, wrong key)."""
    return jose.generate_encryption_key(size=TEST_KEY_SIZE)


@pytest.fixture(scope="session")
def signature_key() -> jwk.JWK:
    """A private signature key (a destination's or the Zustelldienst's)."""
    return jose.generate_signature_key(size=TEST_KEY_SIZE)


@pytest.fixture(scope="session")
def other_signature_key() -> jwk.JWK:
    """A second private signature key (a wrong signer)."""
    return jose.generate_signature_key(size=TEST_KEY_SIZE)
