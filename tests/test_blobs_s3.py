"""The S3 blob store against an S3 server (moto, over HTTP): multipart, ranged reads, nothing partial.

What the S3 store shares with the local one (hashing, limits, dedup, holdings) runs against both in
tests/test_blobs.py; these are about object storage itself. Requests are counted on the store's own
botocore client (its event hooks), which is how the test sees what went over the wire.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hub.blobs import BlobStoreMisconfigured, BlobStoreUnavailable, BlobTooLarge
from hub.blobs.s3 import S3Blobs
from hub.cli import main
from hub.config import S3Location
from hub.journal import ApplicationFilter
from hub.logs import setup_logging
from hub.testing.s3 import ACCESS_KEY, SECRET_KEY, S3Bucket, free_port

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part S3 takes: small tests, several parts


@pytest.fixture
async def store(s3_bucket: S3Bucket) -> AsyncIterator[S3Blobs]:
    blobs = S3Blobs(S3Location.parse(s3_bucket.url), part_size=PART, read_window=2 * MIB)
    yield blobs
    await blobs.close()


async def requests_of(store: S3Blobs) -> Counter[str]:
    """Counts of the S3 operations the store's client sends from now on (e.g. ``UploadPart``)."""
    counts: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    (await store.client()).meta.events.register("before-call.s3", count)
    return counts


