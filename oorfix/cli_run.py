"""`oorfix run`: plan offline, then detect and fix on real hosts, and write the record."""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from oorfix.cli_common import (
    extra_opt,
    input_errors_exit,
    inventory_opt,
    limit_opt,
    load_and_plan,
    runbook_args,
)
from oorfix.console import ConsoleObserver, make_console, summary_table
from oorfix.engine import Engine, EngineOptions
from oorfix.errors import InputError
from oorfix.hosts import Host
from oorfix.pool import ConnectionPool
from oorfix.record import record_json, write_record
from oorfix.results import ExitCode, RunResult, new_run_id, utcnow
from oorfix.transport import ConnectOptions, Transport, open_transport


def _transport_factory(options: ConnectOptions) -> Callable[[Host], Transport]:
    def factory(host: Host) -> Transport:
        return open_transport(host.connection(), options)

    return factory


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
@click.option("-v", "--verbose", count=True, help="-v steps, -vv commands")
@click.option("-q", "--quiet", is_flag=True, help="only the summary")
@input_errors_exit
def run(
    runbooks: tuple[str, ...],
    inventory_path: Path,
    limit: str | None,
    extra: tuple[str, ...],
    dry_run: bool,
    forks: int,
    known_hosts: Path | None,
    accept_new_host_keys: bool,
    connect_timeout: float,
    json_path: Path | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Run runbooks against hosts: detect, and fix what is confirmed (unless --dry-run)."""
    _check_writable(json_path)
    inventory, planned = load_and_plan(runbooks, inventory_path, extra, limit)
    console = make_console(stderr=str(json_path) == "-")
    meta = {"runbooks": list(runbooks), "inventory": str(inventory_path), "limit": limit}
    if not planned:
        now = utcnow()
        _emit_record(RunResult(new_run_id(), now, now, dry_run), meta, json_path)
        sys.exit(ExitCode.OK)
    options = ConnectOptions(
        known_hosts=known_hosts,
        accept_new_host_keys=accept_new_host_keys,
        connect_timeout=connect_timeout,
        banner_timeout=connect_timeout,
        auth_timeout=connect_timeout,
    )
    engine = Engine(
        inventory,
        ConnectionPool(_transport_factory(options)),
        EngineOptions(forks=forks, dry_run=dry_run),
        ConsoleObserver(console, -1 if quiet else verbose),
    )
    previous = _on_interrupt(engine.abort)
    try:
        result = engine.run([p.job for p in planned])
    finally:
        signal.signal(signal.SIGINT, previous)
    _emit_record(result, meta, json_path)
    console.print(summary_table(result))
    sys.exit(result.exit_code())


def _check_writable(path: Path | None) -> None:
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


def _emit_record(result: RunResult, meta: dict[str, Any], json_path: Path | None) -> None:
    if json_path is None:
        return
    text = record_json(result, meta)
    if str(json_path) == "-":
        click.echo(text, nl=False)
    else:
        write_record(json_path, text)


def _on_interrupt(abort: Callable[[], None]) -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        make_console(stderr=True).print("[yellow]interrupted: finishing running steps[/]")
        abort()

    return signal.signal(signal.SIGINT, handler)
