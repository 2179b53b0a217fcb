"""Fixtures of the BundID tests: one IdP simulator key per session, metadata on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_bundid.simulator import IdpSimulator, KeyPair, generate_key_pair


@pytest.fixture(scope="session")
def idp_keys() -> KeyPair:
    """The simulator's signing key, generated once (RSA key generation is the slow part)."""
    return generate_key_pair("bundid-simulator-tests")


@pytest.fixture
def idp(idp_keys: KeyPair, schema_dir: Path) -> IdpSimulator:
    """A BundID IdP simulator on the reference templates and test persons."""
    return IdpSimulator(schema_dir, keys=idp_keys)


@pytest.fixture
def metadata(idp: IdpSimulator, tmp_path: Path) -> Path:
    """The simulator's metadata as a file, for the connector's `idp_metadata`."""
    return idp.write_metadata(tmp_path / "bundid-idp-metadata.xml")
