"""The ZIP and its delivery into an import directory: complete, atomic, once."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hub_xdomea.message import package_name, process_id
from hub_xdomea.sink import XdomeaSink
from xdomea_helpers import StartSimulator, X, assert_valid, filed_record, make_sink, read_zip, zips_in

from hub import Application, ConnectorContext, Permanent
from hub.blobs import BlobStore
from hub.testing import MemoryBlobs, damage_blob, delivery_context, lose_blob, make_application


@pytest.fixture
def sink(xdomea_context: ConnectorContext, tmp_path: Path) -> XdomeaSink:
    return make_sink(xdomea_context, "directory", path=str(tmp_path / "import"))


async def bauantrag(blobs: BlobStore, **files: bytes) -> Application:
    return await make_application(
        blobs,
        service="baugenehmigung",
        files=files or {"Lageplan.pdf": b"%PDF-1.4 Lageplan\n", "Bauzeichnung.pdf": b"%PDF-1.4 Zeichnung\n"},
    )


async def test_zip_holds_the_message_and_every_file(
    sink: XdomeaSink, blobs: BlobStore, xdomea_xsd: Any
) -> None:
    app = await bauantrag(blobs)
    record = filed_record(app)
    delivery = await sink.deliver(record, delivery_context(app, blobs))
    [path] = zips_in(sink.directory)
    package = read_zip(path)
    assert_valid(xdomea_xsd, package.xml)
    assert package.names[0] == package.message_name  # the message first, then the files in record order
    documents = package.root.findall(".//x:Dokument", X)
    by_name = {
        str(d.findtext("x:Version/x:Format/x:Primaerdokument/x:Dateiname", namespaces=X)): record.documents[i]
        for i, d in enumerate(documents)
    }
    assert sorted(by_name) == sorted(package.files)
    for name, document in by_name.items():
        assert document.blob == "sha256:" + package.files[name]
    assert delivery.target == "xdomea"
    assert delivery.reference == process_id(app.id)
    assert delivery.correlations == {"prozess_id": process_id(app.id)}
    assert delivery.file_number == "63-2025-00042"
    assert not delivery.duplicate
    assert delivery.details["files"] == 3
    assert delivery.details["bytes"] == path.stat().st_size
    assert delivery.details["path"] == str(path)


async def test_large_content_is_streamed_into_the_zip(
    xdomea_context: ConnectorContext, tmp_path: Path, blobs: BlobStore
) -> None:
    big = os.urandom(3 * 1024 * 1024 + 17)  # more than a dozen blob chunks, incompressible
    app = await bauantrag(blobs, **{"Bauvorlagen.pdf": big})
    sink = make_sink(xdomea_context, "directory", path=str(tmp_path / "import"), compression="stored")
    await sink.deliver(filed_record(app), delivery_context(app, blobs))
    [path] = zips_in(sink.directory)
    with zipfile.ZipFile(path) as archive:
        [entry] = [i for i in archive.infolist() if i.filename.endswith("_Bauvorlagen.pdf")]
        assert entry.compress_type == zipfile.ZIP_STORED
        assert entry.file_size == len(big)
        assert hashlib.sha256(archive.read(entry)).hexdigest() == hashlib.sha256(big).hexdigest()


async def test_redelivery_leaves_one_zip(sink: XdomeaSink, blobs: BlobStore) -> None:
    app = await bauantrag(blobs)
    record = filed_record(app)
    first = await sink.deliver(record, delivery_context(app, blobs))
    [path] = zips_in(sink.directory)
    written = path.stat().st_mtime_ns
    # A retry that lost its checkpoint (crash after publishing): the ZIP of that name is the delivery.
    again = await sink.deliver(record, delivery_context(app, blobs))
    assert again.duplicate and again.reference == first.reference
    assert zips_in(sink.directory) == [path]
    assert path.stat().st_mtime_ns == written
    assert sorted(p.name for p in sink.directory.iterdir()) == [package_name(process_id(app.id))]


async def test_a_zip_the_dms_has_taken_is_not_written_again(sink: XdomeaSink, blobs: BlobStore) -> None:
    app = await bauantrag(blobs)
    record = filed_record(app)
    store: dict[str, Any] = {}
    await sink.deliver(record, delivery_context(app, blobs, store))
    [path] = zips_in(sink.directory)
    path.unlink()  # the DMS imported and removed it
    again = await sink.deliver(record, delivery_context(app, blobs, store))
    assert again.duplicate
    assert zips_in(sink.directory) == []


async def test_separate_applications_get_separate_zips(sink: XdomeaSink, blobs: BlobStore) -> None:
    a = await bauantrag(blobs)
    b = await make_application(blobs, external_id="b", files={"Lageplan.pdf": b"%PDF-1.4 other\n"})
    await sink.deliver(filed_record(a), delivery_context(a, blobs))
    await sink.deliver(filed_record(b), delivery_context(b, blobs))
    assert [p.name for p in zips_in(sink.directory)] == sorted(
        [package_name(process_id(a.id)), package_name(process_id(b.id))]
    )


async def test_a_missing_blob_leaves_nothing_behind(sink: XdomeaSink, blobs: BlobStore) -> None:
    app = await bauantrag(blobs)
    record = filed_record(app)
    assert record.documents[1].blob is not None
    lose_blob(blobs, record.documents[1].blob)  # removed behind the store's back
    with pytest.raises(Permanent, match="document 1 references sha256:"):
        await sink.deliver(record, delivery_context(app, blobs))
    assert not sink.directory.exists() or list(sink.directory.iterdir()) == []


async def test_damaged_content_is_refused_and_no_temporary_file_stays(
    sink: XdomeaSink, blobs: BlobStore
) -> None:
    app = await bauantrag(blobs)
    record = filed_record(app)
    assert record.documents[0].blob is not None
    damage_blob(blobs, record.documents[0].blob, b"%PDF-1.4 not what was stored\n")  # as a faulty disk would
    with pytest.raises(Permanent, match="does not match its reference"):
        await sink.deliver(record, delivery_context(app, blobs))
    assert list(sink.directory.iterdir()) == []


async def test_start_removes_stale_temporary_zips(sink: XdomeaSink) -> None:
    sink.directory.mkdir(parents=True)
    stale = sink.directory / ".x_FVDaten.SGOAblegen.0605.zip.0123456789ab.part"
    fresh = sink.directory / ".y_FVDaten.SGOAblegen.0605.zip.ba9876543210.part"
    other = sink.directory / "someone-elses.zip"
    for path in (stale, fresh, other):
        path.write_bytes(b"PK")
    os.utime(stale, (1, 1))
    await sink.start()
    assert sorted(p.name for p in sink.directory.iterdir()) == sorted([fresh.name, other.name])


async def test_check_and_diagnostics_of_the_import_directory(sink: XdomeaSink, blobs: BlobStore) -> None:
    result = await sink.check()
    assert result.ok, result.message
    assert result.details["waiting_packages"] == "0"
    app = await bauantrag(blobs)
    await sink.deliver(filed_record(app), delivery_context(app, blobs))
    state = await sink.diagnostics()
    assert state["waiting_packages"] == 1


@pytest.mark.parametrize("mode", ["directory", "http"])
async def test_memory_stays_flat_for_a_large_document(
    mode: str,
    xdomea_context: ConnectorContext,
    tmp_path: Path,
    blobs: BlobStore,
    start_simulator: StartSimulator,
) -> None:
    size = 24 * 1024 * 1024
    app = await bauantrag(blobs, **{"Bauvorlagen.pdf": os.urandom(size)})
    if mode == "http":
        dms = await start_simulator()
        sink = make_sink(xdomea_context, "http", url=dms.import_url, compression="stored")
    else:
        sink = make_sink(xdomea_context, "directory", path=str(tmp_path / "import"), compression="stored")
    record = filed_record(app)
    tracemalloc.start()
    try:
        delivery = await sink.deliver(record, delivery_context(app, blobs))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert delivery.details["content_bytes"] > size
    # The ZIP is streamed through in chunks (the simulator reads it in chunks too): a fraction of its size.
    assert peak < size // 4, f"peak {peak} bytes while delivering {size} bytes"


async def test_a_store_without_a_filesystem_serves_the_sink(sink: XdomeaSink, xdomea_xsd: Any) -> None:
    """The ZIP is packed from blob streams and sizes (`Blobs.info`): a store in memory is enough."""
    blobs = MemoryBlobs()
    app = await bauantrag(blobs)  # type: ignore[arg-type]
    await sink.deliver(filed_record(app), delivery_context(app, blobs))
    [path] = zips_in(sink.directory)
    package = read_zip(path)
    assert_valid(xdomea_xsd, package.xml)
    assert sorted(package.files.values()) == sorted(b[len("sha256:") :] for b in blobs.content)
