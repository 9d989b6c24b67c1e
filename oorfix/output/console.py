"""Console output for people: progress lines while a run goes, a summary table after."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from oorfix.catalog import CATEGORY_ORDER
from oorfix.results import HostResult, Outcome, Phase, RunResult, StepResult, StepStatus
from oorfix.run.jobs import Job
from oorfix.run.planner import PlannedJob

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

STATUS_STYLE = {
    Outcome.HEALTHY: "green",
    Outcome.FIXED: "bold green",
    Outcome.MITIGATED: "bold yellow",
    Outcome.FAILED: "bold red",
    Outcome.WOULD_FIX: "yellow",
    Outcome.UNREACHABLE: "magenta",
    Outcome.ERROR: "red",
    Outcome.DEFERRED: "yellow",
    Outcome.LOCKED: "yellow",
    Outcome.SKIPPED: "dim",
}
STEP_STYLE = {
    StepStatus.PASSED: "green",
    StepStatus.FAILED: "red",
    StepStatus.ERROR: "bold red",
    StepStatus.SKIPPED: "dim",
    StepStatus.PLANNED: "yellow",
}


def make_console(stderr: bool = False) -> Console:
    """A console that colours only a terminal and respects NO_COLOR (rich does both)."""
    # No emoji: a host's output that holds ":fire:" is printed as it came (and rich's table
    # of emoji codes is not loaded).
    return Console(stderr=stderr, highlight=False, soft_wrap=True, emoji=False)


class ConsoleObserver:
    """Prints a line per finished job (and per step when verbose), with a live progress bar
    (jobs done of total, the step running, time elapsed) when the console is a terminal."""

    def __init__(self, console: Console, verbosity: int = 0):
        self.console = console
        self.verbosity = verbosity
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int) -> None:
        """A run of ``total`` jobs begins."""
        if not self.console.is_terminal or self.verbosity < 0:
            return
        # Imported here: a run whose output is not a terminal never shows a progress bar.
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._task = self._progress.add_task("starting", total=total)
        self._progress.start()

    def stop(self) -> None:
        """The run ended: the progress display goes away."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _advance(self, description: str, done: int = 0) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description, advance=done)

    def job_started(self, job: Job) -> None:
        """Say which runbook starts on which host (verbose only)."""
        if self.verbosity > 0:
            self.console.print(f"[dim]start[/] {job.host.name} {escape(job.runbook_name)}")

    def step_finished(self, job: Job, step: StepResult) -> None:
        """Show a step's result (verbose only) and what runs now."""
        self._advance(f"{job.host.name} {step.phase}: {escape(step.name)[:40]}")
        if self.verbosity <= 0:
            return
        style = STEP_STYLE[step.status]
        where = f"{job.host.name}" + (f"->{step.host}" if step.host else "")
        detail = f" rc={step.rc}" if step.rc is not None else ""
        reason = f" [dim]{escape(step.reason)}[/]" if step.reason else ""
        self.console.print(
            f"  {where} {step.phase}: {escape(step.name)} [{style}]{step.status}[/]{detail}{reason}"
        )
        if self.verbosity > 1 and step.command:
            self.console.print(f"    [dim]$ {escape(step.command)}[/]")

    def job_finished(self, result: HostResult) -> None:
        """One line per finished job, unless quiet."""
        self._advance(f"{result.host} {escape(result.runbook)}: {result.status}", done=1)
        if self.verbosity < 0:
            return
        style = STATUS_STYLE[result.status]
        seconds = (result.ended - result.started).total_seconds()
        detail = f" [dim]{escape(result.error)}[/]" if result.error else ""
        self.console.print(
            f"[{style}]{result.status:>11}[/] {result.host} {escape(result.runbook)}"
            f" [dim]({seconds:.1f}s)[/]{detail}"
        )


