"""The file drop sink: folder content, atomicity, idempotency, safe names, error classification."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from filedrop_helpers import SAFE_NAME, folders_of, make_sink
from hub_fachverfahren.importfolder.filedrop import FORMAT, DropDocument, FileDropSink
from hub_fachverfahren.importfolder.folder import _temp_name
from hub_fachverfahren.importfolder.names import render_folder_name, safe_file_name, unique_name
from pydantic import ValidationError

from hub import Application, ConnectorContext, Document, DocumentContent, FileRecord, Permanent, Retryable
from hub.blobs import BlobStore
from hub.mapping import default_record
from hub.testing import MemoryBlobs, damage_blob, make_application
from hub.testing.contracts import delivery_context


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    return tmp_path / "import"


@pytest.fixture
def sink(connector_context: ConnectorContext, import_dir: Path) -> FileDropSink:
    return make_sink(connector_context, import_dir)


def entries(directory: Path) -> list[str]:
    """What is in the import directory (nothing, also when a refused delivery did not create it)."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


async def test_folder_holds_application_json_and_every_file(sink: FileDropSink, blobs: BlobStore) -> None:
    big = os.urandom(1024 * 1024 + 12345)  # more than a few read chunks
    app = await make_application(blobs, files={"antrag.pdf": b"%PDF-1.4 x\n", "plan.jpg": big})
    record = default_record(app)

    delivery = await sink.deliver(record, delivery_context(app, blobs))

    assert not delivery.duplicate
    assert delivery.target == "contract"
    folder = sink.directory / app.id
    assert delivery.reference == app.id
    assert folders_of(sink.directory, app.id) == [folder]
    doc = DropDocument.model_validate_json((folder / "application.json").read_bytes())
    assert doc.format == FORMAT
    assert doc.application == app
    assert doc.record == record
    assert doc.folder == app.id
    assert doc.delivered_at == delivery.delivered_at
    assert [f.original_name for f in doc.files] == [d.name for d in record.documents]
    assert [f.document_type for f in doc.files] == [d.type for d in record.documents]
    for listed in doc.files:
        content = (folder / listed.name).read_bytes()
        assert listed.size == len(content)
        assert listed.sha256 == hashlib.sha256(content).hexdigest()
    assert (folder / "plan.jpg").read_bytes() == big
    assert entries(folder) == sorted(["application.json", *(f.name for f in doc.files)])
    assert delivery.details["files"] == len(record.documents)
    # application.json is plain UTF-8 JSON a Fachverfahren reads without Aktenhub's models
    raw = json.loads((folder / "application.json").read_text(encoding="utf-8"))
    assert raw["format"] == "aktenhub.filedrop/1"
    assert raw["application"]["form"]["nachname"] == "Groß"
    assert set(raw["files"][0]) >= {"name", "document_type", "media_type", "size", "sha256"}


async def test_second_delivery_is_a_duplicate_and_leaves_one_folder(
    sink: FileDropSink, blobs: BlobStore
) -> None:
    app = await make_application(blobs)
    record = default_record(app)
    first = await sink.deliver(record, delivery_context(app, blobs))
    before = (sink.directory / app.id / "application.json").read_bytes()

    # a fresh context: no checkpoint, the sink must find the folder itself
    second = await sink.deliver(record, delivery_context(app, blobs))

    assert second.duplicate and not first.duplicate
    assert second.reference == first.reference
    assert second.delivered_at == first.delivered_at
    assert second.details["files"] == first.details["files"]
    assert len(folders_of(sink.directory, app.id)) == 1
    assert entries(sink.directory) == [app.id]
    assert (sink.directory / app.id / "application.json").read_bytes() == before


