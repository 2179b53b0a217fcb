"""The running hub: configuration turned into journal, blob store, connectors, bus and pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from hub.alerts import CertificateExpiry
from hub.answers import Answer, AnswerOutcome
from hub.audit import AuditExport
from hub.blobs import BlobBackend, BlobHolding, BlobStoreUnavailable, open_blobs
from hub.bus import Bus, BusSettings
from hub.config import Configuration
from hub.connectors import Connector, ConnectorContext, Intake, IntakeOutcome, Sink, Source
from hub.errors import StorageFull
from hub.gate import TargetGate, policies_of
from hub.held import HeldMessages
from hub.journal import Journal, open_journal
from hub.leases import NotLeader, Singletons
from hub.mailer import CertificateListing, Mailer
from hub.metrics import Metrics
from hub.operations import Operations
from hub.pipeline import Pipeline
from hub.plugins import Plugins
from hub.retention import Retention
from hub.return_channel import ReturnChannel
from hub.routes import Router

log = logging.getLogger(__name__)

# How often the running hub warns of certificates about to expire (and once at start).
CERTIFICATE_WARNING_SECONDS = 86400.0


class Hub:
    """One hub process: owns the journal, the connectors and the workers."""

    def __init__(
        self,
        config: Configuration,
        plugins: Plugins,
        *,
        clock: Callable[[], float] = time.time,
        journal: Journal | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.clock = clock
        settings = config.hub
        self.journal: Journal = journal or open_journal(settings.store, clock=clock)
        self.blobs: BlobBackend = open_blobs(settings.blobs)
        self.metrics = Metrics()
        self.singletons = Singletons(self.journal, self.metrics.singleton_leader)
        self.router = Router(settings.routes)
        self._session: aiohttp.ClientSession | None = None
        self.connectors: dict[str, Connector[Any]] = {}
        data_dir = settings.blobs.data_dir or _state_dir(settings.store)
        for name, cfg in config.connectors.items():
            cls = plugins.connector_type(cfg.type)
            ctx = ConnectorContext(
                name=name,
                blobs=self.blobs,
                schemas=config.schemas,
                data_dir=data_dir,
                _http=self._http,
                _once=self.journal.once,
                _held=HeldMessages(self.journal, name),
                _answer=self.answer,
                _routed=functools.partial(self._routed, name),
                _overdue=self.metrics.source_overdue.labels(name).set,
            )
            self.connectors[name] = cls(cfg, ctx)
        self._sources = {n: c for n, c in self.connectors.items() if isinstance(c, Source)}
        self._sinks = {n: c for n, c in self.connectors.items() if isinstance(c, Sink)}
        # Sources run no tasks: every other connector is a target the gate may hold back.
        targets = {n: c for n, c in config.connectors.items() if n not in self._sources}
        self.bus = Bus(
            self.journal,
            BusSettings(
                concurrency=settings.workers.concurrency,
                lease_seconds=settings.workers.lease_seconds,
                idle_poll_seconds=settings.workers.idle_poll_seconds,
                capacity={n: c.max_concurrency for n, c in config.connectors.items()},
                retry={n: c.retry for n, c in config.connectors.items()},
            ),
            plugins,
            self.metrics,
            clock=clock,
            gate=TargetGate(
                policies_of(targets),
                clock,
                self.journal,
                self.metrics,
                pauses=self.journal,
                refresh_seconds=settings.workers.idle_poll_seconds,
            ),
        )
        self.pipeline = Pipeline(
            self.journal,
            self.blobs,
            self.router,
            self.connectors,
            self.bus,
            self.metrics,
            config.mappings,
            settings.workers.render_processes,
        )
        self.returns = ReturnChannel(self.pipeline)
        self.metrics.targets = tuple(self.targets())
        self.operations = Operations(self)
        self.retention = Retention(
            settings.retention,
            self.journal,
            self.blobs,
            self.metrics,
            references=self.referenced_blobs,
            forget=self.forget_purged,
            grace_seconds=settings.blobs.orphan_grace_seconds,
            clock=clock,
        )
        alerts = settings.alerts
        self.mailer = (
            Mailer(alerts, self.journal, self.metrics, certificates=self.certificate_listing(), clock=clock)
            if alerts is not None
            else None
        )
        self._scheduler: AsyncIOScheduler | None = None
        self._polling: set[asyncio.Task[Any]] = set()
        self._storage_full: StorageFull | None = None
        self._audit: AuditExport | None = None
        self.started = False
        # Scheduled orphan sweeps finished; the first runs at start (a test waits for it, not for time).
        self.sweeps = 0

    def _routed(self, source: str, service: str) -> bool:
        return self.router.route_for(source, service) is not None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=60),
                # No shared cookie jar: a session cookie one connector logged in for must never
                # travel with another connector's requests to the same host.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close_http(self) -> None:
        """Close the shared HTTP client session (also for commands that use connectors, not workers)."""
        if self._session is not None:
            await self._session.close()

    def sources(self) -> dict[str, Source[Any]]:
        """The configured source connectors by name (fixed once the hub is built)."""
        return self._sources

    async def intake(self, intake: Intake) -> IntakeOutcome:
        """Store a submission durably (then a source may acknowledge it upstream)."""
        await self.singletons.fence()  # a poll that lost its lease must not take (and close) more
        try:
            outcome = await self.pipeline.intake(intake)
        except StorageFull as exc:
            self.storage_full(exc)
            raise
        self._storage_full = None  # it was stored: there is space again
        return outcome

    async def answer(self, connector: str, answer: Answer) -> AnswerOutcome:
        """Store a Fachverfahren's answer durably (then the transport may acknowledge it upstream)."""
        await self.singletons.fence()
        try:
            return await self.returns.answer(connector, answer)
        except StorageFull as exc:
            self.storage_full(exc)
            raise

    def targets(self) -> list[str]:
        """Every connector tasks may run against (all but the sources: what an operator may pause)."""
        return sorted(n for n in self.config.connectors if n not in self._sources)

    def sinks(self) -> dict[str, Sink[Any]]:
        """The configured sink connectors by name (fixed once the hub is built)."""
        return self._sinks

    @contextlib.contextmanager
    def holding(self) -> Iterator[BlobHolding]:
        """Receive and take in submissions inside this: blobs no stored application keeps are removed."""
        with self.blobs.holding() as holding:
            yield holding
        if holding.removed:
            self.metrics.orphan_blobs_removed.labels("intake").inc(holding.removed)

    def storage_full(self, exc: StorageFull) -> None:
        """Note that a write failed for lack of space: not ready until a write succeeds again."""
        if exc is self._storage_full:
            return
        self.metrics.storage_full.inc()
        if self._storage_full is None:
            log.error("storage full, intake answers 503 until space returns: %s", exc)
        self._storage_full = exc

    async def storage_problem(self) -> str | None:
        """Why the journal or the blob store cannot take writes now; None if they can.

        After a write failed for lack of space, each call tries a small write to both, so the hub
        becomes ready again by itself once space returns.
        """
        if self._storage_full is None:
            return None
        try:
            await self.blobs.probe()
            await self.journal.probe_write()
        except StorageFull as exc:
            self._storage_full = exc
            return str(exc)
        except Exception as exc:  # another failure of the probe: still not ready, and why
            return f"{self._storage_full} (probe failed: {type(exc).__name__}: {exc})"
        log.warning("storage takes writes again: intake resumes")
        self._storage_full = None
        return None

    async def sweep_orphans(self) -> int:
        """Remove blobs nothing references that are older than the grace period; returns how many."""
        # File times are wall-clock times, whatever clock the hub runs its steps by.
        older_than = time.time() - self.config.hub.blobs.orphan_grace_seconds
        grace = self.config.hub.blobs.orphan_grace_seconds
        stale = await self.blobs.remove_stale_parts(grace)  # uploads a crash cut off, in any process
        if stale:
            log.info("removed %d partial uploads older than the grace period", stale)
        candidates = await self.blobs.unreferenced_candidates(older_than)
        if not candidates:
            return 0
        # Read after listing: see `remove_unreferenced` for why that order is safe against intakes.
        referenced = await self.referenced_blobs()
        removed = await self.blobs.sweep(candidates, referenced, older_than)
        if removed:
            self.metrics.orphan_blobs_removed.labels("sweep").inc(removed)
            log.info("removed %d files no application references", removed)
        return removed

    async def referenced_blobs(self, excluding: Collection[str] = ()) -> set[str]:
        """Every blob a journal row or a connector references: what the sweep and the purge keep.

        `excluding`: applications whose journal rows are not looked at (what purging them would free).
        """
        referenced = await self.journal.blob_references(excluding)
        for connector in self.connectors.values():
            referenced |= await connector.blob_references()
        return referenced

    async def forget_purged(self, application_ids: Sequence[str]) -> tuple[set[str], list[str]]:
        """Tell every connector these applications were purged.

        Returns the blobs the connectors no longer keep, and the names of those that failed.
        """
        dropped: set[str] = set()
        failed = []
        for name, connector in self.connectors.items():
            try:
                dropped |= await connector.forget(application_ids)
            except Exception as exc:
                log.warning(
                    "connector could not forget purged applications connector=%s error=%s: %s",
                    name,
                    type(exc).__name__,
                    exc,
                )
                failed.append(name)
        return dropped, failed

    async def _purge(self) -> None:
        # The scheduled purge: a failure is logged and counted, the next interval tries again.
        with self._job():
            try:
                await self.retention.purge()
            except Exception as exc:
                self.metrics.purge_runs.labels("error").inc()
                log.warning("scheduled purge failed error=%s: %s", type(exc).__name__, exc)
            else:
                self.metrics.purge_runs.labels("ok").inc()

    def certificate_listing(self) -> CertificateListing:
        """What lists the certificates and keys about to expire or expired, for the alert mails: the same
        assessment as `aktenhub check`, the daily WARNING and the metric (`Operations.certificates`)."""

        async def expiring() -> list[CertificateExpiry]:
            report = self.operations.certificates()
            return [
                CertificateExpiry(f"{c.connector}: {c.purpose}", c.subject, c.not_after)
                for c in report.certificates
                if c.state != "ok"
            ]

        return expiring

    async def _alert(self) -> None:
        # Like the purge: a failed run is logged; what it queued is in the journal, the next run sends it.
        if self.mailer is None:
            return
        with self._job():
            try:
                await self.mailer.run()
            except Exception as exc:
                log.warning("alert run failed error=%s: %s", type(exc).__name__, exc)

    async def _sweep(self) -> None:
        with self._job():
            try:
                await self.sweep_orphans()
            except Exception as exc:
                log.warning("orphan sweep failed error=%s: %s", type(exc).__name__, exc)
            finally:
                self.sweeps += 1

    @contextlib.contextmanager
    def _job(self) -> Iterator[None]:
        """Track a scheduled job's task so that `stop` waits for it."""
        task = asyncio.current_task()
        if task is not None:
            self._polling.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._polling.discard(task)

    async def start(self, workers: bool = True) -> None:
        """Open the journal, recover after a crash, start connectors, workers and pollers."""
        await self.journal.open()  # takes the journal's lock first: a second hub stops here
        try:
            await self._start(workers)
        except BaseException:
            # Give the journal (and its lock) back, or a hub started next in this process is refused.
            await self.journal.close()
            await self.blobs.close()
            self._close_audit()
            raise
        self.started = True

    async def _start(self, workers: bool) -> None:
        await self.bus.gate.load()  # an open circuit stays open over a restart
        self.retention.stopping = False
        released = await self.journal.recover()
        if released:
            log.info("released %d leases left by a previous run", released)
        await self.blobs.open()  # a bucket that refuses the hub stops the start here
        try:
            finished = await self.blobs.recover()
            if finished:
                log.info("finished storing %d files interrupted by a crash", finished)
            removed = await self.blobs.remove_stale_parts()
            if removed:
                log.info("removed %d partial uploads left by a previous run", removed)
        except BlobStoreUnavailable as exc:  # object storage down: intake answers 503 until it is back
            log.warning("blob store not tidied at start (the sweep does it later): %s", exc)
        for connector in self.connectors.values():
            await connector.start()
        self.start_audit()
        self._scheduler = scheduler = AsyncIOScheduler(timezone="UTC")
        # Once per hub, not per process: every process of a hub shares its blob store, its journal
        # (purge, alert outbox) and its upstream mailboxes, so these run under a lease (`hub.leases`).
        once = self._once_per_hub
        once(scheduler, self.config.hub.blobs.sweep_interval_seconds, "orphan-sweep", self._sweep)
        # Once per process: each process reads its own copies of the certificates and keys and warns in
        # its own log, which is where an operator of that machine looks.
        _every(scheduler, CERTIFICATE_WARNING_SECONDS, "certificate-expiry", self.warn_certificates)
        retention = self.config.hub.retention
        if retention is not None and retention.scheduled and self.retention.configured:
            once(scheduler, retention.interval_seconds, "purge", self._purge)
        if self.config.hub.alerts is not None:
            once(scheduler, self.config.hub.alerts.interval_seconds, "alerts", self._alert)
        if workers and self.config.hub.workers.enabled:
            await self.bus.start()
        # Polling takes submissions and answers in: the intake's part, like the intake routes.
        if workers and self.config.hub.intake.enabled:
            for name, source in self.sources().items():
                if source.poll_interval is not None:
                    _every(scheduler, source.poll_interval, f"poll-{name}", self.poll, name)
                    source.wake_poll = functools.partial(self._wake_poll, f"poll-{name}")
            for name, sink in self.sinks().items():
                if sink.answer_poll_interval is not None:
                    job = functools.partial(self._poll_answers, name, sink)
                    once(scheduler, sink.answer_poll_interval, f"answers-{name}", job, f"answers:{name}")
        scheduler.start()
        self.singletons.start()

    def _once_per_hub(
        self,
        scheduler: AsyncIOScheduler,
        seconds: float,
        job_id: str,
        job: Callable[[], Awaitable[object]],
        lease: str | None = None,
    ) -> None:
        """Schedule a job that runs only in the process holding its lease (named `lease` or `job_id`)."""
        _every(scheduler, seconds, job_id, self.singletons.run, lease or job_id, seconds, job)

    async def poll(self, name: str) -> bool:
        """Poll the source `name` now if this process holds its lease (what its schedule does every
        interval); False if another process of the hub polls it."""
        source = self._sources[name]
        # Named by connector, so hubs with different connectors on one journal never collide.
        lease, interval = f"poll:{name}", source.poll_interval or 0.0
        return await self.singletons.run(lease, interval, functools.partial(self._poll, name, source))

    def _wake_poll(self, job_id: str) -> None:
        """Run a scheduled poll now rather than at its next interval (a source heard of new work)."""
        job = self._scheduler.get_job(job_id) if self._scheduler is not None else None
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    def next_run(self, job: str) -> datetime | None:
        """When the scheduled job (e.g. "purge") runs next; None if it is not scheduled here."""
        scheduled = self._scheduler.get_job(job) if self._scheduler is not None else None
        return scheduled.next_run_time if scheduled is not None else None

    async def stop(self) -> None:
        """Stop pollers and workers, connectors, then close the journal."""
        self.retention.stopping = True  # a running purge ends after its batch
        self.operations.blob_usage.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
            await asyncio.gather(*self._polling, return_exceptions=True)
        await self.singletons.stop()  # after the last run: another process takes over at once
        await self.bus.stop()
        await self.pipeline.close()
        for connector in self.connectors.values():
            try:
                await connector.stop()
            except Exception:
                log.exception("stopping connector %s failed", connector.name)
        await self.close_http()
        await self.journal.close()
        await self.blobs.close()
        self._close_audit()
        self.started = False

    def start_audit(self) -> None:
        """Export journal events to the configured audit file (while the hub, or a command, runs)."""
        if self.config.hub.audit is not None and self._audit is None:
            self._audit = AuditExport(self.config.hub.audit)
            self.plugins.pm.register(self._audit, name="audit")

    def stop_audit(self) -> None:
        """Stop exporting journal events."""
        self._close_audit()

    def _close_audit(self) -> None:
        if self._audit is not None:
            self.plugins.pm.unregister(self._audit)
            self._audit.close()
            self._audit = None

    async def warn_certificates(self) -> None:
        """Log a WARNING for each certificate that expires within `certificates.warn_days` or has expired."""
        report = self.operations.certificates()
        for c in report.certificates:
            if c.state != "ok":
                log.warning(
                    "certificate %s connector=%s purpose=%s subject=%s fingerprint=%s not_after=%s "
                    "days_left=%d",
                    "has expired" if c.state == "expired" else "expires soon",
                    c.connector,
                    c.purpose,
                    c.subject,
                    c.fingerprint[:16],
                    c.not_after.isoformat(),
                    c.days_left,
                )
        for problem in report.problems:
            log.warning("certificate unreadable: %s", problem)

    async def _poll(self, name: str, source: Source[Any]) -> None:
        # A failing poll is logged and tried again at the next interval; the scheduler keeps time.
        with self._job():
            try:
                with self.holding():
                    taken = await source.poll(self.intake)
                if taken:
                    log.info("poll took %d submissions source=%s", taken, name)
            except NotLeader as exc:
                log.info("poll stopped, another process polls now source=%s: %s", name, exc)
            except StorageFull as exc:
                self.storage_full(exc)
                log.warning("poll stopped, storage full source=%s: %s", name, exc)
            except Exception as exc:
                log.warning("poll failed source=%s error=%s: %s", name, type(exc).__name__, exc)

    async def _poll_answers(self, name: str, sink: Sink[Any]) -> None:
        # Like a source's poll: a failure is logged, counted and tried again at the next interval.
        with self._job():
            try:
                with self.holding():
                    taken = await sink.poll_answers()
            except NotLeader as exc:
                log.info("answer poll stopped, another process polls now connector=%s: %s", name, exc)
                return
            except StorageFull as exc:
                self.metrics.answer_polls.labels(name, "error").inc()
                log.warning("answer poll stopped, storage full connector=%s: %s", name, exc)
                return
            except Exception as exc:
                self.metrics.answer_polls.labels(name, "error").inc()
                log.warning("answer poll failed connector=%s error=%s: %s", name, type(exc).__name__, exc)
                return
            self.metrics.answer_polls.labels(name, "ok").inc()
            if taken:
                log.info("answer poll took %d answers connector=%s", taken, name)


def _state_dir(store: str) -> Path:
    """Where connectors keep small state files when the blobs are not in a local directory."""
    if store.startswith("sqlite:///"):
        return Path(store[len("sqlite:///") :]).parent
    return Path("data")


def _every(
    scheduler: AsyncIOScheduler, seconds: float, job_id: str, job: Callable[..., Any], *args: Any
) -> None:
    # Each job runs one at a time (max_instances=1); runs missed while one ran are not made up in
    # a burst (coalesce); the first runs at once.
    scheduler.add_job(
        job,
        IntervalTrigger(seconds=seconds),
        args=args,
        id=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(UTC),
    )
