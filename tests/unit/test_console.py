"""Console output for people: progress only on a terminal, colour rules, the fault matrix."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.markup import escape

from oorfix.output.console import ConsoleObserver, fault_matrix, make_console
from oorfix.results import HostResult, Outcome, RunMode, RunResult, utcnow


def _result(host: str, fault: str, status: Outcome, runbook: str = "rb") -> HostResult:
    return HostResult(host, runbook, fault, status)


def _render(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def test_progress_shows_jobs_done_of_total_on_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    observer = ConsoleObserver(console)
    observer.start(2)
    observer.job_finished(_result("h1", "software.crash", Outcome.HEALTHY))
    observer.job_finished(_result("h2", "software.crash", Outcome.FIXED))
    observer.stop()
    assert "2/2" in _render(console)


def test_no_progress_and_no_colour_off_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False, width=100)
    observer = ConsoleObserver(console)
    observer.start(1)
    observer.job_finished(_result("h1", "software.crash", Outcome.FIXED))
    observer.stop()
    text = _render(console)
    assert "1/1" not in text
    assert "\x1b[" not in text
    assert "fixed h1 rb" in " ".join(text.split())


def test_a_hosts_text_is_printed_as_it_came_not_as_emoji(
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_console().print(f"[red]failed[/] {escape('disk :fire: at 95% :warning:')}")
    assert "disk :fire: at 95% :warning:" in capsys.readouterr().out


def test_no_color_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_console().no_color


def test_fault_matrix_shows_the_worst_cell_and_dots_where_no_runbook_applies() -> None:
    now = utcnow()
    results = (
        _result("h1", "software.crash", Outcome.HEALTHY, "a"),
        _result("h1", "software.crash", Outcome.WOULD_FIX, "b"),
        _result("h2", "software.crash", Outcome.UNREACHABLE, "a"),
        _result("h1", "hardware.power", Outcome.HEALTHY, "c"),
    )
    run = RunResult("r", now, now, RunMode.DETECT, results)
    console = Console(file=io.StringIO(), force_terminal=False, width=120)
    console.print(fault_matrix(run))
    rows = [" ".join(line.replace("│", " ").split()) for line in _render(console).splitlines()]
    assert "hardware.power ok ·" in rows
    assert "software.crash CONFIRMED unreachable" in rows
    # Categories in fix order: hardware before software.
    assert rows.index("hardware.power ok ·") < rows.index("software.crash CONFIRMED unreachable")
