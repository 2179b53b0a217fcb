"""The source contract of `hub.testing`, spoken as a scan station: a submission is a one-document batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hub_scanstation.simulator import BatchSpec, DocumentSpec, write_batch
from scan_helpers import AZ_YILMAZ, ENV, HUB_OPTIONS, ROUTES, SOURCE, Enaio, connectors

from hub import Intake, IntakeOutcome
from hub.testing import RunningHub, SourceContract


class TestScanStationContract(SourceContract):
    """The same `n` is the same paper scanned into the same batch again (re-exported after a crash)."""

    @pytest.fixture
    async def source_hub(self, hub_factory: Any, enaio: Enaio, hot_folder: Path) -> RunningHub:
        self.hot_folder = hot_folder
        options = {**HUB_OPTIONS, "workers": {"enabled": False}}
        running: RunningHub = await hub_factory(connectors(enaio.url, hot_folder), ROUTES, env=ENV, **options)
        return running

    async def _poll(self, running: RunningHub) -> list[IntakeOutcome]:
        outcomes: list[IntakeOutcome] = []

        async def intake(submission: Intake) -> IntakeOutcome:
            outcome = await running.hub.intake(submission)
            outcomes.append(outcome)
            return outcome

        await running.hub.connectors[SOURCE].poll(intake)
        return outcomes

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        document = DocumentSpec(aktenzeichen=AZ_YILMAZ, pages=[f"Schreiben Nummer {n}"])
        write_batch(self.hot_folder, BatchSpec(name=f"C{n}", documents=[document]))
        [outcome] = await self._poll(running)
        assert (self.hot_folder / "done" / f"C{n}").is_dir()
        return outcome

    async def submit_malformed(self, running: RunningHub) -> int:
        folder = self.hot_folder / "BAD"
        folder.mkdir()
        (folder / "index.xml").write_bytes(b"<ImportSession><Batches>")
        (folder / "BAD.ready").write_bytes(b"")
        assert await self._poll(running) == []
        held = await running.journal.held_lookup(SOURCE, ("BAD",))
        return 422 if "BAD" in held else 200  # refused: held for an operator, nothing stored