async def pseudo_random(size: int, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    """`size` bytes of incompressible content in pieces, generated on the fly (never held whole); the
    same for the same size."""
    seed = hashlib.sha256(b"aktenhub").digest()
    sent = 0
    block = random.Random(size).randbytes(piece)
    while sent < size:
        n = min(piece, size - sent)
        seed = hashlib.sha256(seed).digest()
        yield seed + block[: n - len(seed)] if n > len(seed) else seed[:n]
        sent += n


async def test_a_200_mb_stream_goes_up_in_parts_and_comes_back_intact_in_bounded_memory(
    s3_bucket: S3Bucket,
) -> None:
    store = S3Blobs(S3Location.parse(s3_bucket.url))  # the real part size (8 MiB)
    counts = await requests_of(store)
    size = 200 * MIB
    sent = hashlib.sha256()

    async def content() -> AsyncIterator[bytes]:
        async for piece in pseudo_random(size):
            sent.update(piece)
            yield piece

    tracemalloc.start()
    try:
        info = await store.write(content())
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = hashlib.sha256()
        read = 0
        async for chunk in store.read(info.ref):
            got.update(chunk)
            read += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await store.close()

    assert (info.size, info.sha256, read, got.hexdigest()) == (size, sent.hexdigest(), size, sent.hexdigest())
    assert counts["UploadPart"] == 25 and counts["CompleteMultipartUpload"] == 1  # 200 MiB / 8 MiB
    assert counts["GetObject"] == 25  # one ranged GET per 8 MiB window
    # A few parts in flight at most, never the file: 200 MB went through each way.
    assert written_peak < 64 * MIB, f"writing held {written_peak / MIB:.0f} MiB"
    assert read_peak < 32 * MIB, f"reading held {read_peak / MIB:.0f} MiB"
    assert s3_bucket.keys() == [f"hub/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"]
    assert s3_bucket.open_uploads() == []


async def test_small_content_is_one_put_straight_to_its_content_key(
    store: S3Blobs, s3_bucket: S3Bucket
) -> None:
    counts = await requests_of(store)
    info = await store.write_bytes(b"%PDF-1.4 Antrag")
    assert counts["PutObject"] == 1 and counts["CreateMultipartUpload"] == 0
    assert s3_bucket.keys() == [store.key(info.ref)]
    assert await store.read_bytes(info.ref) == b"%PDF-1.4 Antrag"


async def test_content_stored_before_is_touched_not_stored_again(store: S3Blobs, s3_bucket: S3Bucket) -> None:
    first = await store.write(pseudo_random(2 * PART + 1234))
    (before,) = s3_bucket.objects("sha256/")
    counts = await requests_of(store)
    again = await store.write(pseudo_random(2 * PART + 1234))
    assert again == first
    # Uploaded once more (the digest is known only at the end), then not copied over it: touched.
    assert counts["CopyObject"] == 1 and counts["DeleteObjects"] == 1
    (after,) = s3_bucket.objects("sha256/")
    assert after["LastModified"] >= before["LastModified"]
    assert s3_bucket.server.client().head_object(Bucket=s3_bucket.name, Key=after["Key"])["Metadata"]
    assert s3_bucket.keys("tmp/") == [] and s3_bucket.open_uploads() == []


async def test_too_large_mid_upload_aborts_it_and_leaves_nothing(store: S3Blobs, s3_bucket: S3Bucket) -> None:
    counts = await requests_of(store)
    with pytest.raises(BlobTooLarge):
        await store.write(pseudo_random(4 * PART), limit=3 * PART)
    await store.settle()
    assert counts["CreateMultipartUpload"] == 1  # the upload had begun
    assert counts["AbortMultipartUpload"] == 1
    assert s3_bucket.keys() == [] and s3_bucket.open_uploads() == []


async def test_a_producer_failing_mid_upload_leaves_nothing(store: S3Blobs, s3_bucket: S3Bucket) -> None:
    async def broken() -> AsyncIterator[bytes]:
        async for piece in pseudo_random(3 * PART):
            yield piece
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await store.write(broken())
    await store.settle()
    assert s3_bucket.keys() == [] and s3_bucket.open_uploads() == []


async def test_an_upload_the_store_refuses_leaves_nothing(s3_bucket: S3Bucket) -> None:
    # Parts below S3's 5 MiB minimum: the parts are taken, completing the upload is refused
    # (EntityTooSmall), as a real store refuses it.
    store = S3Blobs(S3Location.parse(s3_bucket.url), part_size=MIB)
    with pytest.raises(BlobStoreUnavailable) as refused:
        await store.write(pseudo_random(3 * MIB))
    assert "EntityTooSmall" in str(refused.value)
    await store.settle()
    assert s3_bucket.keys() == [] and s3_bucket.open_uploads() == []
    await store.close()


async def test_reads_are_ranged_gets_in_windows(store: S3Blobs) -> None:
    data = b"".join([piece async for piece in pseudo_random(5 * MIB + 17)])
    info = await store.write_bytes(data)
    counts = await requests_of(store)
    chunks = [c async for c in store.read(info.ref, chunk_size=100_000)]
    assert b"".join(chunks) == data and max(map(len, chunks)) <= 100_000
    assert counts["GetObject"] == 3  # 2 MiB windows: 2 + 2 + 1 MiB and 17 bytes
    empty = await store.write_bytes(b"")
    assert [c async for c in store.read(empty.ref)] == []


async def test_sweep_removes_only_old_unreferenced_blobs_and_stale_uploads(
    store: S3Blobs, s3_bucket: S3Bucket
) -> None:
    referenced = await store.write_bytes(b"Anlage eines gespeicherten Antrags")
    orphan = await store.write_bytes(b"left by a crash")
    # A crash mid-upload: an open multipart upload and a temporary object.
    client = await store.client()
    await client.create_multipart_upload(Bucket=store.bucket, Key=store.tmp_key())
    await client.put_object(Bucket=store.bucket, Key=store.tmp_key(), Body=b"cut short")

    now = time.time()
    assert await store.unreferenced_candidates(now - 3600) == []  # nothing old enough yet
    later = now + 3600  # as if the grace period had passed
    candidates = await store.unreferenced_candidates(later)
    assert sorted(candidates) == sorted([referenced.sha256, orphan.sha256])
    assert await store.sweep(candidates, {referenced.ref}, later) == 1
    assert not await store.exists(orphan.ref) and await store.exists(referenced.ref)
    assert await store.sweep(candidates, {referenced.ref}, now - 3600) == 0  # young: spared

    assert await store.remove_stale_parts(older_than_seconds=3600) == 0
    # The young temporary object and upload stay (the kit's moto dates each upload when it began:
    # `hub.testing.moto_server`).
    assert len(s3_bucket.keys("tmp/")) == 1 and len(s3_bucket.open_uploads()) == 1
    assert await store.remove_stale_parts(older_than_seconds=-3600) == 2
    assert s3_bucket.keys("tmp/") == [] and s3_bucket.open_uploads() == []
    assert await store.usage() == (1, referenced.size)


async def test_a_sweep_while_a_multipart_upload_is_in_flight_leaves_it_to_finish(
    store: S3Blobs, s3_bucket: S3Bucket
) -> None:
    # A hub sweeps at start and every sweep_interval_seconds, whatever its intakes are doing: an upload
    # that began a moment ago is not a crash's leftover. (Against moto's constant upload date the sweep
    # aborted it, and the intake failed with NoSuchUpload.)
    writer = store.writer()
    async for piece in pseudo_random(PART + 4711):  # one part sent, the rest waits for the commit
        writer.write(piece)
        await writer.drain()
    deadline = time.monotonic() + 30
    while not s3_bucket.open_uploads():  # the upload task creates the upload on the server
        assert time.monotonic() < deadline, "the multipart upload never began"
        await asyncio.sleep(0.02)  # polling the server's state, bounded by the deadline
    assert await store.remove_stale_parts(older_than_seconds=60) == 0  # the smallest grace allowed
    info = await writer.commit()
    content = b"".join([piece async for piece in pseudo_random(PART + 4711)])
    assert b"".join([chunk async for chunk in store.read(info.ref)]) == content
    assert s3_bucket.open_uploads() == [] and s3_bucket.keys("tmp/") == []


async def test_a_sweep_spares_content_written_again_after_it_was_listed(store: S3Blobs) -> None:
    orphan = await store.write_bytes(b"an orphan a new submission carries again")
    later = time.time() + 3600
    candidates = await store.unreferenced_candidates(later)
    # Another process's intake writes the same content now: its holding is not ours, the object's
    # LastModified is what tells.
    other = S3Blobs(store.s3)
    await other.write_bytes(b"an orphan a new submission carries again")
    await other.close()
    assert await store.sweep(candidates, set(), time.time() - 60) == 0
    assert await store.exists(orphan.ref)


async def test_a_missing_bucket_is_a_configuration_error_naming_no_secret(s3_bucket: S3Bucket) -> None:
    location = S3Location.parse(s3_bucket.url.replace(s3_bucket.name, "no-such-bucket-here"))
    store = S3Blobs(location)
    with pytest.raises(BlobStoreMisconfigured) as refused:
        await store.open()
    assert "NoSuchBucket" in str(refused.value) and SECRET_KEY not in str(refused.value)
    with pytest.raises(BlobStoreMisconfigured):
        await store.check()
    await store.close()


async def test_an_unreachable_store_is_unavailable_like_a_failing_disk(s3_bucket: S3Bucket) -> None:
    location = S3Location.parse(f"s3://{s3_bucket.name}/hub?endpoint=http://127.0.0.1:{free_port()}")
    store = S3Blobs(location)
    await store.open()  # an outage at start does not stop the hub: intake answers 503 meanwhile
    with pytest.raises(BlobStoreUnavailable) as failed:
        await store.write_bytes(b"Antrag")
    assert isinstance(failed.value, OSError)  # what the intake answers 503 for
    assert SECRET_KEY not in str(failed.value)
    with pytest.raises(BlobStoreUnavailable):
        await store.probe()
    await store.close()


# -- the hub on object storage -----------------------------------------------------------------------

TOKEN = "fc-test-token-0123456789abcdef"
BOUNDARY = "fcB0undary"


def formcycle_hub(blobs: str) -> dict[str, Any]:
    """hub_factory arguments: FormCycle into a recording target, blobs at `blobs`."""
    return {
        "connectors": {
            "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
            "rec": {"type": "test-recording"},
        },
        "routes": [{"name": "all", "from": "formcycle", "to": ["rec"]}],
        "env": {"FORMCYCLE_TOKEN": TOKEN},
        "blobs": blobs,
    }


def multipart(vorgang_id: str, attachment: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="vorgang_id"\r\n\r\n{vorgang_id}\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"; filename="a.pdf"\r\n\r\n'
        ).encode()
        + attachment
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


HEADERS = {"X-Aktenhub-Token": TOKEN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def test_intake_answers_503_while_the_object_store_is_down_and_stores_nothing(
    hub_factory: Any, s3_bucket: S3Bucket
) -> None:
    down = s3_bucket.url.replace(f":{s3_bucket.server.port}", f":{free_port()}")
    running = await hub_factory(**formcycle_hub(down))  # starts: the outage is logged, not fatal
    status, answer = await running.post(
        "/intake/formcycle/jagdschein", data=multipart("fc-s3-down", b"%PDF-1.4 Anlage"), headers=HEADERS
    )
    assert status == 503, answer
    assert "send it again later" in answer["error"] if isinstance(answer, dict) else answer
    assert await running.journal.list_applications(ApplicationFilter(), limit=1) == []


async def test_a_hub_on_a_missing_bucket_does_not_start(hub_factory: Any, s3_bucket: S3Bucket) -> None:
    missing = s3_bucket.url.replace(s3_bucket.name, "no-such-bucket-here")
    with pytest.raises(BlobStoreMisconfigured, match="NoSuchBucket"):
        await hub_factory(**formcycle_hub(missing))


def test_aktenhub_check_shows_the_blob_store_failing_without_secrets(
    s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    config = tmp_path / "aktenhub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": f"sqlite:///{tmp_path / 'journal.db'}",
                "blobs": s3_bucket.url.replace(s3_bucket.name, "no-such-bucket-here"),
                "connectors": {"log": {"type": "log"}},
            }
        )
    )
    result = CliRunner().invoke(main, ["check", "-c", str(config)], env={"COLUMNS": "250"})
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("│ blobs ")]
    assert "FAILED" in line and "NoSuchBucket" in line, result.output
    assert SECRET_KEY not in result.output and ACCESS_KEY not in result.output

    config.write_text(config.read_text().replace("no-such-bucket-here", s3_bucket.name))
    result = CliRunner().invoke(main, ["check", "-c", str(config)], env={"COLUMNS": "250"})
    (line,) = [line for line in result.output.splitlines() if line.startswith("│ blobs ")]
    assert "ok" in line and "write, read, list and delete work" in line, result.output


async def test_debug_logs_carry_no_credentials(
    store: S3Blobs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "session-token-" + "7" * 40
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)  # sent with every request: never to be logged
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("debug")
        await store.write_bytes(b"%PDF-1.4 logged at DEBUG")
        await store.write(pseudo_random(PART + 1))
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    logged = capsys.readouterr().err
    for secret in (token, SECRET_KEY, ACCESS_KEY):
        assert secret not in logged
