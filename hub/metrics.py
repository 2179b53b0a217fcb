"""Prometheus metrics of one hub: counters and histograms in-process, journal counts on scrape.

Label values are never empty: a step without a target (``map``) is labelled ``target="none"``. The
retry, dead and duration series of every configured step and target exist from the start (at 0), so
rates and alerts work before the first failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from hub.actions import Action
from hub.certificates import CertificateReport
from hub.gate import STATE_VALUES
from hub.journal import JournalStats
from hub.journal.base import CircuitState
from hub.models import ApplicationState

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
NO_TARGET = "none"


def target_label(target: str) -> str:
    """The `target` label value of a task's target ("" for steps the hub runs itself)."""
    return target or NO_TARGET


class RunningTotals(Collector):
    """Totals the journal and the blob store count themselves, exposed as counters on scrape.

    They only grow while the process runs (and restart at 0 with it, which Prometheus' `rate()`
    handles), so they are counters; their values are read at scrape time rather than incremented here.
    """

    def __init__(self) -> None:
        self.write_transactions = 0
        self.write_operations = 0
        self.blob_syncs = 0

    def collect(self) -> Iterator[Metric]:
        """The three counters with the values last read."""
        yield CounterMetricFamily(
            "aktenhub_journal_write_transactions",
            "Journal write transactions since start",
            value=self.write_transactions,
        )
        yield CounterMetricFamily(
            "aktenhub_journal_write_operations",
            "Journal write operations since start (per transaction: the group-commit ratio)",
            value=self.write_operations,
        )
        yield CounterMetricFamily(
            "aktenhub_blob_syncs",
            "Durable commits of new blob content (pack transactions, filesystem syncs) since start",
            value=self.blob_syncs,
        )

    def describe(self) -> Iterable[Metric]:
        """The same families (the registry checks names against other metrics with them)."""
        return self.collect()


