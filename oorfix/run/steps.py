"""Running one step of one job: condition, render, send, judge, register.

Phase order lives in the engine; this module only knows how a single step becomes a
StepResult, including the dry-run case (render, record, send nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from oorfix.errors import ConnectError, ConnectionLost, InputError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import CommandResult, Output, Phase, StepResult, StepStatus, utcnow
from oorfix.run.judge import judge, result_vars
from oorfix.run.planner import (
    Deferred,
    Job,
    is_mutating,
    render_command,
    resolve_targets,
    step_timeout,
)
from oorfix.run.pool import ConnectionPool
from oorfix.runbook import templating
from oorfix.runbook.actions import ActionError
from oorfix.runbook.models import Step
from oorfix.safety.audit import AuditLog

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


@dataclass(frozen=True)
class AuditTrail:
    """Where a run writes its intent and result entries for mutating commands."""

    log: AuditLog
    run_id: str


class Aborted(Exception):
    """No new step starts: the operator interrupted the run, or the host's lock was lost."""

    def __init__(self, reason: str = "interrupted by the operator"):
        super().__init__(reason)
        self.reason = reason


class _Lost(Exception):
    """The job's own connection dropped during a step; carries that step's result."""

    def __init__(self, result: StepResult):
        self.result = result


@dataclass
class StepExecutor:
    """Executes the steps of one job, keeping what they register."""

    job: Job
    pool: ConnectionPool
    inventory: Inventory
    dry_run: bool = False
    on_step: Callable[[StepResult], None] = lambda _: None
    should_stop: Callable[[], str | None] = lambda: None
    # Results already taken for some steps (a batch of checks), by id of the step.
    given: dict[int, CommandResult] = field(default_factory=dict)
    audit: AuditTrail | None = None
    registers: dict[str, Any] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)

    def context(self) -> dict[str, Any]:
        """The job's variables plus everything registered so far."""
        return {**self.job.context, **self.registers}

    def execute(self, phase: Phase, step: Step, attempt: int = 1) -> StepResult:
        """Run one step (or plan it, in a dry-run) and record its result."""
        # A check already taken in a batch is recorded even after an interrupt.
        stop = self.should_stop()
        if stop is not None and id(step) not in self.given:
            raise Aborted(stop)
        try:
            result = self._execute(phase, step)
        except _Lost as lost:
            self._record(lost.result, attempt)
            raise ConnectionLost(self.job.host.name, lost.result.reason or "") from None
        return self._record(result, attempt)

    def _record(self, result: StepResult, attempt: int) -> StepResult:
        result.attempt = attempt
        self.steps.append(result)
        self.on_step(result)
        return result

    def _execute(self, phase: Phase, step: Step) -> StepResult:
        context = self.context()
        planned = self.dry_run and is_mutating(phase, step)
        try:
            label = self._redact(templating.render_text(step.label, context))
            # A dry-run cannot know conditions on what earlier planned steps would return.
            if not planned and step.when is not None and not self._condition(step.when, context):
                self._register(step, SKIPPED_REGISTER)
                return StepResult(phase, label, StepStatus.SKIPPED, reason=f"when: {step.when}")
            command = render_command(self.job, step, context)
            targets = resolve_targets(self.job, step, context, self.inventory)
        except (InputError, ActionError) as exc:
            reason = exc.message if isinstance(exc, InputError) else str(exc)
            name = self._redact(step.label)
            return StepResult(phase, name, StepStatus.ERROR, reason=self._redact(reason))
        if planned:
            if step.register_as:
                self.registers[step.register_as] = Deferred(step.register_as)
            why = f"when: {step.when}" if step.when else None
            host = self._other(targets)
            return StepResult(phase, label, StepStatus.PLANNED, str(command), host, reason=why)
        return self._run_on(phase, step, label, command, targets, context)

    @staticmethod
    def _condition(expression: str, context: dict[str, Any]) -> bool:
        return bool(templating.evaluate(expression, context))

    def _run_on(
        self,
        phase: Phase,
        step: Step,
        label: str,
        command: Command,
        targets: tuple[Host, ...],
        context: dict[str, Any],
    ) -> StepResult:
        # Several `on:` targets run one after the other; the first that does not pass decides.
        result: StepResult | None = None
        for target in targets:
            result = self._run_one(phase, step, label, command, target, context)
            if result.status is not StepStatus.PASSED:
                break
        assert result is not None  # targets is never empty
        return result

    def _run_one(
        self,
        phase: Phase,
        step: Step,
        label: str,
        command: Command,
        target: Host,
        context: dict[str, Any],
    ) -> StepResult:
        other = target.name if target.name != self.job.host.name else None
        try:
            transport = self.pool.get(target)
        except ConnectError as exc:
            if other is None:
                raise
            why = f"{other} unreachable: {exc.message}"
            return StepResult(
                phase, label, StepStatus.ERROR, command=str(command), host=other, reason=why
            )
        started = utcnow()
        given = self.given.pop(id(step), None) if other is None else None
        audited = self.audit is not None and is_mutating(phase, step)
        intent = self._audit_intent(phase, label, command, target) if audited else None
        try:
            raw = given or transport.run(
                command, timeout=step_timeout(self.job, step), sudo=step.sudo
            )
        except (ConnectionLost, ConnectError) as exc:
            self.pool.discard(target)
            why = f"connection to {target.name} lost: {exc.message}; effect unknown"
            lost = StepResult(phase, label, StepStatus.ERROR, str(command), other, started=started,
                              ended=utcnow(), reason=self._redact(why))  # fmt: skip
            self._audit_result(intent, phase, label, command, target, None, "lost")
            if other is None:
                raise _Lost(lost) from exc
            return lost
        result = self._redact_result(raw)
        status, reason = self._verdict(step, result, context)
        self._audit_result(intent, phase, label, command, target, result.rc, str(status))
        self._register(step, result_vars(result))
        return StepResult.from_command(phase, label, result, status, host=other, reason=reason)

    def _audit_intent(self, phase: Phase, label: str, command: Command, target: Host) -> str:
        assert self.audit is not None
        return self.audit.log.intent(
            self.audit.run_id, target.name, self.job.runbook_name, str(phase), label, str(command)
        )

    def _audit_result(
        self,
        intent: str | None,
        phase: Phase,
        label: str,
        command: Command,
        target: Host,
        rc: int | None,
        status: str,
    ) -> None:
        if intent is None or self.audit is None:
            return
        trail = self.audit
        runbook = self.job.runbook_name
        trail.log.result(
            trail.run_id, target.name, runbook, str(phase), label, str(command), rc, status, intent
        )

    def _verdict(
        self, step: Step, result: CommandResult, context: dict[str, Any]
    ) -> tuple[StepStatus, str | None]:
        if result.timed_out:
            seconds = (result.ended - result.started).total_seconds()
            return StepStatus.ERROR, f"timed out after {seconds:.1f}s; the host killed it"
        if result.rc is None:  # PITFALLS 5: no status is not a failure that is safe to act on
            return StepStatus.ERROR, "no exit status (the session ended without one)"
        try:
            reason = judge(step.expect, result, context)
        except InputError as exc:
            return StepStatus.ERROR, self._redact(exc.message)
        return (StepStatus.PASSED, None) if reason is None else (StepStatus.FAILED, reason)

    def _register(self, step: Step, value: dict[str, Any]) -> None:
        if step.register_as:
            self.registers[step.register_as] = value

    def _redact(self, text: str) -> str:
        return self.job.redactor(text)

    def _redact_output(self, output: Output) -> Output:
        text = self._redact(output.text)
        if output.truncated:
            text = self.job.redactor.cut_edges(text)
        return replace(output, text=text)

    def _redact_result(self, result: CommandResult) -> CommandResult:
        return replace(
            result,
            stdout=self._redact_output(result.stdout),
            stderr=self._redact_output(result.stderr),
        )

    def _other(self, targets: tuple[Host, ...]) -> str | None:
        names = [t.name for t in targets if t.name != self.job.host.name]
        return ",".join(names) or None
