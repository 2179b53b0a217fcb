"""A full disk is answered, not crashed; a journal that cannot be opened stops the hub with one clear line.

An XTA poll meeting a full blob disk stops; the message is not charged for it (see `hub.held`).

The disk is really full: the journal or the blob store lives on a small tmpfs that the test fills up
(mounting needs root; elsewhere these tests are skipped). No fault is injected into the hub's code.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from aiohttp.test_utils import TestServer
from hub_xta import XtaSource
from hub_xta.simulator import STATE, enqueue, make_app

from hub import ConnectorContext, HeldMessages, Intake, IntakeOutcome, StorageFull
from hub.blobs import BlobStore
from hub.held import HeldFilter
from hub.journal import ApplicationFilter, SqliteJournal
from hub.testing import RunningHub
from hub.testing.harness import blob_files, stored_blobs

TOKEN = "fc-test-token-0123456789abcdef"
BOUNDARY = "fcB0undary"
HEADERS = {"X-Aktenhub-Token": TOKEN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount small tmpfs filesystems under tmp_path: ``tmpfs(name, size)``; unmounted at teardown."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until its filesystem is full; returns it (delete it to give the space back)."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        try:
            while True:
                f.write(b"\0" * 512)  # the last few pages
        except OSError:
            pass
    return filler


def submission(n: int, size: int = 300_000) -> bytes:
    pdf = b"%PDF-1.4 " + bytes([n]) * size  # by default past the blob store's in-memory spool
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="vorgang_id"\r\n\r\nfc-full-{n}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"; filename="a.pdf"\r\n\r\n'.encode()
        + pdf
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def start(hub_factory: Any, **overrides: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        {
            "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
            "rec": {"type": "test-recording"},
        },
        [{"name": "all", "from": "formcycle", "to": ["rec"]}],
        env={"FORMCYCLE_TOKEN": TOKEN},
        **overrides,
    )
    return running


async def applications(running: RunningHub) -> int:
    return len(await running.journal.list_applications(ApplicationFilter(), limit=1000))


async def post(running: RunningHub, n: int, size: int = 300_000) -> tuple[int, Any, dict[str, str]]:
    url = running.url + "/intake/formcycle/jagdschein"
    async with running.http.post(url, data=submission(n, size), headers=HEADERS) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def assert_full_then_recovers(
    running: RunningHub, filler: Path, where: str, size: int = 300_000
) -> None:
    status, body, headers = await post(running, 1, size)
    assert (status, headers.get("Retry-After")) == (503, "60"), body
    assert "storage is full" in body["error"]
    status, ready = await running.get("/readyz")
    assert status == 503
    assert [p for p in ready["problems"] if p.startswith(f"storage full: {where}")], ready
    assert await applications(running) == 0
    # Nothing partial: the refused submission's blobs are gone, packed or files, and no temporary file stays.
    assert stored_blobs(running.hub.blobs) == set() and blob_files(running.hub.blobs.root) == []
    metrics = (await running.get("/metrics"))[1]
    assert "aktenhub_storage_full_total 1.0" in metrics

    filler.unlink()  # space returns: the hub notices by itself
    status, ready = await running.get("/readyz")
    assert status == 200, ready
    status, body, _ = await post(running, 1, size)
    assert status == 202, body
    await running.wait_for_state(body["application_id"])
    assert await applications(running) == 1


@pytest.mark.parametrize("size", [300_000, 2_000], ids=["streamed-to-disk", "small"])
async def test_full_blob_store_is_answered_503_until_space_returns(
    tmpfs: Callable[[str, str], Path], hub_factory: Any, size: int
) -> None:
    disk = tmpfs("blob-disk", "2m")
    running = await start(hub_factory, blobs=str(disk / "blobs"))
    await assert_full_then_recovers(running, fill(disk), "blob store", size)


async def test_full_journal_disk_is_answered_503_until_space_returns(
    tmpfs: Callable[[str, str], Path], hub_factory: Any
) -> None:
    disk = tmpfs("journal-disk", "2m")
    running = await start(hub_factory, store=f"sqlite:///{disk / 'journal.db'}")
    await assert_full_then_recovers(running, fill(disk), "journal")


# -- a journal that cannot be opened at start ---------------------------------------------------------


def run_hub(tmp_path: Path, journal: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "aktenhub.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "store": f"sqlite:///{journal}",
                "blobs": str(tmp_path / "blobs"),
                "server": {"listen": "127.0.0.1:0"},
            }
        )
    )
    return subprocess.run(
        [sys.executable, "-m", "hub", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )


def assert_one_line(done: subprocess.CompletedProcess[str], journal: Path, cause: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: journal {journal}: "), lines
    assert cause in lines[0], lines


async def test_read_only_journal_stops_the_hub_with_one_line(
    tmpfs: Callable[[str, str], Path], tmp_path: Path
) -> None:
    disk = tmpfs("read-only-disk", "4m")
    journal = SqliteJournal(disk / "journal.db")
    await journal.open()
    await journal.close()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    assert_one_line(run_hub(tmp_path, disk / "journal.db"), disk / "journal.db", "read-only")


def test_file_that_is_no_journal_stops_the_hub_with_one_line(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    journal.write_bytes(b"not a database, but something else entirely\n" * 100)
    assert_one_line(run_hub(tmp_path, journal), journal, "not a journal")


def test_directory_in_place_of_the_journal_stops_the_hub_with_one_line(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    journal.mkdir()
    assert_one_line(run_hub(tmp_path, journal), journal, "is a directory")


def test_blob_store_that_cannot_be_created_stops_the_hub_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "blobs").write_text("a file where the blob store's directory belongs")
    done = run_hub(tmp_path, tmp_path / "journal.db")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'blobs' / 'tmp'}: Not a directory"], (
        done.stderr
    )


async def test_steps_outlast_a_full_journal_disk_without_losing_anything(
    tmpfs: Callable[[str, str], Path], hub_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    disk = tmpfs("journal-disk", "2m")
    running: RunningHub = await hub_factory(
        {
            "formcycle": {"type": "formcycle", "token": "${FORMCYCLE_TOKEN}", "id_field": "vorgang_id"},
            "rec": {"type": "test-recording", "delay_seconds": 1.0},  # the delivery takes a while
        },
        [{"name": "all", "from": "formcycle", "to": ["rec"]}],
        env={"FORMCYCLE_TOKEN": TOKEN},
        store=f"sqlite:///{disk / 'journal.db'}",
        workers={"concurrency": 2, "lease_seconds": 2, "idle_poll_seconds": 0.2},
    )
    status, body, _ = await post(running, 7)
    assert status == 202, body
    app_id = body["application_id"]

    async def mapped() -> bool:
        return any(e.type == "record.mapped" for e in await running.journal.events(app_id))

    await running.wait_for(mapped, 10, "the record to be mapped")
    filler = fill(disk)  # the delivery cannot be claimed, or its outcome cannot be recorded

    def refused() -> bool:
        return any(r.name == "hub.bus" and "storage full" in r.getMessage() for r in caplog.records)

    await running.wait_for(refused, 10, "the workers to meet the full disk")
    filler.unlink()
    await running.wait_for_state(app_id, timeout=30)
    summary = await running.journal.get_summary(app_id)
    assert summary is not None and summary.state.value == "completed"
    assert list(running.hub.connectors["rec"].delivered) == [app_id]  # type: ignore[attr-defined]
    assert [r for r in caplog.records if r.exc_info] == []  # answered, not crashed: no traceback


# -- an XTA poll meeting a full blob disk -------------------------------------------------------------

XTA_ACCOUNT = "vbe:bauaufsicht"


@pytest_asyncio.fixture
async def xta_simulator(schema_dir: Path, tmp_path: Path) -> AsyncIterator[tuple[str, object]]:
    app = make_app(schemas=schema_dir, data_dir=tmp_path / "xta-sim")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield f"http://127.0.0.1:{server.port}", app[STATE]
    await server.close()


async def test_full_blob_disk_stops_the_poll_without_charging_the_message(
    xta_simulator: tuple[str, object],
    schema_dir: Path,
    held_journal: SqliteJournal,
    tmpfs: Callable[[str, str], Path],
) -> None:
    url, state = xta_simulator
    blobs = BlobStore(tmpfs("blobs", "2m"))
    taken: list[Intake] = []

    async def intake(submission: Intake) -> IntakeOutcome:
        taken.append(submission)
        return IntakeOutcome(submission.application.id, False)

    async with aiohttp.ClientSession() as http:
        metadata = {
            "author": "vbe:portal",
            "service": "urn:xoev-de:xleitstelle:standard:xbau",
            "message_type": "baugenehmigung.antrag.0200",
            "payload_schema": "http://www.xleitstelle.de/xbau/2/6",
        }
        queued = await enqueue(http, url, XTA_ACCOUNT, metadata=metadata, message=b"<antrag/>" * 50_000)
        config = XtaSource.Config.model_validate(
            {"type": "xta", "xta": {"url": url, "account": {"identifier": XTA_ACCOUNT}, "timeout_seconds": 5}}
        )
        context = ConnectorContext(
            name="xta-in",
            blobs=blobs,
            schemas=schema_dir,
            data_dir=Path("."),
            _http=lambda: http,
            _held=HeldMessages(held_journal, "xta-in"),
        )
        source = XtaSource(config, context)
        filler = fill(blobs.root)
        with pytest.raises(StorageFull):
            await source.poll(intake)
        assert await held_journal.list_held(HeldFilter()) == []  # the disk's fault, not the message's
        assert taken == []

        filler.unlink()  # space returns
        assert await source.poll(intake) == 1
    assert [t.application.external_id for t in taken] == [queued["message_id"]]
    assert [c.message_id for c in state.closed] == [queued["message_id"]]  # type: ignore[attr-defined]
