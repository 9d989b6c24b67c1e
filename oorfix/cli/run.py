"""`oorfix run`: plan offline, then detect and fix on real hosts, and write the record."""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
from rich.console import Console

from oorfix.cli.common import (
    extra_opt,
    input_errors_exit,
    inventory_opt,
    limit_opt,
    load_and_plan,
    runbook_args,
)
from oorfix.errors import InputError
from oorfix.inventory.hosts import Host
from oorfix.output.console import ConsoleObserver, make_console, print_plan, summary_table
from oorfix.output.history import save_run
from oorfix.output.record import record_json, run_dict, write_record
from oorfix.output.reports.junit import junit_xml
from oorfix.results import ExitCode, RunResult, new_run_id, utcnow
from oorfix.run.engine import Engine, EngineOptions
from oorfix.run.planner import PlannedJob
from oorfix.run.pool import ConnectionPool
from oorfix.run.rollout import batch_size, parse_serial
from oorfix.safety.audit import AuditLog
from oorfix.safety.budget import RemediationBudget
from oorfix.safety.gates import RunGate
from oorfix.safety.locks import HostLocks, default_owner
from oorfix.safety.state import StateDir, default_state_dir
from oorfix.transport import ConnectOptions, Transport, open_transport


def transport_factory(options: ConnectOptions) -> Callable[[Host], Transport]:
    def factory(host: Host) -> Transport:
        return open_transport(host.connection(), options)

    return factory


@dataclass(frozen=True)
class RunSettings:
    """The options of `oorfix run`, as given."""

    runbooks: tuple[str, ...]
    inventory_path: Path
    limit: str | None
    extra: tuple[str, ...]
    dry_run: bool
    forks: int
    known_hosts: Path | None
    accept_new_host_keys: bool
    connect_timeout: float
    json_path: Path | None
    verbose: int
    quiet: bool
    serial: str | None
    max_fail_percent: float | None
    yes: bool
    force: bool
    state_dir: Path
    lock_ttl: float
    junit_path: Path | None = None


@click.command()
@runbook_args
@inventory_opt
@limit_opt
@extra_opt
@click.option("--dry-run", is_flag=True, help="run only read-only phases; show what would change")
@click.option("-f", "--forks", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--known-hosts", type=click.Path(path_type=Path), help="default: ~/.ssh/known_hosts")
@click.option("--accept-new-host-keys", is_flag=True, help="trust and remember unknown host keys")
@click.option("--connect-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1))
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), help="run record ('-': stdout)"
)
@click.option("--junit", "junit_path", type=click.Path(path_type=Path), help="JUnit XML report")
@click.option("-v", "--verbose", count=True, help="-v steps, -vv commands")
@click.option("-q", "--quiet", is_flag=True, help="only the summary")
@click.option("--serial", help="remediate in batches: N hosts or P% (wins over the runbooks)")
@click.option(
    "--max-fail-percent",
    type=click.FloatRange(0, 100),
    help="stop starting hosts once failed hosts exceed this share",
)
@click.option("-y", "--yes", is_flag=True, help="approve runbooks that require approval")
@click.option("--force", is_flag=True, help="fix outside the runbooks' maintenance windows")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=default_state_dir,
    show_default="$XDG_STATE_HOME/oorfix",
    help="host locks, remediation budgets",
)
@click.option("--lock-ttl", default=900.0, show_default=True, type=click.FloatRange(1))
@input_errors_exit
def run(**options: Any) -> None:
    """Run runbooks against hosts: detect, and fix what is confirmed (unless --dry-run)."""
    settings = RunSettings(**options)
    check_writable(settings.json_path)
    check_writable(settings.junit_path)
    inventory, planned = load_and_plan(
        settings.runbooks, settings.inventory_path, settings.extra, settings.limit
    )
    console = make_console(stderr=str(settings.json_path) == "-")
    meta = {
        "runbooks": list(settings.runbooks),
        "inventory": str(settings.inventory_path),
        "limit": settings.limit,
    }
    run_id = new_run_id()
    if not planned:
        now = utcnow()
        emit_record(
            RunResult(run_id, now, now, settings.dry_run),
            meta,
            settings.json_path,
            settings.junit_path,
        )
        sys.exit(ExitCode.OK)
    observer = ConsoleObserver(console, -1 if settings.quiet else settings.verbose)
    engine = Engine(
        inventory,
        ConnectionPool(transport_factory(connect_options(settings))),
        engine_options(settings, planned),
        observer,
        make_gate(settings, planned, run_id, console),
        make_audit(settings),
    )
    observer.start(len(planned))
    try:
        result = run_interruptibly(engine, planned, run_id)
    finally:
        observer.stop()
    emit_record(result, meta, settings.json_path, settings.junit_path)
    keep_history(settings.state_dir, result, meta, planned)
    console.print(summary_table(result))
    sys.exit(result.exit_code())


def connect_options(settings: RunSettings) -> ConnectOptions:
    timeout = settings.connect_timeout
    return ConnectOptions(
        known_hosts=settings.known_hosts,
        accept_new_host_keys=settings.accept_new_host_keys,
        connect_timeout=timeout,
        banner_timeout=timeout,
        auth_timeout=timeout,
    )


