"""Results, from one command up to a whole run, and the exit codes they map to.

A non-zero exit status is data here, never an exception: every layer above the transport
judges a CommandResult rather than catching something.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_run_id() -> str:
    """A short random id for a run."""
    return uuid.uuid4().hex[:12]


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Outcome(enum.StrEnum):
    """The final status of one runbook on one host."""

    HEALTHY = "healthy"  # detect found no fault; nothing was changed
    FIXED = "fixed"  # a fault was found, remediated and verified
    # The impact is gone but the cause remains (traffic on the backup path while the carrier's
    # path is slow, a failing disk drained from the pool): service restored, cause escalated.
    MITIGATED = "mitigated"
    FAILED = "failed"  # a fault remains: remediation or verification failed
    WOULD_FIX = "would_fix"  # dry-run: a fault was found and would be remediated
    UNREACHABLE = "unreachable"  # the host could not be reached or its key was refused
    ERROR = "error"  # a check could not be judged (timeout, lost connection, bad template)
    DEFERRED = "deferred"  # fault confirmed; the fix waits (window, budget, approval)
    LOCKED = "locked"  # fault confirmed; another run is remediating this host
    SKIPPED = "skipped"  # not started: circuit breaker or an interrupted run

    @property
    def fault_remains(self) -> bool:
        """Whether this outcome leaves a known or possible fault behind."""
        return self in (
            Outcome.FAILED,
            Outcome.WOULD_FIX,
            Outcome.ERROR,
            Outcome.DEFERRED,
            Outcome.LOCKED,
        )


class RunMode(enum.StrEnum):
    """How far a run may go once a fault is confirmed."""

    FIX = "fix"  # remediate, verify, roll back and escalate
    DRY_RUN = "dry-run"  # render and record the fix, send nothing that changes a host
    DETECT = "detect"  # detect and collect evidence only (diagnose)

    @property
    def changes_hosts(self) -> bool:
        """Whether commands that may change a host are sent."""
        return self is RunMode.FIX


class ExitCode(enum.IntEnum):
    """Process exit codes of the CLI; documented in the README."""

    OK = 0  # every host healthy or fixed
    FAULT = 1  # a fault remains (failed, error, or found by a dry-run)
    INPUT = 2  # invalid input; nothing was contacted
    UNREACHABLE = 3  # some host was unreachable (and no fault is known to remain)
    MITIGATED = 4  # service restored, but a root cause remains open (escalated)
    ABORTED = 130  # interrupted by the user


class Phase(enum.StrEnum):
    """The phases of a runbook, in the order the engine runs them."""

    SYMPTOMS = "symptoms"  # the impact: whether there is an incident at all
    DETECT = "detect"  # the cause: whether this runbook's fault is there
    EVIDENCE = "evidence"
    REMEDIATE = "remediate"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    ESCALATE = "escalate"

    @property
    def mutating(self) -> bool:
        """Whether steps of this phase may change the host (and so never run in a dry-run)."""
        return self in (Phase.REMEDIATE, Phase.ROLLBACK, Phase.ESCALATE)


@dataclass(frozen=True)
class Output:
    """Captured output of one stream: head and tail kept, total size counted."""

    text: str = ""
    total_bytes: int = 0
    truncated: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class CommandResult:
    """What one remote or local command did. ``rc`` is None when it did not finish."""

    command: str  # as shown to people: redacted
    rc: int | None
    stdout: Output = field(default_factory=Output)
    stderr: Output = field(default_factory=Output)
    started: datetime = field(default_factory=utcnow)
    ended: datetime = field(default_factory=utcnow)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Whether the command finished with exit status 0."""
        return self.rc == 0

    @property
    def duration(self) -> float:
        """Wall-clock seconds the command took."""
        return (self.ended - self.started).total_seconds()


class StepStatus(enum.StrEnum):
    """What became of one step."""

    PASSED = "passed"  # ran and met its expectation
    FAILED = "failed"  # ran and did not meet it
    ERROR = "error"  # could not be judged: timeout, lost connection, render error
    SKIPPED = "skipped"  # `when` was false
    PLANNED = "planned"  # dry-run: rendered, not executed


@dataclass(frozen=True)
class StepResult:
    """One step of one phase on one host."""

    phase: Phase
    name: str
    status: StepStatus
    command: str | None = None
    host: str | None = None  # set when the step ran on another host (`on:`)
    rc: int | None = None
    stdout: Output = field(default_factory=Output)
    stderr: Output = field(default_factory=Output)
    started: datetime = field(default_factory=utcnow)
    ended: datetime = field(default_factory=utcnow)
    reason: str | None = None  # why it failed, errored or was skipped
    attempt: int = 1
    timed_out: bool = False

    @classmethod
    def from_command(
        cls, phase: Phase, name: str, result: CommandResult, status: StepStatus, **extra: Any
    ) -> StepResult:
        """A step result carrying everything a command result holds."""
        return cls(
            phase=phase,
            name=name,
            status=status,
            command=result.command,
            rc=result.rc,
            stdout=result.stdout,
            stderr=result.stderr,
            started=result.started,
            ended=result.ended,
            timed_out=result.timed_out,
            **extra,
        )


@dataclass(frozen=True)
class HostResult:
    """One runbook on one host: its outcome and every step taken."""

    host: str
    runbook: str
    fault: str
    status: Outcome
    steps: tuple[StepResult, ...] = ()
    error: str | None = None
    escalation: str | None = None
    notes: tuple[str, ...] = ()
    started: datetime = field(default_factory=utcnow)
    ended: datetime = field(default_factory=utcnow)
    # The runbook whose fix cleared this fault before its own fix ran (diagnose --fix).
    explained_by: str | None = None


@dataclass(frozen=True)
class RunResult:
    """Every host result of one run, and the exit code they add up to."""

    run_id: str
    started: datetime
    ended: datetime
    mode: RunMode = RunMode.FIX
    results: tuple[HostResult, ...] = ()
    aborted: bool = False

    @property
    def dry_run(self) -> bool:
        """Whether the run was a dry-run (fixes rendered and recorded, never sent)."""
        return self.mode is RunMode.DRY_RUN

    def by_status(self, status: Outcome) -> list[HostResult]:
        """The host results that ended with ``status``."""
        return [r for r in self.results if r.status is status]

    @property
    def failed_hosts(self) -> list[str]:
        """Hosts where a fault remains or that could not be reached."""
        bad = [
            r.host
            for r in self.results
            if r.status.fault_remains or r.status is Outcome.UNREACHABLE
        ]
        return sorted(set(bad))

    def exit_code(self) -> ExitCode:
        """0 healthy or fixed; 1 a fault remains; 3 a host unreachable; 4 only mitigated."""
        if self.aborted:
            return ExitCode.ABORTED
        if any(r.status.fault_remains for r in self.results):
            return ExitCode.FAULT
        if any(r.status is Outcome.UNREACHABLE for r in self.results):
            return ExitCode.UNREACHABLE
        if any(r.status is Outcome.MITIGATED for r in self.results):
            return ExitCode.MITIGATED
        return ExitCode.OK