async def test_a_revision_is_a_folder_of_its_own_beside_the_first(
    sink: FileDropSink, blobs: BlobStore
) -> None:
    app = await make_application(blobs, files={"antrag.pdf": b"%PDF-1.4 erste Fassung\n"})
    await sink.deliver(default_record(app), delivery_context(app, blobs))
    corrected = await make_application(blobs, files={"antrag.pdf": b"%PDF-1.4 zweite Fassung\n"})
    revised = corrected.model_copy(update={"id": app.id, "revision": 2})
    record = default_record(revised).model_copy(update={"revision": 2})

    delivery = await sink.deliver(record, delivery_context(revised, blobs))

    assert not delivery.duplicate and delivery.reference == f"{app.id}-r2"
    assert entries(sink.directory) == [app.id, f"{app.id}-r2"]
    assert (sink.directory / app.id / "antrag.pdf").read_bytes() == b"%PDF-1.4 erste Fassung\n"
    assert (sink.directory / f"{app.id}-r2" / "antrag.pdf").read_bytes() == b"%PDF-1.4 zweite Fassung\n"


async def test_a_revision_leaves_the_folder_the_revision_before_is_still_writing_alone(
    sink: FileDropSink, blobs: BlobStore
) -> None:
    app = await make_application(blobs, files={"antrag.pdf": b"%PDF-1.4 erste Fassung\n"})
    sink.directory.mkdir(parents=True)
    # Revision 1's worker is writing its folder when revision 2 is taken in (its lease is gone with
    # its task, but it runs on); revision 2 is delivered meanwhile by another worker.
    writing = sink.directory / _temp_name(app.id)
    writing.mkdir()
    (writing / "antrag.pdf").write_bytes(b"%PDF-1.4 erste Fassung\n")
    corrected = await make_application(blobs, files={"antrag.pdf": b"%PDF-1.4 zweite Fassung\n"})
    revised = corrected.model_copy(update={"id": app.id, "revision": 2})
    record = default_record(revised).model_copy(update={"revision": 2})

    await sink.deliver(record, delivery_context(revised, blobs))

    assert (writing / "antrag.pdf").read_bytes() == b"%PDF-1.4 erste Fassung\n"  # not taken for a leftover
    assert (sink.directory / f"{app.id}-r2" / "antrag.pdf").read_bytes() == b"%PDF-1.4 zweite Fassung\n"
    assert entries(sink.directory) == sorted([writing.name, f"{app.id}-r2"])


async def test_folder_taken_by_the_fachverfahren_is_not_delivered_again(
    sink: FileDropSink, blobs: BlobStore
) -> None:
    app = await make_application(blobs)
    record = default_record(app)
    store: dict[str, Any] = {}
    first = await sink.deliver(record, delivery_context(app, blobs, store))
    # the Fachverfahren imports the folder and removes it
    for f in (sink.directory / app.id).iterdir():
        f.unlink()
    (sink.directory / app.id).rmdir()

    again = await sink.deliver(record, delivery_context(app, blobs, store))

    assert again.duplicate
    assert again.reference == first.reference
    assert again.details.get("consumed") is True
    assert entries(sink.directory) == []


async def test_leftover_temporary_folder_is_removed_and_not_counted(
    sink: FileDropSink, blobs: BlobStore
) -> None:
    app = await make_application(blobs)
    sink.directory.mkdir(parents=True)
    # a crash in the middle of an earlier attempt left a half-written temporary folder
    crashed = sink.directory / _temp_name(app.id)
    crashed.mkdir()
    (crashed / "antrag.pdf").write_bytes(b"%PDF-1.4 half")
    assert folders_of(sink.directory, app.id) == []

    await sink.deliver(default_record(app), delivery_context(app, blobs))

    assert not crashed.exists()
    assert entries(sink.directory) == [app.id]
    assert len(folders_of(sink.directory, app.id)) == 1


async def test_start_removes_old_temporary_folders_only(sink: FileDropSink) -> None:
    sink.directory.mkdir(parents=True)
    old = sink.directory / ".tmp-app_old-0123456789ab"
    fresh = sink.directory / ".tmp-app_fresh-0123456789ab"  # maybe another hub process writing now
    foreign = sink.directory / ".fachverfahren-lock"
    for folder in (old, fresh, foreign):
        folder.mkdir()
        (folder / "x").write_bytes(b"x")
    long_ago = time.time() - 2 * 3600
    os.utime(old, (long_ago, long_ago))
    os.utime(foreign, (long_ago, long_ago))

    await sink.start()

    assert not old.exists()
    assert fresh.exists()
    assert foreign.exists()  # not ours: never touched


