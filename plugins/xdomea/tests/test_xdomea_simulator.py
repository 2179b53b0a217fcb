"""The DMS simulator checks what it is sent as a strict xdomea importer would."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hub_xdomea.message import MessageBuilder, message_file_name
from hub_xdomea.simulator import make_app
from lxml import etree
from xdomea_helpers import PASSWORD, USER, Simulator, StartSimulator, X, filed_record, make_sink

from hub import ConnectorContext, utcnow
from hub.blobs import BlobStore
from hub.outbound import basic_authorization
from hub.testing import make_application

AUTH = {"Authorization": basic_authorization(USER, PASSWORD)}


class Package:
    """A valid 0605 ZIP built in memory, to be spoiled by the tests."""

    def __init__(self, xml: bytes, pid: str, files: dict[str, bytes]) -> None:
        self.xml = xml
        self.pid = pid
        self.files = files
        self.message_name = message_file_name(pid)

    def zip(self, extra: dict[str, bytes] | None = None, leave_out: str | None = None) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(self.message_name, self.xml)
            for name, data in {**self.files, **(extra or {})}.items():
                if name != leave_out:
                    archive.writestr(name, data)
        return buffer.getvalue()


@pytest_asyncio.fixture
async def package(blobs: BlobStore, xdomea_context: ConnectorContext, tmp_path: Path) -> Package:
    app = await make_application(blobs, files={"Lageplan.pdf": b"%PDF-1.4 Lageplan\n"})
    settings = make_sink(xdomea_context, "directory", path=str(tmp_path)).config
    message = MessageBuilder(settings, "test").build(filed_record(app), app, utcnow())
    files = {f.name: await blobs.read_bytes(f.blob) for f in message.files}
    return Package(message.serialize(), message.process_id, files)


@pytest_asyncio.fixture
async def dms(start_simulator: StartSimulator) -> AsyncIterator[Simulator]:
    yield await start_simulator()


async def upload(dms: Simulator, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", body, filename="upload.zip", content_type="application/zip")
    async with (
        aiohttp.ClientSession() as http,
        http.post(dms.import_url, data=form, headers=AUTH if headers is None else headers) as response,
    ):
        return response.status, await response.json()


async def test_valid_package_is_imported_once(dms: Simulator, package: Package) -> None:
    status, answer = await upload(dms, package.zip())
    assert (status, answer["status"], answer["prozessId"]) == (201, "imported", package.pid)
    status, again = await upload(dms, package.zip())
    assert (status, again["status"], again["importId"]) == (200, "already imported", answer["importId"])
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{dms.url}/_sim/imports") as r:
            [listed] = (await r.json())["imports"]
        async with http.get(f"{dms.url}/_sim/imports/{package.pid}/message") as r:
            assert await r.read() == package.xml
        async with http.get(f"{dms.url}/_sim/stats") as r:
            stats = await r.json()
    assert listed["repeats"] == 1 and sorted(f["name"] for f in listed["files"]) == sorted(package.files)
    assert stats == {
        "imports": 1,
        "failed_imports": 0,
        "uploads": 2,
        "duplicates": 1,
        "refused": 0,
        "dropped": 0,
    }


async def test_credentials_are_required(dms: Simulator, package: Package) -> None:
    status, answer = await upload(dms, package.zip(), headers={})
    assert status == 401 and answer["message"] == "authentication required"
    wrong = {"Authorization": basic_authorization(USER, "nope")}
    status, _ = await upload(dms, package.zip(), headers=wrong)
    assert status == 401
    assert dms.state.imports == {}


def _spoil_schema(xml: bytes) -> bytes:
    root = etree.fromstring(xml)
    head = root.find("x:Kopf", X)
    creator = root.find("x:Kopf/x:Erstellerkennung", X)
    assert head is not None and creator is not None
    head.remove(creator)  # mandatory
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        ("not-zip", "not a ZIP file"),
        ("missing-file", "is not in the ZIP"),
        ("extra-file", "which no Primaerdokument/Dateiname names"),
        ("unsafe-name", "unsafe entry name"),
        ("schema", "not valid against xdomea.xsd: line"),
        ("not-xml", "not well-formed XML"),
        ("no-message", "exactly one <ProzessID>_FVDaten.SGOAblegen.0605.xml"),
    ],
)
async def test_broken_packages_are_refused(
    dms: Simulator, package: Package, spoil: str, message: str
) -> None:
    if spoil == "not-zip":
        body = b"%PDF-1.4 not a zip"
    elif spoil == "missing-file":
        body = package.zip(leave_out=next(iter(package.files)))
    elif spoil == "extra-file":
        body = package.zip(extra={"notiz.txt": b"hello"})
    elif spoil == "unsafe-name":
        body = package.zip(extra={"../../etc/passwd": b"x"})
    elif spoil == "schema":
        body = Package(_spoil_schema(package.xml), package.pid, package.files).zip()
    elif spoil == "not-xml":
        body = Package(b"<xdomea:oops", package.pid, package.files).zip()
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("nachricht.xml", package.xml)
        body = buffer.getvalue()
    status, answer = await upload(dms, body)
    assert status == 422, answer
    assert message in answer["message"]
    assert dms.state.imports == {}
    assert dms.state.refused == 1


async def test_prozess_id_must_match_the_file_name(dms: Simulator, package: Package) -> None:
    other = package.pid[:-1] + ("0" if package.pid[-1] != "0" else "1")
    renamed = Package(package.xml, other, package.files)
    status, answer = await upload(dms, renamed.zip())
    assert status == 422 and "differs from the file name's" in answer["message"]


async def test_fault_knobs(dms: Simulator, package: Package) -> None:
    assert (await dms.set_faults(fail_next=1))["fail_next"] == 1
    status, answer = await upload(dms, package.zip())
    assert status == 503 and "simulated" in answer["message"]
    status, _ = await upload(dms, package.zip())
    assert status == 201
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{dms.url}/_sim/faults", json={"fail_next": -1}) as r,
    ):
        assert r.status == 400 and "fail_next" in (await r.json())["message"]


def test_simulator_needs_the_schemas(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the xdomea XSDs"):
        make_app(schemas=tmp_path)
