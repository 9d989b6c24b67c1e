"""``oorfix worker``: runs hosts' jobs for controllers, with the engine every run uses.

A task is refused unless its signature holds (``payload.py``). The worker plans the task's
host again from its own runbooks and inventory (loaded once per run and kept for the next
tasks of that run) and runs only if the plan's digest is the controller's and its
known_hosts is the controller's. Then the run is assembled by ``app.wiring.assemble``, as
for the CLI: a fixing run takes its host lock and budget and writes its audit through the
shared ``--state``. While a task runs, a thread refreshes its liveness key and watches for
the controller's stop (Ctrl-C there: no new step here).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oorfix.app.loading import parse_extra_vars, settings_inventory
from oorfix.app.settings import RunSettings
from oorfix.app.wiring import Approver, RunRequest, assemble
from oorfix.distributed.celeryapp import (
    LOST_AFTER,
    TASK,
    alive_key,
    cancel_key,
    claim_key,
    heartbeat,
    stop_key,
)
from oorfix.distributed.payload import (
    CLOCK_SKEW,
    HostTask,
    TaskRefused,
    digest,
    file_digest,
    max_age,
    plan_digest,
    settings_from_data,
    sign_reply,
    worker_key,
)
from oorfix.errors import OorfixError
from oorfix.inventory.core import Inventory
from oorfix.output.record import HostRecord
from oorfix.results import RunMode
from oorfix.run.planner import PlannedJob, plan_run
from oorfix.runbook.loader import LoadedRunbook, load_runbooks

log = logging.getLogger(__name__)
_CACHED_RUNS = 4  # runs whose loaded inputs a worker keeps
CLAIM_KEEP = 7 * 24 * 3600  # seconds a task's claim outlives it (Redis redelivers within hours)


def known_hosts_path(settings: RunSettings) -> Path:
    """The known_hosts file a run verifies host keys with."""
    return settings.known_hosts or Path("~/.ssh/known_hosts")


@dataclass(frozen=True)
class _Inputs:
    runbooks: list[LoadedRunbook]
    inventory: Inventory
    extra: dict[str, Any]


class Worker:
    """What one worker process does with the tasks it is given (thread-safe)."""

    def __init__(
        self,
        redis_client: Any,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis_client  # the broker's Redis: liveness and stop keys
        self.name = name or socket.gethostname()
        self.clock = clock
        self.max_age = max_age()
        # A claim outlives every copy of its task that could still be run.
        self.claim_keep = int(max(CLAIM_KEEP, self.max_age + CLOCK_SKEW))
        self._inputs: OrderedDict[str, _Inputs] = OrderedDict()
        self._guard = threading.Lock()

    def run(self, task_id: str, signed: object) -> dict[str, Any] | None:
        """Run one signed task; the results as HostRecord data, or why nothing ran. None for
        a task delivered again (its first delivery started, on a worker that died)."""
        try:
            task = HostTask.verify(signed, worker_key())
            task.check_delivery(task_id, self.clock(), self.max_age)
        except (TaskRefused, OorfixError) as exc:
            log.warning("task %s refused: %s", task_id, exc)
            return {"refused": str(exc)}
        if not self.redis.set(claim_key(task_id), self.name, nx=True, ex=self.claim_keep):
            log.warning("task %s delivered again: not run twice", task_id)
            return None
        beat = _Heartbeat(self.redis, task_id, task.run_id, self.name)
        if beat.stopped():
            return {"skipped": "not started: the run was interrupted"}
        if self.redis.exists(cancel_key(task_id)):
            return {"skipped": "not started: the controller took the task back"}
        beat.start()
        try:
            return self._run(task, beat)
        except OorfixError as exc:  # InputError, StateUnavailable: the inputs, not the host
            return {"error": f"worker {self.name}: {exc}"}
        finally:
            beat.stop()

    def _run(self, task: HostTask, beat: _Heartbeat) -> dict[str, Any]:
        settings = _settings(task)
        inputs = self._load(task, settings)
        wanted = set(task.runbooks)
        runbooks = [r for r in inputs.runbooks if r.runbook.name in wanted]
        found = plan_run(runbooks, inputs.inventory, inputs.extra, only=frozenset({task.host}))
        planned = _in_order(found, task.runbooks)
        if planned is None or plan_digest(planned) != task.plan:
            return {
                "error": f"worker {self.name}: its plan for {task.host} differs from the "
                "controller's (are its runbooks, inventory and -e files the same?)"
            }
        if file_digest(known_hosts_path(settings)) != task.known_hosts:
            return {
                "error": f"worker {self.name}: its known_hosts differs from the controller's "
                f"({known_hosts_path(settings)})"
            }
        mode = RunMode(task.mode)
        request = RunRequest(settings, inputs.inventory, planned, mode, task.run_id)
        engine = assemble(request, approve=_approver(task.approved))
        beat.on_stop(engine.abort)
        result = engine.run([p.job for p in planned], task.run_id)
        records = [HostRecord.of(r).model_dump(mode="json") for r in result.results]
        return {"results": records, "worker": self.name}

    def _load(self, task: HostTask, settings: RunSettings) -> _Inputs:
        """The run's runbooks, inventory and -e values, loaded once per run per process."""
        key = f"{task.run_id}/{digest(task.settings)}"
        with self._guard:
            found = self._inputs.get(key)
            if found is not None:
                self._inputs.move_to_end(key)
                return found
        loaded = _Inputs(
            load_runbooks(settings.runbooks, settings.runbook_dir),
            settings_inventory(settings),
            parse_extra_vars(settings.extra),
        )
        with self._guard:
            self._inputs[key] = loaded
            while len(self._inputs) > _CACHED_RUNS:
                self._inputs.popitem(last=False)
        return loaded