async def test_start_with_missing_unusable_directory_does_not_fail(
    connector_context: ConnectorContext, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    await make_sink(connector_context, not_a_dir).start()


async def test_unsafe_document_names_become_safe_files_inside_the_folder(
    sink: FileDropSink, blobs: BlobStore, tmp_path: Path
) -> None:
    names = {
        "../../etc/passwd": b"1",
        "..\\..\\windows\\system.ini": b"2",
        "a\x00b.pdf": b"3",
        "x" * 300 + ".pdf": b"4",
        "y" * 300: b"5",
        "CON.txt": b"6",
        "application.json": b"7",
        "Bescheid.pdf": b"8",
        "bescheid.PDF": b"9",
        "Ärger über Straße.pdf": b"10",
        "...": b"11",
        "/absolute/path.jpg": b"12",
        "-rf.pdf": b"13",
        "日本.pdf": b"14",
    }
    app = await make_application(blobs, files=names)
    record = default_record(app)

    await sink.deliver(record, delivery_context(app, blobs))

    folder = sink.directory / app.id
    doc = DropDocument.model_validate_json((folder / "application.json").read_bytes())
    written = [f.name for f in doc.files]
    assert len(written) == len(record.documents)
    assert len({n.lower() for n in written} | {"application.json"}) == len(written) + 1
    for name in written:
        assert re.fullmatch(SAFE_NAME, name), name
        assert len(name) <= 120
        assert (folder / name).resolve().parent == folder.resolve()
        assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}
    assert entries(folder) == sorted(["application.json", *written])
    by_original = {f.original_name: f for f in doc.files}
    assert set(names) <= set(by_original)
    for original, content in names.items():
        assert (folder / by_original[original].name).read_bytes() == content
    assert by_original["../../etc/passwd"].name == "etc_passwd"
    assert by_original["Ärger über Straße.pdf"].name == "Aerger_ueber_Strasse.pdf"
    assert by_original["x" * 300 + ".pdf"].name.endswith(".pdf")
    assert by_original["application.json"].name != "application.json"
    assert not (tmp_path / "etc").exists()
    assert sorted(p.name for p in sink.directory.iterdir()) == [app.id]


def test_safe_names() -> None:
    assert safe_file_name("../../etc/passwd") == "etc_passwd"
    assert safe_file_name("a\x00b.pdf") == "a_b.pdf"
    assert safe_file_name("") == "document"
    assert safe_file_name("nul") == "_nul"
    assert safe_file_name("report.") == "report"
    assert len(safe_file_name("z" * 1000 + "." + "e" * 100)) <= 120
    taken = {"application.json"}
    assert [unique_name(n, taken) for n in ("a.pdf", "A.pdf", "a.pdf", "application.json")] == [
        "a.pdf",
        "A-2.pdf",
        "a-3.pdf",
        "application-2.json",
    ]
    values = {"application_id": "app_1", "service": "../bau", "external_id": "日本", "file_number": None}
    assert render_folder_name("{service}-{application_id}", values) == "bau-app_1"
    assert re.fullmatch(SAFE_NAME, render_folder_name("{external_id}", values))


@pytest.mark.parametrize(
    "pattern",
    ["{bogus}", "fixed", ".{application_id}", "-{application_id}", "{application_id!r}", "{service:>9}",
     "../{application_id}", "a/{application_id}", "{}", "{application_id"],
)  # fmt: skip
def test_invalid_folder_name_patterns_are_refused(pattern: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="folder_name"):
        FileDropSink.Config.model_validate(
            {"type": "filedrop", "path": str(tmp_path), "folder_name": pattern}
        )


async def test_folder_name_pattern(
    connector_context: ConnectorContext, import_dir: Path, blobs: BlobStore
) -> None:
    sink = make_sink(connector_context, import_dir, folder_name="{service}_{external_id}_{file_number}")
    app = await make_application(blobs, service="bau/antrag", external_id="../x 1")
    app.file_number = "63.2-123/2024"

    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))

    assert delivery.reference == "bau_antrag_x_1_63.2-123_2024"
    assert folders_of(import_dir, app.id) == [import_dir / "bau_antrag_x_1_63.2-123_2024"]


