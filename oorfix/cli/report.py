"""`oorfix runs` and `oorfix report`: past runs from the state directory, and their reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from oorfix.app.state import open_state
from oorfix.cli.common import input_errors_exit, store_call
from oorfix.cli.options import shared
from oorfix.errors import InputError
from oorfix.output.console import make_console
from oorfix.output.history import RunSummary
from oorfix.output.record import RunRecord, write_record
from oorfix.output.reports import format_when, outcome_counts
from oorfix.output.reports.html import html_report
from oorfix.output.reports.junit import junit_xml
from oorfix.output.reports.markdown import markdown_report

RENDERERS: dict[str, Callable[[RunRecord], str]] = {
    "md": markdown_report,
    "html": html_report,
    "junit": junit_xml,
}
_SUFFIX_FORMAT = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".xml": "junit"}

state_dir_opt = shared("state_dir", "state")


def write_junit(record: RunRecord, path: Path) -> None:
    """Write the JUnit XML of a run record to ``path`` (atomically)."""
    write_record(path, junit_xml(record))


@click.command()
@state_dir_opt
@click.option("-n", "--last", type=click.IntRange(1), help="only the N newest runs")
@input_errors_exit
def runs(state_dir: Path, state: str | None, last: int | None) -> None:
    """List past runs, newest first: id, when, who, what, outcome."""
    store = open_state(state, state_dir).history()
    found = store_call(store.runs)
    console = make_console()
    if not found:
        console.print(f"no run is stored in {escape(store.where)}")
        return
    console.print(runs_table(found[:last] if last else found))


def runs_table(found: list[RunSummary]) -> Table:
    """One row per run: id, when, who, what, outcome."""
    table = Table(title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("when", no_wrap=True)
    for column in ("who", "what", "outcome"):
        table.add_column(column, overflow="fold")
    for run in found:
        what = escape(", ".join(run.runbooks) or "-")
        aborted = ", interrupted" if run.aborted else ""
        table.add_row(
            escape(run.id),
            format_when(run.started),
            escape(run.operator),
            what + (" [dim](dry-run)[/]" if run.dry_run else ""),
            f"{escape(outcome_counts(run.summary))} [dim](exit {run.exit_code}{aborted})[/]",
        )
    return table


@click.command()
@click.argument("run_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(RENDERERS)),
    help="md (default), html or junit; guessed from -o FILE's suffix when not given",
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="default: stdout"
)
@state_dir_opt
@input_errors_exit
def report(
    run_id: str, fmt: str | None, output: Path | None, state_dir: Path, state: str | None
) -> None:
    """Write the incident report of a past run (RUN_ID: its id or a unique prefix of it)."""
    store = open_state(state, state_dir).history()
    record = store_call(lambda: store.load(run_id))
    chosen = fmt or (_SUFFIX_FORMAT.get(output.suffix.lower()) if output else None) or "md"
    text = RENDERERS[chosen](record)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_record(output, text)
    except OSError as exc:
        raise InputError(f"cannot write the report: {exc.strerror or exc}", output) from None
