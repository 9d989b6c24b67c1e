"""`oorfix diagnose`: every fault runbook's checks across the fleet, incidents by root
cause, and --fix (root causes in causal order, re-checked, until the fleet converges)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import click

from oorfix.catalog import is_maintenance
from oorfix.cli.common import input_errors_exit, load_and_plan, settings_from, warn
from oorfix.cli.options import RUN_OPTIONS, shared
from oorfix.cli.run import Outputs, TerminalApprover, announce_signal, finish
from oorfix.cli.wiring import RunRequest, assemble, run_interruptibly
from oorfix.diagnosis.converge import Convergence, Fixer
from oorfix.diagnosis.incidents import HostDiagnosis
from oorfix.diagnosis.incidents import diagnose as diagnose_hosts
from oorfix.output.console import ConsoleObserver, fault_matrix, make_console, print_evidence
from oorfix.output.diagnosis import print_convergence, print_diagnosis
from oorfix.output.record import DiagnosisRecord
from oorfix.results import ExitCode, RunMode, RunResult, new_run_id
from oorfix.run.planner import PlannedJob
from oorfix.runbook.catalogfile import site_catalog


@click.command()
@shared("inventory")
@shared("runbook_dir")
@shared(*RUN_OPTIONS[1:3])
@click.option("--fix", is_flag=True, help="fix the root causes, in causal order, re-checking")
@shared("dry_run")
@shared(*RUN_OPTIONS[3:])
@input_errors_exit
def diagnose(**options: Any) -> None:
    """Test every fault runbook on every host it covers; show incidents by root cause.

    Preventive runbooks (fault maintenance.*) are left to `oorfix run` and schedules.
    """
    settings = settings_from(options, runbooks=(str(options["runbook_dir"]),))
    outputs = Outputs.of("diagnose", options)
    catalog = site_catalog([options["runbook_dir"]])
    inventory, every = load_and_plan(
        settings.runbooks, settings.inventory_path, settings.extra, settings.limit
    )
    planned = [p for p in every if not is_maintenance(p.job.runbook.fault)]
    if len(planned) < len(every):
        names = sorted({p.job.runbook_name for p in every} - {p.job.runbook_name for p in planned})
        warn(f"preventive runbooks are left to `oorfix run`, not diagnosed: {', '.join(names)}")
    if not planned:
        sys.exit(0)
    run_id = new_run_id()
    console = make_console(stderr=str(outputs.json_path) == "-")
    verbosity = -1 if options["quiet"] else options["verbose"]
    request = RunRequest(settings, inventory, planned, RunMode.DETECT, run_id)

    def runner(jobs: Sequence[PlannedJob], mode: RunMode) -> RunResult:
        observer = ConsoleObserver(
            make_console(stderr=True), -1 if mode is RunMode.DETECT else verbosity
        )
        approver = TerminalApprover(make_console(stderr=True))
        engine = assemble(replace(request, planned=list(jobs), mode=mode), observer, approver)
        return run_interruptibly(engine, jobs, run_id, announce_signal)

    found = runner(planned, RunMode.DETECT)
    hosts = diagnose_hosts(found.results, catalog)
    console.print(fault_matrix(found))
    print_diagnosis(console, hosts)
    if not options["quiet"]:
        print_evidence(console, found)
    if not options["fix"] or found.aborted:
        code = _exit_code(found, hosts)
        record = DiagnosisRecord(hosts=hosts)
        finish(found, settings, planned, outputs, {"diagnosis": record, "exit_code": int(code)})
        sys.exit(code)
    mode = RunMode.DRY_RUN if options["dry_run"] else RunMode.FIX
    done = Fixer(runner, catalog, planned).fix(found, mode)
    result = replace(found, mode=mode, results=tuple(done.results.values()))
    if mode is RunMode.FIX:
        print_convergence(console, done)
        code = _fix_exit_code(result, done)
    else:
        code = result.exit_code()
    record = DiagnosisRecord(
        hosts=hosts,
        waves=done.waves,
        explained=tuple(done.explained),
        conflicts=tuple(done.conflicts),
        converged=done.converged if mode is RunMode.FIX else None,
        after=done.after,
    )
    finish(result, settings, planned, outputs, {"diagnosis": record, "exit_code": int(code)})
    sys.exit(code)


def _exit_code(found: RunResult, hosts: Sequence[HostDiagnosis]) -> ExitCode:
    """The results' exit code; symptoms that no confirmed cause explains are a fault too."""
    code = found.exit_code()
    unexplained = any(i.root_cause is None for h in hosts for i in h.incidents)
    if unexplained and code in (ExitCode.OK, ExitCode.MITIGATED):
        return ExitCode.FAULT
    return code


def _fix_exit_code(result: RunResult, done: Convergence) -> ExitCode:
    """A conflict, or a fault the re-diagnosis still finds, leaves a fault."""
    code = result.exit_code()
    if not done.converged and code in (ExitCode.OK, ExitCode.MITIGATED):
        return ExitCode.FAULT
    return code