async def test_folder_name_clash_with_another_application_is_permanent(
    connector_context: ConnectorContext, import_dir: Path, blobs: BlobStore
) -> None:
    sink = make_sink(connector_context, import_dir, folder_name="{external_id}")
    a = await make_application(blobs, source="portal-a", external_id="4711")
    b = await make_application(blobs, source="portal-b", external_id="4711")
    await sink.deliver(default_record(a), delivery_context(a, blobs))

    with pytest.raises(Permanent, match="already exists"):
        await sink.deliver(default_record(b), delivery_context(b, blobs))

    assert folders_of(import_dir, a.id) == [import_dir / "4711"]
    assert folders_of(import_dir, b.id) == []
    assert entries(import_dir) == ["4711"]


def record_with(app: Application, document: Document) -> FileRecord:
    record = default_record(app)
    record.documents.append(document)
    return record


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (None, "no content"),
        ("sha256:" + "0" * 64, "not in the blob store"),
        ("../../etc/passwd", "invalid blob reference"),
    ],
)
async def test_invalid_record_is_permanent_and_writes_nothing(
    sink: FileDropSink, blobs: BlobStore, blob: str | None, message: str
) -> None:
    app = await make_application(blobs)
    doc = Document(type="bescheid", name="b.pdf", content=DocumentContent.RENDITION, blob=blob)

    with pytest.raises(Permanent, match=message):
        await sink.deliver(record_with(app, doc), delivery_context(app, blobs))

    assert folders_of(sink.directory, app.id) == []
    assert entries(sink.directory) == []


async def test_damaged_blob_is_permanent(sink: FileDropSink, blobs: BlobStore) -> None:
    app = await make_application(blobs, files={"a.pdf": b"original"})
    damage_blob(blobs, app.attachments[0].blob, b"damaged")  # as a faulty disk would

    with pytest.raises(Permanent, match="does not match"):
        await sink.deliver(default_record(app), delivery_context(app, blobs))

    assert entries(sink.directory) == []