def summary_table(run: RunResult, command: str = "run") -> Table:
    """Host by runbook: status, steps run, and what is left to do."""
    title = "dry-run: nothing was changed" if run.dry_run else f"oorfix {command} {run.run_id}"
    table = Table(title=title, title_justify="left")
    table.add_column("host", no_wrap=True)
    table.add_column("runbook", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("detail", overflow="fold")
    for r in run.results:
        style = STATUS_STYLE[r.status]
        detail = r.escalation or r.error or "; ".join(r.notes) or ""
        ran = sum(1 for s in r.steps if s.status not in (StepStatus.SKIPPED, StepStatus.PLANNED))
        table.add_row(r.host, r.runbook, f"[{style}]{r.status}[/]", str(ran), escape(detail))
    return table


def print_plan(console: Console, planned: Sequence[PlannedJob], changes_only: bool = False) -> None:
    """Every rendered command per host and phase; mutating and privileged steps are marked."""
    for item in planned:
        job = item.job
        console.print(
            f"[bold]{job.host.name}[/] {escape(job.runbook_name)} ({job.loaded.runbook.fault})"
        )
        for step in item.steps:
            if changes_only and not step.mutating:
                continue
            mark = "[yellow]change[/]" if step.mutating else "[dim]read  [/]"
            on = f" on {','.join(h.name for h in step.targets)}" if step.step.on else ""
            when = f" [dim]when {escape(step.when)}[/]" if step.when else ""
            users = sorted({b.user for b in step.become.values() if b is not None})
            runs_as = f" [bold red]as {escape(','.join(users))}[/]" if users else ""
            console.print(f"  {mark} {step.phase:<9} {escape(step.label)}{on}{when}{runs_as}")
            console.print(f"           $ {escape(str(step.command))}", style="dim")


def catalog_table(rows: Sequence[tuple[str, str, str, list[str], list[str]]]) -> Table:
    """Fault id, its typical signal and fix, the faults it explains, the runbooks for it."""
    table = Table(title="oorfix fault catalogue", title_justify="left")
    table.add_column("fault", no_wrap=True)
    for column in ("detects", "fixes", "explains", "runbooks"):
        table.add_column(column, overflow="fold")
    for fault, signal, fix, explains, runbooks in rows:
        names = ", ".join(runbooks) if runbooks else "[red]none[/]"
        table.add_row(fault, escape(signal), escape(fix), escape(", ".join(explains)), names)
    return table


MATRIX_CELL = {
    Outcome.HEALTHY: "[green]ok[/]",
    Outcome.WOULD_FIX: "[bold red]CONFIRMED[/]",
    Outcome.FIXED: "[bold green]fixed[/]",
    Outcome.MITIGATED: "[bold yellow]mitigated[/]",
    Outcome.FAILED: "[bold red]FAILED[/]",
    Outcome.ERROR: "[magenta]check error[/]",
    Outcome.UNREACHABLE: "[magenta]unreachable[/]",
    Outcome.DEFERRED: "[yellow]deferred[/]",
    Outcome.LOCKED: "[yellow]locked[/]",
    Outcome.SKIPPED: "[dim]skipped[/]",
}
# Worst first: the cell of a fault with several runbooks on one host shows the worst.
MATRIX_RANK = [
    Outcome.FAILED,
    Outcome.WOULD_FIX,
    Outcome.ERROR,
    Outcome.UNREACHABLE,
    Outcome.LOCKED,
    Outcome.DEFERRED,
    Outcome.MITIGATED,
    Outcome.SKIPPED,
    Outcome.FIXED,
    Outcome.HEALTHY,
]
NO_RUNBOOK = "[dim]·[/]"


def fault_matrix(run: RunResult) -> Table:
    """Fault id by host: confirmed, healthy, check error or unreachable (· where no runbook)."""
    hosts = list(dict.fromkeys(r.host for r in run.results))
    cells: dict[tuple[str, str], Outcome] = {}
    for r in run.results:
        key = (r.fault, r.host)
        if key not in cells or MATRIX_RANK.index(r.status) < MATRIX_RANK.index(cells[key]):
            cells[key] = r.status
    table = Table(title="fault matrix", title_justify="left")
    table.add_column("fault", no_wrap=True)
    for host in hosts:
        table.add_column(host, justify="center")
    for fault in sorted({r.fault for r in run.results}, key=_fault_key):
        row = [
            MATRIX_CELL[cells[(fault, h)]] if (fault, h) in cells else "[dim]·[/]" for h in hosts
        ]
        table.add_row(fault, *row)
    return table


def _fault_key(fault: str) -> tuple[int, str]:
    category = fault.split(".", 1)[0]
    return (CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else 99), fault


def print_evidence(console: Console, run: RunResult, lines: int = 8) -> None:
    """For each confirmed fault: the failed checks and the first lines of each evidence."""
    for r in run.results:
        if r.status not in (Outcome.WOULD_FIX, Outcome.FAILED, Outcome.MITIGATED):
            continue
        console.print(f"\n[bold]{r.host}[/] {escape(r.runbook)} ({r.fault})")
        for step in r.steps:
            if step.status is StepStatus.FAILED:
                console.print(f"  [red]failed[/] {escape(step.name)}: {escape(step.reason or '')}")
            elif step.phase is Phase.EVIDENCE:
                text = "\n".join(step.stdout.text.splitlines()[:lines])
                console.print(f"  [dim]evidence[/] {escape(step.name)}")
                console.print(escape(text), style="dim", highlight=False)
