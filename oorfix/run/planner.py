"""Jobs (a runbook on a host), their variables, and rendering their steps.

Everything a run will send is rendered here first, for every host, before any host is
contacted: an undefined variable or an unsafe action parameter is an input error found
offline. Values registered at run time are stood in for by ``Deferred`` placeholders then.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oorfix.errors import InputError, InputErrors, TemplateError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Command, Redactor
from oorfix.results import Phase
from oorfix.run.variables import build_context, inventory_secrets, job_redactor
from oorfix.runbook import actions, templating
from oorfix.runbook.loader import LoadedRunbook, template_fields
from oorfix.runbook.models import Step
from oorfix.runbook.yamlsource import Loc

WAIT_FOR_MARGIN = 10.0


@dataclass(frozen=True)
class Job:
    """One runbook to run against one host, with the host's variables resolved."""

    loaded: LoadedRunbook
    host: Host
    context: Mapping[str, Any]
    redactor: Redactor

    @property
    def runbook_name(self) -> str:
        """The runbook's name."""
        return self.loaded.name


@dataclass(frozen=True)
class PlannedStep:
    """A step as it would run on a host: rendered command, targets and whether it mutates."""

    phase: Phase
    loc: Loc
    step: Step
    label: str
    command: Command
    targets: tuple[Host, ...]
    mutating: bool
    timeout: float
    when: str | None = None


class Deferred:
    """Stands in for a value registered at run time, so plans can still render."""

    def __init__(self, path: str):
        self._path = path

    def __getattr__(self, name: str) -> Deferred:
        if name.startswith("_"):
            raise AttributeError(name)
        return Deferred(f"{self._path}.{name}")

    def __getitem__(self, key: object) -> Deferred:
        return Deferred(f"{self._path}[{key!r}]")

    def __str__(self) -> str:
        return f"<{self._path} at run time>"

    def __iter__(self) -> Iterator[Any]:
        return iter(())


def make_job(
    loaded: LoadedRunbook,
    host: Host,
    inventory: Inventory,
    extra_vars: Mapping[str, Any],
    site_secrets: Sequence[Any] = (),
) -> Job:
    """A job with its context and the redactor for its secrets."""
    context = build_context(loaded, host, inventory, extra_vars)
    redactor = job_redactor(loaded, context, site_secrets)
    return Job(loaded=loaded, host=host, context=context, redactor=redactor)


def step_timeout(job: Job, step: Step) -> float:
    """Seconds the host allows the step before killing it."""
    if step.timeout is not None:
        return step.timeout
    if step.wait_for is not None:
        return step.wait_for.timeout + WAIT_FOR_MARGIN
    return job.loaded.runbook.step_timeout


def render_command(job: Job, step: Step, context: Mapping[str, Any]) -> Command:
    """The command a step sends, rendered in ``context``; raises TemplateError/ActionError."""
    if step.run is not None:
        text = templating.render_command(step.run, context)
    else:
        params = templating.render_data(step.params.model_dump(exclude_none=True), context)
        text = actions.render_action(step.kind, params)
    stdin = None if step.stdin is None else templating.render_text(step.stdin, context).encode()
    return Command(text=text, redactor=job.redactor, stdin=stdin)


def resolve_targets(
    job: Job, step: Step, context: Mapping[str, Any], inventory: Inventory
) -> tuple[Host, ...]:
    """The hosts a step runs on: the job's host, or those its ``on:`` pattern selects."""
    if step.on is None:
        return (job.host,)
    pattern = templating.render_text(step.on, context)
    hosts = inventory.select(pattern)
    if not hosts:
        raise TemplateError(f"on: pattern {pattern!r} matches no inventory host")
    return tuple(hosts)


def phase_steps(job: Job) -> Iterator[tuple[Phase, tuple[str | int, ...], Step]]:
    """Every step of the job's runbook in phase order, with its location in the file."""
    rb = job.loaded.runbook
    for phase, loc, steps in (
        (Phase.DETECT, ("detect",), rb.detect),
        (Phase.EVIDENCE, ("evidence",), rb.evidence),
        (Phase.REMEDIATE, ("remediate",), rb.remediate),
        (Phase.VERIFY, ("verify", "checks"), rb.verify.checks or []),
        (Phase.ROLLBACK, ("rollback",), rb.rollback),
        (Phase.ESCALATE, ("escalate", "steps"), rb.escalate.steps if rb.escalate else []),
    ):
        for i, step in enumerate(steps):
            yield phase, (*loc, i), step


def is_mutating(phase: Phase, step: Step) -> bool:
    """Whether a step may change its host: mutating phases, and mutating actions anywhere."""
    return phase.mutating or (step.kind != "run" and actions.mutates(step.kind))


