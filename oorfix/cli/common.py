"""What the CLI's commands share: input errors as exit 2, -e parsing, loading and planning,
and turning parsed options into typed settings."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape

from oorfix.cli.settings import DEFAULT_RUNBOOKS, RunSettings
from oorfix.errors import InputError, InputErrors
from oorfix.inventory.core import Inventory, load_inventory
from oorfix.inventory.patterns import limit_pattern
from oorfix.output.console import make_console
from oorfix.results import ExitCode
from oorfix.run.planner import PlannedJob, plan_run
from oorfix.runbook.loader import LoadedRunbook, load_runbooks
from oorfix.runbook.yamlsource import load_file

F = TypeVar("F", bound=Callable[..., Any])


def fail_input(error: InputError) -> None:
    errors = error.errors if isinstance(error, InputErrors) else [error]
    console = make_console(stderr=True)
    for item in errors:
        console.print(f"[red]error:[/] {escape(item.location_message())}", highlight=False)
    sys.exit(ExitCode.INPUT)


def input_errors_exit(func: F) -> F:
    """Turn InputError into printed ``path:line: message`` lines and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail_input(exc)

    return wrapper  # type: ignore[return-value]


def parse_extra_vars(values: Sequence[str]) -> dict[str, Any]:
    """``-e key=value`` and ``-e @file.yml`` into one mapping (later wins)."""
    extra: dict[str, Any] = {}
    for value in values:
        if value.startswith("@"):
            doc = load_file(Path(value[1:]))
            if not isinstance(doc.data, dict):
                raise InputError("extra vars file must be a mapping", value[1:], 1)
            for key in doc.data:
                if not isinstance(key, str) or not key.isidentifier():
                    raise InputError(
                        f"{key!r} is not a variable name", value[1:], doc.line_of((key,))
                    )
            extra.update(doc.data)
        elif "=" in value and value.split("=", 1)[0].isidentifier():
            key, _, text = value.partition("=")
            extra[key] = text
        else:
            raise InputError(f"-e {value!r}: expected key=value or @file.yml")
    return extra


def load_and_plan(
    runbooks: Sequence[str], inventory_path: Path, extra: Sequence[str], limit: str | None
) -> tuple[Inventory, list[PlannedJob]]:
    loaded: list[LoadedRunbook] = load_runbooks(runbooks, DEFAULT_RUNBOOKS)
    inventory = load_inventory(inventory_path)
    warn = make_console(stderr=True)
    for warning in inventory.warnings:
        warn.print(f"[yellow]warning:[/] {escape(warning)}")
    planned = plan_run(loaded, inventory, parse_extra_vars(extra), limit)
    if not planned:
        warn.print(f"nothing to do: {escape(_explain_empty(inventory, loaded, limit))}")
    return inventory, planned


def _explain_empty(inventory: Inventory, loaded: Sequence[LoadedRunbook], limit: str | None) -> str:
    """Why no runbook has a host: the pattern that matched nothing, in the inventory's words."""
    if limit:
        hosts, why = inventory.select_or_explain(limit_pattern(limit))
        if not hosts and why:
            return f"--limit {why}"
    reasons = []
    for item in loaded:
        _, why = inventory.select_or_explain(item.runbook.hosts)
        reasons.append(f"{item.name}: hosts {why}" if why else f"{item.name}: outside --limit")
    return "; ".join(reasons)


runbook_args = click.argument("runbooks", nargs=-1, required=True)

SETTINGS_FIELDS = frozenset(f.name for f in fields(RunSettings))


def settings_from(options: dict[str, Any], **overrides: Any) -> RunSettings:
    """The typed settings of a command's parsed options (others are the command's own)."""
    given = {k: v for k, v in options.items() if k in SETTINGS_FIELDS}
    return RunSettings(**{**given, **overrides})


def warn(message: str) -> None:
    """A warning on stderr."""
    make_console(stderr=True).print(f"[yellow]warning:[/] {escape(message)}")