async def test_disk_full_is_retryable_and_leaves_nothing(
    sink: FileDropSink, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_application(blobs)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(Retryable, match=r"ENOSPC.*disk is full") as raised:
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert "personalausweis" not in str(raised.value)  # document names may be personal
    assert entries(sink.directory) == []

    monkeypatch.undo()  # space freed: the retry delivers
    delivery = await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert not delivery.duplicate
    assert len(folders_of(sink.directory, app.id)) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories regardless")
async def test_read_only_directory_is_retryable(sink: FileDropSink, blobs: BlobStore) -> None:
    app = await make_application(blobs)
    sink.directory.mkdir()
    sink.directory.chmod(0o500)
    try:
        with pytest.raises(Retryable, match="EACCES"):
            await sink.deliver(default_record(app), delivery_context(app, blobs))
        assert not (await sink.check()).ok
    finally:
        sink.directory.chmod(0o700)
    assert entries(sink.directory) == []


async def test_delivery_does_not_stall_the_event_loop(
    sink: FileDropSink, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_application(blobs)
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.05)  # a slow network share
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    await sink.deliver(default_record(app), delivery_context(app, blobs))
    elapsed = time.monotonic() - started
    task.cancel()
    assert elapsed >= 0.25  # five or more slow fsyncs happened
    assert ticks >= 10  # the loop kept running meanwhile


async def test_check(connector_context: ConnectorContext, tmp_path: Path) -> None:
    good = make_sink(connector_context, tmp_path / "new" / "import")
    result = await good.check()
    assert result.ok, result.message
    assert (tmp_path / "new" / "import").is_dir()
    assert entries(tmp_path / "new" / "import") == []  # the probe is gone
    assert int(result.details["free_bytes"]) > 0

    not_a_dir = tmp_path / "file"
    not_a_dir.write_bytes(b"")
    bad = await make_sink(connector_context, not_a_dir).check()
    assert not bad.ok
    assert str(not_a_dir) in bad.message


async def test_diagnostics_count_waiting_folders(sink: FileDropSink, blobs: BlobStore) -> None:
    app = await make_application(blobs)
    await sink.deliver(default_record(app), delivery_context(app, blobs))
    state = await sink.diagnostics()
    assert state["kind"] == "filedrop"
    assert state["waiting_folders"] == 1
    assert state["temporary_folders"] == 0


async def test_end_to_end_through_the_hub(hub_factory: Any, tmp_path: Path) -> None:
    import_dir = tmp_path / "import"
    running = await hub_factory(
        connectors={"json": {"type": "test-json"}, "import": {"type": "filedrop", "path": str(import_dir)}},
        routes=[{"name": "r", "from": "json", "to": ["import"]}],
    )
    status, body = await running.post(
        "/intake/json/jagdschein", json={"id": "x1", "form": {"vorname": "Erika", "nachname": "Mustermann"}}
    )
    assert status in (200, 201, 202), body
    app_id = body["application_id"]

    state = await running.wait_for_state(app_id)

    assert state == "completed"
    assert [f.name for f in folders_of(import_dir, app_id)] == [app_id]
    doc = DropDocument.model_validate_json((import_dir / app_id / "application.json").read_bytes())
    assert doc.target == "import"
    assert doc.application.form == {"vorname": "Erika", "nachname": "Mustermann"}
    assert [f.document_type for f in doc.files] == ["original"]
    assert json.loads((import_dir / app_id / doc.files[0].name).read_bytes())["id"] == "x1"
    stored = await running.journal.get_application(app_id)
    assert stored.correlations["import"] == app_id


async def test_end_to_end_permanent_failure_makes_the_application_dead(
    hub_factory: Any, tmp_path: Path
) -> None:
    import_dir = tmp_path / "import"
    running = await hub_factory(
        connectors={
            "json": {"type": "test-json"},
            "import": {"type": "filedrop", "path": str(import_dir), "folder_name": "{file_number}"},
        },
        routes=[{"name": "r", "from": "json", "to": ["import"]}],
    )
    _, body = await running.post("/intake/json/jagdschein", json={"id": "x2", "form": {}})

    assert await running.wait_for_state(body["application_id"]) == "dead"
    summary = await running.journal.get_summary(body["application_id"])
    assert "{file_number}" in (summary.error or "")
    assert not import_dir.exists() or entries(import_dir) == []


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("日本.pdf", "document.pdf"),
        ("a.tar.gz", "a.tar.gz"),
        ("file.pdf ", "file.pdf"),
        ("CON.txt", "_CON.txt"),
        ("lpt1", "_lpt1"),
        ("x.very-long-extension-here", "x.very-long-extension-here"),
        ("Antrag (Kopie).PDF", "Antrag_Kopie.PDF"),
    ],
)
def test_safe_file_name_examples(name: str, safe: str) -> None:
    assert safe_file_name(name) == safe


async def test_permission_error_when_publishing_is_retryable_and_cleans_up(
    sink: FileDropSink, blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await make_application(blobs)

    def refused(src: Any, dst: Any) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(os, "rename", refused)
    with pytest.raises(Retryable, match=r"EACCES.*may write there") as raised:
        await sink.deliver(default_record(app), delivery_context(app, blobs))
    assert app.id not in str(raised.value).split(":", 1)[1]  # no file path from the OSError
    assert entries(sink.directory) == []


async def test_a_store_without_a_filesystem_serves_the_sink(
    connector_context: ConnectorContext, tmp_path: Path
) -> None:
    """The sink streams blobs through the protocol: a store in memory is enough."""
    blobs = MemoryBlobs()
    big = os.urandom(700 * 1024)  # several chunks, read on the event loop for the writing thread
    app = await make_application(blobs, files={"plan.pdf": big})
    sink = make_sink(connector_context, tmp_path / "import")
    record = default_record(app).model_copy(update={"payloads": {sink.name: {"fields": {"Flur": "12"}}}})
    await sink.deliver(record, delivery_context(app, blobs))
    [folder] = folders_of(sink.directory, app.id)
    assert (folder / "plan.pdf").read_bytes() == big
    assert json.loads((folder / "application.json").read_bytes())["fields"] == {"Flur": "12"}
    assert blobs.reads == 2  # the original submission and the attachment
