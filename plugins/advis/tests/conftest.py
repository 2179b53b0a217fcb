"""Fixtures of the ADVIS tests: a schema directory with the XAusländer test fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from advis_fixture import assemble_schema_dir


@pytest.fixture(scope="session")
def advis_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A schema directory: the reference schemas and the XAusländer TEST FIXTURE as version 1.21.1."""
    from hub.schemas import schema_directory

    reference = schema_directory()
    if reference is None:
        pytest.fail("schema directory not found: set AKTENHUB_SCHEMAS or put shared/ beside the project")
    return assemble_schema_dir(reference, tmp_path_factory.mktemp("advis") / "schemas")
