"""`oorfix lab`: start, break, inspect and stop the lab of real sshd hosts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from oorfix.lab import faults, network, services
from oorfix.lab.lab import Lab, LabError
from oorfix.lab.topology import default_topology
from oorfix.output.console import make_console
from oorfix.results import ExitCode


def default_lab_dir() -> Path:
    """The lab's directory: under the user's XDG state home."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "oorfix" / "lab"


dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=default_lab_dir,
    show_default="$XDG_STATE_HOME/oorfix/lab",
    help="the lab's directory",
)


def _fail(exc: LabError) -> None:
    make_console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}")
    sys.exit(ExitCode.INPUT)


@click.group()
def lab() -> None:
    """The lab: real sshd hosts shaped like a small payment gateway, to break and fix."""


@lab.command()
@dir_option
@click.option("--hosts", "api_hosts", default=3, show_default=True, type=click.IntRange(1, 9))
@click.option("--netns/--no-netns", default=None, help="network namespaces (default: when root)")
def up(directory: Path, api_hosts: int, netns: bool | None) -> None:
    """Start the lab (safe to run twice) and print its inventory."""
    namespaced = network.available() if netns is None else netns
    try:
        running = Lab.load(directory)
    except LabError:
        running = None
    if running is not None and running.running():
        click.echo(f"the lab in {directory} is already up")
        _print_usage(running)
        return
    try:
        started = Lab(directory, default_topology(directory, api_hosts), namespaced).up()
    except LabError as exc:
        _fail(exc)
        return
    started.write_inventory(directory / "inventory.yml")
    _print_usage(started)


def _print_usage(running: Lab) -> None:
    inventory = running.directory / "inventory.yml"
    click.echo(f"inventory:   {inventory}")
    click.echo(f"known_hosts: {running.known_hosts}")
    click.echo(f"try: oorfix run runbooks/ -i {inventory} --known-hosts {running.known_hosts}")


def _loaded(directory: Path) -> Lab:
    try:
        return Lab.load(directory)
    except LabError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


@lab.command()
@dir_option
@click.argument("host")
@click.argument("fault_id")
def inject(directory: Path, host: str, fault_id: str) -> None:
    """Inject catalogue fault FAULT_ID into lab host HOST."""
    running = _loaded(directory)
    try:
        fault = faults.inject(running, host, fault_id)
    except LabError as exc:
        _fail(exc)
        return
    click.echo(f"injected {fault_id} into {host}: {fault.what}")


@lab.command()
@dir_option
def status(directory: Path) -> None:
    """Hosts, their addresses and services, and the faults injected so far."""
    running = _loaded(directory)
    table = Table(title=f"lab in {running.directory}", title_justify="left")
    for column in ("host", "role", "ssh address", "data address", "rack", "services"):
        table.add_column(column)
    for host in running.hosts.values():
        units = [
            f"{name} {'up' if services.running_pid(services.Unit(host.state, name)) else 'DOWN'}"
            for name in host.services
        ]
        address = host.data_address(running.namespaced)
        table.add_row(host.name, host.role, host.address, address, host.rack, ", ".join(units))
    console = make_console()
    console.print(table)
    for entry in faults.injected(running):
        console.print(
            f"fault {entry['fault']} on {entry['host']} at {entry['at']}: {entry['state']}"
        )


@lab.command()
@dir_option
def down(directory: Path) -> None:
    """Stop every lab process and remove the lab's namespaces."""
    try:
        running = Lab.load(directory)
    except LabError:
        click.echo(f"no lab is running in {directory}")
        return
    running.down()
    click.echo(f"the lab in {directory} is down")
