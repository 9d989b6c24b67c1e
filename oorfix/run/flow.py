"""One job's way through the phases: the guide's method for one runbook on one host.

symptoms, detect -> healthy; or evidence -> (fix mode) remediate -> verify -> fixed, or
mitigated (impact gone, cause still there: escalated), or rollback -> escalate -> failed; a
dry-run renders the fix and a diagnosis stops at the evidence (would_fix). Symptoms show the
impact and never confirm a fault on their own; the cause (detect) does. Each phase returns its
verdict and reason; nothing writes a shared error string.
The engine (``oorfix.run.engine``) runs many flows in parallel and turns trouble that escapes
a flow (an unreachable host, a lost connection, an interrupt) into the job's ending.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from oorfix.errors import ConnectError, ConnectionLost, InputError
from oorfix.results import Outcome, Phase, RunMode, StepStatus
from oorfix.run.jobs import Job
from oorfix.run.steps import Aborted, StepExecutor
from oorfix.runbook import templating
from oorfix.runbook.models import Runbook, Step
from oorfix.safety.gates import Gate


class Verdict(enum.Enum):
    """What a list of checks says about a fault."""

    CLEAR = "clear"  # every check met its expectation
    FAULT = "fault"  # at least one check failed
    ERROR = "error"  # no check failed, but at least one could not be judged


@dataclass(frozen=True)
class Checked:
    """The verdict of a list of checks, and the first check that decided it."""

    verdict: Verdict
    reason: str | None = None


@dataclass(frozen=True)
class Ending:
    """How a job ended, and why (the reason a report of a fault shows)."""

    outcome: Outcome
    reason: str | None = None


@dataclass
class JobFlow:
    """One job's way through the phases; each phase returns its verdict."""

    job: Job
    steps: StepExecutor
    mode: RunMode
    gate: Gate
    wait: Callable[[float], bool]
    breaker: Callable[[], str | None] = lambda: None
    escalation: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def runbook(self) -> Runbook:
        """The runbook being run."""
        return self.job.runbook

    def checks(self, phase: Phase, steps: Sequence[Step], attempt: int = 1) -> Checked:
        """Run every check; any failure confirms the fault."""
        results = [self.steps.execute(phase, s, attempt) for s in steps]
        for status, verdict in (
            (StepStatus.FAILED, Verdict.FAULT),
            (StepStatus.ERROR, Verdict.ERROR),
        ):
            first = next((r for r in results if r.status is status), None)
            if first is not None:
                return Checked(verdict, f"{first.name}: {first.reason}")
        return Checked(Verdict.CLEAR)

    def flow(self) -> Ending:
        """Symptoms and cause; when the cause is confirmed, the rest of the phases."""
        impact = self.checks(Phase.SYMPTOMS, self.runbook.symptoms)
        cause = self.checks(Phase.DETECT, self.runbook.detect)
        if cause.verdict is Verdict.CLEAR:
            if impact.verdict is not Verdict.CLEAR:
                self.notes.append(f"symptom seen, this cause refuted: {impact.reason}")
            return Ending(Outcome.HEALTHY)
        if cause.verdict is Verdict.ERROR:
            return Ending(Outcome.ERROR, cause.reason)
        for step in self.runbook.evidence:
            self.steps.execute(Phase.EVIDENCE, step)
        if self.runbook.symptoms and impact.verdict is Verdict.CLEAR:
            # Someone (an earlier run, a standby) already took the impact away: nothing to do
            # but to keep the cause in sight.
            return Ending(Outcome.MITIGATED, f"cause present, no impact: {cause.reason}")
        if self.mode is RunMode.FIX:
            return self.repair()
        if self.mode is RunMode.DRY_RUN:
            for step in self.runbook.remediate:
                self.steps.execute(Phase.REMEDIATE, step)
        # What a report of a found-but-unfixed fault shows.
        return Ending(Outcome.WOULD_FIX, f"fault confirmed: {cause.reason}")

    def repair(self) -> Ending:
        """Remediate and verify; roll back and escalate when the fix does not hold."""
        tripped = self.breaker()
        if tripped is not None:  # hosts already running when it tripped fix nothing either
            return Ending(Outcome.DEFERRED, f"fix not started: {tripped}")
        refusal = self.gate.admit(self.job)
        if refusal is not None:
            if refusal.escalate:
                self.escalate()
            return Ending(refusal.outcome, refusal.reason)
        if not self.runbook.remediate:
            self.escalate()
            return Ending(Outcome.FAILED, "fault confirmed; the runbook has no remediation")
        failed = self.remediate()
        if failed is None:
            verified = self.verify()
            escalate = self.runbook.escalate
            if verified.outcome is Outcome.MITIGATED or (
                verified.outcome is Outcome.FIXED and escalate is not None and escalate.always
            ):
                self.escalate()
            if verified.outcome is not Outcome.FAILED:
                return verified
            failed = verified.reason
        self.rollback()
        self.escalate()
        return Ending(Outcome.FAILED, failed)

    def remediate(self) -> str | None:
        """Run the fix; why it failed, or None. A step whose effect is unknown goes on to
        verification, which decides."""
        for step in self.runbook.remediate:
            result = self.steps.execute(Phase.REMEDIATE, step)
            if result.status is StepStatus.FAILED:
                return f"remediation step {result.name!r} failed: {result.reason}"
            if result.status is StepStatus.ERROR:
                self.notes.append(f"{result.name}: {result.reason}; verifying its effect")
                return None
        return None

    def verify(self) -> Ending:
        """Run the symptoms and verify checks until both pass or the retries run out.

        Fixed when both pass; mitigated when, at the last attempt, only the symptoms pass
        (the impact is gone, the cause is not); failed otherwise.
        """
        spec = self.runbook.verify
        checks = spec.checks if spec.checks is not None else self.runbook.detect
        attempts = spec.retries + 1
        impact = cause = Checked(Verdict.CLEAR)
        for attempt in range(1, attempts + 1):
            impact = self.checks(Phase.VERIFY, self.runbook.symptoms, attempt)
            cause = self.checks(Phase.VERIFY, checks, attempt)
            if impact.verdict is Verdict.CLEAR and cause.verdict is Verdict.CLEAR:
                return Ending(Outcome.FIXED)
            if attempt < attempts and not self.wait(spec.delay):
                raise Aborted
        if self.runbook.symptoms and impact.verdict is Verdict.CLEAR:
            return Ending(Outcome.MITIGATED, f"service restored; the cause remains: {cause.reason}")
        last = impact if impact.verdict is not Verdict.CLEAR else cause
        return Ending(
            Outcome.FAILED, f"still faulty after {attempts} verification attempt(s): {last.reason}"
        )

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
