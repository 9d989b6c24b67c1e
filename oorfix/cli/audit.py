"""`oorfix audit`: check the audit log's hash chain.

``oorfix audit verify`` exits 0 when the chain is intact, 1 at the first broken or edited
line (printed), and 2 when the log cannot be read. A missing log exits 0 with "no audit log
at PATH": a state directory where nothing was ever changed has nothing to verify, and
failing there would break scripts that verify after every run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from oorfix.cli.options import shared
from oorfix.results import ExitCode
from oorfix.safety.audit import VerifyResult, audit_path, verify, verify_state
from oorfix.safety.state import StateDir


@click.group()
def audit() -> None:
    """The audit log: an entry before and after every change, each chained to the last."""


@audit.command("verify")
@shared("state_dir")
@click.option(
    "--file",
    "log_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="check this file instead (a copy or a backup of a log)",
)
def verify_command(state_dir: Path, log_file: Path | None) -> None:
    """Check every entry's hash and link; print the first broken or edited line, exit 1."""
    path = log_file or audit_path(StateDir(state_dir))
    if not path.exists():
        click.echo(f"no audit log at {path}")
        sys.exit(ExitCode.OK)
    try:
        # In a state directory, read only up to a size no append is halfway through.
        result = verify(path) if log_file else verify_state(StateDir(state_dir))
    except OSError as exc:
        click.echo(f"error: cannot read the audit log {path}: {exc.strerror or exc}", err=True)
        sys.exit(ExitCode.INPUT)
    click.echo(_describe(path, result))
    sys.exit(ExitCode.OK if result.ok else ExitCode.FAULT)


def _describe(path: Path, result: VerifyResult) -> str:
    """One line for people: the count when intact, else the first problem."""
    if result.ok:
        noun = "entry" if result.entries == 1 else "entries"
        return f"audit log {path}: {result.entries} {noun}, chain intact"
    return f"audit log {path}: {result.reason} ({result.entries} intact entries before it)"
