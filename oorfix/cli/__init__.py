"""The command line: parse, load and validate everything, assemble the run, print, exit.

Only this package imports click and prints. Each command group has its module; every shared
option is declared once (``options``) and every run is assembled in one place (``wiring``).
Input errors are printed as ``path:line: message`` and exit 2 before any host is contacted;
exit codes are documented in the README.
"""

from __future__ import annotations

import click

from oorfix import __version__
from oorfix.cli.audit import audit
from oorfix.cli.diagnose import diagnose
from oorfix.cli.lab import lab
from oorfix.cli.lint import catalog, plan, schema, validate
from oorfix.cli.report import report, runs
from oorfix.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oorfix")
def main() -> None:
    """oorfix: confirm, fix and verify out-of-order faults with declarative runbooks."""


for command in (validate, plan, catalog, schema, run, diagnose, audit, runs, report, lab):
    main.add_command(command)
