"""`oorfix diagnose`: every runbook's detect across the fleet, a fault matrix, and --fix."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import click

from oorfix.catalog import CATEGORY_ORDER
from oorfix.cli.common import input_errors_exit, load_and_plan, settings_from
from oorfix.cli.options import RUN_OPTIONS, shared
from oorfix.cli.run import Outputs, TerminalApprover, announce_signal, finish
from oorfix.cli.wiring import RunRequest, assemble, run_interruptibly
from oorfix.output.console import (
    ConsoleObserver,
    fault_matrix,
    make_console,
    print_evidence,
    summary_table,
)
from oorfix.results import HostResult, Outcome, RunMode, RunResult, new_run_id
from oorfix.run.planner import PlannedJob

SEVERITY_ORDER = ("critical", "major", "minor")


def fix_order(planned: PlannedJob) -> tuple[int, int, str, str]:
    """Power and hardware before software before network; critical first within each."""
    rb = planned.job.loaded.runbook
    category = rb.fault.split(".", 1)[0]
    rank = CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER)
    return rank, SEVERITY_ORDER.index(rb.severity), rb.name, planned.job.host.name


@click.command()
@shared("inventory")
@shared("runbook_dir")
@shared(*RUN_OPTIONS[1:3])
@click.option("--fix", is_flag=True, help="remediate the confirmed faults, most basic first")
@shared("dry_run")
@shared(*RUN_OPTIONS[3:])
@input_errors_exit
def diagnose(**options: Any) -> None:
    """Run every runbook's detect on every host it covers; show which faults are confirmed."""
    settings = settings_from(options, runbooks=(str(options["runbook_dir"]),))
    outputs = Outputs.of("diagnose", options)
    inventory, planned = load_and_plan(
        settings.runbooks, settings.inventory_path, settings.extra, settings.limit
    )
    if not planned:
        sys.exit(0)
    run_id = new_run_id()
    console = make_console(stderr=str(outputs.json_path) == "-")
    detect = RunRequest(settings, inventory, planned, RunMode.DETECT, run_id)
    engine = assemble(detect, ConsoleObserver(make_console(stderr=True), -1))
    found = run_interruptibly(engine, planned, run_id, announce_signal)
    console.print(fault_matrix(found))
    if not options["quiet"]:
        print_evidence(console, found)
    result = found
    if options["fix"]:
        mode = RunMode.DRY_RUN if options["dry_run"] else RunMode.FIX
        result = _fix(replace(detect, mode=mode), found, options)
        console.print(summary_table(result, "diagnose --fix"))
    finish(result, settings, planned, outputs)
    sys.exit(result.exit_code())


def _merged(diagnosis: HostResult, fix: HostResult | None) -> HostResult:
    """One result per host and runbook: what the fix run did (it re-checks before fixing).

    A fault confirmed by the diagnosis that an earlier fix on the host cleared is re-checked
    healthy just before its own fix; it is recorded as fixed (by that earlier fix), with the
    diagnosis steps and evidence kept in front of the re-check.
    """
    if fix is None:
        return diagnosis
    if fix.status is not Outcome.HEALTHY:
        return fix
    return replace(
        fix,
        steps=diagnosis.steps + fix.steps,
        started=diagnosis.started,
        status=Outcome.FIXED,
        notes=(*fix.notes, "confirmed by diagnose; cleared by an earlier fix on this host"),
    )


def _fix(request: RunRequest, found: RunResult, options: dict[str, Any]) -> RunResult:
    """Remediate what detect confirmed, in fix order; the rest keep their diagnosis."""
    confirmed = {(r.host, r.runbook) for r in found.results if r.status is Outcome.WOULD_FIX}
    chosen = sorted(
        (p for p in request.planned if (p.job.host_name, p.job.runbook_name) in confirmed),
        key=fix_order,
    )
    if not chosen:
        return found
    console = make_console(stderr=True)
    verbosity = -1 if options["quiet"] else options["verbose"]
    engine = assemble(
        replace(request, planned=chosen),
        ConsoleObserver(console, verbosity),
        TerminalApprover(console),
    )
    fixed = run_interruptibly(engine, chosen, request.run_id, announce_signal)
    by_key = {(r.host, r.runbook): r for r in fixed.results}
    return replace(
        found,
        results=tuple(_merged(r, by_key.get((r.host, r.runbook))) for r in found.results),
        mode=fixed.mode,
        aborted=fixed.aborted,
        ended=fixed.ended,
    )
