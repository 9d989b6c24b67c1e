"""The command line: parse, load and validate everything, call the engine, print, exit.

The only module that prints or exits. Input errors are printed as ``path:line: message``
and exit 2 before any host is contacted; exit codes are documented in the README.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
from rich.markup import escape

from oorfix import __version__
from oorfix.catalog import FAULTS
from oorfix.cli_lab import lab as lab_commands
from oorfix.console import (
    ConsoleObserver,
    catalog_table,
    make_console,
    print_plan,
    summary_table,
)
from oorfix.engine import Engine, EngineOptions
from oorfix.errors import InputError, InputErrors
from oorfix.hosts import Host
from oorfix.inventory import Inventory, load_inventory
from oorfix.loader import LoadedRunbook, load_runbooks
from oorfix.models import runbook_json_schema
from oorfix.planner import PlannedJob, plan_run
from oorfix.pool import ConnectionPool
from oorfix.record import record_json, write_record
from oorfix.results import ExitCode, RunResult, new_run_id, utcnow
from oorfix.transport import ConnectOptions, Transport, open_transport
from oorfix.validate import validate_paths
from oorfix.yamlsource import load_file

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_INVENTORY = Path("inventory")
DEFAULT_RUNBOOKS = Path("runbooks")


def _fail_input(error: InputError) -> None:
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
            _fail_input(exc)

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


def _load(
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
        hosts, why = inventory.select_or_explain(limit)
        if not hosts and why:
            return f"--limit {why}"
    reasons = []
    for item in loaded:
        _, why = inventory.select_or_explain(item.runbook.hosts)
        reasons.append(f"{item.name}: hosts {why}" if why else f"{item.name}: outside --limit")
    return "; ".join(reasons)


runbook_args = click.argument("runbooks", nargs=-1, required=True)
inventory_opt = click.option(
    "-i",
    "--inventory",
    "inventory_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_INVENTORY,
    show_default=True,
    help="inventory file or directory",
)
limit_opt = click.option("-l", "--limit", help="host pattern to narrow the hosts to")
extra_opt = click.option(
    "-e", "--extra-vars", "extra", multiple=True, help="key=value or @file.yml; wins over all"
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oorfix")
def main() -> None:
    """oorfix: confirm, fix and verify out-of-order faults with declarative runbooks."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-i",
    "--inventory",
    "inventory_path",
    type=click.Path(path_type=Path),
    help="also render every runbook for every host of this inventory",
)
@input_errors_exit
def validate(paths: tuple[Path, ...], inventory_path: Path | None) -> None:
    """Lint runbooks and inventories; errors are path:line: message, exit 2."""
    summary = validate_paths(list(paths), inventory_path)
    make_console().print(summary)


@main.command()
@runbook_args
@inventory_opt
@limit_opt
@extra_opt
@input_errors_exit
def plan(
    runbooks: tuple[str, ...], inventory_path: Path, limit: str | None, extra: tuple[str, ...]
) -> None:
    """Show every rendered command per host without connecting to any host."""
    _, planned = _load(runbooks, inventory_path, extra, limit)
    print_plan(make_console(), planned)


def _transport_factory(options: ConnectOptions) -> Callable[[Host], Transport]:
    def factory(host: Host) -> Transport:
        return open_transport(host.connection(), options)

    return factory


@main.command()
@runbook_args
@inventory_opt
@limit_opt
@extra_opt
@click.option("--dry-run", is_flag=True, help="run only read-only phases; show what would change")
@click.option("-f", "--forks", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--known-hosts", type=click.Path(path_type=Path), help="default: ~/.ssh/known_hosts")
@click.option("--accept-new-host-keys", is_flag=True, help="trust and remember unknown host keys")
@click.option("--connect-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1))
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), help="run record ('-': stdout)"
)
@click.option("-v", "--verbose", count=True, help="-v steps, -vv commands")
@click.option("-q", "--quiet", is_flag=True, help="only the summary")
@input_errors_exit
def run(
    runbooks: tuple[str, ...],
    inventory_path: Path,
    limit: str | None,
    extra: tuple[str, ...],
    dry_run: bool,
    forks: int,
    known_hosts: Path | None,
    accept_new_host_keys: bool,
    connect_timeout: float,
    json_path: Path | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Run runbooks against hosts: detect, and fix what is confirmed (unless --dry-run)."""
    _check_writable(json_path)
    inventory, planned = _load(runbooks, inventory_path, extra, limit)
    console = make_console(stderr=str(json_path) == "-")
    meta = {"runbooks": list(runbooks), "inventory": str(inventory_path), "limit": limit}
    if not planned:
        now = utcnow()
        _emit_record(RunResult(new_run_id(), now, now, dry_run), meta, json_path)
        sys.exit(ExitCode.OK)
    options = ConnectOptions(
        known_hosts=known_hosts,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        banner_timeout=connect_timeout,
        auth_timeout=connect_timeout,
    )
    engine = Engine(
        inventory,
        ConnectionPool(_transport_factory(options)),
        EngineOptions(forks=forks, dry_run=dry_run),
        ConsoleObserver(console, -1 if quiet else verbose),
    )
    previous = _on_interrupt(engine.abort)
    try:
        result = engine.run([p.job for p in planned])
    finally:
        signal.signal(signal.SIGINT, previous)
    _emit_record(result, meta, json_path)
    console.print(summary_table(result))
    sys.exit(result.exit_code())


def _check_writable(path: Path | None) -> None:
    """Refuse an unwritable --json path before any host is touched, not after."""
    if path is None or str(path) == "-":
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".oorfix-check-"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write the run record: {exc.strerror or exc}", path) from None
    if path.is_dir():
        raise InputError("cannot write the run record: it is a directory", path)


def _emit_record(result: RunResult, meta: dict[str, Any], json_path: Path | None) -> None:
    if json_path is None:
        return
    text = record_json(result, meta)
    if str(json_path) == "-":
        click.echo(text, nl=False)
    else:
        write_record(json_path, text)


def _on_interrupt(abort: Callable[[], None]) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        make_console(stderr=True).print("[yellow]interrupted: finishing running steps[/]")
        abort()

    return signal.signal(signal.SIGINT, handler)


@main.command()
@click.option(
    "--runbooks",
    "runbook_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_RUNBOOKS,
    show_default=True,
    help="where the runbooks are",
)
@input_errors_exit
def catalog(runbook_dir: Path) -> None:
    """List the fault ids, what each detects and fixes, and the runbooks that handle them."""
    loaded = load_runbooks([runbook_dir]) if runbook_dir.exists() else []
    by_fault: dict[str, list[str]] = {}
    for item in loaded:
        by_fault.setdefault(item.runbook.fault, []).append(item.name)
    rows = [(f.id, f.signal, f.fix, sorted(by_fault.pop(f.id, []))) for f in FAULTS]
    rows += [
        (fault, "preventive maintenance", "", sorted(names))
        for fault, names in sorted(by_fault.items())
    ]
    make_console().print(catalog_table(rows))


@main.command()
def schema() -> None:
    """Print the JSON Schema of runbook files."""
    click.echo(json.dumps(runbook_json_schema(), indent=2))


main.add_command(lab_commands)
