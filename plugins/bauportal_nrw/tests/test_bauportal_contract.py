"""The source contract of `hub.testing`, spoken in XTA: a submission is an XBau 0200 in the mailbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from bauportal_helpers import (
    AUTHORITY_XTA,
    HUB_OPTIONS,
    ROUTES,
    StartEnaio,
    StartXta,
    Xta,
    antrag_metadata,
    bauantrag,
    hub_connectors,
    send,
)
from hub_bauportal_nrw import BauportalNrwSource
from hub_bauportal_nrw.xbau import MessageIdentity
from hub_xta.simulator import enqueue

from hub import Intake, IntakeOutcome
from hub.testing import RunningHub, SourceContract

UUIDS = {n: f"00000000-0000-4000-8000-{n:012d}" for n in range(10)}


class TestBauportalContract(SourceContract):
    """Submissions are polled from the XTA simulator; the same `n` is the same XBau message, re-sent."""

    @pytest.fixture
    async def source_hub(
        self,
        hub_factory: Any,
        start_xta: StartXta,
        start_enaio: StartEnaio,
        schema_dir: Path,
        http: aiohttp.ClientSession,
    ) -> RunningHub:
        self.xta: Xta = await start_xta()
        self.http = http
        enaio = await start_enaio()
        # No scheduled polls (polling is the intake role's, so that role is off) and no workers: the
        # contract polls itself, one poll at a time, through the hub's intake.
        options = {
            **HUB_OPTIONS,
            "workers": {**HUB_OPTIONS["workers"], "enabled": False},
            "intake": {"enabled": False},
        }
        running: RunningHub = await hub_factory(
            hub_connectors(self.xta.url, enaio.url), ROUTES, schemas=str(schema_dir), **options
        )
        return running

    async def _poll(self, running: RunningHub) -> list[IntakeOutcome]:
        source = running.hub.connectors["bauportal"]
        assert isinstance(source, BauportalNrwSource)
        outcomes: list[IntakeOutcome] = []

        async def intake(submission: Intake) -> IntakeOutcome:
            outcome = await running.hub.intake(submission)
            outcomes.append(outcome)
            return outcome

        await source.poll(intake)
        return outcomes

    async def submit(self, running: RunningHub, n: int) -> IntakeOutcome:
        plan = bauantrag()
        identity = plan.antrag.identity.model_dump()
        plan = bauantrag(identity=MessageIdentity(**{**identity, "uuid": UUIDS[n]}))
        await send(self.http, self.xta, plan)  # a new XTA message each time, the same XBau message
        [outcome] = await self._poll(running)
        assert self.xta.state.mailbox(AUTHORITY_XTA) == {}  # closed after the intake
        return outcome

    async def test_malformed_changes_nothing(self, source_hub: RunningHub) -> None:
        """Differs by design: a *malformed 0200* is taken in as rejected, because XBau demands an
        answer (1100) to it (see test_bauportal_flow). What this source must leave alone are messages
        that are not building applications: they stay in the mailbox, and nothing is stored."""
        other = await enqueue(
            self.http,
            self.xta.url,
            AUTHORITY_XTA,
            metadata=antrag_metadata(message_type="baugenehmigung.formellePruefung.0201"),
            message=b"<x/>",
        )
        assert await self._poll(source_hub) == []
        assert await self._count(source_hub) == 0
        assert list(self.xta.state.mailbox(AUTHORITY_XTA)) == [other["message_id"]]
