"""The source contract of `hub.testing`, spoken in FIT-Connect: a submission is sent to our destination
and taken by its id; "re-sent" is the same submission taken again after its accept was lost."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from hub_fitconnect.sender import Sent
from hub_fitconnect.source import FitConnectSource
from hub_fitconnect.wire import SubmissionForPickup
from subscriber_helpers import SOURCE, FitConnect, signed_callback
from subscriber_helpers import world as world  # the fixture

from hub import Intake, IntakeOutcome, Retryable
from hub.testing import RunningHub, SourceContract
from hub.testing.harness import base_settings, start_hub, stop_hub


class TestFitConnectContract(SourceContract):
    """Submissions go through the simulator; the contract takes them by id, as a callback or the poll does."""

    @pytest_asyncio.fixture
    async def source_hub(self, world: FitConnect, tmp_path: Path) -> AsyncIterator[RunningHub]:
        self.fc = world
        self.sent: dict[int, Sent] = {}
        (tmp_path / "drop").mkdir()
        connectors = {
            SOURCE: world.connector(),
            "drop": {"type": "filedrop", "path": str(tmp_path / "drop")},
        }
        routes = [{"name": "all", "from": SOURCE, "to": ["drop"]}]
        running = await start_hub(base_settings(tmp_path, connectors, routes), env=world.env(), workers=False)
        try:
            yield running
        finally:
            await stop_hub(running)

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        source = running.hub.connectors[SOURCE]
        assert isinstance(source, FitConnectSource)
        first = n not in self.sent
        if first:
            self.sent[n] = await self.fc.send()
        sent = self.sent[n]
        outcomes: list[IntakeOutcome] = []

        async def intake(submission: Intake) -> IntakeOutcome:
            outcome = await running.hub.intake(submission)
            outcomes.append(outcome)
            if first:  # the accept after this first intake is lost: the submission stays upstream
                self.fc.state.knobs.fail_next = 1
            return outcome

        item = SubmissionForPickup(
            destinationId=self.fc.destination_id, submissionId=sent.submission_id, caseId=sent.case_id
        )
        try:
            await source.take(item, intake)
        except Retryable:
            assert first
        [outcome] = outcomes
        status = (await self.fc.view(sent.submission_id))["status"]
        assert status == ("submitted" if first else "accepted")
        return outcome

    async def submit_malformed(self, running: RunningHub) -> int:
        """A callback FIT-Connect signed, whose body is not a callback: refused, nothing taken."""
        body = json.dumps({"type": "new-submissions", "submissions": "all of them"}).encode()
        status, _ = await running.post(
            f"/intake/{SOURCE}/callback", data=body, headers=signed_callback(body, int(time.time()))
        )
        return status
