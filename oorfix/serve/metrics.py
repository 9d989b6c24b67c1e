"""The service's Prometheus metrics (prometheus_client, a registry of its own)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from oorfix.output.record import RunRecord
from oorfix.results import Outcome

# Outcomes that mean a fix was held back, and why (the status names the reason's kind).
DEFERRALS = frozenset({Outcome.DEFERRED, Outcome.LOCKED, Outcome.SKIPPED})
# Seconds from a job's first check to a verified fix: restarts to failovers and updates.
TTR_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    """Counters and gauges of runs, faults, alerts, notifications and schedules."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "oorfix_runs", "Runs finished", ["command", "mode", "exit_code"], registry=r
        )
        self.confirmed = Counter(
            "oorfix_faults_confirmed", "Faults confirmed on a host", ["fault"], registry=r
        )
        self.fixed = Counter(
            "oorfix_faults_fixed", "Faults fixed and verified", ["fault"], registry=r
        )
        self.mitigated = Counter(
            "oorfix_faults_mitigated", "Faults mitigated, escalated", ["fault"], registry=r
        )
        self.escalated = Counter(
            "oorfix_escalations", "Fixes that did not hold (escalated)", ["fault"], registry=r
        )
        self.ttr = Histogram(
            "oorfix_time_to_repair_seconds",
            "From a job's first check to its verified fix",
            ["fault"],
            buckets=TTR_BUCKETS,
            registry=r,
        )
        self.deferrals = Counter(
            "oorfix_deferrals", "Fixes held back, by reason", ["reason"], registry=r
        )
        self.alerts = Counter(
            "oorfix_alerts", "Alerts received, by route and result", ["route", "result"], registry=r
        )
        self.refused = Counter(
            "oorfix_webhook_refused", "Webhook requests refused", ["reason"], registry=r
        )
        self.notifications = Counter(
            "oorfix_notifications", "Notification deliveries", ["target", "result"], registry=r
        )
        self.job_errors = Counter(
            "oorfix_job_errors", "Jobs that could not run (bad input)", ["source"], registry=r
        )
        self.schedule_last_success = Gauge(
            "oorfix_schedule_last_success_timestamp_seconds",
            "When a schedule's run last ended with exit code 0",
            ["schedule"],
            registry=r,
        )
        self.schedule_next = Gauge(
            "oorfix_schedule_next_run_timestamp_seconds",
            "When a schedule starts next",
            ["schedule"],
            registry=r,
        )
        self.schedule_skipped = Counter(
            "oorfix_schedule_skipped", "Starts skipped: the previous run was still going",
            ["schedule"], registry=r,
        )  # fmt: skip
        self.pending = Gauge("oorfix_jobs_pending", "Jobs queued, not started", registry=r)
        self.running = Gauge("oorfix_jobs_running", "Jobs running", registry=r)

    def observe_run(self, record: RunRecord) -> None:
        """Count one finished run and its host results."""
        mode = str(record.mode)
        self.runs.labels(record.command or "run", mode, str(record.exit_code)).inc()
        for result in record.results:
            fault = result.fault or "unknown"
            status = result.status
            if status.fault_remains or status in (Outcome.FIXED, Outcome.MITIGATED, Outcome.FAILED):
                self.confirmed.labels(fault).inc()
            if status is Outcome.FIXED and result.explained_by is None:
                self.fixed.labels(fault).inc()
                if result.start is not None and result.end is not None:
                    self.ttr.labels(fault).observe((result.end - result.start).total_seconds())
            elif status is Outcome.MITIGATED:
                self.mitigated.labels(fault).inc()
            elif status is Outcome.FAILED:
                self.escalated.labels(fault).inc()
            elif status in DEFERRALS:
                self.deferrals.labels(str(status)).inc()

    def schedule(self, name: str, next_start: datetime | None, success: datetime | None) -> None:
        """A schedule's next start and last success, as Unix times."""
        if next_start is not None:
            self.schedule_next.labels(name).set(next_start.timestamp())
        if success is not None:
            self.schedule_last_success.labels(name).set(success.timestamp())

    def text(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)
