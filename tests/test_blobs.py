"""The blob store streams, hashes, limits and deduplicates: the local directory and S3 alike.

The tests that speak of the store's behaviour run against both stores (``store`` fixture); those about
the local store's files (group commit, crash recovery) run against it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import random
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.blobs import BlobBackend, BlobNotFound, BlobStore, BlobTooLarge
from hub.blobs.direct import ALIGN, BLOCK, READ_BLOCK
from hub.blobs.local import SPOOL, SPOOL_AHEAD, SPOOL_HANDOVER
from hub.blobs.pack import PACK_FILE
from hub.blobs.s3 import S3Blobs
from hub.config import S3Location
from hub.testing import blob_files, stored_blobs


async def chunks(n: int, size: int, byte: bytes = b"a") -> AsyncIterator[bytes]:
    for _ in range(n):
        yield byte * size


@dataclass
class Store:
    """A store under test and what it holds, as a list of content (files or objects)."""

    blobs: BlobBackend
    contents: Callable[[], list[str]]


@pytest.fixture(params=["local", "s3"])
async def store_under_test(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The local store in a temporary directory, or the S3 store in a fresh bucket (moto)."""
    if request.param == "local":
        local = BlobStore(tmp_path)
        # Stored blobs (packed or files) and temporary files: a refused write may leave neither.
        yield Store(
            local, lambda: [*sorted(stored_blobs(local)), *(str(p) for p in (tmp_path / "tmp").iterdir())]
        )
        await local.close()
        return
    bucket = request.getfixturevalue("s3_bucket")
    s3 = S3Blobs(S3Location.parse(bucket.url))
    yield Store(s3, lambda: bucket.keys() + bucket.open_uploads())
    await s3.close()


def limited(store: Store, max_size: int) -> BlobBackend:
    """The same store with a size limit."""
    blobs = store.blobs
    blobs.max_size = max_size  # type: ignore[misc]  # both stores keep it as a plain attribute
    return blobs


async def test_streamed_content_is_stored_under_its_hash(store_under_test: Store) -> None:
    store = store_under_test.blobs
    info = await store.write(chunks(10, 100_000))
    expected = hashlib.sha256(b"a" * 1_000_000).hexdigest()
    assert (info.sha256, info.size, info.ref) == (expected, 1_000_000, f"sha256:{expected}")
    assert (await store.info(info.ref)).size == 1_000_000
    streamed = [c async for c in store.read(info.ref, chunk_size=65536)]
    assert max(len(c) for c in streamed) <= 65536
    assert b"".join(streamed) == b"a" * 1_000_000
    assert len(store_under_test.contents()) == 1


async def test_same_content_is_stored_once(store_under_test: Store) -> None:
    store = store_under_test.blobs
    a = await store.write_bytes(b"Antrag")
    b = await store.write_bytes(b"Antrag")
    assert a == b
    assert len(store_under_test.contents()) == 1


async def test_limit_refuses_and_leaves_nothing(store_under_test: Store) -> None:
    store = limited(store_under_test, 1000)
    with pytest.raises(BlobTooLarge):
        await store.write(chunks(3, 400))
    with pytest.raises(BlobTooLarge):
        await store.write(chunks(1, 600), limit=500)
    await store.settle()
    assert store_under_test.contents() == []
    assert (await store.write(chunks(2, 500))).size == 1000


async def test_bad_references_are_not_paths(store_under_test: Store) -> None:
    store = store_under_test.blobs
    for ref in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "g" * 64):
        with pytest.raises(BlobNotFound):
            await store.info(ref)
        with pytest.raises(BlobNotFound):
            [c async for c in store.read(ref)]
    with pytest.raises(BlobNotFound):
        [c async for c in store.read("sha256:" + "0" * 64)]
    assert not await store.exists("sha256:" + "0" * 64)


