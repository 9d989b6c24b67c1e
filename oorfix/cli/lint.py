"""Commands that read runbooks and inventories and contact no host: validate, plan, catalog,
schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from oorfix.catalog import BUILTIN
from oorfix.cli.common import input_errors_exit, load_and_plan, runbook_args, settings_from
from oorfix.cli.options import VAULT_OPTIONS, shared
from oorfix.inventory.vault import Keyring
from oorfix.output.console import catalog_table, make_console, print_plan
from oorfix.run.validate import validate_paths
from oorfix.runbook.catalogfile import schema as catalog_schema
from oorfix.runbook.catalogfile import site_catalog
from oorfix.runbook.loader import load_runbooks
from oorfix.runbook.models import runbook_json_schema


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-i",
    "--inventory",
    "inventory_paths",
    type=click.Path(path_type=Path),
    multiple=True,
    help="also render every runbook for every host of this inventory (repeat to merge)",
)
@shared(*VAULT_OPTIONS)
@input_errors_exit
def validate(paths: tuple[Path, ...], inventory_paths: tuple[Path, ...], **vault: Any) -> None:
    """Lint runbooks and inventories; errors are path:line: message, exit 2."""
    keyring = Keyring.from_options(vault["vault_password_files"], vault["vault_ids"])
    summary = validate_paths(list(paths), list(inventory_paths), keyring)
    make_console().print(summary)


@click.command()
@runbook_args
@shared("inventory", *VAULT_OPTIONS, "limit", "extra_vars")
@input_errors_exit
def plan(runbooks: tuple[str, ...], **options: Any) -> None:
    """Show every rendered command per host without connecting to any host."""
    settings = settings_from(options, runbooks=runbooks)
    print_plan(make_console(), load_and_plan(settings).planned)


@click.command()
@shared("runbook_dir")
@input_errors_exit
def catalog(runbook_dir: Path) -> None:
    """List the fault ids, what each detects and fixes, and the runbooks that handle them."""
    loaded = load_runbooks([runbook_dir]) if runbook_dir.exists() else []
    known = site_catalog([runbook_dir]) if runbook_dir.exists() else BUILTIN
    by_fault: dict[str, list[str]] = {}
    for item in loaded:
        by_fault.setdefault(item.runbook.fault, []).append(item.name)
    rows = [
        (f.id, f.signal, f.fix, list(f.explains), sorted(by_fault.pop(f.id, []))) for f in known
    ]
    rows += [
        (fault, "preventive maintenance", "", [], sorted(names))
        for fault, names in sorted(by_fault.items())
    ]
    make_console().print(catalog_table(rows))


@click.command()
@click.option("--record", is_flag=True, help="the run record's schema instead")
@click.option("--catalog", is_flag=True, help="the schema of a site's catalog.yml instead")
@click.option("--test", "tests", is_flag=True, help="the schema of runbook test files instead")
@click.option("--serve", is_flag=True, help="the schema of the service's serve.yml instead")
def schema(record: bool, catalog: bool, tests: bool, serve: bool) -> None:
    """Print the JSON Schema of runbook files (or of the run record, catalog.yml, tests)."""
    if serve:
        from oorfix.serve.config import schema as serve_schema  # croniter only when asked

        found = serve_schema()
    elif record:
        from oorfix.output.record import record_json_schema  # not imported for validate

        found = record_json_schema()
    elif catalog:
        found = catalog_schema()
    elif tests:
        from oorfix.testing.models import suite_schema

        found = suite_schema()
    else:
        found = runbook_json_schema()
    click.echo(json.dumps(found, indent=2))