def _settings(task: HostTask) -> RunSettings:
    try:
        return settings_from_data(task.settings)
    except TaskRefused as exc:
        raise OorfixError(str(exc)) from None


def _in_order(planned: list[PlannedJob], names: Sequence[str]) -> list[PlannedJob] | None:
    """The planned jobs in the task's order; None when they are not exactly the task's."""
    by_name = {p.job.runbook_name: p for p in planned}
    if sorted(by_name) != sorted(names) or len(planned) != len(names):
        return None
    return [by_name[name] for name in names]


def _approver(approved: Sequence[str]) -> Approver:
    """What the controller's operator approved, and nothing more."""

    def approve(required: frozenset[str], planned: Sequence[PlannedJob]) -> frozenset[str]:
        return required & frozenset(approved)

    return approve


class _Heartbeat:
    """A running task's liveness key and the controller's stop, in one thread."""

    def __init__(self, redis_client: Any, task_id: str, run_id: str, name: str) -> None:
        self.redis = redis_client
        self.alive = alive_key(task_id)
        self.stop_key = stop_key(run_id)
        self.name = name
        self.interval = heartbeat()
        self._done = threading.Event()
        self._abort: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._loop, name=f"beat-{task_id}", daemon=True)

    def stopped(self) -> bool:
        """Whether the controller asked its run to stop."""
        return bool(self.redis.exists(self.stop_key))

    def start(self) -> None:
        """Say we are alive now, and keep saying it."""
        self._beat()
        self._thread.start()

    def on_stop(self, abort: Callable[[], None]) -> None:
        """Call ``abort`` when the controller stops its run."""
        self._abort = abort

    def _beat(self) -> None:
        ttl_ms = int(self.interval * LOST_AFTER * 1000)
        self.redis.set(self.alive, self.name, px=ttl_ms)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self._beat()
                if self._abort is not None and self.stopped():
                    self._abort()
            except Exception as exc:  # Redis away: the controller will call us lost
                log.warning("heartbeat of %s: %s", self.alive, exc)

    def stop(self) -> None:
        """The task ended (the key expires by itself: its absence is never a false loss)."""
        self._done.set()
        self._thread.join()


def register(app: Any, worker: Worker) -> None:
    """Register the host task on ``app``, run by ``worker``."""

    from celery.exceptions import Ignore

    @app.task(name=TASK, bind=True)  # type: ignore[untyped-decorator]
    def run_host(self: Any, signed: object) -> dict[str, Any]:
        task_id = str(self.request.id)
        reply = worker.run(task_id, signed)
        if reply is None:
            raise Ignore  # no result: the controller already has this task's answer
        return sign_reply(worker_key(), task_id, reply)
