"""Retention (DSGVO): finished applications' payloads are purged once their policy's days have passed.

Policies (`retention.policies` in the configuration) name routes and/or services and a number of days;
the first that matches an application applies, and an application no policy matches is kept for good.
An application qualifies when it is final (completed, rejected, abandoned — dead is not: it waits for an
operator), has no open step (an answer may still be filed or told), and has not changed for the
policy's days. `hub.erasure` says what is erased and what stays.

A purge run, scheduled in the running hub and on demand by ``aktenhub purge``:

1. selects what is due, by pages of the journal's index;
2. erases it in the journal in batches of `batch_size` applications, one transaction each, every
   application checked again inside it (an answer may have reopened it since it was selected);
3. tells every connector which applications were purged (`Connector.forget`), so that what a connector
   keeps of them outside the journal (sent messages in a store of its own) goes too;
4. then deletes the blobs the purged rows referenced, through the orphan sweep's own mechanism
   (`BlobStore.remove_unreferenced`): a blob any other journal row (a live application sharing the
   content-addressed file) or a connector still references stays, and so does one written again within
   the orphan grace period (an intake in flight); the periodic orphan sweep takes those later.

Journal first, blobs second: a crash (SIGKILL) between the two leaves files nothing references, which
the orphan sweep removes; the other order would leave journal rows pointing at deleted files. Each
step is idempotent: a purged application is never selected again, a deleted file is skipped, and a
connector that missed a purge (crash, failure) hears of it at the next run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from hub.blobs import PREFIX, BlobBackend, BlobNotFound
from hub.config import RetentionConfig, RetentionPolicy
from hub.journal import ApplicationSummary, Journal, PurgeCandidate, PurgeOrder
from hub.metrics import Metrics
from hub.models import Purged

log = logging.getLogger(__name__)

DAY = 86400.0
PAGE = 1000  # candidates read per journal query

Progress = Callable[[int, int], None]  # (applications done, applications due)


class PurgeReport(BaseModel):
    """What a purge run did (or, dry, would do)."""

    dry_run: bool
    started_at: datetime
    finished_at: datetime
    applications: int = Field(description="applications purged (dry: due)")
    by_policy: dict[str, int] = Field(default_factory=dict)
    blobs: int = Field(0, description="files deleted (dry: that only purged applications reference)")
    bytes: int = Field(0, description="their size")
    blobs_shared: int = Field(0, description="kept: a live application or a connector references them")
    blobs_later: int = Field(
        0, description="kept for now: written again within the orphan grace period (the orphan sweep's)"
    )
    interrupted: bool = Field(False, description="the hub stopped before every due application was purged")
    connectors_failed: list[str] = Field(
        default_factory=list, description="connectors that could not forget what they keep (told next run)"
    )


class Retention:
    """Purges what the retention policies say is due, from the journal and then the blob store."""

    def __init__(
        self,
        config: RetentionConfig | None,
        journal: Journal,
        blobs: BlobBackend,
        metrics: Metrics,
        *,
        references: Callable[[Collection[str]], Awaitable[set[str]]],
        forget: Callable[[Sequence[str]], Awaitable[tuple[set[str], list[str]]]],
        grace_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or RetentionConfig()
        self.journal = journal
        self.blobs = blobs
        self.metrics = metrics
        # every blob any journal row (but those of the given applications) or connector references
        self.references = references
        # tells the connectors which applications were purged: the blobs they dropped, who failed
        self.forget = forget
        self.grace_seconds = grace_seconds
        self.clock = clock
        self.stopping = False  # set when the hub stops: a run ends after its current batch
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """Whether any policy exists (without one, nothing is ever purged)."""
        return bool(self.config.policies)

    async def purge(
        self, *, dry_run: bool = False, operator: str | None = None, progress: Progress | None = None
    ) -> PurgeReport:
        """Purge every application that is due; `operator` None: the running hub's schedule."""
        async with self._lock:  # a run on demand waits for the scheduled one (and vice versa)
            started = datetime.now(UTC)
            due = await self.due()
            if progress is not None:
                progress(0, len(due))
            if dry_run:
                report = await self._dry(due, started)
            else:
                report = await self._purge(due, started, operator, progress)
            if dry_run or report.applications or report.blobs or report.connectors_failed:
                self._log(report)
            return report

    def _log(self, report: PurgeReport) -> None:
        log.info(
            "purge %s applications=%d blobs=%d bytes=%d shared=%d later=%d",
            "dry run" if report.dry_run else "done",
            report.applications,
            report.blobs,
            report.bytes,
            report.blobs_shared,
            report.blobs_later,
        )

    async def due(self) -> list[PurgeOrder]:
        """Every application whose policy's days have passed, oldest change first."""
        policies = self.config.policies
        if not policies:
            return []
        now = self.clock()
        changed_before = now - min(p.days for p in policies) * DAY
        due: list[PurgeOrder] = []
        after: tuple[float, str] | None = None
        while True:
            page = await self.journal.purge_candidates(changed_before, after, PAGE)
            for candidate in page:
                order = self._order(candidate, now)
                if order is not None:
                    due.append(order)
            if len(page) < PAGE:
                return due
            after = (page[-1].final_since, page[-1].id)

    def _order(self, candidate: PurgeCandidate, now: float) -> PurgeOrder | None:
        policy: RetentionPolicy | None = self.config.policy_for(candidate.route, candidate.service)
        if policy is None:
            return None
        cutoff = now - policy.days * DAY
        if candidate.final_since > cutoff:
            return None
        return PurgeOrder(
            application_id=candidate.id,
            purged=Purged(at=datetime.fromtimestamp(now, UTC), policy=policy.name),
            cutoff=cutoff,
            retention_days=policy.days,
        )

    async def _purge(
        self, due: list[PurgeOrder], started: datetime, operator: str | None, progress: Progress | None
    ) -> PurgeReport:
        by_policy: dict[str, int] = {}
        digests: set[str] = set()
        done = 0
        interrupted = False
        # Connectors first hear of what an earlier run purged and could not tell them (crash, failure).
        failed: set[str] = set()
        untold = await self.journal.purged_untold()
        if untold:
            await self._tell(untold, digests, failed)
        for batch in _batches(due, self.config.batch_size):
            if self.stopping:
                interrupted = True
                break
            orders = [replace(order, operator=operator) for order in batch]
            purged = await self.journal.purge(orders)
            for one in purged:
                by_policy[one.policy] = by_policy.get(one.policy, 0) + 1
                digests.update(ref[len(PREFIX) :] for ref in one.blobs)
            if purged:
                await self._tell([one.application_id for one in purged], digests, failed)
            done += len(batch)
            if progress is not None:
                progress(done, len(due))
        # Only now, with the journal committed: a crash before this leaves orphans, never dangling rows.
        referenced = await self.references(())
        older_than = time.time() - self.grace_seconds  # file times are wall-clock times
        removed = await self.blobs.remove_unreferenced(digests, referenced, older_than)
        shared = sum(1 for d in digests if PREFIX + d in referenced)
        size = sum(info.size for info in removed)
        told = None if failed else self.clock()  # a connector that failed hears of them next run
        await self.journal.record_purge_run(self.clock(), len(removed), size, told)
        count = sum(by_policy.values())
        for policy, n in by_policy.items():
            self.metrics.purged.labels(policy).inc(n)
        return PurgeReport(
            dry_run=False,
            started_at=started,
            finished_at=datetime.now(UTC),
            applications=count,
            by_policy=by_policy,
            blobs=len(removed),
            bytes=size,
            blobs_shared=shared,
            blobs_later=len(digests) - shared - len(removed),
            interrupted=interrupted,
            connectors_failed=sorted(failed),
        )

    async def _tell(self, application_ids: list[str], digests: set[str], failed: set[str]) -> None:
        """Have the connectors forget these applications; what they dropped becomes a deletion candidate."""
        dropped, failures = await self.forget(application_ids)
        digests.update(ref[len(PREFIX) :] for ref in dropped if ref.startswith(PREFIX))
        failed.update(failures)

    async def _dry(self, due: list[PurgeOrder], started: datetime) -> PurgeReport:
        by_policy: dict[str, int] = {}
        for order in due:
            by_policy[order.purged.policy] = by_policy.get(order.purged.policy, 0) + 1
        ids = [order.application_id for order in due]
        # What only the due applications reference: every journal reference less those of all other
        # rows and of the connectors.
        held = await self.journal.blob_references() if ids else set()
        others = await self.references(ids) if ids else set()
        sizes = [await self._size(ref) for ref in held - others]
        return PurgeReport(
            dry_run=True,
            started_at=started,
            finished_at=datetime.now(UTC),
            applications=len(due),
            by_policy=by_policy,
            blobs=sum(1 for s in sizes if s is not None),
            bytes=sum(s for s in sizes if s is not None),
        )

    async def _size(self, ref: str) -> int | None:
        try:
            return (await self.blobs.info(ref)).size
        except BlobNotFound:
            return None


def replay_refusal(summary: ApplicationSummary) -> str | None:
    """Why an application cannot be replayed because of a purge (None: it was not purged)."""
    if summary.purged_at is None:
        return None
    return (
        f"application {summary.id} cannot be replayed: its payload was purged at "
        f"{summary.purged_at.isoformat(timespec='seconds')} by retention policy {summary.purge_policy!r}"
    )


def _batches(items: list[PurgeOrder], size: int) -> Iterator[list[PurgeOrder]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
