"""The command line: parse, load and validate everything, call the engine, print, exit.

The CLI modules (this one, cli_run, cli_lab) are the only ones that print or exit. Input
errors are printed as ``path:line: message`` and exit 2 before any host is contacted; exit
codes are documented in the README.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from oorfix import __version__
from oorfix.catalog import FAULTS
from oorfix.cli.audit import audit as audit_commands
from oorfix.cli.common import (
    DEFAULT_RUNBOOKS,
    extra_opt,
    input_errors_exit,
    inventory_opt,
    limit_opt,
    load_and_plan,
    runbook_args,
)
from oorfix.cli.diagnose import diagnose as diagnose_command
from oorfix.cli.lab import lab as lab_commands
from oorfix.cli.report import report as report_command
from oorfix.cli.report import runs as runs_command
from oorfix.cli.run import run as run_command
from oorfix.output.console import catalog_table, make_console, print_plan
from oorfix.run.validate import validate_paths
from oorfix.runbook.loader import load_runbooks
from oorfix.runbook.models import runbook_json_schema


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
    _, planned = load_and_plan(runbooks, inventory_path, extra, limit)
    print_plan(make_console(), planned)


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


main.add_command(run_command)
main.add_command(diagnose_command)
main.add_command(audit_commands)
main.add_command(runs_command)
main.add_command(report_command)
main.add_command(lab_commands)
