"""Test kit for connector authors: fixtures (a hub on a temporary journal), fakes, contract suites.

Installed as a pytest plugin (entry point ``pytest11``), so the fixtures are available in every test of a
project that has `aktenhub` installed. Contract suites are classes to subclass::

    from hub.testing import SinkContract

    class TestMySinkContract(SinkContract):
        ...
"""

from __future__ import annotations

from hub.mapping import default_record
from hub.testing.contracts import Fault, SinkContract, SourceContract, delivery_context
from hub.testing.harness import (
    RunningHub,
    backdate_blobs,
    blob_files,
    damage_blob,
    lose_blob,
    make_application,
    start_hub,
    stop_hub,
    stored_blobs,
)
from hub.testing.memory import MemoryBlobs

__all__ = [
    "Fault",
    "MemoryBlobs",
    "RunningHub",
    "SinkContract",
    "SourceContract",
    "backdate_blobs",
    "blob_files",
    "damage_blob",
    "default_record",
    "delivery_context",
    "lose_blob",
    "make_application",
    "start_hub",
    "stop_hub",
    "stored_blobs",
]
