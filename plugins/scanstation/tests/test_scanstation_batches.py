"""Batches taken only when complete, once however often the hub restarts, visible when they fail."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hub_scanstation.simulator import BatchSpec, DocumentSpec, Fault, finish, write_batch
from pypdf import PdfReader
from scan_helpers import (
    AZ_NOWAK,
    AZ_YILMAZ,
    ENV,
    HUB_OPTIONS,
    ROUTES,
    SOURCE,
    Enaio,
    applications,
    connectors,
    mixed_batch,
    poll,
)

from hub import ApplicationState, HeldState, Intake, IntakeOutcome
from hub.testing import RunningHub, start_hub, stop_hub
from hub.testing.harness import base_settings


async def _hub(
    hub_factory: Any, enaio: Enaio, hot_folder: Path, subdir: str = "hub", **source: Any
) -> RunningHub:
    running: RunningHub = await hub_factory(
        connectors(enaio.url, hot_folder, **source), ROUTES, env=ENV, subdir=subdir, **HUB_OPTIONS
    )
    return running


async def _held(running: RunningHub, message_id: str) -> Any:
    found = await running.journal.held_lookup(SOURCE, (message_id,))
    return found.get(message_id)


async def test_half_written_batch_is_not_read_until_its_marker_comes(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    spec = mixed_batch(faults=[Fault.HALF_WRITTEN])
    write_batch(hot_folder, spec)

    assert await poll(running) == 0
    assert await applications(running) == []
    assert (hot_folder / "B0001" / "index.xml").exists()  # left alone, not failed
    assert not (hot_folder / "failed" / "B0001").exists()

    finish(hot_folder, spec)
    assert await poll(running) == 3
    assert len(await applications(running)) == 3


async def test_without_marker_a_batch_is_taken_once_its_files_stay_quiet(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder, marker=None, stable_seconds=0.3)
    spec = mixed_batch(faults=[Fault.HALF_WRITTEN])
    write_batch(hot_folder, spec)
    assert await poll(running) == 0  # first sight
    finish(hot_folder, spec)  # the file grows: the quiet time starts again
    assert await poll(running) == 0

    taken: list[int] = []

    async def quiet_and_taken() -> bool:
        taken.append(await poll(running))
        return sum(taken) == 3

    await running.wait_for(quiet_and_taken, timeout=10, what="the quiet batch to be taken")
    assert len(await applications(running)) == 3


async def test_crash_after_the_commit_takes_nothing_twice(
    hub_factory: Any, enaio: Enaio, hot_folder: Path, tmp_path: Path
) -> None:
    # The first hub dies after the last durable intake, before the batch is moved; the restarted hub
    # (a new one on the same journal and blob store) reads the batch again and takes nothing twice.
    settings = base_settings(tmp_path / "hub", connectors(enaio.url, hot_folder), ROUTES)
    first = await start_hub({**settings, **HUB_OPTIONS}, env=ENV, workers=False)
    write_batch(hot_folder, mixed_batch())

    class Crash(BaseException):
        pass

    stored: list[IntakeOutcome] = []

    async def intake_then_crash(submission: Intake) -> IntakeOutcome:
        outcome = await first.hub.intake(submission)
        stored.append(outcome)
        if len(stored) == 3:
            raise Crash  # the process dies after the last durable commit
        return outcome

    try:
        with pytest.raises(Crash):
            await first.hub.connectors[SOURCE].poll(intake_then_crash)
    finally:
        await stop_hub(first)
    assert (hot_folder / "B0001" / "B0001.ready").exists()  # not moved

    restarted = await _hub(hub_factory, enaio, hot_folder)
    assert await poll(restarted) == 0
    apps = await applications(restarted)
    assert sorted(a.id for a in apps) == sorted(o.application_id for o in stored)
    assert (hot_folder / "done" / "B0001" / "B0001.ready").exists()
    for app in apps:
        assert await restarted.wait_for_state(app.id) == ApplicationState.COMPLETED
    assert len(enaio.posteingang()) == 3


async def test_batch_with_a_missing_file_is_failed_visibly_and_the_poll_goes_on(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    write_batch(hot_folder, mixed_batch("B0003", faults=[Fault.INDEX_MISSING_FILE]))
    write_batch(hot_folder, mixed_batch("B0004"))

    assert await poll(running) == 3  # B0004 is taken although B0003 failed before it
    assert {a.form["scan"]["stapel"] for a in await applications(running)} == {"B0004"}
    held = await _held(running, "B0003")
    assert held.state == HeldState.QUARANTINED and held.reason_code == "missing_file"
    assert "9999.pdf is not in the batch" in held.reason
    reason = (hot_folder / "failed" / "B0003" / "AKTENHUB-FEHLER.txt").read_text(encoding="utf-8")
    assert "missing_file" in reason and "9999.pdf" in reason
    assert not (hot_folder / "B0003").exists()


async def test_corrupt_pdf_fails_the_batch(hub_factory: Any, enaio: Enaio, hot_folder: Path) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    write_batch(hot_folder, mixed_batch("B0005", faults=[Fault.CORRUPT_PDF]))

    assert await poll(running) == 0
    assert await applications(running) == []
    held = await _held(running, "B0005")
    assert held.reason_code == "unreadable_pdf" and "0001.pdf" in held.reason


async def test_cover_sheets_cut_the_scan_into_documents_without_the_sheets(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    documents = [
        DocumentSpec(
            document_type="WIDERSPRUCH", aktenzeichen=AZ_YILMAZ, pages=["Widerspruch", "Seite 2", "Seite 3"]
        ),
        DocumentSpec(document_type="NACHWEIS", aktenzeichen=AZ_NOWAK, pages=["Meldebescheinigung"]),
    ]
    write_batch(hot_folder, BatchSpec(name="T-1", index="none", documents=documents))

    assert await poll(running) == 2
    apps = await applications(running)
    for app in apps:
        state = await running.wait_for_state(app.id)
        assert state == ApplicationState.COMPLETED, [e.data for e in await running.journal.events(app.id)]
    [widerspruch] = enaio.in_akte(AZ_YILMAZ)
    [nachweis] = enaio.in_akte(AZ_NOWAK)
    assert _pages(widerspruch) == 3 and _pages(nachweis) == 1  # the cover sheets are not filed
    assert widerspruch.value("Dokumentart") == "WIDERSPRUCH"
    by_type = {a.form["dokumentart"]: a for a in apps}
    assert by_type["WIDERSPRUCH"].form["barcode"] == f"AZ {AZ_YILMAZ} | DOK WIDERSPRUCH"
    # the scanned original is kept intact as each application's original: 2 sheets + 4 pages
    original = by_type["WIDERSPRUCH"].original
    assert original is not None and original == by_type["NACHWEIS"].original
    assert len(PdfReader(io.BytesIO(await running.hub.blobs.read_bytes(original.blob))).pages) == 6


async def test_unreadable_cover_sheet_sends_its_document_to_the_tray(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    documents = [DocumentSpec(aktenzeichen=AZ_YILMAZ, pages=["Brief"])]
    write_batch(
        hot_folder,
        BatchSpec(name="T-2", index="none", documents=documents, faults=[Fault.UNREADABLE_BARCODE]),
    )

    assert await poll(running) == 1
    [app] = await applications(running)
    assert await running.wait_for_state(app.id) == ApplicationState.COMPLETED
    assert app.service == "posteingang-korb"
    assert enaio.in_akte(AZ_YILMAZ) == []
    [in_tray] = enaio.in_tray()
    assert _pages(in_tray) == 2  # the unrecognised sheet stays with the content, for the clerk to see


def _pages(stored: Any) -> int:
    return len(PdfReader(stored.content.path).pages)


async def test_the_running_hub_polls_the_hot_folder_under_its_intake_lease(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    settings = connectors(enaio.url, hot_folder, poll_seconds=0.2)
    running: RunningHub = await hub_factory(settings, ROUTES, env=ENV)  # intake role on: scheduled polls
    write_batch(hot_folder, mixed_batch())

    async def filed() -> bool:
        return len(enaio.posteingang()) == 3 and (hot_folder / "done" / "B0001").is_dir()

    await running.wait_for(filed, timeout=20, what="the batch to be polled, filed and moved to done/")
    assert len(await applications(running)) == 3


async def test_a_marker_beside_the_batch_folder_completes_it(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    write_batch(hot_folder, mixed_batch())
    (hot_folder / "B0001" / "B0001.ready").rename(hot_folder / "B0001.ready")  # as some exports write it

    assert await poll(running) == 3
    assert (hot_folder / "done" / "B0001" / "B0001.ready").exists()
    assert not (hot_folder / "B0001.ready").exists()


async def test_a_batch_failing_again_after_the_operator_kept_it_is_held_anew(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    from hub.held import decide

    running = await _hub(hub_factory, enaio, hot_folder)
    write_batch(hot_folder, mixed_batch("B0003", faults=[Fault.CORRUPT_PDF]))
    assert await poll(running) == 0
    first = await _held(running, "B0003")
    await decide(running.journal, running.hub.connectors, first.id, "keep", by="test")
    # The operator moves it back for another try; it fails again and is held as a new message.
    (hot_folder / "failed" / "B0003").rename(hot_folder / "B0003")
    assert await poll(running) == 0
    again = await _held(running, "B0003-2")
    assert again.state == HeldState.QUARANTINED and (hot_folder / "failed" / "B0003-2").is_dir()
    assert (await _held(running, "B0003")).state == HeldState.KEPT
