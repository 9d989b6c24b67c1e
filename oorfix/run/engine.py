"""The engine: the one that runs jobs across hosts, for every entry point.

Hosts run in a bounded thread pool, in rolling batches, behind the circuit breaker; each
host's jobs run one after the other on the host's one connection, whose plain detect checks
go first in one round trip (``batch``). A job's phases are ``flow``; one host's trouble
becomes that host's result, never the run's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from oorfix.errors import ConnectError, ConnectionLost, ControllerError
from oorfix.inventory.core import Inventory
from oorfix.results import (
    CommandResult,
    HostResult,
    Outcome,
    RunMode,
    RunResult,
    StepResult,
    StepStatus,
    new_run_id,
    utcnow,
)
from oorfix.run.auditing import AuditTrail
from oorfix.run.batch import InFlight, prefetch_detect
from oorfix.run.flow import Ending, JobFlow
from oorfix.run.jobs import Job
from oorfix.run.pool import ConnectionPool
from oorfix.run.rollout import Breaker, batches
from oorfix.run.steps import Aborted, RunScope, StepExecutor
from oorfix.safety.audit import CommandAudit
from oorfix.safety.gates import Gate

log = logging.getLogger(__name__)


class Observer(Protocol):
    """Told about progress, e.g. by the console."""

    def job_started(self, job: Job) -> None:
        """A job is about to start."""

    def step_finished(self, job: Job, step: StepResult) -> None:
        """A step of a job has a result."""

    def job_finished(self, result: HostResult) -> None:
        """A job has its outcome."""


class Silent:
    """An observer that is told everything and shows nothing."""

    def job_started(self, job: Job) -> None:
        """Nothing to show."""

    def step_finished(self, job: Job, step: StepResult) -> None:
        """Nothing to show."""

    def job_finished(self, result: HostResult) -> None:
        """Nothing to show."""


class RemoteHosts(Protocol):
    """Runs one host's jobs elsewhere (a worker, with this same engine) and returns their
    results, one per job in order; ``abort`` set means: no new step there either."""

    def run_host(self, jobs: Sequence[Job], abort: threading.Event) -> list[HostResult]:
        """The results of ``jobs``, all on one host."""
        ...

    def close(self) -> None:
        """The run is over."""
        ...


@dataclass(frozen=True)
class EngineOptions:
    """How a run proceeds."""

    forks: int = 10
    mode: RunMode = RunMode.FIX
    serial: int | float | None = None  # hosts per batch, or a fraction of them
    batch_detect: bool = True  # a host's plain detect checks in one round trip
    max_fail_percent: float | None = None
    sleep: Callable[[float], object] | None = None  # default: waits on the abort event


@dataclass(frozen=True)
class EngineParts:
    """What an engine works with. The gate and the audit are required: a run that changes
    nothing says so with ``OpenGate()`` and ``NoAudit()``, so no entry point forgets them."""

    inventory: Inventory
    pool: ConnectionPool
    gate: Gate
    audit: CommandAudit
    observer: Observer = field(default_factory=Silent)
    # Set: hosts run on workers; batches, the breaker, the observer and the results stay here.
    remote: RemoteHosts | None = None


class Engine:
    """Runs jobs across hosts with bounded parallelism; the one engine every entry point uses."""

    def __init__(self, parts: EngineParts, options: EngineOptions | None = None):
        self.parts = parts
        self.options = options or EngineOptions()
        self._abort = threading.Event()
        self._in_flight = InFlight()
        self._breaker = Breaker(None, 0)
        self._scope: RunScope | None = None

    @property
    def pool(self) -> ConnectionPool:
        """The run's connections."""
        return self.parts.pool

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
        run_id = run_id or new_run_id()
        started = utcnow()
        by_host = _group_by_host(jobs)
        self._breaker = Breaker(self.options.max_fail_percent, len(by_host))
        trail = AuditTrail(self.parts.audit, run_id)
        self._scope = RunScope(self.pool, self.parts.inventory, self.options.mode, trail, self)
        results: dict[int, HostResult] = {}
        try:
            for batch in batches(list(by_host), self.options.serial):
                self._run_batch([by_host[h] for h in batch], results)
        finally:
            self.pool.close()
            if self.parts.remote is not None:
                self.parts.remote.close()
        return RunResult(
            run_id=run_id,
            started=started,
            ended=utcnow(),
            mode=self.options.mode,
            results=tuple(results[i] for i in range(len(jobs)) if i in results),
            aborted=self._abort.is_set(),
        )

    def _run_batch(
        self, groups: list[list[tuple[int, Job]]], results: dict[int, HostResult]
    ) -> None:
        workers = max(1, min(self.options.forks, len(groups)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oorfix-host") as pool:
            for done in pool.map(self._run_host, groups):
                results.update(done)

    def _run_host(self, jobs: list[tuple[int, Job]]) -> dict[int, HostResult]:
        if self.parts.remote is not None:
            return self._run_remote(self.parts.remote, jobs)
        try:
            return self._run_host_jobs(jobs)
        finally:
            # Connections are bounded by --forks, not by the size of the fleet.
            self.pool.release(jobs[0][1].host)

    def _run_host_jobs(self, jobs: list[tuple[int, Job]]) -> dict[int, HostResult]:
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
                if _changed_host(done[index]):
                    # Checks taken before this fix are stale: take them again for the rest.
                    later = [j for _, j in jobs[position + 1 :]]
                    prefetched[position + 1 :] = self._prefetch(later)
        return done

    def _run_remote(
        self, remote: RemoteHosts, jobs: list[tuple[int, Job]]
    ) -> dict[int, HostResult]:
        stop = "the run was interrupted" if self._abort.is_set() else self._breaker.tripped()
        if stop is not None:
            return {index: _skipped(job, f"not started: {stop}") for index, job in jobs}
        for _, job in jobs:
            self.parts.observer.job_started(job)
        results = remote.run_host([job for _, job in jobs], self._abort)
        done: dict[int, HostResult] = {}
        for (index, _), result in zip(jobs, results, strict=True):
            self._breaker.record(result)
            self.parts.observer.job_finished(result)
            done[index] = result
        return done

    def _prefetch(self, jobs: list[Job]) -> list[dict[int, CommandResult]]:
        if not self.options.batch_detect or self._abort.is_set() or self._breaker.tripped():
            return [{} for _ in jobs]
        return prefetch_detect(self.pool, self.parts.inventory, jobs, self._in_flight)

    def _run_job(self, job: Job, given: dict[int, CommandResult]) -> HostResult:
        assert self._scope is not None
        self.parts.observer.job_started(job)
        started = utcnow()
        steps = StepExecutor(job, self._scope, dict(given))
        flow = JobFlow(
            job, steps, self.options.mode, self.parts.gate, self._wait, self._breaker.tripped
        )
        ending = self._end_of(flow)
        self.parts.gate.done(job)
        result = HostResult(
            host=job.host.name,
            runbook=job.runbook_name,
            fault=job.runbook.fault,
            status=ending.outcome,
            steps=tuple(steps.steps),
            error=ending.reason,
            escalation=flow.escalation,
            notes=(*self._new_key_note(job), *flow.notes),
            # Checks taken in a batch ran before the job started, timed by the host's clock
            # (to 10 ms); the result spans them too.
            started=min([started, *(s.started for s in steps.steps)]),
            ended=max([utcnow(), *(s.ended for s in steps.steps)]),
        )
        self._breaker.record(result)  # before anyone hears of it, so what they do next sees it
        self.parts.observer.job_finished(result)
        return result

    def _new_key_note(self, job: Job) -> list[str]:
        """A note, in the host's first result, of a host key trusted by accept-new."""
        fingerprint = self.pool.take_new_host_key(job.host.name)
        if fingerprint is None:
            return []
        return [f"trusted a new host key {fingerprint} (--accept-new-host-keys)"]

    def _end_of(self, flow: JobFlow) -> Ending:
        """Run a job's flow; per-host trouble becomes its ending, never the run's."""
        job = flow.job
        try:
            self.pool.get(job.host)
            return flow.flow()
        except ConnectError as exc:
            return Ending(Outcome.UNREACHABLE, exc.message)
        except ControllerError as exc:  # this machine's shortage: the host is not to blame
            return Ending(Outcome.ERROR, str(exc))
        except ConnectionLost as exc:
            flow.escalate_after_loss()
            return Ending(Outcome.ERROR, exc.message)
        except Aborted as stop:
            ran = flow.steps.steps
            phase = ran[-1].phase if ran else "start"
            why = f"{stop.reason} after {phase}; no further step was run"
            return Ending(Outcome.ERROR if ran else Outcome.SKIPPED, why)
        except Exception as exc:  # a bug: keep the traceback in the log, the run goes on
            log.exception("internal error on %s", job.host.name)
            return Ending(Outcome.ERROR, f"internal error: {type(exc).__name__}: {exc}")

    def step_finished(self, job: Job, step: StepResult) -> None:
        """A step of a job has a result: tell the observer."""
        self.parts.observer.step_finished(job, step)

    def stop_reason(self, job: Job) -> str | None:
        """Why the job may start no further step, if it may not."""
        if self._abort.is_set():
            return "interrupted by the operator"
        return self.parts.gate.step(job)


def _changed_host(result: HostResult) -> bool:
    """Whether a job sent any command that may have changed a host."""
    return any(s.phase.mutating and s.status is not StepStatus.PLANNED for s in result.steps)


def _skipped(job: Job, reason: str) -> HostResult:
    rb = job.runbook
    return HostResult(job.host.name, rb.name, rb.fault, Outcome.SKIPPED, error=reason)


def _group_by_host(jobs: Sequence[Job]) -> dict[str, list[tuple[int, Job]]]:
    groups: dict[str, list[tuple[int, Job]]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.host.name, []).append((index, job))
    return groups
