"""`oorfix diagnose`: every runbook's detect across the fleet, a fault matrix, and --fix."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from oorfix.catalog import CATEGORY_ORDER
from oorfix.cli.common import (
    DEFAULT_RUNBOOKS,
    input_errors_exit,
    inventory_opt,
    limit_opt,
    load_and_plan,
)
from oorfix.cli.run import (
    RunSettings,
    check_writable,
    connect_options,
    emit_record,
    engine_options,
    keep_history,
    make_audit,
    make_gate,
    run_interruptibly,
    transport_factory,
)
from oorfix.inventory.core import Inventory
from oorfix.output.console import (
    ConsoleObserver,
    fault_matrix,
    make_console,
    print_evidence,
    summary_table,
)
from oorfix.results import HostResult, Outcome, RunResult, new_run_id
from oorfix.run.engine import Engine
from oorfix.run.planner import PlannedJob
from oorfix.run.pool import ConnectionPool
from oorfix.safety.state import default_state_dir

SEVERITY_ORDER = ("critical", "major", "minor")


def fix_order(planned: PlannedJob) -> tuple[int, int, str, str]:
    """Power and hardware before software before network; critical first within each."""
    rb = planned.job.loaded.runbook
    category = rb.fault.split(".", 1)[0]
    rank = CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER)
    return rank, SEVERITY_ORDER.index(rb.severity), rb.name, planned.job.host.name


@click.command()
@inventory_opt
@click.option(
    "--runbooks",
    "runbook_dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_RUNBOOKS,
    show_default=True,
    help="the runbooks to diagnose with",
)
@limit_opt
@click.option("--fix", is_flag=True, help="remediate the confirmed faults, most basic first")
@click.option("--dry-run", is_flag=True, help="with --fix: plan the fixes, change nothing")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="run record")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="JUnit XML report")
@click.option("-f", "--forks", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--known-hosts", type=click.Path(path_type=Path), help="default: ~/.ssh/known_hosts")
@click.option("--accept-new-host-keys", is_flag=True, help="trust and remember unknown host keys")
@click.option("-y", "--yes", is_flag=True, help="approve runbooks that require approval")
@click.option("--force", is_flag=True, help="fix outside the runbooks' maintenance windows")
@click.option("--state-dir", type=click.Path(path_type=Path), default=default_state_dir)
@click.option("-q", "--quiet", is_flag=True, help="only the matrix, no evidence")
@input_errors_exit
def diagnose(**options: Any) -> None:
    """Run every runbook's detect on every host it covers; show which faults are confirmed."""
    settings = _settings(options)
    junit_path: Path | None = options["junit_path"]
    check_writable(settings.json_path)
    check_writable(junit_path)
    inventory, planned = load_and_plan(
        settings.runbooks, settings.inventory_path, (), settings.limit
    )
    if not planned:
        sys.exit(0)
    run_id = new_run_id()
    console = make_console(stderr=str(settings.json_path) == "-")
    detect = _engine(settings, inventory, planned, run_id, detect_only=True)
    found = run_interruptibly(detect, planned, run_id)
    console.print(fault_matrix(found))
    if not settings.quiet:
        print_evidence(console, found)
    result = _fix(settings, inventory, planned, found, run_id) if options["fix"] else found
    if options["fix"]:
        console.print(summary_table(result, "diagnose --fix"))
    meta = {"command": "diagnose", "runbooks": str(options["runbook_dir"]), "limit": settings.limit}
    emit_record(result, meta, settings.json_path, junit_path)
    keep_history(settings.state_dir, result, meta, planned)
    sys.exit(result.exit_code())


def _settings(options: dict[str, Any]) -> RunSettings:
    return RunSettings(
        runbooks=(str(options["runbook_dir"]),),
        inventory_path=options["inventory_path"],
        limit=options["limit"],
        extra=(),
        dry_run=options["dry_run"],
        forks=options["forks"],
        known_hosts=options["known_hosts"],
        accept_new_host_keys=options["accept_new_host_keys"],
        connect_timeout=10.0,
        json_path=options["json_path"],
        verbose=0,
        quiet=options["quiet"],
        serial=None,
        max_fail_percent=None,
        yes=options["yes"],
        force=options["force"],
        state_dir=options["state_dir"],
        lock_ttl=900.0,
    )


def _engine(
    settings: RunSettings,
    inventory: Inventory,
    planned: Sequence[PlannedJob],
    run_id: str,
    detect_only: bool,
) -> Engine:
    options = dataclasses.replace(engine_options(settings, planned), detect_only=detect_only)
    console = make_console(stderr=True)
    fixing = not detect_only and not settings.dry_run
    return Engine(
        inventory,
        ConnectionPool(transport_factory(connect_options(settings))),
        options,
        ConsoleObserver(console, -1 if detect_only or settings.quiet else 0),
        make_gate(settings, planned, run_id, console) if fixing else None,
        make_audit(settings) if fixing else None,
    )


def _merged(diagnosis: HostResult, fix: HostResult | None) -> HostResult:
    """One result per host and runbook: what the fix run did (it re-checks before fixing).

    A fault confirmed by the diagnosis that an earlier fix on the host cleared is re-checked
    healthy just before its own fix; it is recorded as fixed (by that earlier fix), with the
    diagnosis steps and evidence kept in front of the re-check.
    """
    if fix is None:
        return diagnosis
    if fix.status is Outcome.HEALTHY:
        fix.steps = diagnosis.steps + fix.steps
        fix.started = diagnosis.started
        fix.status = Outcome.FIXED
        fix.notes.append("confirmed by diagnose; cleared by an earlier fix on this host")
    return fix


def _fix(
    settings: RunSettings,
    inventory: Inventory,
    planned: Sequence[PlannedJob],
    found: RunResult,
    run_id: str,
) -> RunResult:
    """Remediate what detect confirmed, in fix order; the rest keep their diagnosis."""
    confirmed = {(r.host, r.runbook) for r in found.results if r.status is Outcome.WOULD_FIX}
    chosen = sorted(
        (p for p in planned if (p.job.host.name, p.job.runbook_name) in confirmed), key=fix_order
    )
    if not chosen:
        return found
    fixed = run_interruptibly(_engine(settings, inventory, chosen, run_id, False), chosen, run_id)
    by_key: dict[tuple[str, str], HostResult] = {(r.host, r.runbook): r for r in fixed.results}
    found.results = [_merged(r, by_key.get((r.host, r.runbook))) for r in found.results]
    found.dry_run, found.aborted, found.ended = fixed.dry_run, fixed.aborted, fixed.ended
    return found
