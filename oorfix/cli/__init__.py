"""The command line: parse, load and validate everything, assemble the run, print, exit.

Only this package imports click and prints. Each command group has its module, imported only
when that command runs (so ``oorfix --version`` loads no engine); every shared option is
declared once (``options``) and every run is assembled in one place (``wiring``). Input errors
are printed as ``path:line: message`` and exit 2 before any host is contacted; exit codes are
documented in the README.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
from collections.abc import Iterator

import click

from oorfix import __version__

# oorfix uses no pydantic plugin, and looking them up reads the entry points of every installed
# distribution (some 40 ms a command); whoever sets the variable, even empty, keeps their say.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# Command name -> where its click command is (loaded on first use) and the summary --help
# lists without importing it (a test keeps each summary equal to the command's own).
COMMANDS = {
    "audit": (
        "oorfix.cli.audit:audit",
        "The audit log: an entry before and after every change, each chained to the last.",
    ),
    "catalog": (
        "oorfix.cli.lint:catalog",
        "List the fault ids, what each detects and fixes, and the runbooks that handle them.",
    ),
    "diagnose": (
        "oorfix.cli.diagnose:diagnose",
        "Test every fault runbook on every host it covers; show incidents by root cause.",
    ),
    "inventory": (
        "oorfix.cli.inventory:inventory",
        "Show the inventory as oorfix reads it (compare with ansible-inventory).",
    ),
    "lab": (
        "oorfix.cli.lab:lab",
        "The lab: real sshd hosts shaped like a small payment gateway, to break and fix.",
    ),
    "plan": (
        "oorfix.cli.lint:plan",
        "Show every rendered command per host without connecting to any host.",
    ),
    "report": (
        "oorfix.cli.report:report",
        "Write the incident report of a past run (RUN_ID: its id or a unique prefix of it).",
    ),
    "run": (
        "oorfix.cli.run:run",
        "Run runbooks against hosts: detect, and fix what is confirmed (unless --dry-run).",
    ),
    "runs": (
        "oorfix.cli.report:runs",
        "List past runs, newest first: id, when, who, what, outcome.",
    ),
    "schedule": (
        "oorfix.cli.serve:schedule",
        "The service's schedules: list them, or export them as systemd timers or cron lines.",
    ),
    "serve": (
        "oorfix.cli.serve:serve",
        "Run the service: schedules, Alertmanager webhooks, metrics and the dashboard.",
    ),
    "test": (
        "oorfix.cli.test:test",
        "Run the runbook test scenarios (*.test.yml) against scripted hosts, offline.",
    ),
    "schema": (
        "oorfix.cli.lint:schema",
        "Print the JSON Schema of runbook files (or of the run record, catalog.yml, tests).",
    ),
    "worker": (
        "oorfix.cli.worker:worker",
        "Run hosts' jobs for controllers that pass --workers (a Celery worker).",
    ),
    "validate": (
        "oorfix.cli.lint:validate",
        "Lint runbooks and inventories; errors are path:line: message, exit 2.",
    ),
}


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """No cyclic garbage collection inside: imports make no garbage, only many objects,
    which full collections walk again and again (some 40 ms of a command's start-up)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class LazyGroup(click.Group):
    """A group whose commands are imported when they run; --help lists them from COMMANDS."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not."""
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, imported now if it was not yet."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name][0].partition(":")
            with _no_collection():
                command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of --help, without importing a single command."""
        rows = [(name, COMMANDS[name][1]) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oorfix")
def main() -> None:
    """oorfix: confirm, fix and verify out-of-order faults with declarative runbooks."""


def run() -> None:
    """The oorfix program (its console script and ``python -m oorfix``): ``main``, then exit."""
    try:
        main()
    finally:
        # The process ends here: the interpreter's last full collection would walk every
        # object of every module only to free memory the exit frees anyway (some 40 ms).
        gc.freeze()
