"""`oorfix audit`: check the audit log's hash chain, and copy it out.

``oorfix audit verify`` exits 0 when the chain is intact, 1 at the first broken or edited
line (printed), 2 when the log cannot be read, and 3 when a Redis state does not answer. A
missing log exits 0 with "no audit log at WHERE": a state where nothing was ever changed has
nothing to verify, and failing there would break scripts that verify after every run.
``oorfix audit export FILE`` writes the log (from a directory or Redis) as a file that
``oorfix audit verify --file FILE`` checks, to ship or anchor it elsewhere.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from oorfix.app.state import open_state
from oorfix.cli.common import input_errors_exit, store_call
from oorfix.cli.options import shared
from oorfix.errors import InputError
from oorfix.results import ExitCode
from oorfix.safety.audit import VerifyResult, verify
from oorfix.safety.locks import default_owner

T = TypeVar("T")


@click.group()
def audit() -> None:
    """The audit log: an entry before and after every change, each chained to the last."""


@audit.command("verify")
@shared("state_dir", "state")
@click.option(
    "--file",
    "log_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="check this file instead (a copy, a backup or an export of a log)",
)
@input_errors_exit
def verify_command(state_dir: Path, state: str | None, log_file: Path | None) -> None:
    """Check every entry's hash and link; print the first broken or edited line, exit 1."""
    if log_file is not None:
        where = str(log_file)
        if not log_file.exists():
            click.echo(f"no audit log at {where}")
            sys.exit(ExitCode.OK)
        result = _read(where, lambda: verify(log_file))
    else:
        log = open_state(state, state_dir).audit(default_owner())
        where = log.where
        if not store_call(log.exists):
            click.echo(f"no audit log at {where}")
            sys.exit(ExitCode.OK)
        # A directory's log is read only up to a size no append is halfway through.
        result = _read(where, lambda: store_call(log.verify))
    click.echo(_describe(where, result))
    sys.exit(ExitCode.OK if result.ok else ExitCode.FAULT)


@audit.command("export")
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@shared("state_dir", "state")
@input_errors_exit
def export_command(output: Path, state_dir: Path, state: str | None) -> None:
    """Write the audit log to OUTPUT ('-': stdout) as a file `audit verify --file` checks."""
    log = open_state(state, state_dir).audit(default_owner())
    if not store_call(log.exists):
        raise InputError(f"no audit log at {log.where}: nothing to export")
    if str(output) == "-":
        count = store_call(lambda: log.export(sys.stdout.buffer))
        sys.stdout.flush()
    else:
        buffer = io.BytesIO()  # then written atomically: no half export is left behind
        count = _read(log.where, lambda: store_call(lambda: log.export(buffer)))
        try:
            tmp = output.with_name(f".{output.name}.tmp")
            tmp.write_bytes(buffer.getvalue())  # bytes as stored, even a damaged line's
            tmp.replace(output)
        except OSError as exc:
            raise InputError(f"cannot write the export: {exc.strerror or exc}", output) from None
    noun = "entry" if count == 1 else "entries"
    click.echo(f"exported {count} {noun} from {log.where}", err=True)


def _read(where: str, action: Callable[[], T]) -> T:
    """``action()``; a log that cannot be read is exit 2, naming it."""
    try:
        return action()
    except OSError as exc:
        click.echo(f"error: cannot read the audit log {where}: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.INPUT)


def _describe(where: str, result: VerifyResult) -> str:
    """One line for people: the count when intact, else the first problem."""
    if result.ok:
        noun = "entry" if result.entries == 1 else "entries"
        return f"audit log {where}: {result.entries} {noun}, chain intact"
    return f"audit log {where}: {result.reason} ({result.entries} intact entries before it)"
