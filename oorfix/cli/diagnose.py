"""`oorfix diagnose`: every fault runbook's checks across the fleet, incidents by root
cause, and --fix (root causes in causal order, re-checked, until the fleet converges)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from oorfix.app.execute import Execution, Hooks, RunSpec
from oorfix.app.wiring import run_interruptibly
from oorfix.cli.common import input_errors_exit, load_and_plan, seams_for, settings_from, warn
from oorfix.cli.options import RUN_OPTIONS, shared
from oorfix.cli.run import Outputs, TerminalApprover, announce_signal, finish
from oorfix.diagnosis.incidents import HostDiagnosis
from oorfix.output.console import ConsoleObserver, fault_matrix, make_console, print_evidence
from oorfix.output.diagnosis import print_convergence, print_diagnosis
from oorfix.results import RunMode, RunResult
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
    loaded = load_and_plan(settings)
    if options["fix"]:
        mode = RunMode.DRY_RUN if options["dry_run"] else RunMode.FIX
    else:
        mode = RunMode.DETECT
    console = make_console(stderr=str(outputs.json_path) == "-")
    verbosity = -1 if options["quiet"] else options["verbose"]

    def observer(mode: RunMode) -> ConsoleObserver:
        return ConsoleObserver(
            make_console(stderr=True), -1 if mode is RunMode.DETECT else verbosity
        )

    def diagnosed(found: RunResult, hosts: Sequence[HostDiagnosis]) -> None:
        console.print(fault_matrix(found))
        print_diagnosis(console, hosts)
        if not options["quiet"]:
            print_evidence(console, found)

    hooks = Hooks(observer, TerminalApprover(make_console(stderr=True)), diagnosed)
    spec = RunSpec("diagnose", settings, mode, catalog)
    execution = Execution(spec, loaded, hooks, seams_for(settings))
    planned = execution.planned
    if len(planned) < len(loaded.planned):
        every = {p.job.runbook_name for p in loaded.planned}
        names = sorted(every - {p.job.runbook_name for p in planned})
        warn(f"preventive runbooks are left to `oorfix run`, not diagnosed: {', '.join(names)}")
    if not planned:
        sys.exit(0)
    done = run_interruptibly(execution.execute, execution.abort, announce_signal)
    if done.convergence is not None and mode is RunMode.FIX:
        print_convergence(console, done.convergence)
    finish(done, settings, planned, outputs)
    sys.exit(done.exit_code)