async def test_rename_lost_in_a_crash_is_finished_on_recovery(tmp_path: Path) -> None:
    content = b"durable content whose rename a crash interrupted"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "tmp").mkdir(parents=True)
    (tmp_path / "tmp" / f"{digest}.ready").write_bytes(content)
    store = BlobStore(tmp_path)
    assert await store.recover() == 1
    assert store.path(f"sha256:{digest}").read_bytes() == content
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_small_content_is_packed_and_large_content_lives_one_level_below_the_root(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path)
    small = await store.write_bytes(b"packed")
    large = await store.write_bytes(b"L" * (SPOOL + 1))
    assert blob_files(tmp_path) == [tmp_path / large.sha256[:2] / large.sha256]  # the small one has none
    assert store.path(large.ref).read_bytes() == b"L" * (SPOOL + 1)
    with contextlib.closing(sqlite3.connect(tmp_path / PACK_FILE)) as pack:
        assert pack.execute("SELECT digest, size, content FROM blobs").fetchall() == [
            (small.sha256, 6, b"packed")
        ]
    assert await store.read_bytes(small.ref) == b"packed"
    assert b"".join([c async for c in store.read(small.ref, chunk_size=4)]) == b"packed"
    assert (await store.info(small.ref)).size == 6 and store.stored(small.ref)
    assert await store.usage() == (2, 6 + SPOOL + 1)
    await store.close()


async def test_a_small_file_of_a_version_before_the_pack_stays_when_an_intake_drops_its_content(
    tmp_path: Path,
) -> None:
    content = b"Anlage, stored as a file of its own before the pack"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / digest[:2]).mkdir()
    (tmp_path / digest[:2] / digest).write_bytes(content)
    store = BlobStore(tmp_path)
    with store.holding():  # a refused re-send of the same attachment: keeps nothing
        await store.write_bytes(content)
    assert await store.read_bytes(f"sha256:{digest}") == content
    assert stored_blobs(store) == {f"sha256:{digest}"} and blob_files(tmp_path) == [
        tmp_path / digest[:2] / digest
    ]
    await store.close()


