"""The engine: the only place phases are sequenced, hosts run in parallel.

Per job: detect -> healthy, or evidence -> remediate -> verify -> fixed, or rollback ->
escalate -> failed. Unreachable and error end a job early; would_fix ends a dry-run.
Each host's jobs run one after the other on the host's one connection; hosts run in a
bounded thread pool, and one host's trouble becomes that host's result, never the run's.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from oorfix.errors import ConnectError, ConnectionLost, InputError
from oorfix.inventory.core import Inventory
from oorfix.results import (
    CommandResult,
    HostResult,
    Outcome,
    Phase,
    RunResult,
    StepResult,
    StepStatus,
    new_run_id,
    utcnow,
)
from oorfix.run.batch import InFlight, prefetch_detect
from oorfix.run.planner import Job
from oorfix.run.pool import ConnectionPool
from oorfix.run.rollout import Breaker, batches
from oorfix.run.steps import Aborted, AuditTrail, StepExecutor
from oorfix.runbook import templating
from oorfix.runbook.models import Runbook, Step
from oorfix.safety.audit import AuditLog
from oorfix.safety.gates import Gate

log = logging.getLogger(__name__)


class Verdict(enum.Enum):
    """What a list of checks says about a fault."""

    CLEAR = "clear"  # every check met its expectation
    FAULT = "fault"  # at least one check failed
    ERROR = "error"  # no check failed, but at least one could not be judged


class Observer(Protocol):
    """Told about progress, e.g. by the console."""

    def job_started(self, job: Job) -> None:
        """A job is about to start."""

    def step_finished(self, job: Job, step: StepResult) -> None:
        """A step of a job has a result."""

    def job_finished(self, result: HostResult) -> None:
        """A job has its outcome."""


class _Silent:
    def job_started(self, job: Job) -> None:
        pass

    def step_finished(self, job: Job, step: StepResult) -> None:
        pass

    def job_finished(self, result: HostResult) -> None:
        pass


@dataclass(frozen=True)
class EngineOptions:
    """How a run proceeds."""

    forks: int = 10
    dry_run: bool = False
    serial: int | float | None = None  # hosts per batch, or a fraction of them
    batch_detect: bool = True  # a host's plain detect checks in one round trip
    detect_only: bool = False  # diagnose: detect and evidence, never a fix
    max_fail_percent: float | None = None
    sleep: Callable[[float], object] | None = None  # default: waits on the abort event


@dataclass
class _JobRun:
    """One job's way through the phases."""

    job: Job
    steps: StepExecutor
    options: EngineOptions
    wait: Callable[[float], bool]
    gate: Gate | None = None
    breaker: Callable[[], str | None] = lambda: None
    error: str | None = None
    escalation: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def runbook(self) -> Runbook:
        """The runbook being run."""
        return self.job.loaded.runbook

    def checks(self, phase: Phase, steps: Sequence[Step], attempt: int = 1) -> Verdict:
        """Run every check; any failure confirms the fault."""
        results = [self.steps.execute(phase, s, attempt) for s in steps]
        for status, verdict in (
            (StepStatus.FAILED, Verdict.FAULT),
            (StepStatus.ERROR, Verdict.ERROR),
        ):
            first = next((r for r in results if r.status is status), None)
            if first is not None:
                self.error = f"{first.name}: {first.reason}"
                return verdict
        return Verdict.CLEAR

    def flow(self) -> Outcome:
        """Detect, and when a fault is confirmed, the rest of the phases."""
        verdict = self.checks(Phase.DETECT, self.runbook.detect)
        if verdict is not Verdict.FAULT:
            return Outcome.HEALTHY if verdict is Verdict.CLEAR else Outcome.ERROR
        confirmed, self.error = f"fault confirmed: {self.error}", None
        for step in self.runbook.evidence:
            self.steps.execute(Phase.EVIDENCE, step)
        if self.options.detect_only or self.options.dry_run:
            for step in self.runbook.remediate if self.options.dry_run else []:
                self.steps.execute(Phase.REMEDIATE, step)
            self.error = confirmed  # what a report of a found-but-unfixed fault shows
            return Outcome.WOULD_FIX
        return self.repair()

    def repair(self) -> Outcome:
        """Remediate and verify; roll back and escalate when the fix does not hold."""
        tripped = self.breaker()
        if tripped is not None:  # hosts already running when it tripped fix nothing either
            self.error = f"fix not started: {tripped}"
            return Outcome.DEFERRED
        refusal = self.gate.admit(self.job) if self.gate is not None else None
        if refusal is not None:
            self.error = refusal.reason
            if refusal.escalate:
                self.escalate()
            return refusal.outcome
        if not self.runbook.remediate:
            self.error = "fault confirmed; the runbook has no remediation"
        elif self.remediate() and self.verify():
            if self.runbook.escalate is not None and self.runbook.escalate.always:
                self.escalate()
            return Outcome.FIXED
        else:
            self.rollback()
        self.escalate()
        return Outcome.FAILED

    def remediate(self) -> bool:
        """Run the fix; False when a step failed. A step whose effect is unknown goes on
        to verification, which decides."""
        for step in self.runbook.remediate:
            result = self.steps.execute(Phase.REMEDIATE, step)
            if result.status is StepStatus.FAILED:
                self.error = f"remediation step {result.name!r} failed: {result.reason}"
                return False
            if result.status is StepStatus.ERROR:
                self.notes.append(f"{result.name}: {result.reason}; verifying its effect")
                return True
        return True

    def verify(self) -> bool:
        """Run the verify checks until they pass or the retries run out."""
        spec = self.runbook.verify
        checks = spec.checks if spec.checks is not None else self.runbook.detect
        attempts = spec.retries + 1
        for attempt in range(1, attempts + 1):
            if self.checks(Phase.VERIFY, checks, attempt) is Verdict.CLEAR:
                self.error = None
                return True
            if attempt < attempts and not self.wait(spec.delay):
                raise Aborted
        self.error = f"still faulty after {attempts} verification attempt(s): {self.error}"
        return False

    def rollback(self) -> None:
        """Undo the fix: every rollback step runs, even after one fails."""
        for step in self.runbook.rollback:
            self.steps.execute(Phase.ROLLBACK, step)

    def escalate_after_loss(self) -> None:
        """Escalate when the connection dropped: the message always, steps if they can run."""
        # The message is recorded first; a step that could not run is in the record too.
        with contextlib.suppress(ConnectError, ConnectionLost, Aborted):
            self.escalate()

    def escalate(self) -> None:
        """Record the escalation message and run the escalation steps."""
        spec = self.runbook.escalate
        message = spec.message if spec else f"{self.runbook.fault} remains on {{{{ host.name }}}}"
        try:
            self.escalation = self.job.redactor(
                templating.render_text(message, self.steps.context())
            )
        except InputError as exc:
            self.escalation = f"{message} (could not render: {exc.message})"
        for step in spec.steps if spec else []:
            self.steps.execute(Phase.ESCALATE, step)


