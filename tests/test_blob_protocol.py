"""Connectors reach blobs only through the `Blobs` protocol: streams, size, existence, never a path."""

from __future__ import annotations

import inspect
import typing

import pytest

import hub
from hub.blobs import Blobs, BlobStore, BlobWriter
from hub.connectors import ConnectorContext, DeliveryContext
from hub.testing import MemoryBlobs


def test_the_protocol_offers_no_way_to_a_path() -> None:
    members = {name for name in dir(Blobs) if not name.startswith("_")}
    assert members == {"exists", "info", "max_size", "read", "read_bytes", "write", "write_bytes", "writer"}
    for protocol in (Blobs, BlobWriter):
        for name, member in inspect.getmembers(protocol):
            if name.startswith("_"):
                continue
            hints = typing.get_type_hints(member.fget if isinstance(member, property) else member)
            assert "Path" not in repr(hints), f"{protocol.__name__}.{name} speaks of paths: {hints}"
    assert "path" in dir(BlobStore)  # the local store keeps it, for the core's own use


def test_connectors_are_handed_the_protocol() -> None:
    # Annotations as written (`hub.connectors` imports `Blobs` for type checking only; mypy resolves it).
    assert ConnectorContext.__annotations__["blobs"] == "Blobs"
    assert DeliveryContext.__init__.__annotations__["blobs"] == "Blobs"
    assert "Blobs" in hub.__all__ and "BlobStore" not in hub.__all__


async def test_the_memory_store_streams_limits_and_refuses_unknown_references() -> None:
    blobs = MemoryBlobs(max_size=10)
    info = await blobs.write_bytes(b"0123456789")
    assert (await blobs.info(info.ref)).size == 10 and await blobs.exists(info.ref)
    assert [c async for c in blobs.read(info.ref, chunk_size=4)] == [b"0123", b"4567", b"89"]
    with pytest.raises(hub.BlobTooLarge):
        await blobs.write_bytes(b"01234567890")
    with pytest.raises(hub.BlobNotFound):
        await blobs.info("sha256:" + "0" * 64)
    assert not await blobs.exists("sha256:" + "0" * 64)
