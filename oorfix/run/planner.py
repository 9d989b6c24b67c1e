"""Plans: every job of a run with every step rendered, before any host is contacted.

An undefined variable or an unsafe action parameter is an input error found offline, for
every host, located in the runbook file. Values registered at run time are stood in for by
``Deferred`` placeholders (see ``oorfix.run.render``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oorfix.errors import InputError, InputErrors, TemplateError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.inventory.patterns import limit_pattern
from oorfix.run.become import become_passwords
from oorfix.run.jobs import Job, make_job, phase_steps, registered_names
from oorfix.run.render import Deferred, RenderedStep, render_step
from oorfix.run.variables import inventory_secrets
from oorfix.runbook import actions, templating
from oorfix.runbook.loader import LoadedRunbook, template_fields
from oorfix.runbook.models import Step
from oorfix.runbook.yamlsource import Loc


@dataclass(frozen=True)
class PlannedStep(RenderedStep):
    """A rendered step and where it is written in its runbook."""

    loc: Loc = ()


def _plan_context(job: Job) -> dict[str, Any]:
    return {**job.context, **{name: Deferred(name) for name in registered_names(job)}}


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
            rendered = render_step(job, phase, step, context, inventory)
            planned.append(PlannedStep(**vars(rendered), loc=loc))
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
    only: frozenset[str] | None = None,
) -> list[PlannedJob]:
    """Jobs for every runbook on every host its pattern (and ``limit``) selects, rendered;
    ``only`` keeps the hosts of those exact names (a worker plans its own host alone)."""
    if limit is not None:
        limit = limit_pattern(limit)
    allowed = {h.name for h in inventory.select(limit)} if limit is not None else None
    if only is not None:
        allowed = set(only) if allowed is None else allowed & only
    site = [*inventory_secrets(inventory), *become_passwords(inventory.hosts)]
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