def _plan_context(job: Job) -> dict[str, Any]:
    context = dict(job.context)
    for _, _, step in phase_steps(job):
        if step.register_as:
            context[step.register_as] = Deferred(step.register_as)
    return context


def _check_names(job: Job, loc: Loc, step: Step, context: Mapping[str, Any]) -> None:
    known = set(context) | {"result"}
    for key, source, expression in template_fields(step):
        missing = templating.names_used(source, expression) - known
        if missing:
            names = ", ".join(sorted(missing))
            raise job.loaded.error(
                (*loc, *key), f"undefined variable {names} (host {job.host.name})", TemplateError
            )


def _check_conditions(job: Job, loc: Loc, step: Step, context: Mapping[str, Any]) -> None:
    """Evaluate `when` and `that` with stand-ins, to find undefined attributes offline."""
    local = {**context, "result": Deferred("result")}
    conditions = [("when", step.when), ("expect.that", step.expect.that if step.expect else None)]
    for key, expression in conditions:
        if expression is None:
            continue
        try:
            templating.evaluate(expression, local)
        except TemplateError as exc:
            if exc.message.startswith("undefined variable"):
                raise job.loaded.error(
                    (*loc, *key.split(".")), f"{exc.message} (host {job.host.name})", TemplateError
                ) from None


def uses_registers(step: Step, registers: set[str]) -> bool:
    """Whether any template of the step reads one of ``registers``."""
    return any(
        templating.names_used(source, expression) & registers
        for _, source, expression in template_fields(step)
    )


def _plan_step(
    job: Job, phase: Phase, loc: Loc, step: Step, context: Mapping[str, Any], inventory: Inventory
) -> PlannedStep:
    registers = {k for k, v in context.items() if isinstance(v, Deferred)}
    if step.kind != "run" and uses_registers(step, registers):
        # Action parameters from run-time values are checked when they are known.
        text = f"<{step.kind} rendered at run time from registered values>"
        command = Command(text=text, redactor=job.redactor)
    else:
        command = render_command(job, step, context)
    targets = resolve_targets(job, step, context, inventory)
    label = job.redactor(templating.render_text(step.label, context))
    timeout = step_timeout(job, step)
    return PlannedStep(
        phase, loc, step, label, command, targets, is_mutating(phase, step), timeout, step.when
    )


def _check_escalation(job: Job, context: Mapping[str, Any]) -> None:
    spec = job.loaded.runbook.escalate
    if spec is None:
        return
    try:
        templating.render_text(spec.message, context)
    except TemplateError as exc:
        message = f"{job.redactor(exc.message)} (host {job.host.name})"
        raise job.loaded.error(("escalate", "message"), message, TemplateError) from None


def plan_job(job: Job, inventory: Inventory) -> list[PlannedStep]:
    """Render every step of a job offline; raises InputError for the first bad one."""
    context = _plan_context(job)
    planned = []
    for phase, loc, step in phase_steps(job):
        _check_names(job, loc, step, context)
        _check_conditions(job, loc, step, context)
        try:
            planned.append(_plan_step(job, phase, loc, step, context, inventory))
        except (InputError, actions.ActionError) as exc:
            where = (*loc, step.kind) if isinstance(exc, actions.ActionError) else loc
            message = exc.message if isinstance(exc, InputError) else str(exc)
            message = f"{job.redactor(message)} (host {job.host.name})"
            raise job.loaded.error(where, message, TemplateError) from None
    _check_escalation(job, context)
    return planned


def _select(loaded: LoadedRunbook, inventory: Inventory) -> list[Host]:
    try:
        return inventory.select(loaded.runbook.hosts)
    except InputError as exc:
        raise loaded.error(("hosts",), exc.message) from None


@dataclass(frozen=True)
class PlannedJob:
    """A job and its rendered steps."""

    job: Job
    steps: list[PlannedStep]


def plan_run(
    runbooks: Sequence[LoadedRunbook],
    inventory: Inventory,
    extra_vars: Mapping[str, Any],
    limit: str | None = None,
) -> list[PlannedJob]:
    """Jobs for every runbook on every host its pattern (and ``limit``) selects, rendered."""
    allowed = {h.name for h in inventory.select(limit)} if limit is not None else None
    site = inventory_secrets(inventory)
    planned: list[PlannedJob] = []
    errors: list[InputError] = []
    for loaded in runbooks:
        for host in _select(loaded, inventory):
            if allowed is not None and host.name not in allowed:
                continue
            try:
                job = make_job(loaded, host, inventory, extra_vars, site)
                planned.append(PlannedJob(job, plan_job(job, inventory)))
            except InputError as exc:
                # One report per runbook: the same mistake on 200 hosts is one mistake.
                errors.extend(exc.errors if isinstance(exc, InputErrors) else [exc])
                break
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return planned