def engine_options(settings: RunSettings, planned: Sequence[PlannedJob]) -> EngineOptions:
    """Batches and the breaker: the command line wins, else the most careful runbook."""
    runbooks = {p.job.runbook_name: p.job.loaded.runbook for p in planned}.values()
    hosts = len({p.job.host.name for p in planned})
    serials = [settings.serial] if settings.serial else [r.serial for r in runbooks if r.serial]
    try:
        sizes = [batch_size(parse_serial(s), hosts) for s in serials if s is not None]
    except ValueError as exc:
        raise InputError(f"--serial: {exc}") from None
    percents = [r.max_fail_percent for r in runbooks if r.max_fail_percent is not None]
    if settings.max_fail_percent is not None:
        percents = [settings.max_fail_percent]
    return EngineOptions(
        forks=settings.forks,
        dry_run=settings.dry_run,
        serial=min(sizes) if sizes else None,
        max_fail_percent=min(percents) if percents else None,
    )


def make_gate(
    settings: RunSettings, planned: Sequence[PlannedJob], run_id: str, console: Console
) -> RunGate | None:
    if settings.dry_run:
        return None
    state = StateDir(settings.state_dir)
    try:
        state.ensure()
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise InputError(f"cannot use the state directory: {why}", state.path) from None
    return RunGate(
        locks=HostLocks(state, run_id, default_owner(), settings.lock_ttl),
        budget=RemediationBudget(state),
        approved=_approvals(settings, planned, console),
        force=settings.force,
    )


def make_audit(settings: RunSettings) -> AuditLog | None:
    """The audit log of a run that may change hosts (a dry-run changes nothing)."""
    if settings.dry_run:
        return None
    return AuditLog(StateDir(settings.state_dir), default_owner())


def plan_data(planned: Sequence[PlannedJob]) -> list[dict[str, Any]]:
    """The rendered plan as JSON-ready data (commands masked), for the run history."""
    return [
        {
            "host": p.job.host.name,
            "runbook": p.job.runbook_name,
            "steps": [
                {
                    "phase": str(s.phase),
                    "name": s.label,
                    "command": str(s.command),
                    "mutating": s.mutating,
                    "on": [h.name for h in s.targets] if s.step.on else None,
                }
                for s in p.steps
            ],
        }
        for p in planned
    ]


def keep_history(
    state_dir: Path, result: RunResult, meta: dict[str, Any], planned: Sequence[PlannedJob]
) -> None:
    """Store the run (record, plan, evidence) in the state directory; warn if it cannot be."""
    try:
        save_run(StateDir(state_dir), run_dict(result, meta), plan_data(planned))
    except OSError as exc:
        warn = make_console(stderr=True)
        warn.print(f"[yellow]warning:[/] the run was not kept in {state_dir}: {exc}")


def _approvals(
    settings: RunSettings, planned: Sequence[PlannedJob], console: Console
) -> frozenset[str]:
    """The runbooks whose fixes may run: asked on a terminal, --yes, or none."""
    required = {p.job.runbook_name for p in planned if p.job.loaded.runbook.approval == "required"}
    if not required or settings.yes:
        return frozenset(required)
    names = ", ".join(sorted(required))
    if not sys.stdin.isatty():
        warn = make_console(stderr=True)
        warn.print(f"[yellow]approval required for {names}[/]: no terminal to ask and no --yes, "
                   "so their fixes are deferred")  # fmt: skip
        return frozenset()
    print_plan(console, [p for p in planned if p.job.runbook_name in required], changes_only=True)
    if click.confirm(f"Apply the changes of {names} where their faults are confirmed?"):
        return frozenset(required)
    return frozenset()


def run_interruptibly(engine: Engine, planned: Sequence[PlannedJob], run_id: str) -> RunResult:
    """Ctrl-C or SIGTERM: no new host or step starts; the record is still written."""
    previous = {sig: _on_signal(sig, engine.abort) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return engine.run([p.job for p in planned], run_id)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_writable(path: Path | None) -> None:
    """Refuse an unwritable --json path before any host is touched, not after."""
    if path is None or str(path) == "-":
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".oorfix-check-"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write the run record: {exc.strerror or exc}", path) from None
    if path.is_dir():
        raise InputError("cannot write the run record: it is a directory", path)


def emit_record(
    result: RunResult, meta: dict[str, Any], json_path: Path | None, junit_path: Path | None = None
) -> None:
    """Write the run record (and JUnit XML) where asked."""
    if junit_path is not None:
        write_record(junit_path, junit_xml(run_dict(result, meta)))
    if json_path is None:
        return
    text = record_json(result, meta)
    if str(json_path) == "-":
        click.echo(text, nl=False)
    else:
        write_record(json_path, text)


def _on_signal(signum: signal.Signals, abort: Callable[[], None]) -> Any:
    def handler(received: int, frame: FrameType | None) -> None:
        name = signal.Signals(received).name
        make_console(stderr=True).print(f"[yellow]{name}: finishing running steps[/]")
        abort()

    return signal.signal(signum, handler)
