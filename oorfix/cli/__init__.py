"""The command line: parse, load and validate everything, assemble the run, print, exit.

Only this package imports click and prints. Each command group has its module, imported only
when that command runs (so ``oorfix --version`` loads no engine); every shared option is
declared once (``options``) and every run is assembled in one place (``wiring``). Input errors
are printed as ``path:line: message`` and exit 2 before any host is contacted; exit codes are
documented in the README.
"""

from __future__ import annotations

import importlib

import click

from oorfix import __version__

# Command name -> "module:attribute" of its click command, loaded on first use.
COMMANDS = {
    "validate": "oorfix.cli.lint:validate",
    "plan": "oorfix.cli.lint:plan",
    "catalog": "oorfix.cli.lint:catalog",
    "schema": "oorfix.cli.lint:schema",
    "run": "oorfix.cli.run:run",
    "diagnose": "oorfix.cli.diagnose:diagnose",
    "audit": "oorfix.cli.audit:audit",
    "runs": "oorfix.cli.report:runs",
    "report": "oorfix.cli.report:report",
    "lab": "oorfix.cli.lab:lab",
}


class LazyGroup(click.Group):
    """A group whose commands are imported when they are used (or listed by --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not."""
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, imported now if it was not yet."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oorfix")
def main() -> None:
    """oorfix: confirm, fix and verify out-of-order faults with declarative runbooks."""
