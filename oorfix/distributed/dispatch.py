"""The controller's side of a run on workers: one task per host, its result back as it ends.

``CeleryHosts`` is the engine's ``RemoteHosts``: the engine still decides which hosts start
and when (``--forks`` tasks in flight, rolling batches, the breaker) and tells the console;
each host's jobs go out as one signed task and come back as the same HostResults a local run
makes. A task whose worker stops refreshing its liveness key is ``error: worker lost`` (its
effect unknown, never retried by itself); a task that never started when the run is
interrupted is revoked and ``skipped``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from oorfix.app.settings import RunSettings
from oorfix.app.wiring import RunRequest, plan_data
from oorfix.distributed.celeryapp import LOST_AFTER, TASK, alive_key, heartbeat, make_app, stop_key
from oorfix.distributed.payload import HostTask, digest, file_digest, settings_data, worker_key
from oorfix.distributed.worker import known_hosts_path
from oorfix.errors import InputError
from oorfix.output.record import HostRecord
from oorfix.results import HostResult, Outcome, RunMode
from oorfix.run.jobs import Job
from oorfix.run.planner import PlannedJob

log = logging.getLogger(__name__)
POLL = 0.5  # seconds between checks of a task's liveness while waiting for its result
STOP_KEEP = 24 * 3600  # seconds the stop mark of an interrupted run is kept
UNKNOWN = "what it changed is unknown (see the audit log); not retried"


class CeleryHosts:
    """Runs each host's jobs of one run on the workers behind ``url``."""

    def __init__(  # noqa: PLR0913 - what a task carries, each from the run's request
        self,
        url: str,
        settings: RunSettings,
        planned: Sequence[PlannedJob],
        mode: RunMode,
        run_id: str,
        approved: frozenset[str],
    ) -> None:
        if settings.accept_new_host_keys:
            raise InputError(
                "--accept-new-host-keys cannot be used with --workers: a key a "
                "worker trusted would not be known to the others"
            )
        if mode.changes_hosts and not (settings.state and "://" in settings.state):
            raise InputError(
                "a fix on workers needs --state redis://…: locks, budgets and "
                "the audit must be shared by every worker"
            )
        self.key = worker_key()
        self.app = make_app(url)
        self.redis = self.app.backend.client  # the broker's Redis, for liveness and stop
        self.settings = settings
        self.mode = mode
        self.run_id = run_id
        self.approved = sorted(approved)
        self.known_hosts = file_digest(known_hosts_path(settings))
        self._plans: dict[str, list[PlannedJob]] = {}
        for p in planned:
            self._plans.setdefault(p.job.host.name, []).append(p)
        self._stopped = False
        self._guard = threading.Lock()

    def run_host(self, jobs: Sequence[Job], abort: threading.Event) -> list[HostResult]:
        """Send the host's jobs to a worker and wait for their results."""
        host = jobs[0].host.name
        names = [job.runbook_name for job in jobs]
        planned = [p for name in names for p in self._plans[host] if p.job.runbook_name == name]
        task = HostTask(
            run_id=self.run_id,
            mode=str(self.mode),
            host=host,
            runbooks=names,
            approved=self.approved,
            settings=settings_data(self.settings),
            plan=digest(plan_data(planned)),
            known_hosts=self.known_hosts,
        )
        task_id = f"{self.run_id}-{uuid.uuid4().hex[:12]}"
        pending = self.app.send_task(TASK, args=[task.sign(self.key)], task_id=task_id)
        reply = self._wait(pending, task_id, abort)
        return _results(jobs, reply)

    def _wait(self, pending: Any, task_id: str, abort: threading.Event) -> dict[str, Any]:
        """The task's reply; a lost worker or an interrupt as a reply of our own."""
        from celery.exceptions import TimeoutError as Waiting

        lost_after = heartbeat() * LOST_AFTER
        seen_alive = False
        started_at: float | None = None
        while True:
            try:
                value = pending.get(timeout=POLL, propagate=False)
            except Waiting:
                value = None
            if pending.ready():
                return _reply(value, pending)
            if abort.is_set():
                self._stop()
            alive = bool(self.redis.exists(alive_key(task_id)))
            seen_alive = seen_alive or alive
            if seen_alive and not alive:
                if pending.ready():  # it ended between the two looks
                    return _reply(pending.result, pending)
                return {"lost": f"worker lost: it stopped answering while the job ran; {UNKNOWN}"}
            if not seen_alive and pending.state == "STARTED":
                # Started, but never said it was alive: give it the time a heartbeat takes.
                started_at = started_at or time.monotonic()
                if time.monotonic() - started_at > lost_after:
                    return {
                        "lost": f"worker lost: it started the job and never answered; {UNKNOWN}"
                    }
            if abort.is_set() and not seen_alive and pending.state == "PENDING":
                pending.revoke()
                return {"skipped": "not started: the run was interrupted"}

    def _stop(self) -> None:
        """Tell every worker of this run: no new step (once)."""
        with self._guard:
            if self._stopped:
                return
            self._stopped = True
        self.redis.set(stop_key(self.run_id), "1", ex=STOP_KEEP)


def celery_hosts(request: RunRequest, approved: frozenset[str]) -> CeleryHosts:
    """The ``RemoteFactory`` of ``--workers``: the request's hosts on its workers."""
    settings = request.settings
    assert settings.workers is not None
    return CeleryHosts(
        settings.workers, settings, request.planned, request.mode, request.run_id, approved
    )


def _reply(value: Any, pending: Any) -> dict[str, Any]:
    """What a finished task said, or why it has nothing to say."""
    if isinstance(value, dict):
        return value
    if pending.failed():
        name = type(pending.result).__name__
        if name == "WorkerLostError":
            return {"lost": f"worker lost: its process died while the job ran; {UNKNOWN}"}
        return {"error": f"worker error: {name}: {pending.result}"}
    return {"error": f"worker gave no result ({pending.state})"}


def _results(jobs: Sequence[Job], reply: dict[str, Any]) -> list[HostResult]:
    """One HostResult per job from a worker's reply."""
    records = reply.get("results")
    if isinstance(records, list) and len(records) == len(jobs):
        try:
            results = [HostRecord.model_validate(r).result() for r in records]
        except ValueError as exc:
            return _all(jobs, Outcome.ERROR, f"worker sent an unreadable result: {exc}")
        if [(r.host, r.runbook) for r in results] == [(j.host.name, j.runbook_name) for j in jobs]:
            return results
        return _all(jobs, Outcome.ERROR, "worker sent results for other jobs")
    if "skipped" in reply:
        return _all(jobs, Outcome.SKIPPED, str(reply["skipped"]))
    why = reply.get("lost") or reply.get("refused") or reply.get("error") or "no result"
    if "refused" in reply:
        why = f"worker refused the task: {why}"
    return _all(jobs, Outcome.ERROR, str(why))


def _all(jobs: Sequence[Job], outcome: Outcome, why: str) -> list[HostResult]:
    return [
        HostResult(j.host.name, j.runbook_name, j.runbook.fault, outcome, error=why) for j in jobs
    ]