class OperatorActions(Collector):
    """Subjects acted on by operators, by action, from the journal's audit trail (`hub.actions`).

    Read from the journal rather than counted here, so an action taken by the CLI beside the running
    hub counts too; the trail only grows, so it is a counter that also survives a restart.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        """The counter with the values last read, every known action present (at 0 if none)."""
        family = CounterMetricFamily(
            "aktenhub_operator_actions",
            "Applications, held messages and targets operators acted on (audit trail), by action",
            labels=["action"],
        )
        for action in Action:
            family.add_metric([action.value], self.counts.get(action.value, 0))
        yield family

    def describe(self) -> Iterable[Metric]:
        """The same family."""
        return self.collect()


class Metrics:
    """The hub's metrics, in a registry of its own (several hubs can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.intakes = Counter(
            "aktenhub_intakes", "Submissions taken in", ["source", "duplicate"], registry=r
        )
        self.intake_changed_resends = Counter(
            "aktenhub_intake_changed_resends",
            "Submissions re-sent under a known external id with changed content, by action taken",
            ["source", "action"],
            registry=r,
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
        self.answers = Counter(
            "aktenhub_answers",
            "Answers of the Fachverfahren stored (repeats not counted), by connector and status",
            ["connector", "status"],
            registry=r,
        )
        self.answer_repeats = Counter(
            "aktenhub_answer_repeats", "Answers received again (stored before)", ["connector"], registry=r
        )
        self.answer_polls = Counter(
            "aktenhub_answer_polls",
            "Polls of a Fachverfahren for answers, by outcome (ok, error)",
            ["connector", "outcome"],
            registry=r,
        )
        self.callbacks_refused = Counter(
            "aktenhub_callbacks_refused",
            "Callbacks refused (401 signature, 4xx body or application)",
            ["connector", "status"],
            registry=r,
        )
        self.dead = Counter("aktenhub_dead", "Tasks that became dead", ["step", "target"], registry=r)
        self.target_paused = Gauge(
            "aktenhub_target_paused", "1 while an operator has paused the target", ["target"], registry=r
        )
        self.applications = Gauge("aktenhub_applications", "Applications by state", ["state"], registry=r)
        self.tasks = Gauge(
            "aktenhub_tasks",
            "Tasks by step, target and state",
            ["step", "target", "state"],
            registry=r,
        )
        self.dead_tasks = Gauge("aktenhub_dead_tasks", "Tasks dead now, awaiting replay", registry=r)
        self.identity_rejections = Counter(
            "aktenhub_identity_rejections",
            "Identities refused, by identity connector and reason code",
            ["provider", "reason"],
            registry=r,
        )
        # Seconds, not days: Prometheus base units (promtool); days left = value / 86400.
        self.certificate_expiry = Gauge(
            "aktenhub_certificate_expiry_seconds",
            "Time until a certificate the hub uses or trusts expires (negative: expired); connector "
            '"hub": the core\'s own',
            # The fingerprint tells apart two certificates of one subject (an IdP rolling its key over).
            ["connector", "purpose", "subject", "fingerprint"],
            registry=r,
        )
        self.orphan_blobs_removed = Counter(
            "aktenhub_orphan_blobs_removed",
            "Blobs removed because no application references them (intake: refused, duplicate or "
            "interrupted submission; sweep: left by a crash)",
            ["cause"],
            registry=r,
        )
        for cause in ("intake", "sweep"):
            self.orphan_blobs_removed.labels(cause)
        self.storage_full = Counter(
            "aktenhub_storage_full",
            "Writes refused because the journal's or blobs' disk was full",
            registry=r,
        )
        self.inbound_held = Gauge(
            "aktenhub_inbound_held",
            "Inbound messages a source could not take, by source, state and reason",
            ["source", "state", "reason"],
            registry=r,
        )
        self.source_overdue = Gauge(
            "aktenhub_source_overdue",
            "Submissions waiting upstream, not acknowledged past the source's warning age, by source",
            ["source"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "aktenhub_circuit_state",
            "A target's circuit breaker: 0 closed, 1 half-open (probing), 2 open (tasks not attempted)",
            ["target"],
            registry=r,
        )
        self.circuit_opened = Counter(
            "aktenhub_circuit_opened",
            "Times a target's circuit opened (after repeated failures or a failed probe)",
            ["target"],
            registry=r,
        )
        self.purged = Counter(
            "aktenhub_purged",
            "Applications whose payload this process purged after their retention period, by policy",
            ["policy"],
            registry=r,
        )
        self.purge_runs = Counter(
            "aktenhub_purge_runs", "Purge runs by outcome (ok, error)", ["outcome"], registry=r
        )
        for outcome in ("ok", "error"):
            self.purge_runs.labels(outcome)
        self.alert_mails = Counter(
            "aktenhub_alert_mails",
            "Alert mails (dead applications, certificates) by kind and outcome (sent, failed: tried again)",
            ["kind", "outcome"],
            registry=r,
        )
        self.alert_mails_unsent = Gauge(
            "aktenhub_alert_mails_unsent", "Alert mails queued in the journal, not sent yet", registry=r
        )
        # From the journal, so that purges run by `aktenhub purge` (another process) count too.
        self.purged_applications = Gauge(
            "aktenhub_purged_applications", "Applications in the journal whose payload was purged", registry=r
        )
        self.purged_blobs = Gauge(
            "aktenhub_purged_blobs", "Files purge runs deleted from the blob store, ever", registry=r
        )
        self.purged_blob_bytes = Gauge(
            "aktenhub_purged_blob_bytes", "Bytes purge runs deleted from the blob store, ever", registry=r
        )
        self.purge_last_run = Gauge(
            "aktenhub_purge_last_run_timestamp_seconds",
            "When the last purge run ended (0: never)",
            registry=r,
        )
        self.singleton_leader = Gauge(
            "aktenhub_singleton_leader",
            "1 while this process holds the lease of a singleton job (hub.leases), 0 while another does",
            ["job"],
            registry=r,
        )
        self.totals = RunningTotals()
        r.register(self.totals)
        self.operator_actions = OperatorActions()
        r.register(self.operator_actions)
        self.targets: tuple[str, ...] = ()  # every configured target: its pause series exists at 0

    def declare_steps(self, steps: Iterable[tuple[str, str]]) -> None:
        """Create the per-step series of these (step, target) pairs at 0."""
        for step, target in steps:
            label = target_label(target)
            self.step_seconds.labels(step, label)
            self.retries.labels(step, label)
            self.dead.labels(step, label)

    def circuit_changed(self, target: str, state: CircuitState, opened: bool) -> None:
        """A target's circuit is now `state` (`hub.gate`); `opened`: it has just opened."""
        self.circuit_state.labels(target).set(STATE_VALUES[state])
        opened_total = self.circuit_opened.labels(target)
        if opened:
            opened_total.inc()

    def step_took(self, step: str, target: str, seconds: float) -> None:
        """Record the duration of one attempt of a step."""
        self.step_seconds.labels(step, target_label(target)).observe(seconds)

    def step_failed(self, step: str, target: str, dead: bool) -> None:
        """Count a failed attempt: rescheduled, or the task is dead."""
        (self.dead if dead else self.retries).labels(step, target_label(target)).inc()

    def set_certificates(self, report: CertificateReport) -> None:
        """Time left of every certificate the hub relies on (`hub.certificates`)."""
        self.certificate_expiry.clear()
        for c in report.certificates:
            labels = (c.connector, c.purpose, c.subject, c.fingerprint[:16])
            self.certificate_expiry.labels(*labels).set(c.seconds_left)

    def render(self, stats: JournalStats, blob_syncs: int = 0) -> bytes:
        """The exposition text, with the journal's current counts."""
        for app_state in ApplicationState:
            self.applications.labels(app_state.value).set(stats.applications_by_state.get(app_state.value, 0))
        self.tasks.clear()
        dead = 0
        for (step, target, state), n in stats.tasks_by_step_target_state.items():
            self.tasks.labels(step, target_label(target), state).set(n)
            if state == "dead":
                dead += n
        self.dead_tasks.set(dead)
        self.totals.write_transactions = stats.write_transactions
        self.totals.write_operations = stats.write_operations
        self.totals.blob_syncs = blob_syncs
        self.operator_actions.counts = stats.operator_actions
        for target in {*self.targets, *stats.paused_targets}:
            self.target_paused.labels(target).set(1 if target in stats.paused_targets else 0)
        self.purged_applications.set(stats.purged_applications)
        self.purged_blobs.set(stats.purged_blobs)
        self.purged_blob_bytes.set(stats.purged_blob_bytes)
        self.purge_last_run.set(stats.last_purge_at or 0)
        self.alert_mails_unsent.set(stats.unsent_alerts)
        self.inbound_held.clear()
        for (source, held_state, reason), n in stats.held_by_source_state_reason.items():
            self.inbound_held.labels(source, held_state, reason).set(n)
        return bytes(generate_latest(self.registry))
