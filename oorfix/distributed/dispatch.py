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

from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from oorfix.app.settings import RunSettings
from oorfix.app.wiring import RunRequest
from oorfix.distributed.celeryapp import (
    LOST_AFTER,
    TASK,
    cancel_key,
    heartbeat,
    make_app,
    stop_key,
)
from oorfix.distributed.collector import POLL, Collector, Slot
from oorfix.distributed.payload import (
    HostTask,
    file_digest,
    open_reply,
    plan_digest,
    settings_data,
    worker_key,
)
from oorfix.distributed.worker import known_hosts_path
from oorfix.errors import InputError
from oorfix.output.record import HostRecord
from oorfix.results import HostResult, Outcome, RunMode
from oorfix.run.jobs import Job
from oorfix.run.planner import PlannedJob
from oorfix.safety.redis_client import mask_url

log = logging.getLogger(__name__)
# What a broker call raises when Redis is away or refuses (kombu gives up after its retries).
BROKER_ERRORS = (KombuError, RedisError, OSError)
STOP_KEEP = 24 * 3600  # seconds the stop mark of an interrupted run is kept
PING_TIMEOUT = 5.0  # seconds for one worker to answer before a run starts
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
        if not self.app.control.ping(timeout=PING_TIMEOUT, limit=1):
            raise InputError(f"--workers {mask_url(url)}: no oorfix worker answers")
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
        self._collector = Collector(
            self.redis,
            run_id,
            heartbeat() * LOST_AFTER,
            workers_alive=self._workers_alive,
            take_back=self._take_back,
        )

    def run_host(self, jobs: Sequence[Job], abort: threading.Event) -> list[HostResult]:
        """Send the host's jobs to a worker and wait for their results."""
        host = jobs[0].host.name
        names = [job.runbook_name for job in jobs]
        planned = [p for name in names for p in self._plans[host] if p.job.runbook_name == name]
        task_id = f"{self.run_id}-{uuid.uuid4().hex[:12]}"
        task = HostTask(
            task_id=task_id,
            issued=time.time(),
            run_id=self.run_id,
            mode=str(self.mode),
            host=host,
            runbooks=names,
            approved=self.approved,
            settings=settings_data(self.settings),
            plan=plan_digest(planned),
            known_hosts=self.known_hosts,
        )
        slot = self._collector.watch(task_id)
        try:
            self.app.send_task(TASK, args=[task.sign(self.key)], task_id=task_id)
        except BROKER_ERRORS as exc:
            self._collector.finish(slot, {"error": f"the task could not be sent: {exc}"})
        while not slot.done.wait(POLL):
            if abort.is_set():
                self._interrupt(slot)
        assert slot.reply is not None
        reply = slot.reply
        if "signed" in reply:
            reply = open_reply(self.key, task_id, reply["signed"])
        return _results(jobs, _with_unknown(reply))

    def close(self) -> None:
        """The run is over: stop waiting."""
        self._collector.close()

    def _interrupt(self, slot: Slot) -> None:
        """Ctrl-C: no new step anywhere, and a task not started is taken back."""
        try:
            self._stop()
            if slot.started is None and not slot.alive_seen:
                # Finished first: the REVOKED state the broker then stores is not ours to read.
                self._collector.finish(slot, {"skipped": "not started: the run was interrupted"})
                self.app.control.revoke(slot.task_id)
        except BROKER_ERRORS as exc:
            # The broker would not take the stop: the task may still start there later.
            self._collector.finish(
                slot, {"lost": f"the run was interrupted and the broker not told: {exc}"}
            )

    def _workers_alive(self) -> bool:
        """Whether any worker answers a ping (True when the broker cannot say: the collector
        judges a silent broker by itself)."""
        try:
            return bool(self.app.control.ping(timeout=PING_TIMEOUT, limit=1))
        except BROKER_ERRORS:
            return True

    def _take_back(self, task_id: str) -> None:
        """A queued task no worker is left to run: no worker that starts later may run it."""
        try:
            self.redis.set(cancel_key(task_id), "1", ex=STOP_KEEP)
            self.app.control.revoke(task_id)
        except BROKER_ERRORS as exc:
            log.warning("task %s not taken back: %s", task_id, exc)

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


def _with_unknown(reply: dict[str, Any]) -> dict[str, Any]:
    """A lost worker's reply says what that means for the host."""
    if "lost" in reply:
        return {"lost": f"{reply['lost']}; {UNKNOWN}"}
    return reply


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
