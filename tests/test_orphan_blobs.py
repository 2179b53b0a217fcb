"""Nothing partial: refused, duplicate and interrupted submissions leave no file; leftovers are swept."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.blobs import BlobStore
from hub.journal import ApplicationFilter
from hub.testing import RunningHub, make_application
from hub.testing.harness import backdate_blobs, blob_files, stored_blobs

TOKEN = "fc-test-token-0123456789abcdef"
BOUNDARY = "fcB0undary"
HEADERS = {"X-Aktenhub-Token": TOKEN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
HOUR = 3600.0


Listing = Callable[[RunningHub], list[str]]


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest) -> tuple[dict[str, Any], Listing]:
    """Hub settings for the local store or an S3 bucket (moto), and how to list what the store holds.

    Locally: its blobs (small ones are rows of its pack, not files) and every other file it has, such as
    a temporary file of an upload.
    """
    if request.param == "local":
        return {}, lambda running: [
            *sorted(stored_blobs(running.hub.blobs)),
            *(str(p) for p in blob_files(running.hub.blobs.root)),
        ]
    bucket = request.getfixturevalue("s3_bucket")
    return {"blobs": bucket.url}, lambda _: bucket.keys() + bucket.open_uploads()


async def start(hub_factory: Any, settings: dict[str, Any] | None = None, **formcycle: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        {
            "formcycle": {
                "type": "formcycle",
                "token": "${FORMCYCLE_TOKEN}",
                "id_field": "vorgang_id",
                **formcycle,
            },
            "rec": {"type": "test-recording"},
        },
        [{"name": "all", "from": "formcycle", "to": ["rec"]}],
        env={"FORMCYCLE_TOKEN": TOKEN},
        **(settings or {}),
    )
    # The sweep at start runs beside the test's own: done first, it cannot take what the test sets up.
    await running.wait_for(lambda: running.hub.sweeps, 10, "the orphan sweep at start")
    return running


def body(*parts: tuple[str, bytes, str | None]) -> bytes:
    out = b""
    for name, content, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def send(running: RunningHub, data: bytes) -> tuple[int, Any]:
    return await running.post("/intake/formcycle/jagdschein", data=data, headers=HEADERS)


async def sweep_after_grace(running: RunningHub) -> None:
    """The orphan sweep as it runs once the grace period is over (on S3, where refused content waits
    for it: another process may hold the same content, see `hub.blobs.s3`)."""
    cutoff = time.time() + 1
    store = running.hub.blobs
    await store.sweep(
        await store.unreferenced_candidates(cutoff), await running.hub.referenced_blobs(), cutoff
    )


async def removed_metric(running: RunningHub, cause: str) -> str:
    metrics = (await running.get("/metrics"))[1]
    lines = [line for line in metrics.splitlines() if line.startswith("aktenhub_orphan_blobs_removed_total")]
    return next((line.rsplit(" ", 1)[1] for line in lines if f'cause="{cause}"' in line), "0")


async def test_refused_submission_leaves_no_file(
    hub_factory: Any, blob_store: tuple[dict[str, Any], Listing]
) -> None:
    settings, stored = blob_store
    running = await start(hub_factory, settings, max_field_size=100)
    # Files first (stored as they arrive), then a parameter over its limit: the whole submission goes.
    data = body(
        ("vorgang_id", b"fc-orphan-1", None),
        ("ausweis", b"%PDF-1.4 " + b"a" * 400_000, "ausweis.pdf"),  # spooled to disk
        ("foto", b"\xff\xd8\xff small", "foto.jpg"),  # kept in memory until committed
        ("anlage", b"%PDF-1.4 " + b"b" * 200_000, "anlage.pdf"),  # the two before are stored meanwhile
        ("bemerkung", b"x" * 101, None),
    )
    status, answer = await send(running, data)
    assert status == 413, answer
    await running.hub.blobs.settle()
    if not settings:  # the local store belongs to this process: its intake removes them at once
        assert stored(running) == []
        assert await removed_metric(running, "intake") == "2.0"
    await sweep_after_grace(running)
    assert stored(running) == []


async def test_changed_resend_refused_leaves_only_the_first_submissions_files(
    hub_factory: Any, blob_store: tuple[dict[str, Any], Listing]
) -> None:
    settings, stored = blob_store
    running = await start(hub_factory, settings)
    status, first = await send(
        running, body(("vorgang_id", b"fc-orphan-2", None), ("a", b"%PDF first", "a.pdf"))
    )
    assert status == 202, first
    kept = stored(running)
    status, again = await send(
        running, body(("vorgang_id", b"fc-orphan-2", None), ("a", b"%PDF changed meanwhile", "a.pdf"))
    )
    assert (status, again["conflict"]) == (409, True), again  # same id, other content: refused
    await running.hub.blobs.settle()
    await sweep_after_grace(running)
    assert stored(running) == kept
    app = await running.journal.get_application(first["application_id"])
    assert all([await running.hub.blobs.exists(a.blob) for a in app.attachments])


async def test_identical_resend_keeps_the_files_the_first_one_stored(
    hub_factory: Any, blob_store: tuple[dict[str, Any], Listing]
) -> None:
    running = await start(hub_factory, blob_store[0])
    data = body(("vorgang_id", b"fc-orphan-3", None), ("a", b"%PDF same", "a.pdf"))
    status, first = await send(running, data)
    assert status == 202, first
    status, again = await send(running, data)
    assert (status, again["duplicate"]) == (200, True), again
    app = await running.journal.get_application(first["application_id"])
    assert app.original is not None
    await running.hub.blobs.settle()
    assert all(
        [await running.hub.blobs.exists(r) for r in [app.original.blob, *(a.blob for a in app.attachments)]]
    )


async def test_sweep_removes_old_unreferenced_blobs_only(hub_factory: Any) -> None:
    running = await start(hub_factory)
    store = running.hub.blobs
    app = await make_application(store, source="formcycle", external_id="fc-orphan-4")
    app.route = "all"
    await running.journal.intake(app, [], [])
    assert app.original is not None
    referenced = [a.blob for a in app.attachments]
    # Small content is packed, large content is a file of its own: an old orphan of each kind.
    old_orphans = [
        (await store.write_bytes(b"left by a crash")).ref,
        (await store.write_bytes(b"%PDF-1.4 " + b"c" * 400_000)).ref,
    ]
    young_orphan = (await store.write_bytes(b"an intake not yet committed")).ref
    backdate_blobs(store, [*referenced, *old_orphans], 2 * HOUR)

    assert await running.hub.sweep_orphans() == 2
    assert stored_blobs(store) == {*referenced, app.original.blob, young_orphan}
    assert blob_files(store.root) == []  # the large orphan's file is gone too
    assert await removed_metric(running, "sweep") == "2.0"


async def test_sweep_spares_a_blob_an_intake_holds(hub_factory: Any) -> None:
    running = await start(hub_factory)
    store = running.hub.blobs
    stored = (await store.write_bytes(b"same content, old")).ref
    backdate_blobs(store, [stored], 2 * HOUR)
    with running.hub.holding():
        await store.write_bytes(b"same content, old")  # an intake writes the same content again
        backdate_blobs(store, [stored], 2 * HOUR)  # old again: only the intake's hold keeps it
        assert await running.hub.sweep_orphans() == 0
        assert store.stored(stored)


async def test_leftovers_of_a_crash_are_swept_at_start(hub_factory: Any, tmp_path: Path) -> None:
    leftover_store = BlobStore(tmp_path / "hub" / "blobs")
    leftover = (await leftover_store.write_bytes(b"written, never referenced")).ref
    await leftover_store.close()
    backdate_blobs(leftover_store, [leftover], 2 * HOUR)
    running = await start(hub_factory)  # returns once the sweep at start has run
    assert stored_blobs(running.hub.blobs) == set()  # it took the leftover
    assert await running.journal.list_applications(ApplicationFilter(), limit=1) == []
