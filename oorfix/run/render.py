"""Rendering one step for one host: the one function plan, execution and batching share.

A rendered step is what would be sent: its label, its command (masked when printed), the
hosts it runs on, its time limit and whether it may change a host. Values registered at run
time are stood in for by ``Deferred`` placeholders when a plan is made before any host is
contacted; an action whose parameters come from such values is rendered at run time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from oorfix.errors import TemplateError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import Phase
from oorfix.run.become import become_for
from oorfix.run.jobs import Job
from oorfix.runbook import actions, templating
from oorfix.runbook.loader import template_fields
from oorfix.runbook.models import Step
from oorfix.transport.shell import Become

WAIT_FOR_MARGIN = 10.0


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


@dataclass(frozen=True)
class RenderedStep:
    """A step as it would run on a host: rendered command, targets and whether it mutates."""

    phase: Phase
    step: Step
    label: str
    command: Command
    targets: tuple[Host, ...]
    mutating: bool
    timeout: float
    # Per target host name: how the step runs privileged there (None: as the login user).
    become: Mapping[str, Become | None] = field(default_factory=dict)

    @property
    def when(self) -> str | None:
        """The step's condition, as written."""
        return self.step.when


def step_timeout(job: Job, step: Step) -> float:
    """Seconds the host allows the step before killing it."""
    if step.timeout is not None:
        return step.timeout
    if step.wait_for is not None:
        return step.wait_for.timeout + WAIT_FOR_MARGIN
    return job.runbook.step_timeout


def is_mutating(phase: Phase, step: Step) -> bool:
    """Whether a step may change its host: mutating phases, and mutating actions anywhere."""
    return phase.mutating or (step.kind != "run" and actions.mutates(step.kind))


def uses_registers(step: Step, registers: set[str] | frozenset[str]) -> bool:
    """Whether any template of the step reads one of ``registers``."""
    return any(
        templating.names_used(source, expression) & registers
        for _, source, expression in template_fields(step)
    )


def render_command(
    job: Job, step: Step, context: Mapping[str, Any], label: str | None = None
) -> Command:
    """The command a step sends, rendered in ``context``; raises TemplateError/ActionError."""
    deferred = {k for k, v in context.items() if isinstance(v, Deferred)}
    if step.kind != "run" and deferred and uses_registers(step, deferred):
        # Action parameters from run-time values are checked when they are known.
        text = f"<{step.kind} rendered at run time from registered values>"
        return Command(text=text, redactor=job.redactor, label=label)
    if step.run is not None:
        text = templating.render_command(step.run, context)
    else:
        params = templating.render_data(step.params.model_dump(exclude_none=True), context)
        text = actions.render_action(step.kind, params)
    return Command(text=text, redactor=job.redactor, stdin=_stdin(step, context), label=label)


def _stdin(step: Step, context: Mapping[str, Any]) -> bytes | None:
    """The step's stdin text, ending with a newline as a line of text does: without one,
    ``read -r pw`` reads the value but reports end of input, and a careful script fails."""
    if step.stdin is None:
        return None
    text = templating.render_text(step.stdin, context)
    return (text if text.endswith("\n") else text + "\n").encode()


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


def render_step(
    job: Job, phase: Phase, step: Step, context: Mapping[str, Any], inventory: Inventory
) -> RenderedStep:
    """Render label, command and targets; raises TemplateError or ActionError."""
    label = job.redactor(templating.render_text(step.label, context))
    targets = resolve_targets(job, step, context, inventory)
    return RenderedStep(
        phase=phase,
        step=step,
        label=label,
        command=render_command(job, step, context, label),
        targets=targets,
        mutating=is_mutating(phase, step),
        timeout=step_timeout(job, step),
        become={host.name: become_for(step, host) for host in targets},
    )
