"""The service: schedules and alerts become jobs; each job is one ``Execution``.

Jobs run in threads of their own, at most ``defaults.max_parallel_runs`` at once (host locks
keep two fixes off one host, as between two CLI runs). A job is written to the queue before
anything runs and leaves it only when its run ended (not cut short): a job that a stop or a
crash interrupts starts again after the restart, and like every run it checks before it
fixes, so it never repeats a fix blindly. A schedule never overlaps itself: a start while its
previous job is queued or running is skipped and counted.

Nothing here depends on wall-clock time except through ``clock``: tests drive ``tick`` and
``receive`` with a fake clock and wait on ``idle``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from oorfix.app.execute import Execution, Finished, Hooks
from oorfix.app.loading import load_and_plan
from oorfix.app.state import open_state
from oorfix.app.wiring import REAL, Seams, keep_history
from oorfix.catalog import Catalog
from oorfix.errors import InputError, StateUnavailable
from oorfix.inventory.core import Inventory, load_inventory
from oorfix.output.record import RunRecord
from oorfix.results import ExitCode, Outcome, utcnow
from oorfix.runbook.catalogfile import site_catalog
from oorfix.runbook.loader import load_runbooks
from oorfix.safety.state import StateDir, default_state_dir
from oorfix.serve.alerts import AMPayload, Decision, decide
from oorfix.serve.config import Schedule, ServeConfig
from oorfix.serve.jobs import QueuedJob, describe, new_job_id, run_spec
from oorfix.serve.metrics import Metrics
from oorfix.serve.model import AlertEntry, DashboardData, ScheduleStatus
from oorfix.serve.notify import Delivery, Notifier, dedup_key, notices_of
from oorfix.serve.scheduler import Scheduler, Start
from oorfix.serve.state import ServiceState

log = logging.getLogger("oorfix.serve")
MAX_ATTEMPTS = 3  # starts of one job before it is given up (a crash loop must end)
MAX_QUEUED = 1000  # jobs queued or running; an alert flood past it is refused and recorded
NOTIFY_STOP_SECONDS = 20.0  # how long a stop waits for notifications still being delivered


@dataclass(frozen=True)
class Parts:
    """What a harness may replace: how hosts are reached, the clock, the notifier."""

    seams: Seams = REAL
    clock: Callable[[], datetime] = utcnow
    notifier: Notifier | None = None


def check_inputs(config: ServeConfig) -> None:
    """The runbook directory, every runbook a job names and the inventory load now: a typo
    stops the start with exit 2, not a job at 03:00."""
    jobs = [s.job for s in config.schedules] + [r.job for r in config.routes]
    names = sorted({name for job in jobs for name in job.runbooks or ()})
    runbooks = config.defaults.runbooks
    load_runbooks([str(runbooks), *names], runbooks)
    load_inventory(config.defaults.inventory)


class Service:
    """Schedules, alerts and the jobs they start (see the module's docstring)."""

    def __init__(self, config: ServeConfig, parts: Parts | None = None) -> None:
        parts = parts or Parts()
        self.config = config
        self.defaults = config.defaults
        self.seams = parts.seams
        self.clock = parts.clock
        self.state_dir = StateDir(self.defaults.state_dir or default_state_dir())
        self.state = ServiceState(self.state_dir)
        # Runs may live in the team's Redis; the service's own queue stays in its directory.
        self.history = open_state(self.defaults.state, self.state_dir.path).history()
        self.state.ensure()
        self.metrics = Metrics()
        self.catalog: Catalog = site_catalog([self.defaults.runbooks])
        check_inputs(config)
        self.notifier = parts.notifier or Notifier.from_config(
            config.notify, record=self._delivered
        )
        self.scheduler = Scheduler(config.schedules, self.state)
        self._queue: queue.Queue[QueuedJob | None] = queue.Queue()
        self._workers = [
            threading.Thread(target=self._work, name=f"oorfix-job-{n}", daemon=True)
            for n in range(self.defaults.max_parallel_runs)
        ]
        self._lock = threading.Lock()
        self._jobs: dict[str, QueuedJob] = {}  # queued or running
        self._running: dict[str, Execution | None] = {}
        self._idle = threading.Condition(self._lock)
        self._stopping = threading.Event()
        # Deliveries of one alert can arrive at once (HA Alertmanager peers, a retry racing
        # the first request): the cooldown's check and its mark must be one step.
        self._receiving = threading.Lock()
        self.tick_error: str | None = None  # why starting the due schedules last failed

    # --- life -------------------------------------------------------------------------

    def start(self) -> None:
        """Resume the jobs a previous service left queued; run the missed starts policy."""
        for worker in self._workers:
            worker.start()
        now = self.clock()
        for job in self.state.pending():
            log.info("resuming %s (%s %s)", job.id, job.source, job.name)
            self._launch(job)
        for start in self.scheduler.boot(now):
            self._start_schedule(start)
        self._update_schedule_metrics()

    def stop(self, timeout: float | None = None) -> None:
        """No new job or step starts; running steps finish; records are kept; jobs not
        finished stay queued for the next start. Then notifications are delivered."""
        self._stopping.set()
        with self._lock:
            executions = [e for e in self._running.values() if e is not None]
        for execution in executions:
            execution.abort()
        for _ in self._workers:
            self._queue.put(None)  # after the jobs queued: each is left on disk, not run
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout)
        # Bounded: a target that never answers must not hold the stop past systemd's limit.
        self.notifier.close(timeout if timeout is not None else NOTIFY_STOP_SECONDS)

    @property
    def stopping(self) -> bool:
        """Whether the service is stopping."""
        return self._stopping.is_set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is queued or running; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._jobs, timeout)

    # --- schedules ----------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> list[str]:
        """Start the schedules due at ``now``; the ids of the jobs queued."""
        if self.stopping:
            return []
        started = []
        for start in self.scheduler.due(now or self.clock()):
            job_id = self._start_schedule(start)
            if job_id:
                started.append(job_id)
        self._update_schedule_metrics()
        return started

    def _start_schedule(self, start: Start) -> str | None:
        schedule = start.schedule
        with self._lock:
            busy = any(
                j.source == "schedule" and j.name == schedule.name for j in self._jobs.values()
            )
        if busy:
            log.warning(
                "schedule %s: start at %s skipped, its previous run is still going",
                schedule.name,
                start.due.isoformat(),
            )
            self.state.count(schedule.name, "skipped")
            self.metrics.schedule_skipped.labels(schedule.name).inc()
            return None
        now = self.clock()
        trigger = {"due": start.due.isoformat()}
        if start.late:
            trigger["late"] = "missed while the service was down"
        job = QueuedJob(
            id=new_job_id(now),
            source="schedule",
            name=schedule.name,
            job=schedule.job,
            queued=now,
            trigger=trigger,
            notify=tuple(schedule.notify) if schedule.notify is not None else None,
        )
        self.state.mark(schedule.name, last_start=now, last_job=job.id)
        self.submit(job)
        return job.id

    # --- alerts -------------------------------------------------------------------------

    def receive(self, payload: AMPayload) -> list[AlertEntry]:
        """Route a webhook notification's alerts; queue the jobs; record every alert."""
        inventory = self._inventory()
        with self._receiving:
            return self._receive(payload, inventory)

    def _receive(self, payload: AMPayload, inventory: Inventory | None) -> list[AlertEntry]:
        now = self.clock()
        entries = []
        for alert in payload.alerts:
            if inventory is None:
                decision = Decision(
                    AlertEntry(
                        now,
                        alert.fingerprint,
                        alert.alertname,
                        alert.status,
                        "unknown_host",
                        detail="the inventory cannot be read",
                    )
                )
            else:
                decision = decide(
                    alert, self.config.routes, inventory, self.state.acted, now, payload.groupKey
                )
            entry = decision.entry
            if decision.job is not None:
                if self.stopping or self.full():
                    why = "the service is stopping" if self.stopping else "the job queue is full"
                    entry = replace(entry, action="refused", detail=why, job_id=None)
                else:
                    # Saved first: should the save fail, Alertmanager's retry is not taken
                    # for a duplicate within the cooldown.
                    self.submit(decision.job)
                    keep = max((r.cooldown for r in self.config.routes), default=0.0)
                    self.state.mark_acted(alert.fingerprint, decision.job.name, now, keep)
            self.state.record_alert(entry)
            self.metrics.alerts.labels(entry.route or "", entry.action).inc()
            entries.append(entry)
        return entries

    def _inventory(self) -> Inventory | None:
        try:
            return load_inventory(self.defaults.inventory)
        except InputError as exc:
            log.error("the inventory cannot be read: %s", exc.location_message())
            return None

    # --- jobs ---------------------------------------------------------------------------

    def submit(self, job: QueuedJob) -> None:
        """Queue a job (kept on disk first) and start it when a slot is free."""
        self.state.enqueue(job)
        self._launch(job)

    def full(self) -> bool:
        """Whether the queue holds as many jobs as it may (new alerts are then refused)."""
        with self._lock:
            return len(self._jobs) >= MAX_QUEUED

    def _launch(self, job: QueuedJob) -> None:
        with self._lock:
            if job.id in self._jobs:
                return  # already queued or running (start() met it in the queue folder)
            self._jobs[job.id] = job
            self._gauges()
        self._queue.put(job)

    def _gauges(self) -> None:
        self.metrics.pending.set(len(self._jobs) - len(self._running))
        self.metrics.running.set(len(self._running))

    def _work(self) -> None:
        """One worker: jobs one after the other until the stop's marker comes."""
        while (job := self._queue.get()) is not None:
            try:
                if not self.stopping:  # else it stays queued on disk for the next start
                    self._run_job(job)
            except Exception:  # a job's bug must not take the service down with it
                log.exception("job %s failed unexpectedly; it stays queued", job.id)
            finally:
                with self._lock:
                    self._jobs.pop(job.id, None)
                    self._running.pop(job.id, None)
                    self._gauges()
                    self._idle.notify_all()

    def _run_job(self, job: QueuedJob) -> None:
        job = replace(job, attempts=job.attempts + 1)
        if job.attempts > MAX_ATTEMPTS:
            self._given_up(job, f"started {MAX_ATTEMPTS} times without finishing")
            return
        self.state.enqueue(job)  # the attempt counts even if the process dies now
        with self._lock:
            self._running[job.id] = None
            self._gauges()
        spec = run_spec(self.defaults, job, self.catalog)
        try:
            loaded = load_and_plan(spec.settings)
        except InputError as exc:
            self._given_up(job, exc.location_message())
            return
        execution = Execution(spec, loaded, Hooks(), self.seams)
        with self._lock:
            self._running[job.id] = execution
            if self.stopping:
                execution.abort()
        self.state.record_job(
            {
                "event": "start",
                "job": job.id,
                "run_id": execution.run_id,
                "time": self.clock().isoformat(),
            }
        )
        done = execution.execute()
        try:
            keep_history(spec.settings, done.record, execution.planned)
        except (OSError, StateUnavailable) as exc:
            log.error("run %s was not kept: %s", execution.run_id, exc)
        self._finished(job, done)

    def _finished(self, job: QueuedJob, done: Finished) -> None:
        record = done.record
        self.state.record_job(
            {
                "event": "end",
                "job": job.id,
                "run_id": record.run_id,
                "exit_code": int(done.exit_code),
                "aborted": record.aborted,
                "time": self.clock().isoformat(),
            }
        )
        self.metrics.observe_run(record)
        if job.source == "schedule":
            marks: dict[str, object] = {
                "last_run_id": record.run_id,
                "last_exit": int(done.exit_code),
            }
            if done.exit_code is ExitCode.OK:
                marks["last_success"] = record.end
            self.state.mark(job.name, **marks)
        now = self.clock()
        healthy = {
            dedup_key(r.host, r.fault) for r in record.results if r.status is Outcome.HEALTHY
        }
        if healthy:
            self.state.forget_notices(healthy)
        # Per set of targets: a read-only schedule that tells only the on-call must not hold
        # back a route's "fix did not hold" to the pager.
        targets = ",".join(job.notify) if job.notify is not None else "*"
        for notice in notices_of(record, self.config.public_url):
            key = f"{notice.dedup_key} -> {targets}"
            if self.state.first_notice(key, notice.event, now, self.defaults.renotify):
                self.notifier.send(notice, job.notify)
        if record.aborted and self.stopping:
            return  # cut short by the stop: stays queued, checked again before any fix
        self.state.done(job.id)

    def _given_up(self, job: QueuedJob, why: str) -> None:
        log.error("job %s (%s %s) cannot run: %s", job.id, job.source, job.name, why)
        self.metrics.job_errors.labels(job.source).inc()
        self.state.record_job(
            {"event": "error", "job": job.id, "error": why, "time": self.clock().isoformat()}
        )
        if job.source == "schedule":
            self.state.mark(job.name, last_error=why)
        self.state.done(job.id)

    def _delivered(self, delivery: Delivery) -> None:
        self.state.record_delivery(delivery.to_json())
        self.metrics.notifications.labels(delivery.target, delivery.result).inc()

    # --- what the API and dashboard read --------------------------------------------------

    def schedules(self) -> list[ScheduleStatus]:
        """Every schedule with its next start and last run."""
        marks = self.state.marks()
        with self._lock:
            busy = {j.name for j in self._jobs.values() if j.source == "schedule"}
        return [
            self._status(s, marks.get(s.name, {}), s.name in busy) for s in self.config.schedules
        ]

    def _status(self, schedule: Schedule, mark: dict[str, object], running: bool) -> ScheduleStatus:
        def when(key: str) -> datetime | None:
            value = mark.get(key)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        def number(key: str) -> int | None:
            value = mark.get(key)
            return value if isinstance(value, int) else None

        run_id = mark.get("last_run_id")
        return ScheduleStatus(
            name=schedule.name,
            cron=schedule.cron,
            timezone=schedule.timezone,
            what=describe(schedule.job),
            mode=schedule.job.mode,
            next_start=self.scheduler.next_due.get(schedule.name) or when("next_due"),
            last_start=when("last_start"),
            last_run_id=run_id if isinstance(run_id, str) else None,
            last_exit=number("last_exit"),
            last_success=when("last_success"),
            running=running,
            skipped=number("skipped") or 0,
            missed=number("missed") or 0,
        )

    def _update_schedule_metrics(self) -> None:
        for status in self.schedules():
            self.metrics.schedule(status.name, status.next_start, status.last_success)

    def last_diagnosis(self, search: int = 200) -> RunRecord | None:
        """The newest diagnose run's record among the last ``search`` runs, if any."""
        for summary in self.history.runs()[:search]:
            if summary.command != "diagnose":
                continue
            try:
                record = self.history.load(summary.id)
            except InputError:
                continue
            if record.command == "diagnose":
                return record
        return None

    def dashboard(self, runs: int = 30, alerts: int = 30) -> DashboardData:
        """What the dashboard shows now."""
        with self._lock:
            running = tuple(self._running)
            pending = len(self._jobs) - len(running)
        return DashboardData(
            now=self.clock(),
            diagnosis=self.last_diagnosis(),
            runs=self.history.runs()[:runs],
            schedules=self.schedules(),
            alerts=self.state.recent_alerts(alerts),
            pending=pending,
            running=running,
        )

    def jobs(self) -> Sequence[QueuedJob]:
        """The jobs queued or running now."""
        with self._lock:
            return list(self._jobs.values())
