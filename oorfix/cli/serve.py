"""`oorfix serve` (the service) and `oorfix schedule` (its schedules, listed or exported)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path

import click
from rich.table import Table

from oorfix.cli.common import input_errors_exit, seams_for
from oorfix.cli.options import shared
from oorfix.output.console import make_console
from oorfix.results import utcnow
from oorfix.safety.state import StateDir, default_state_dir
from oorfix.serve.config import ServeConfig, load_config
from oorfix.serve.jobs import describe
from oorfix.serve.state import ServiceState

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("serve.yml"),
    show_default=True,
    help="the service's configuration file",
)


@click.command()
@config_option
@shared("verbose")
@input_errors_exit
def serve(config_path: Path, verbose: int) -> None:
    """Run the service: schedules, Alertmanager webhooks, metrics and the dashboard."""
    from oorfix.serve.service import Parts, Service  # the engine and aiohttp load only here
    from oorfix.serve.web import read_secrets
    from oorfix.serve.web import serve as run_service

    config = load_config(config_path)
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("oorfix.serve").setLevel(min(level, logging.INFO))
    service = Service(config, Parts(seams=seams_for(config.defaults.workers)))
    secrets = read_secrets(service)
    console = make_console(stderr=True)

    def ready(url: str) -> None:
        console.print(f"oorfix serve: listening on {url} (state {service.history.where})")

    asyncio.run(run_service(service, secrets, ready))


@click.group()
def schedule() -> None:
    """The service's schedules: list them, or export them as systemd timers or cron lines."""


@schedule.command("list")
@config_option
@input_errors_exit
def list_schedules(config_path: Path) -> None:
    """Each schedule with its next start and what it last did."""
    config = load_config(config_path)
    marks = ServiceState(_state(config)).marks()
    now = utcnow()
    table = Table("schedule", "cron", "runs", "mode", "next start", "last start", "last exit")
    for item in config.schedules:
        mark = marks.get(item.name, {})
        table.add_row(
            item.name,
            f"{item.cron} {item.timezone}",
            describe(item.job),
            item.job.mode,
            item.next_after(now).strftime("%Y-%m-%d %H:%M %Z"),
            str(mark.get("last_start", "never"))[:16].replace("T", " "),
            str(mark.get("last_exit", "")),
        )
    make_console().print(table)


@schedule.command("export")
@config_option
@click.option(
    "--systemd",
    "systemd_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="write a .service and a .timer per schedule into this directory",
)
@click.option("--cron", "cron", is_flag=True, help="print crontab lines")
@input_errors_exit
def export(config_path: Path, systemd_dir: Path | None, cron: bool) -> None:
    """Write the schedules as systemd timers or crontab lines, for sites with their own timers."""
    from oorfix.serve.export import crontab, systemd_units, write_units

    if (systemd_dir is None) == (not cron):
        raise click.UsageError("give exactly one of --systemd DIR or --cron")
    config = load_config(config_path)
    command = _oorfix_command()
    if cron:
        click.echo(crontab(config, command, config_path.resolve()), nl=False)
        return
    assert systemd_dir is not None
    for path in write_units(systemd_units(config, command, config_path.resolve()), systemd_dir):
        click.echo(str(path))


def _state(config: ServeConfig) -> StateDir:
    return StateDir(config.defaults.state_dir or default_state_dir())


def _oorfix_command() -> list[str]:
    """How a timer runs oorfix: the installed script, else this interpreter's module."""
    found = shutil.which("oorfix")
    return [found] if found else [sys.executable, "-m", "oorfix"]
