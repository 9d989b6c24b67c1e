"""What may stop a job from remediating after its fault is confirmed.

The engine asks its Gate once per job, right before remediation, and tells it when the job
is done. A refusal names the outcome (deferred, locked, skipped), the reason, and whether
people must be told (a fault over its remediation budget is escalated, not silently left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from oorfix.planner import Job
from oorfix.results import Outcome


@dataclass(frozen=True)
class Refusal:
    """Why a job may not remediate now, and what becomes of it."""

    outcome: Outcome
    reason: str
    escalate: bool = False


class Gate(Protocol):
    """Admits jobs to remediation: windows, approvals, budgets and host locks plug in here."""

    def admit(self, job: Job) -> Refusal | None:
        """None to go ahead, else the refusal."""
        ...

    def step(self, job: Job) -> None:
        """A step of an admitted job is starting (a lock is kept alive here)."""
        ...

    def done(self, job: Job) -> None:
        """The job has its outcome (what ``admit`` took is given back here)."""
        ...
