"""Running one step of one job: condition, render, send, judge, register.

Phase order lives in the engine; this module only knows how a single step becomes a
StepResult, including the modes that send no change (render and record it, send nothing).
Judging is ``oorfix.run.judge``; rendering is ``oorfix.run.render``; the audit of commands
that may change a host is ``oorfix.run.auditing``, told before and after each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from oorfix.errors import ConnectError, ConnectionLost, InputError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.results import CommandResult, Phase, RunMode, StepResult, StepStatus, utcnow
from oorfix.run.auditing import AuditTrail
from oorfix.run.jobs import Job
from oorfix.run.judge import result_vars, verdict
from oorfix.run.pool import ConnectionPool
from oorfix.run.render import Deferred, RenderedStep, is_mutating, render_step
from oorfix.runbook import templating
from oorfix.runbook.actions import ActionError
from oorfix.runbook.models import Step
from oorfix.transport.base import Transport

SKIPPED_REGISTER: dict[str, Any] = {
    "rc": None,
    "stdout": "",
    "stdout_lines": [],
    "stderr": "",
    "ok": False,
    "failed": False,
    "timed_out": False,
    "skipped": True,
}


class Aborted(Exception):
    """No new step starts: the operator interrupted the run, or the host's lock was lost."""

    def __init__(self, reason: str = "interrupted by the operator"):
        super().__init__(reason)
        self.reason = reason


class _Lost(Exception):
    """The job's own connection dropped during a step; carries that step's result."""

    def __init__(self, result: StepResult):
        self.result = result


class StepHooks(Protocol):
    """What the engine is told of, and asked, around each step."""

    def stop_reason(self, job: Job) -> str | None:
        """Why the job may start no further step, or None."""
        ...

    def step_finished(self, job: Job, step: StepResult) -> None:
        """A step of a job has a result."""
        ...


@dataclass(frozen=True)
class RunScope:
    """What every step of one run shares."""

    pool: ConnectionPool
    inventory: Inventory
    mode: RunMode
    trail: AuditTrail
    hooks: StepHooks


@dataclass
class StepExecutor:
    """Executes the steps of one job, keeping their results and what they register."""

    job: Job
    scope: RunScope
    # Results already taken for some steps (a batch of checks), by id of the step.
    given: dict[int, CommandResult] = field(default_factory=dict)
    registers: dict[str, Any] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        """The job's variables plus everything registered so far."""
        return {**self.job.context, **self.registers}

    def execute(self, phase: Phase, step: Step, attempt: int = 1) -> StepResult:
        """Run one step (or only render it, when the run sends no change) and record it."""
        # A check already taken in a batch is recorded even after an interrupt.
        stop = self.scope.hooks.stop_reason(self.job)
        if stop is not None and id(step) not in self.given:
            raise Aborted(stop)
        try:
            result = self._execute(phase, step)
        except _Lost as lost:
            self._record(lost.result, attempt)
            raise ConnectionLost(self.job.host.name, lost.result.reason or "") from None
        return self._record(result, attempt)

    def _record(self, result: StepResult, attempt: int) -> StepResult:
        final = replace(result, attempt=attempt) if attempt != 1 else result
        self.steps.append(final)
        self.scope.hooks.step_finished(self.job, final)
        return final

    def _execute(self, phase: Phase, step: Step) -> StepResult:
        context = self.context()
        planned = is_mutating(phase, step) and not self.scope.mode.changes_hosts
        try:
            # A plan cannot know conditions on what earlier planned steps would return.
            if (
                not planned
                and step.when is not None
                and not templating.evaluate(step.when, context)
            ):
                self._register(step, SKIPPED_REGISTER)
                label = self.job.redactor(templating.render_text(step.label, context))
                return StepResult(phase, label, StepStatus.SKIPPED, reason=f"when: {step.when}")
            rendered = render_step(self.job, phase, step, context, self.scope.inventory)
        except (InputError, ActionError) as exc:
            reason = exc.message if isinstance(exc, InputError) else str(exc)
            name = self.job.redactor(step.label)
            return StepResult(phase, name, StepStatus.ERROR, reason=self.job.redactor(reason))
        if planned:
            return self._plan(rendered)
        return self._run_on(rendered, context)

    def _plan(self, rendered: RenderedStep) -> StepResult:
        step = rendered.step
        if step.register_as:
            self.registers[step.register_as] = Deferred(step.register_as)
        why = f"when: {step.when}" if step.when else None
        return StepResult(
            rendered.phase,
            rendered.label,
            StepStatus.PLANNED,
            str(rendered.command),
            self._others(rendered.targets),
            reason=why,
        )

    def _run_on(self, rendered: RenderedStep, context: dict[str, Any]) -> StepResult:
        # Several `on:` targets run one after the other; the first that does not pass decides.
        result: StepResult | None = None
        for target in rendered.targets:
            result = self._run_one(rendered, target, context)
            if result.status is not StepStatus.PASSED:
                break
        assert result is not None  # targets is never empty
        return result

    def _run_one(self, rendered: RenderedStep, target: Host, context: dict[str, Any]) -> StepResult:
        try:
            with self.scope.pool.lease(target) as transport:
                return self._send(rendered, transport, target, context)
        except ConnectError as exc:  # the lease could not connect; _send maps its own errors
            if target.name == self.job.host.name:
                raise
            return self._failed_to_reach(rendered, target.name, exc)

    def _send(
        self, rendered: RenderedStep, transport: Transport, target: Host, context: dict[str, Any]
    ) -> StepResult:
        other = target.name if target.name != self.job.host.name else None
        started = utcnow()
        given = self.given.pop(id(rendered.step), None) if other is None else None
        pending = self.scope.trail.before(self.job, rendered, target)
        try:
            raw = given or transport.run(
                rendered.command, timeout=rendered.timeout, become=rendered.become.get(target.name)
            )
        except (ConnectionLost, ConnectError) as exc:
            self.scope.pool.discard(target)
            self.scope.trail.after(pending, None, "lost")
            lost = self._lost(rendered, other, exc, started)
            if other is None:
                raise _Lost(lost) from exc
            return lost
        result = self.job.redactor.result(raw)
        status, reason = verdict(rendered.step.expect, result, context)
        self.scope.trail.after(pending, result.rc, str(status))
        self._register(rendered.step, result_vars(result))
        reason = self.job.redactor(reason) if reason is not None else None
        return StepResult.from_command(
            rendered.phase, rendered.label, result, status, host=other, reason=reason
        )

    def _failed_to_reach(self, rendered: RenderedStep, other: str, exc: ConnectError) -> StepResult:
        why = f"{other} unreachable: {exc.message}"
        command = str(rendered.command)
        return StepResult(
            rendered.phase, rendered.label, StepStatus.ERROR, command, other, reason=why
        )

    def _lost(
        self,
        rendered: RenderedStep,
        other: str | None,
        exc: ConnectError | ConnectionLost,
        started: datetime,
    ) -> StepResult:
        target = other or self.job.host.name
        why = self.job.redactor(f"connection to {target} lost: {exc.message}; effect unknown")
        return StepResult(
            rendered.phase,
            rendered.label,
            StepStatus.ERROR,
            str(rendered.command),
            other,
            started=started,
            ended=utcnow(),
            reason=why,
        )

    def _register(self, step: Step, value: dict[str, Any]) -> None:
        if step.register_as:
            self.registers[step.register_as] = value

    def _others(self, targets: tuple[Host, ...]) -> str | None:
        names = [t.name for t in targets if t.name != self.job.host.name]
        return ",".join(names) or None
