"""Moving a journal with live and finished applications, and its files, to other stores loses nothing.

The target journal is each backend of the contract suite (`journal_backend`): the move from SQLite to
PostgreSQL is the one operators make; the files go to a second local store, and once (at the level of
the configurations) into an S3 bucket.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from hub.blobs import BlobStore
from hub.blobs.s3 import S3Blobs
from hub.config import HubConfig, S3Location
from hub.journal import Completion, SqliteJournal, TaskSpec, TaskState
from hub.models import Attachment
from hub.storemove import MoveFailed, move_installation, move_store
from hub.testing.harness import damage_blob
from hub.testing.journal_backends import JournalBackend
from hub.testing.journal_contract import (  # noqa: F401 - journal_backend: the fixture
    LEASE,
    FakeClock,
    application,
    journal_backend,
    received,
)
from hub.testing.s3 import S3Bucket

LEASE_RELEASED = {"state": TaskState.PENDING, "lease_token": None, "lease_until": None}


async def test_a_move_carries_every_application_step_event_and_file(
    tmp_path: Path,
    journal_backend: JournalBackend,  # noqa: F811
) -> None:
    clock = FakeClock()
    source = SqliteJournal(tmp_path / "old.db", clock=clock)
    await source.open()
    old_files, new_files = BlobStore(tmp_path / "old-blobs"), BlobStore(tmp_path / "new-blobs")
    contents = {f"antrag-{i}.pdf": hashlib.sha256(str(i).encode()).digest() * 1000 for i in range(4)}
    apps = []
    for i, (name, content) in enumerate(contents.items()):
        info = await old_files.write_bytes(content)
        app = application(f"ext-{i}", received=i)
        app.attachments = [
            Attachment(name=name, size=info.size, sha256=hashlib.sha256(content).hexdigest(), blob=info.ref)
        ]
        await source.intake(app, received(app), [TaskSpec("map"), TaskSpec("deliver", "dms")])
        apps.append(app)
    # finished, dead, leased and waiting work side by side
    for task in await source.claim("w", 2, LEASE, {"dms": 0}):
        await source.complete(task, Completion(result={"done": True}))
    [dying] = await source.claim("w", 1, LEASE, {"": 0})
    await source.fail(dying, "Permanent: refused", None, error_code="Permanent")
    [running] = await source.claim("w", 1, LEASE, {"dms": 0})
    await source.pause_target("archive", "otto", "Wartung")
    seq = await source.next_sequence("az", "2026")
    before = {a.id: (await source.tasks(a.id), await source.events(a.id)) for a in apps}

    await journal_backend.fresh()
    target = journal_backend.journal(clock)
    await target.open()
    try:
        lines: list[str] = []
        moved = await move_store(source, old_files, target, new_files, lines.append)

        assert moved.blobs == moved.blobs_copied == len(contents)
        assert moved.rows["applications"] == len(apps)
        for app in apps:
            assert await target.get_application(app.id) == await source.get_application(app.id)
            tasks, events = before[app.id]
            # as they were, but for the running step's lease (see below)
            unleased = [t if t.id != running.id else replace(t, **LEASE_RELEASED) for t in tasks]
            assert await target.tasks(app.id) == unleased
            assert [(e.id, e.type) for e in await target.events(app.id)] == [(e.id, e.type) for e in events]
            for attachment in app.attachments:
                data = await new_files.read_bytes(attachment.blob)
                assert hashlib.sha256(data).hexdigest() == attachment.sha256
        # The moved journal goes on where the old one stopped: sequences, leases, pauses, ids.
        assert await target.next_sequence("az", "2026") == seq + 1
        assert set(await target.paused_targets()) == {"archive"}
        with pytest.raises(Exception, match="lease"):
            await target.renew(running, LEASE)
        dead = [t for a in apps for t in await target.tasks(a.id) if t.state == TaskState.DEAD]
        assert [t.id for t in dead] == [dying.id]
        app = application("after-the-move")
        stored = await target.intake(app, received(app), [TaskSpec("map")])
        assert stored.events[0].id is not None
        assert stored.events[0].id > max(e.id or 0 for _, events in before.values() for e in events)
        assert any("checked" in line for line in lines)

        # A second move into the same journal is refused and changes nothing.
        with pytest.raises(Exception, match="holds applications already"):
            await move_store(source, old_files, target, new_files)
    finally:
        await target.close()
        await source.close()


async def test_a_damaged_source_file_stops_the_move_before_the_journal(
    tmp_path: Path,
    journal_backend: JournalBackend,  # noqa: F811
) -> None:
    source = SqliteJournal(tmp_path / "old.db")
    await source.open()
    old_files, new_files = BlobStore(tmp_path / "old-blobs"), BlobStore(tmp_path / "new-blobs")
    info = await old_files.write_bytes(b"%PDF-1.7 the original")
    app = application("ext-1")
    app.attachments = [Attachment(name="a.pdf", size=info.size, sha256=info.sha256, blob=info.ref)]
    await source.intake(app, received(app), [TaskSpec("map")])
    damage_blob(old_files, info.ref, b"%PDF-1.7 bit rot")
    await journal_backend.fresh()
    target = journal_backend.journal()
    await target.open()
    try:
        with pytest.raises(MoveFailed, match="damaged"):
            await move_store(source, old_files, target, new_files)
        assert await target.get_application(app.id) is None
        assert not new_files.stored(info.ref)  # nor is the damaged content filed under its address
    finally:
        await target.close()
        await source.close()


async def test_an_installation_moves_its_files_into_object_storage(
    tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    old = HubConfig.model_validate(
        {"store": f"sqlite:///{tmp_path / 'old.db'}", "blobs": str(tmp_path / "blobs")}
    )
    new = HubConfig.model_validate({"store": f"sqlite:///{tmp_path / 'new.db'}", "blobs": s3_bucket.url})
    source = SqliteJournal(tmp_path / "old.db")
    await source.open()
    files = BlobStore(tmp_path / "blobs")
    content = hashlib.sha256(b"Lageplan").digest() * 50_000  # 1.6 MB
    info = await files.write_bytes(content)
    app = application("ext-s3")
    app.attachments = [Attachment(name="lageplan.pdf", size=info.size, sha256=info.sha256, blob=info.ref)]
    await source.intake(app, received(app), [TaskSpec("map")])
    await source.close()
    await files.close()

    moved = await move_installation(old, new, lambda _: None)

    assert (moved.blobs, moved.blobs_copied) == (1, 1)
    assert s3_bucket.keys("sha256/") == [f"hub/sha256/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"]
    bucket = S3Blobs(S3Location.parse(s3_bucket.url))
    assert hashlib.sha256(await bucket.read_bytes(info.ref)).hexdigest() == info.sha256
    await bucket.close()
    target = SqliteJournal(tmp_path / "new.db")
    await target.open()
    try:
        assert await target.get_application(app.id) is not None
    finally:
        await target.close()
