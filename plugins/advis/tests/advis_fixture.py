"""The test schema directory of the ADVIS tests: the reference schemas plus the XAusländer TEST FIXTURE
(``fixtures/xauslaender-TEST-FIXTURE-not-official``, not the official schema) under
``xauslaender/<version>/`` (a uniquely named module: plugin test folders are no packages)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hub_advis.schema import DEFAULT_VERSION, SCHEMA_ROOT

FIXTURE = Path(__file__).parent / "fixtures" / "xauslaender-TEST-FIXTURE-not-official"
NS = "urn:aktenhub:test-fixture:xauslaender"


def assemble_schema_dir(reference: Path, target: Path, *, version: str = DEFAULT_VERSION) -> Path:
    """`target` laid out like shared/reference (copied: imports must stay inside it) with the test
    fixture as XAusländer `version`."""
    shutil.copytree(reference, target, ignore=shutil.ignore_patterns("*.md", "*.txt", "*.pdf"))
    xsd = target / SCHEMA_ROOT / version
    xsd.mkdir(parents=True)
    for path in FIXTURE.glob("*.xsd"):
        shutil.copy2(path, xsd / path.name)
    return target


def without_xauslaender(reference: Path, target: Path) -> Path:
    """`target` laid out like shared/reference, without any XAusländer schema."""
    shutil.copytree(reference, target, ignore=shutil.ignore_patterns("*.md", "*.txt", "*.pdf"))
    return target
