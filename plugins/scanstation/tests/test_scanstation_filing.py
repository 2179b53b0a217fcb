"""Scanned post lands in the right Ausländerakten of the enaio simulator; what has no home, in the tray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub_scanstation.simulator import BatchSpec, DocumentSpec, write_batch
from scan_helpers import (
    AZ_NOWAK,
    AZ_UNKNOWN,
    AZ_YILMAZ,
    ENV,
    HUB_OPTIONS,
    ROUTES,
    Enaio,
    applications,
    connectors,
    mixed_batch,
    poll,
)

from hub import ApplicationState
from hub.testing import RunningHub


async def _hub(hub_factory: Any, enaio: Enaio, hot_folder: Path, **source: Any) -> RunningHub:
    running: RunningHub = await hub_factory(
        connectors(enaio.url, hot_folder, **source), ROUTES, env=ENV, **HUB_OPTIONS
    )
    return running


async def _all_completed(running: RunningHub, count: int) -> list[Any]:
    apps = await applications(running)
    assert len(apps) == count
    for app in apps:
        assert await running.wait_for_state(app.id) == ApplicationState.COMPLETED
    return await applications(running)


async def test_indexed_batch_lands_in_the_akten_and_the_tray(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    write_batch(hot_folder, mixed_batch())

    assert await poll(running) == 3
    apps = await _all_completed(running, 3)

    [widerspruch] = enaio.in_akte(AZ_YILMAZ)
    [nachweis] = enaio.in_akte(AZ_NOWAK)  # found by the person: name and birth date
    [unassigned] = enaio.in_tray()
    assert widerspruch.value("Dokumentart") == "WIDERSPRUCH"
    assert nachweis.value("Dokumentart") == "NACHWEIS"
    assert unassigned.value("Dokumentart") == "SCHREIBEN"
    assert enaio.akten() == 2  # scanned post opened no Akte
    # TR-RESISCAN data as index data of the filed document
    assert widerspruch.value("Bediener") == "Scanstelle, Platz 2"
    assert widerspruch.value("Scanner") == "Kodak i4250"
    assert widerspruch.value("Scanzeitpunkt") == "2026-12-07T08:15:00"
    assert widerspruch.value("Aufloesung") == "300"
    assert widerspruch.value("Seiten") == "2"
    by_type = {a.form["dokumentart"]: a for a in apps}
    assert widerspruch.value("Pruefsumme") == by_type["WIDERSPRUCH"].form["scan"]["sha256"]
    assert widerspruch.value("Stapel") == "B0001"
    # the decisions, each visible: the source's (tray service) and where each went
    assert by_type["WIDERSPRUCH"].service == "posteingang-widerspruch"
    assert by_type["NACHWEIS"].form["zuordnung"] == "person"
    assert by_type["SCHREIBEN"].service == "posteingang-korb"
    assert by_type["SCHREIBEN"].form["zuordnung"] == "posteingangskorb"
    assert by_type["WIDERSPRUCH"].file_number == AZ_YILMAZ
    # the batch was moved to done/ after the intakes
    assert not (hot_folder / "B0001").exists()
    assert sorted(p.name for p in (hot_folder / "done" / "B0001").iterdir()) == [
        "0001.pdf",
        "0002.pdf",
        "0003.pdf",
        "B0001.ready",
        "index.xml",
    ]


async def test_post_for_an_akte_enaio_lacks_goes_to_the_tray_with_a_note(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder)
    write_batch(hot_folder, BatchSpec(name="B0002", documents=[DocumentSpec(aktenzeichen=AZ_UNKNOWN)]))

    assert await poll(running) == 1
    [app] = await _all_completed(running, 1)

    [in_tray] = enaio.in_tray()
    assert in_tray.value("AktenhubID").startswith(app.id)
    assert enaio.akten() == 2
    events = await running.journal.events(app.id)
    [delivered] = [e for e in events if e.type == "delivery.completed"]
    assert delivered.data["note"] == "in den Eingangskorb: keine Auslaenderakte zu Aktenzeichen gefunden"
    assert app.service == "posteingang-scan"  # the source had a key: the sink decided


async def test_csv_index_in_windows_1252_as_a_file_group(
    hub_factory: Any, enaio: Enaio, hot_folder: Path
) -> None:
    running = await _hub(hub_factory, enaio, hot_folder, index={"format": "csv", "file": "*index.csv"})
    documents = [
        DocumentSpec(
            document_type="NACHWEIS", family_name="Yilmaz", given_name="Elif", birth_date="12.04.1988"
        )
    ]
    write_batch(
        hot_folder,
        BatchSpec(
            name="K-17",
            shape="group",
            index="csv",
            csv_encoding="windows-1252",
            operator="Jürgen Groß",
            documents=documents,
        ),
    )

    assert await poll(running) == 1
    [app] = await _all_completed(running, 1)
    [filed] = enaio.in_akte(AZ_YILMAZ)
    assert filed.value("Bediener") == "Jürgen Groß"  # Windows-1252 read as such
    assert app.form["person"]["geburtsdatum"] == "1988-04-12"
    assert sorted(p.name for p in (hot_folder / "done" / "K-17").iterdir()) == [
        "K-17.ready",
        "K-17_0001.pdf",
        "K-17_index.csv",
    ]
    assert [p.name for p in hot_folder.iterdir() if p.name not in ("done", "failed", ".assembling")] == []
