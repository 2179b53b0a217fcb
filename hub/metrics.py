"""Prometheus metrics of one hub: counters and histograms in-process, journal counts on scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from hub.journal import JournalStats
from hub.models import ApplicationState

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The hub's metrics, in a registry of its own (several hubs can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.intakes = Counter(
            "aktenhub_intakes", "Submissions taken in", ["source", "duplicate"], registry=r
        )
        self.intake_rejected = Counter(
            "aktenhub_intake_refused", "Submissions refused (4xx)", ["source", "status"], registry=r
        )
        self.step_seconds = Histogram(
            "aktenhub_step_seconds",
            "Duration of step attempts",
            ["step", "target"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "aktenhub_retries",
            "Step attempts failed and rescheduled",
            ["step", "target"],
            registry=r,
        )
        self.dead = Counter("aktenhub_dead", "Tasks that became dead", ["step", "target"], registry=r)
        self.replays = Counter("aktenhub_replays", "Applications replayed", registry=r)
        self.applications = Gauge("aktenhub_applications", "Applications by state", ["state"], registry=r)
        self.tasks = Gauge(
            "aktenhub_tasks",
            "Tasks by step, target and state",
            ["step", "target", "state"],
            registry=r,
        )
        self.dead_tasks = Gauge("aktenhub_dead_tasks", "Tasks dead now, awaiting replay", registry=r)
        self.journal_transactions = Gauge(
            "aktenhub_journal_write_transactions", "Journal write transactions since start", registry=r
        )
        self.journal_operations = Gauge(
            "aktenhub_journal_write_operations",
            "Journal write operations since start (per transaction: the group-commit ratio)",
            registry=r,
        )
        self.blob_syncs = Gauge(
            "aktenhub_blob_syncs", "Filesystem syncs for new blob content since start", registry=r
        )

    def render(self, stats: JournalStats, blob_syncs: int = 0) -> bytes:
        """The exposition text, with the journal's current counts."""
        for app_state in ApplicationState:
            self.applications.labels(app_state.value).set(stats.applications_by_state.get(app_state.value, 0))
        self.tasks.clear()
        dead = 0
        for (step, target, state), n in stats.tasks_by_step_target_state.items():
            self.tasks.labels(step, target, state).set(n)
            if state == "dead":
                dead += n
        self.dead_tasks.set(dead)
        self.journal_transactions.set(stats.write_transactions)
        self.journal_operations.set(stats.write_operations)
        self.blob_syncs.set(blob_syncs)
        return bytes(generate_latest(self.registry))
