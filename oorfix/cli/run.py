"""`oorfix run`: plan offline, then detect and fix on real hosts, and write the record."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from oorfix.cli.common import input_errors_exit, load_and_plan, runbook_args, settings_from, warn
from oorfix.cli.options import RUN_OPTIONS, shared
from oorfix.cli.settings import RunSettings
from oorfix.cli.wiring import (
    RunRequest,
    assemble,
    check_writable,
    keep_history,
    run_interruptibly,
    write_outputs,
)
from oorfix.output.console import ConsoleObserver, make_console, print_plan, summary_table
from oorfix.output.record import RunRecord
from oorfix.results import RunMode, RunResult, new_run_id, utcnow
from oorfix.run.planner import PlannedJob


@click.command()
@runbook_args
@shared(*RUN_OPTIONS[:3])
@shared("dry_run")
@shared(*RUN_OPTIONS[3:])
@input_errors_exit
def run(**options: Any) -> None:
    """Run runbooks against hosts: detect, and fix what is confirmed (unless --dry-run)."""
    settings = settings_from(options)
    outputs = Outputs.of("run", options)
    inventory, planned = load_and_plan(
        settings.runbooks, settings.inventory_path, settings.extra, settings.limit
    )
    mode = RunMode.DRY_RUN if options["dry_run"] else RunMode.FIX
    console = make_console(stderr=str(options["json_path"]) == "-")
    run_id = new_run_id()
    if not planned:
        now = utcnow()
        finish(RunResult(run_id, now, now, mode), settings, planned, outputs)
        sys.exit(0)
    observer = ConsoleObserver(console, -1 if options["quiet"] else options["verbose"])
    request = RunRequest(settings, inventory, planned, mode, run_id)
    engine = assemble(request, observer, TerminalApprover(console))
    observer.start(len(planned))
    try:
        result = run_interruptibly(engine, planned, run_id, announce_signal)
    finally:
        observer.stop()
    finish(result, settings, planned, outputs)
    console.print(summary_table(result))
    sys.exit(result.exit_code())


def announce_signal(name: str) -> None:
    """Tell the operator that a signal stops the run at the next step."""
    make_console(stderr=True).print(f"[yellow]{name}: finishing running steps[/]")


@dataclass(frozen=True)
class Outputs:
    """Which command made the run, and where its record and JUnit XML go."""

    command: str
    json_path: Path | None
    junit_path: Path | None

    @classmethod
    def of(cls, command: str, options: dict[str, Any]) -> Outputs:
        """The outputs a command's parsed options ask for, checked writable now."""
        check_writable(options["json_path"])
        check_writable(options["junit_path"])
        return cls(command, options["json_path"], options["junit_path"])


def finish(
    result: RunResult,
    settings: RunSettings,
    planned: Sequence[PlannedJob],
    outputs: Outputs,
    extra: Mapping[str, Any] | None = None,
) -> RunRecord:
    """Write the record where asked and keep the run in the history (``extra``: more of it)."""
    meta = {
        "command": outputs.command,
        "runbooks": list(settings.runbooks),
        "inventory": str(settings.inventory_path),
        "limit": settings.limit,
        **(extra or {}),
    }
    record = RunRecord.of(result, meta)
    text = write_outputs(record, outputs.json_path, outputs.junit_path)
    if text is not None:
        click.echo(text, nl=False)
    try:
        keep_history(settings, record, planned)
    except OSError as exc:
        warn(f"the run was not kept in {settings.state_dir}: {exc}")
    return record


class TerminalApprover:
    """Asks on a terminal which runbooks that require approval may fix; none without one."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, required: frozenset[str], planned: Sequence[PlannedJob]) -> frozenset[str]:
        """The approved subset of ``required``."""
        names = ", ".join(sorted(required))
        if not sys.stdin.isatty():
            warn(f"approval required for {names}: no terminal to ask and no --yes, "
                 "so their fixes are deferred")  # fmt: skip
            return frozenset()
        asked = [p for p in planned if p.job.runbook_name in required]
        print_plan(self.console, asked, changes_only=True)
        if click.confirm(f"Apply the changes of {names} where their faults are confirmed?"):
            return required
        return frozenset()
