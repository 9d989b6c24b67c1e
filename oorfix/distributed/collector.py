"""Waiting for a run's tasks on the controller: one thread, whatever the number in flight.

Celery's Redis result backend stores each task state under ``celery-task-meta-<id>`` and
publishes it on a channel of that name. Task ids start with the run id, so one pattern
subscription hears every state change of the run as it happens; every POLL seconds one
pipelined round trip also reads the states (a message missed or sent before the
subscription) and the liveness keys of the tasks still running. The controller's cost per
host is then a few Redis commands, not a polling thread per host.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oorfix.distributed.celeryapp import alive_key

log = logging.getLogger(__name__)
POLL = 0.5  # seconds between liveness looks
READY = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
META = "celery-task-meta-"
NO_WORKER = "no oorfix worker answers: the task was taken back before any worker started it"


@dataclass
class Slot:
    """One task being waited for."""

    task_id: str
    done: threading.Event = field(default_factory=threading.Event)
    reply: dict[str, Any] | None = None
    started: float | None = None  # monotonic time Celery said STARTED
    alive_seen: bool = False


def reply_of(meta: dict[str, Any]) -> dict[str, Any]:
    """What a finished task's stored state says, as a reply: a worker's (still to be
    verified) under ``signed``, else what Celery recorded, which can only be an error."""
    status = meta.get("status")
    result = meta.get("result")
    if status == "SUCCESS":
        return {"signed": result}
    if status == "REVOKED":  # this run finishes the tasks it revokes itself, first
        return {"lost": "the task was revoked on the broker, not by this run"}
    kind = result.get("exc_type") if isinstance(result, dict) else None
    if kind == "WorkerLostError":
        return {"lost": "worker lost: its process died while the job ran"}
    message = result.get("exc_message") if isinstance(result, dict) else result
    return {"error": f"worker error: {kind or status}: {message}"}


class Collector:
    """The states of one run's tasks, delivered to the threads that wait for them."""

    def __init__(  # noqa: PLR0913 - the seams of a test: clock, ping and take-back
        self,
        redis_client: Any,
        run_id: str,
        lost_after: float,
        clock: Callable[[], float] = time.monotonic,
        workers_alive: Callable[[], bool] | None = None,
        take_back: Callable[[str], None] = lambda _task_id: None,
    ) -> None:
        self.redis = redis_client
        self.lost_after = lost_after
        self.clock = clock
        # Asked when tasks wait and nothing was heard of any for lost_after: without a worker,
        # they are taken back (``take_back``) and end, rather than wait until Ctrl-C.
        self.workers_alive = workers_alive
        self.take_back = take_back
        self._heard_at = clock()  # when a task of the run last started, lived or ended
        self._failing_since: float | None = None  # when Redis stopped answering
        self._slots: dict[str, Slot] = {}
        self._read: list[str] = []  # tasks whose stored state was read: deleted next poll
        self._guard = threading.Lock()
        self._closed = threading.Event()
        self._pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(f"{META}{run_id}-*")
        self._thread = threading.Thread(target=self._loop, name="oorfix-collector", daemon=True)
        self._thread.start()

    def watch(self, task_id: str) -> Slot:
        """Start waiting for ``task_id`` (before it is sent, so no state is missed)."""
        slot = Slot(task_id)
        with self._guard:
            self._slots[task_id] = slot
        return slot

    def finish(self, slot: Slot, reply: dict[str, Any]) -> None:
        """Give ``slot`` its reply (the first one wins) and stop watching it."""
        with self._guard:
            if slot.done.is_set():
                return
            slot.reply = reply
            self._slots.pop(slot.task_id, None)
            slot.done.set()

    def close(self) -> None:
        """Stop the thread and the subscription."""
        self._closed.set()
        self._thread.join()
        self._pubsub.close()

    def _loop(self) -> None:
        next_poll = self.clock() + POLL
        while not self._closed.is_set():
            try:
                message = self._pubsub.get_message(timeout=POLL)
                if message is not None and message.get("type") == "pmessage":
                    channel = message["channel"].decode()
                    self._state(channel[len(META) :], message["data"])
                if self.clock() >= next_poll:
                    self._poll()
                    next_poll = self.clock() + POLL
                    self._failing_since = None
            except Exception as exc:  # Redis away: keep trying, as long as a worker would
                log.warning("waiting for tasks: %s", exc)
                self._unreachable(exc)
                self._closed.wait(POLL)

    def _unreachable(self, exc: Exception) -> None:
        """Redis does not answer: past ``lost_after``, no task can be judged alive any more."""
        now = self.clock()
        if self._failing_since is None:
            self._failing_since = now
        if now - self._failing_since <= self.lost_after:
            return
        with self._guard:
            slots = list(self._slots.values())
        for slot in slots:
            self.finish(slot, {"lost": f"the broker stopped answering: {exc}"})

    def _state(self, task_id: str, raw: bytes | str) -> None:
        """A task's stored state, from a message or a poll."""
        with self._guard:
            slot = self._slots.get(task_id)
        if slot is None:
            return
        try:
            meta = json.loads(raw)
        except ValueError:
            return
        status = meta.get("status") if isinstance(meta, dict) else None
        if status in READY or status == "STARTED":
            self._heard_at = self.clock()
        if status in READY:
            self.finish(slot, reply_of(meta))
            with self._guard:
                self._read.append(task_id)  # nobody else reads it: no need to keep it a day
        elif status == "STARTED" and slot.started is None:
            slot.started = self.clock()

    def _poll(self) -> None:
        """One round trip: the states and liveness of every task still waited for."""
        with self._guard:
            slots = list(self._slots.values())
            read, self._read = self._read, []
        if read:
            self.redis.delete(*(f"{META}{task_id}" for task_id in read))
        if not slots:
            return
        pipe = self.redis.pipeline(transaction=False)
        for slot in slots:
            pipe.get(f"{META}{slot.task_id}")
            pipe.exists(alive_key(slot.task_id))
        replies = pipe.execute()
        now = self.clock()
        for n, slot in enumerate(slots):
            meta, alive = replies[2 * n], bool(replies[2 * n + 1])
            if meta is not None:
                self._state(slot.task_id, meta)
            if slot.done.is_set():
                continue
            if alive:
                slot.alive_seen = True
                self._heard_at = now
            elif slot.alive_seen:
                self.finish(slot, {"lost": "worker lost: it stopped answering while the job ran"})
            elif slot.started is not None and now - slot.started > self.lost_after:
                self.finish(slot, {"lost": "worker lost: it started the job and never answered"})
        self._no_worker(slots, now)

    def _no_worker(self, slots: list[Slot], now: float) -> None:
        """Tasks nobody started, and nothing heard for long: is any worker left to take them?"""
        waiting = [
            s for s in slots if not s.done.is_set() and s.started is None and not s.alive_seen
        ]
        if not waiting or self.workers_alive is None or now - self._heard_at <= self.lost_after:
            return
        if self.workers_alive():
            self._heard_at = now  # busy workers: the tasks wait their turn
            return
        for slot in waiting:
            self.take_back(slot.task_id)
            self.finish(slot, {"error": NO_WORKER})