class Engine:
    """Runs jobs across hosts with bounded parallelism; the one engine every entry point uses."""

    def __init__(
        self,
        inventory: Inventory,
        pool: ConnectionPool,
        options: EngineOptions | None = None,
        observer: Observer | None = None,
        gate: Gate | None = None,
        audit: AuditLog | None = None,
    ):
        self.inventory = inventory
        self.pool = pool
        self.options = options or EngineOptions()
        self.observer: Observer = observer or _Silent()
        self.gate = gate
        self.audit = audit
        self._run_id = ""
        self._abort = threading.Event()
        self._in_flight = InFlight()
        self._breaker = Breaker(None, 0)

    def abort(self) -> None:
        """Start no new job or step; running steps finish or time out."""
        self._abort.set()
        # Batched checks are stopped before their next check, from a thread of their own
        # (this may run in a signal handler).
        threading.Thread(target=self._in_flight.stop_all, daemon=True).start()

    def _wait(self, seconds: float) -> bool:
        if self.options.sleep is not None:
            self.options.sleep(seconds)
            return not self._abort.is_set()
        return not self._abort.wait(seconds)

    def run(self, jobs: Sequence[Job], run_id: str | None = None) -> RunResult:
        """Run every job; the result lists one HostResult per job, in job order."""
        record = RunResult(self._new_run(run_id), utcnow(), utcnow(), self.options.dry_run)
        by_host = _group_by_host(jobs)
        self._breaker = Breaker(self.options.max_fail_percent, len(by_host))
        results: dict[int, HostResult] = {}
        try:
            for batch in batches(list(by_host), self.options.serial):
                self._run_batch([by_host[h] for h in batch], results)
        finally:
            self.pool.close()
        record.results = [results[i] for i in range(len(jobs)) if i in results]
        record.aborted = self._abort.is_set()
        record.ended = utcnow()
        return record

    def _run_batch(
        self, groups: list[list[tuple[int, Job]]], results: dict[int, HostResult]
    ) -> None:
        workers = max(1, min(self.options.forks, len(groups)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oorfix-host") as pool:
            for done in pool.map(self._run_host, groups):
                results.update(done)

    def _run_host(self, jobs: list[tuple[int, Job]]) -> dict[int, HostResult]:
        done: dict[int, HostResult] = {}
        prefetched = self._prefetch([job for _, job in jobs])
        for position, (index, job) in enumerate(jobs):
            stop = self._breaker.tripped()
            if self._abort.is_set() and not prefetched[position]:
                done[index] = _skipped(job, "not started: the run was interrupted")
            elif stop is not None:
                done[index] = _skipped(job, f"not started: {stop}")
            else:
                done[index] = self._run_job(job, prefetched[position])
                self._breaker.record(done[index])
                if _changed_host(done[index]):
                    # Checks taken before this fix are stale: take them again for the rest.
                    later = [j for _, j in jobs[position + 1 :]]
                    prefetched[position + 1 :] = self._prefetch(later)
        return done

    def _new_run(self, run_id: str | None) -> str:
        self._run_id = run_id or new_run_id()
        return self._run_id

    def _prefetch(self, jobs: list[Job]) -> list[dict[int, CommandResult]]:
        if not self.options.batch_detect or self._abort.is_set() or self._breaker.tripped():
            return [{} for _ in jobs]
        return prefetch_detect(self.pool, jobs, self._in_flight)

    def _run_job(self, job: Job, given: dict[int, CommandResult] | None = None) -> HostResult:
        self.observer.job_started(job)
        rb = job.loaded.runbook
        result = HostResult(job.host.name, rb.name, rb.fault, Outcome.ERROR)
        steps = StepExecutor(
            job,
            self.pool,
            self.inventory,
            self.options.dry_run,
            lambda s: self._step_finished(job, s),
            lambda: self._stop_reason(job),
            dict(given or {}),
            AuditTrail(self.audit, self._run_id) if self.audit is not None else None,
        )
        run = _JobRun(job, steps, self.options, self._wait, self.gate, self._breaker.tripped)
        try:
            self.pool.get(job.host)
            result.status = run.flow()
        except ConnectError as exc:
            result.status, run.error = Outcome.UNREACHABLE, exc.message
        except ConnectionLost as exc:
            result.status, run.error = Outcome.ERROR, exc.message
            run.escalate_after_loss()
        except Aborted as stop:
            ran = bool(steps.steps)
            result.status = Outcome.ERROR if ran else Outcome.SKIPPED
            phase = steps.steps[-1].phase if ran else "start"
            run.error = f"{stop.reason} after {phase}; no further step was run"
        except Exception as exc:  # a bug: keep the traceback in the log, the run goes on
            log.exception("internal error on %s", job.host.name)
            result.status, run.error = Outcome.ERROR, f"internal error: {type(exc).__name__}: {exc}"
        if self.gate is not None:
            self.gate.done(job)
        result.steps, result.error, result.escalation = steps.steps, run.error, run.escalation
        result.notes = run.notes
        # Checks taken in a batch ran before the job started; the result spans them too.
        result.started = min([result.started, *(s.started for s in result.steps)])
        result.ended = utcnow()
        self.observer.job_finished(result)
        return result

    def _step_finished(self, job: Job, step: StepResult) -> None:
        self.observer.step_finished(job, step)

    def _stop_reason(self, job: Job) -> str | None:
        """Why the job may start no further step, if it may not."""
        if self._abort.is_set():
            return "interrupted by the operator"
        return self.gate.step(job) if self.gate is not None else None


def _changed_host(result: HostResult) -> bool:
    """Whether a job sent any command that may have changed a host."""
    return any(s.phase.mutating and s.status is not StepStatus.PLANNED for s in result.steps)


def _skipped(job: Job, reason: str) -> HostResult:
    rb = job.loaded.runbook
    return HostResult(job.host.name, rb.name, rb.fault, Outcome.SKIPPED, error=reason)


def _group_by_host(jobs: Sequence[Job]) -> dict[str, list[tuple[int, Job]]]:
    groups: dict[str, list[tuple[int, Job]]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.host.name, []).append((index, job))
    return groups