async def test_content_a_dropped_intake_leaves_and_another_stores_at_once_is_kept(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    for n in range(50):  # the removal and the new write go to the committer one after the other
        content = f"Anlage {n}, abgewiesen und gleich wieder gesendet".encode()
        with store.holding():
            dropped = await store.write_bytes(content)
        assert not store.stored(dropped.ref)  # gone for readers before the committer removed it
        with store.holding() as holding:
            again = await store.write_bytes(content)
            holding.keep([again.ref])
        assert await store.read_bytes(again.ref) == content
    await store.close()
    reopened = BlobStore(tmp_path)
    assert len(stored_blobs(reopened)) == 50
    await reopened.close()


async def test_concurrent_small_writes_share_one_pack_transaction(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    contents = [f"Anlage {n}".encode() for n in range(200)]
    infos = await asyncio.gather(*(store.write_bytes(c) for c in contents))
    assert store.syncs < len(contents) / 2  # grouped: the committer took many at once
    assert stored_blobs(store) == {i.ref for i in infos} and blob_files(tmp_path) == []
    assert [await store.read_bytes(i.ref) for i in infos] == contents
    await store.close()
    reopened = BlobStore(tmp_path)  # durable: another store on the same directory finds them all
    assert stored_blobs(reopened) == {i.ref for i in infos}
    await reopened.close()


async def test_packed_content_written_again_is_spared_by_the_sweep(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    again = await store.write_bytes(b"sent again while the sweep runs")
    gone = await store.write_bytes(b"nobody wrote this again")
    listed_at = time.time()
    candidates = await store.unreferenced_candidates(older_than=listed_at)
    assert sorted(candidates) == sorted([again.sha256, gone.sha256])
    await store.write_bytes(b"sent again while the sweep runs")  # written again after the listing
    removed = await store.remove_unreferenced(candidates, referenced=set(), older_than=listed_at)
    assert [r.ref for r in removed] == [gone.ref]
    assert stored_blobs(store) == {again.ref}
    await store.close()


async def test_removed_packed_content_stays_in_none_of_the_packs_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    secret = b"Geburtsdatum 01.02.1980, Aufenthaltstitel " + os.urandom(16).hex().encode()
    kept = await store.write_bytes(b"still referenced")
    info = await store.write_bytes(secret)
    removed = await store.remove_unreferenced([info.sha256], referenced=set(), older_than=time.time() + 1)
    assert [r.ref for r in removed] == [info.ref]
    for name in (PACK_FILE, PACK_FILE + "-wal"):
        path = tmp_path / name
        assert not path.exists() or secret not in path.read_bytes()
    assert await store.read_bytes(kept.ref) == b"still referenced"
    with pytest.raises(BlobNotFound):
        await store.read_bytes(info.ref)
    await store.close()


async def test_a_store_in_the_two_level_layout_is_moved_over_when_opened(tmp_path: Path) -> None:
    contents = [f"kept before the layout changed {n}".encode() for n in range(20)]
    digests = [hashlib.sha256(c).hexdigest() for c in contents]
    for n, (content, digest) in enumerate(zip(contents, digests, strict=True)):
        # The first one as a crash half-way through the move leaves it: already in its new place.
        place = tmp_path / digest[:2] if n == 0 else tmp_path / digest[:2] / digest[2:4]
        place.mkdir(parents=True, exist_ok=True)
        (place / digest).write_bytes(content)
    store = BlobStore(tmp_path)
    await store.open()
    for content, digest in zip(contents, digests, strict=True):
        assert await store.read_bytes(f"sha256:{digest}") == content
    assert sorted(p.relative_to(tmp_path).as_posix() for p in blob_files(tmp_path)) == sorted(
        f"{d[:2]}/{d}" for d in digests
    )
    assert (tmp_path / "LAYOUT").is_file()
    assert await store.usage() == (20, sum(len(c) for c in contents))
    assert sorted(await store.unreferenced_candidates(older_than=2**40)) == sorted(digests)
    # Opened again (the marker says the move is done): nothing to move, everything still there.
    again = BlobStore(tmp_path)
    await again.open()
    assert await again.usage() == (20, sum(len(c) for c in contents))
    await store.close()
    await again.close()


async def test_concurrent_writes_of_one_content_store_it_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    big = b"x" * (600 * 1024)  # spooled to a temporary file
    infos = await asyncio.gather(
        *(store.write_bytes(b"same") for _ in range(20)), store.write_bytes(big), store.write_bytes(big)
    )
    assert len({i.ref for i in infos}) == 2
    assert [p.stat().st_size for p in blob_files(tmp_path)] == [600 * 1024]  # the small one is packed
    assert await store.usage() == (2, 4 + 600 * 1024)
    await store.close()


def resident(path: Path) -> int:
    """Bytes of the file in the page cache (util-linux's fincore)."""
    out = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


async def test_large_content_goes_to_disk_past_the_page_cache_while_it_streams(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    writer = store.writer()
    digest = hashlib.sha256()
    for i in range(40):  # 40 MiB in 1 MiB chunks
        chunk = bytes([i]) * 2**20
        digest.update(chunk)
        writer.write(chunk)
        await writer.drain()
    (spooled,) = (tmp_path / "tmp").iterdir()
    # On the disk before the commit, but for what the spool's threads may lag behind and its last block
    assert spooled.stat().st_size >= 40 * 2**20 - SPOOL_AHEAD - SPOOL_HANDOVER - BLOCK
    assert resident(spooled) == 0  # and not in the page cache
    info = await writer.commit()
    assert info.sha256 == digest.hexdigest() and info.size == 40 * 2**20
    assert store.write_outs == 0  # nothing to hand to the disk early: it had it already
    stored = store.path(info.ref)
    assert resident(stored) == 0
    read = hashlib.sha256()
    async for chunk in store.read(info.ref):
        read.update(chunk)
    assert read.hexdigest() == info.sha256
    assert resident(stored) == 0  # read past the page cache too: it is read once, by the delivery
    await store.close()


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "page-cache"])
@pytest.mark.parametrize(
    "size",
    [SPOOL + 1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + ALIGN - 1, 3 * BLOCK + 12345],
)
async def test_spooled_content_of_any_length_is_stored_and_read_back_whole(
    tmp_path: Path, size: int, direct: bool
) -> None:
    store = BlobStore(tmp_path, direct=direct)
    content = random.Random(size).randbytes(size)
    writer = store.writer()
    at = 0
    for n in itertools.cycle([1, 70_000, ALIGN, 1_500_000, 333]):  # chunks that fit no block
        writer.write(content[at : at + n])
        await writer.drain()
        at += n
        if at >= size:
            break
    info = await writer.commit()
    assert info.size == size and info.sha256 == hashlib.sha256(content).hexdigest()
    assert store.path(info.ref).read_bytes() == content
    assert b"".join([c async for c in store.read(info.ref)]) == content
    assert list((tmp_path / "tmp").iterdir()) == []
    await store.close()


async def test_a_large_blob_read_in_part_lets_go_of_its_file(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    info = await store.write(chunks(12, 2**20))
    open_before = len(os.listdir("/proc/self/fd"))
    reading = store.read(info.ref)
    first = await anext(reading)
    assert first == b"a" * READ_BLOCK
    assert len(os.listdir("/proc/self/fd")) > open_before
    await reading.aclose()  # e.g. the delivery failed after the first block
    assert len(os.listdir("/proc/self/fd")) == open_before
    await store.close()


async def test_content_goes_to_disk_while_it_streams_where_it_goes_through_the_page_cache(
    tmp_path: Path,
) -> None:
    store = BlobStore(tmp_path, direct=False)  # as on a filesystem that refuses O_DIRECT
    writer = store.writer()
    digest = hashlib.sha256()
    for i in range(20):  # 20 MiB in 1 MiB chunks: write-out started at 8 and 16 MiB
        chunk = bytes([i]) * 2**20
        digest.update(chunk)
        writer.write(chunk)
        await writer.drain()
    info = await writer.commit()
    assert store.write_outs == 2  # started by the spool as it wrote; the commit starts none
    assert info.sha256 == digest.hexdigest() and info.size == 20 * 2**20
    assert hashlib.sha256(store.path(info.ref).read_bytes()).hexdigest() == info.sha256
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
    assert await store.read_bytes(info.ref) == content
    await store.close()


# -- holdings: what an intake wrote goes again unless a stored application keeps it -----------------


async def test_holding_removes_what_nobody_keeps_and_leaves_what_is_kept(store_under_test: Store) -> None:
    store = store_under_test.blobs
    with store.holding() as holding:
        kept = await store.write_bytes(b"Antrag, gespeichert")
        dropped = await store.write_bytes(b"Anlage eines abgelehnten Antrags")
        holding.keep([kept.ref])
    await store.settle()
    assert await store.exists(kept.ref)
    if isinstance(store, S3Blobs):
        # Shared by processes: another may hold the same content for an application it is committing
        # now, so what nobody here keeps waits for the orphan sweep's grace period.
        assert await store.exists(dropped.ref) and holding.removed == 0
    else:
        assert not await store.exists(dropped.ref) and holding.removed == 1


async def test_on_s3_content_a_process_drops_stays_for_the_one_that_keeps_it(s3_bucket: Any) -> None:
    # Two hub processes on one bucket store the same attachment at once: both upload it as new.
    one, other = (S3Blobs(S3Location.parse(s3_bucket.url)) for _ in range(2))
    try:
        with one.holding() as committing, other.holding():
            # at the same moment: each finds no object under the address, each uploads it
            kept, _ = await asyncio.gather(
                one.write_bytes(b"dieselbe Anlage"), other.write_bytes(b"dieselbe Anlage")
            )
            committing.keep([kept.ref])  # the other's intake is refused (a duplicate, say)
        await other.settle()
        await one.settle()
        assert await one.read_bytes(kept.ref) == b"dieselbe Anlage"
    finally:
        await one.close()
        await other.close()


async def test_holding_never_removes_content_stored_before(store_under_test: Store) -> None:
    store = store_under_test.blobs
    earlier = await store.write_bytes(b"Lageplan")  # an application stored it long ago
    with store.holding():
        await store.write_bytes(b"Lageplan")  # a refused re-send carries the same file
    await store.settle()
    assert await store.exists(earlier.ref)


async def test_content_two_intakes_share_stays_if_either_keeps_it(store_under_test: Store) -> None:
    store = store_under_test.blobs
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
    await store.settle()
    assert await store.exists(f"sha256:{hashlib.sha256(b'Formular-Vorlage').hexdigest()}")


async def test_content_written_outside_an_intake_is_never_removed_by_one(store_under_test: Store) -> None:
    store = store_under_test.blobs
    go = asyncio.Event()

    async def step() -> str:  # a worker's step (its task was started outside any intake)
        await go.wait()
        return (await store.write_bytes(b"%PDF rendition")).ref

    worker = asyncio.create_task(step())
    with store.holding():
        await store.write_bytes(b"%PDF rendition")  # a refused submission happens to carry it
        go.set()
        rendition = await worker
    await store.settle()
    assert await store.exists(rendition)
