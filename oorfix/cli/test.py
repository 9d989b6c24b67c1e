"""`oorfix test`: runbook scenarios through the real engine, against scripted hosts."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from oorfix.app.settings import DEFAULT_RUNBOOKS, RunSettings
from oorfix.app.wiring import RunRequest, Seams, assemble
from oorfix.cli.common import input_errors_exit
from oorfix.cli.options import shared
from oorfix.output.console import make_console
from oorfix.output.record import write_record
from oorfix.results import ExitCode, RunMode, RunResult, new_run_id
from oorfix.run.planner import plan_run
from oorfix.testing.checks import Coverage, coverage, differences
from oorfix.testing.report import ScenarioResult, as_json, as_junit
from oorfix.testing.scripted import Script
from oorfix.testing.suites import LoadedSuite, load_suites

MODES = {"fix": RunMode.FIX, "dry-run": RunMode.DRY_RUN, "detect": RunMode.DETECT}


def run_scenario(suite: LoadedSuite, index: int, state: Path) -> tuple[ScenarioResult, RunResult]:
    """One scenario through plan, assembly and engine, with the scenario's scripted hosts."""
    scenario = suite.suite.scenarios[index]
    started = time.perf_counter()
    planned = plan_run([suite.runbook], suite.inventory, suite.suite.vars, scenario.limit)
    settings = RunSettings(
        runbooks=(str(suite.runbook.path),),
        inventory_paths=(suite.path,),
        limit=scenario.limit,
        yes=True,
        force=scenario.force,
        state_dir=state,
    )
    mode = MODES[scenario.mode]
    script = Script(list(scenario.replies), frozenset(scenario.unreachable))
    when = scenario.at
    seams = Seams(
        transports=script.transport,
        sleep=lambda _: None,  # a verify delay passes at once: no test waits on the clock
        clock=(lambda: when) if when is not None else None,
        batch_detect=False,  # one command per check, so each reply rule sees its own
    )
    request = RunRequest(settings, suite.inventory, planned, mode, new_run_id())
    run = assemble(request, seams=seams).run([p.job for p in planned])
    result = ScenarioResult(
        file=suite.path,
        runbook=suite.runbook.name,
        name=scenario.name,
        problems=tuple(differences(scenario.expect, run, script)),
        outcomes={r.host: str(r.status) for r in run.results},
        sent=tuple(script.sent),
        seconds=time.perf_counter() - started,
    )
    return result, run


@click.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-k", "select", help="only scenarios whose name contains this text")
@shared("json", "junit", "quiet")
@input_errors_exit
def test(paths: tuple[Path, ...], select: str | None, **options: Any) -> None:
    """Run the runbook test scenarios (*.test.yml) against scripted hosts, offline."""
    suites = load_suites(list(paths) or [DEFAULT_RUNBOOKS])
    console = make_console(stderr=str(options["json_path"]) == "-")
    results: list[ScenarioResult] = []
    covered: list[Coverage] = []
    with tempfile.TemporaryDirectory(prefix="oorfix-test-") as tmp:
        for number, suite in enumerate(suites):
            runs = []
            for index, scenario in enumerate(suite.suite.scenarios):
                if select and select not in scenario.name:
                    continue
                result, run = run_scenario(suite, index, Path(tmp) / f"{number}-{index}")
                results.append(result)
                runs.append(run)
                _show(console, result, options["quiet"])
            covered.append(coverage(suite.runbook.name, suite.runbook.runbook, runs))
    for item in covered:
        if not options["quiet"]:
            console.print(f"[dim]coverage[/] {escape(item.line())}")
    failed = sum(not r.passed for r in results)
    seconds = sum(r.seconds for r in results)
    colour = "red" if failed else "green"
    console.print(
        f"[{colour}]{len(results) - failed} passed, {failed} failed[/] "
        f"({len(results)} scenarios of {len(suites)} test files in {seconds:.2f}s)"
    )
    if options["junit_path"] is not None:
        write_record(options["junit_path"], as_junit(results))
    if options["json_path"] is not None:
        text = as_json(results, covered)
        if str(options["json_path"]) == "-":
            click.echo(text, nl=False)
        else:
            write_record(options["json_path"], text)
    sys.exit(ExitCode.FAULT if failed else ExitCode.OK)


def _show(console: Any, result: ScenarioResult, quiet: bool) -> None:
    if result.passed:
        if not quiet:
            console.print(f"[green]pass[/] {escape(result.runbook)}: {escape(result.name)}")
        return
    where = escape(str(result.file))
    console.print(f"[bold red]FAIL[/] {escape(result.runbook)}: {escape(result.name)} ({where})")
    for problem in result.problems:
        console.print(f"     {escape(problem)}")
