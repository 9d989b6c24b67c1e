"""`oorfix run`: plan offline, then detect and fix on real hosts, and write the record."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from oorfix.app.execute import Execution, Finished, Hooks, RunSpec
from oorfix.app.settings import RunSettings
from oorfix.app.wiring import check_writable, keep_history, run_interruptibly, write_outputs
from oorfix.cli.common import (
    input_errors_exit,
    load_and_plan,
    runbook_args,
    seams_for,
    settings_from,
    warn,
)
from oorfix.cli.options import RUN_OPTIONS, shared
from oorfix.errors import StateUnavailable
from oorfix.output.console import ConsoleObserver, make_console, print_plan, summary_table
from oorfix.output.record import RunRecord
from oorfix.results import RunMode
from oorfix.run.planner import PlannedJob
from oorfix.safety.redis_client import mask_url


@click.command()
@runbook_args
@shared(*RUN_OPTIONS[:3])
@shared("dry_run")
@click.option(
    "--detect-only",
    is_flag=True,
    help="check and collect evidence; change nothing and render no fix",
)
@shared("runbook_dir")
@shared(*RUN_OPTIONS[3:])
@input_errors_exit
def run(**options: Any) -> None:
    """Run runbooks against hosts: detect, and fix what is confirmed (unless --dry-run)."""
    if options["dry_run"] and options["detect_only"]:
        raise click.UsageError("--dry-run and --detect-only exclude each other")
    settings = settings_from(options)
    outputs = Outputs.of("run", options)
    loaded = load_and_plan(settings)
    mode = RunMode.DRY_RUN if options["dry_run"] else RunMode.FIX
    if options["detect_only"]:
        mode = RunMode.DETECT
    console = make_console(stderr=str(options["json_path"]) == "-")
    verbosity = -1 if options["quiet"] else options["verbose"]
    observer = ConsoleObserver(console, verbosity)
    hooks = Hooks(observer=lambda _mode: observer, approve=TerminalApprover(console))
    execution = Execution(RunSpec("run", settings, mode), loaded, hooks, seams_for(settings))
    if not execution.planned:
        finish(execution.execute(), settings, execution.planned, outputs)
        sys.exit(0)
    observer.start(len(execution.planned))
    try:
        done = run_interruptibly(execution.execute, execution.abort, announce_signal)
    finally:
        observer.stop()
    finish(done, settings, execution.planned, outputs)
    console.print(summary_table(done.result))
    sys.exit(done.exit_code)


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
    done: Finished, settings: RunSettings, planned: Sequence[PlannedJob], outputs: Outputs
) -> RunRecord:
    """Write the record where asked and keep the run in the history."""
    text = write_outputs(done.record, outputs.json_path, outputs.junit_path)
    if text is not None:
        click.echo(text, nl=False)
    try:
        keep_history(settings, done.record, planned)
    except (OSError, StateUnavailable) as exc:
        where = mask_url(settings.state) if settings.state else settings.state_dir
        warn(f"the run was not kept in {where}: {exc}")
    return done.record


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
