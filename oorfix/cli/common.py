"""What the CLI's commands share: input errors as exit 2, -e parsing, loading and planning,
and turning parsed options into typed settings."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.markup import escape

from oorfix.app.loading import Loaded
from oorfix.app.loading import load_and_plan as plan_settings
from oorfix.app.settings import RunSettings
from oorfix.errors import InputError, InputErrors, StateUnavailable
from oorfix.output.console import make_console
from oorfix.results import ExitCode

if TYPE_CHECKING:
    from oorfix.app.wiring import Seams

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


T = TypeVar("T")


def seams_for(settings: RunSettings | str | None) -> Seams:
    """The real run's seams; with workers (``--workers``, a service's ``workers:``), its
    hosts go to the workers."""
    from oorfix.app.wiring import REAL, Seams  # the engine loads only for commands that run

    workers = settings.workers if isinstance(settings, RunSettings) else settings
    if not workers:
        return REAL
    from oorfix.distributed.dispatch import celery_hosts  # Celery loads only for --workers

    return Seams(remote=celery_hosts)


def store_call(action: Callable[[], T]) -> T:
    """``action()`` on the shared state; a server that does not answer is exit 3, said plainly."""
    try:
        return action()
    except StateUnavailable as exc:
        make_console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(ExitCode.UNREACHABLE)


def load_and_plan(settings: RunSettings) -> Loaded:
    """Load and plan (``oorfix.app.loading``), printing its warnings and why nothing is planned."""
    loaded = plan_settings(settings)
    for warning in loaded.warnings:
        warn(warning)
    if loaded.empty_because is not None:
        make_console(stderr=True).print(f"nothing to do: {escape(loaded.empty_because)}")
    return loaded


runbook_args = click.argument("runbooks", nargs=-1, required=True)

SETTINGS_FIELDS = frozenset(f.name for f in fields(RunSettings))


def settings_from(options: dict[str, Any], **overrides: Any) -> RunSettings:
    """The typed settings of a command's parsed options (others are the command's own)."""
    given = {k: v for k, v in options.items() if k in SETTINGS_FIELDS}
    return RunSettings(**{**given, **overrides})


def warn(message: str) -> None:
    """A warning on stderr."""
    make_console(stderr=True).print(f"[yellow]warning:[/] {escape(message)}")
