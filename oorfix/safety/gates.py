"""What may stop a job from remediating after its fault is confirmed.

The engine asks its Gate once per job, right before remediation, and tells it when the job
is done. A refusal names the outcome (deferred, locked, skipped), the reason, and whether
people must be told (a fault over its remediation budget is escalated, not silently left).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from oorfix.errors import StateUnavailable
from oorfix.results import Outcome, utcnow
from oorfix.runbook.models import Runbook
from oorfix.runbook.windows import window_decision
from oorfix.safety.stores import BudgetStore, LockStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why a job may not remediate now, and what becomes of it."""

    outcome: Outcome
    reason: str
    escalate: bool = False


class Subject(Protocol):
    """What a gate needs to know of a job: the host and the runbook."""

    @property
    def host_name(self) -> str:
        """The host the job runs on."""
        ...

    @property
    def runbook(self) -> Runbook:
        """The runbook the job runs."""
        ...


class Gate(Protocol):
    """Admits jobs to remediation: windows, approvals, budgets and host locks plug in here."""

    def admit(self, job: Subject) -> Refusal | None:
        """None to go ahead, else the refusal."""
        ...

    def step(self, job: Subject) -> str | None:
        """A step of the job is about to start: None to go ahead, else why it must not."""
        ...

    def done(self, job: Subject) -> None:
        """The job has its outcome (what ``admit`` took is given back here)."""
        ...


class OpenGate:
    """The gate of a run that fixes nothing (dry-run, diagnose): admits every job."""

    def admit(self, job: Subject) -> Refusal | None:
        """Always go ahead: nothing will be changed."""
        return None

    def step(self, job: Subject) -> str | None:
        """Always go ahead: no lock is held."""
        return None

    def done(self, job: Subject) -> None:
        """Nothing was taken."""


@dataclass
class RunGate:
    """The gate of a real run: maintenance windows, approvals, host locks, remediation budgets.

    Pure checks come first (a window or a missing approval refuses without side effects);
    then the host lock is taken, then the budget is spent, and the lock is given back if the
    budget refuses. Locks are released when each job is done.
    """

    locks: LockStore | None = None
    budget: BudgetStore | None = None
    approved: frozenset[str] = frozenset()
    force: bool = False  # ignore maintenance windows
    clock: Callable[[], datetime] = utcnow
    _held: set[str] = field(default_factory=set)
    _lost: dict[str, str] = field(default_factory=dict)
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)
    _beating: threading.Thread | None = None

    def admit(self, job: Subject) -> Refusal | None:
        """None to go ahead, else the refusal."""
        rb = job.runbook
        if not self.force:
            closed = window_decision(rb.windows, self.clock())
            if closed is not None:
                return Refusal(Outcome.DEFERRED, f"fix deferred: {closed} (--force overrides)")
        if rb.approval == "required" and rb.name not in self.approved:
            return Refusal(Outcome.DEFERRED, "fix not approved: the runbook requires approval")
        return self._lock(job) or self._spend(job)

    def _lock(self, job: Subject) -> Refusal | None:
        if self.locks is None:
            return None
        try:
            holder = self.locks.acquire(job.host_name)
        except StateUnavailable as exc:
            return Refusal(Outcome.LOCKED, f"fix not started without a lock: {exc}")
        if holder is not None:
            until = holder.expires.isoformat(timespec="seconds")
            why = f"locked by run {holder.run_id or '?'} ({holder.owner}) until {until}"
            return Refusal(Outcome.LOCKED, why)
        with self._mutex:
            self._held.add(job.host_name)
            self._lost.pop(job.host_name, None)
        self._start_heartbeat()
        return None

    def _spend(self, job: Subject) -> Refusal | None:
        spec = job.runbook.max_remediations
        if self.budget is None or spec is None:
            return None
        try:
            refused = self.budget.try_spend(job.runbook.name, job.host_name, spec.count, spec.per)
        except StateUnavailable as exc:
            self.done(job)
            return Refusal(Outcome.DEFERRED, f"fix deferred: the budget cannot be checked: {exc}")
        if refused is None:
            return None
        self.done(job)
        return Refusal(Outcome.DEFERRED, f"fix deferred: {refused}", escalate=True)

    def step(self, job: Subject) -> str | None:
        """Before each step of a fix: is the host's lock still ours?"""
        host = job.host_name
        with self._mutex:
            lost = self._lost.get(host)
            held = host in self._held
        if lost is not None:
            return lost
        if self.locks is None or not held:
            return None
        return self._refresh(host)

    def _refresh(self, host: str) -> str | None:
        """Extend the lock on ``host``: None while it is ours, else why it is lost."""
        assert self.locks is not None
        try:
            holder = self.locks.refresh(host)
        except StateUnavailable as exc:
            return self._mark_lost(host, f"the lock on {host} could not be refreshed: {exc}")
        if holder is None:
            return None
        who = f"run {holder.run_id or '?'} ({holder.owner})"
        return self._mark_lost(host, f"the lock on {host} was taken by {who}")

    def _mark_lost(self, host: str, reason: str) -> str:
        with self._mutex:
            self._lost[host] = reason
        return reason

    def _heartbeat(self) -> None:
        """Refresh every held lock while steps run, so a long step cannot let one expire."""
        assert self.locks is not None
        interval = max(0.2, self.locks.ttl / 3)
        while not self._stopped.wait(interval):
            with self._mutex:
                held = sorted(self._held)
                if not held:
                    # Said under the mutex: a lock taken from now on starts a new heartbeat.
                    self._beating = None
                    return
            for host in held:
                self._refresh(host)

    def _start_heartbeat(self) -> None:
        with self._mutex:
            if self._beating is not None:
                return
            self._beating = threading.Thread(target=self._heartbeat, daemon=True)
            self._beating.start()

    def done(self, job: Subject) -> None:
        """Give the host's lock back."""
        with self._mutex:
            held = job.host_name in self._held
            self._held.discard(job.host_name)
        if held and self.locks is not None:
            try:
                self.locks.release(job.host_name)
            except StateUnavailable as exc:  # the lock expires by itself after its ttl
                log.warning("lock on %s not released: %s", job.host_name, exc)
