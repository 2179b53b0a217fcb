"""The blob store streams, hashes, limits and deduplicates."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.blobs import BlobNotFound, BlobStore, BlobTooLarge


async def chunks(n: int, size: int, byte: bytes = b"a") -> AsyncIterator[bytes]:
    for _ in range(n):
        yield byte * size


async def test_streamed_content_is_stored_under_its_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    info = await store.write(chunks(10, 100_000))
    expected = hashlib.sha256(b"a" * 1_000_000).hexdigest()
    assert (info.sha256, info.size, info.ref) == (expected, 1_000_000, f"sha256:{expected}")
    assert store.path(info.ref).read_bytes() == b"a" * 1_000_000
    streamed = [c async for c in store.read(info.ref, chunk_size=65536)]
    assert max(len(c) for c in streamed) == 65536
    assert b"".join(streamed) == b"a" * 1_000_000


async def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    a = await store.write_bytes(b"Antrag")
    b = await store.write_bytes(b"Antrag")
    assert a == b
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


async def test_limit_refuses_and_leaves_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_size=1000)
    with pytest.raises(BlobTooLarge):
        await store.write(chunks(3, 400))
    with pytest.raises(BlobTooLarge):
        await store.write(chunks(1, 600), limit=500)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert (await store.write(chunks(2, 500))).size == 1000


async def test_bad_references_are_not_paths(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    for ref in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "g" * 64):
        with pytest.raises(BlobNotFound):
            store.path(ref)
    with pytest.raises(BlobNotFound):
        [c async for c in store.read("sha256:" + "0" * 64)]


async def test_rename_lost_in_a_crash_is_finished_on_recovery(tmp_path: Path) -> None:
    content = b"durable content whose rename a crash interrupted"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "tmp").mkdir(parents=True)
    (tmp_path / "tmp" / f"{digest}.ready").write_bytes(content)
    store = BlobStore(tmp_path)
    assert await store.recover() == 1
    assert store.path(f"sha256:{digest}").read_bytes() == content
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_concurrent_writes_of_one_content_store_it_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    big = b"x" * (600 * 1024)  # spooled to a temporary file
    infos = await asyncio.gather(
        *(store.write_bytes(b"same") for _ in range(20)), store.write_bytes(big), store.write_bytes(big)
    )
    assert len({i.ref for i in infos}) == 2
    assert sorted(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file()) == [4, 600 * 1024]
    await store.close()


async def test_ready_file_cut_short_by_a_crash_is_discarded(tmp_path: Path) -> None:
    content = b"content the crash cut short"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "tmp").mkdir(parents=True)
    (tmp_path / "tmp" / f"{digest}.ready").write_bytes(content[:5])
    store = BlobStore(tmp_path)
    assert await store.recover() == 0
    assert not store.stored(f"sha256:{digest}")
    assert list((tmp_path / "tmp").iterdir()) == []
    info = await store.write_bytes(content)  # sent again: stored whole
    assert store.path(info.ref).read_bytes() == content
    await store.close()


# -- holdings: what an intake wrote goes again unless a stored application keeps it -----------------


async def test_holding_removes_what_nobody_keeps_and_leaves_what_is_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.holding() as holding:
        kept = await store.write_bytes(b"Antrag, gespeichert")
        dropped = await store.write_bytes(b"Anlage eines abgelehnten Antrags")
        holding.keep([kept.ref])
    assert store.stored(kept.ref) and not store.stored(dropped.ref)
    assert holding.removed == 1


async def test_holding_never_removes_content_stored_before(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    earlier = await store.write_bytes(b"Lageplan")  # an application stored it long ago
    with store.holding():
        await store.write_bytes(b"Lageplan")  # a refused re-send carries the same file
    assert store.stored(earlier.ref)


async def test_content_two_intakes_share_stays_if_either_keeps_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    written = asyncio.Event()
    kept = asyncio.Event()

    async def refused() -> None:
        with store.holding():
            await store.write_bytes(b"Formular-Vorlage")
            written.set()
            await kept.wait()  # ends after the other intake stored its application

    async def stored() -> None:
        await written.wait()
        with store.holding() as holding:
            info = await store.write_bytes(b"Formular-Vorlage")
            holding.keep([info.ref])
        kept.set()

    await asyncio.gather(refused(), stored())
    assert store.stored(f"sha256:{hashlib.sha256(b'Formular-Vorlage').hexdigest()}")


async def test_content_written_outside_an_intake_is_never_removed_by_one(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    go = asyncio.Event()

    async def step() -> str:  # a worker's step (its task was started outside any intake)
        await go.wait()
        return (await store.write_bytes(b"%PDF rendition")).ref

    worker = asyncio.create_task(step())
    with store.holding():
        await store.write_bytes(b"%PDF rendition")  # a refused submission happens to carry it
        go.set()
        rendition = await worker
    assert store.stored(rendition)
