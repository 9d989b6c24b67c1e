"""`oorfix worker`: a Celery worker that runs hosts' jobs for `run|diagnose --workers URL`.

Start it where the runbooks and inventory are (the same files as the controllers', at the
same relative paths: ``--chdir``), with the same ``OORFIX_WORKER_KEY`` and access to the
hosts. A fixing run's locks, budgets and audit go through the ``--state`` the controller
names, so workers and controllers need the same Redis for it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click

from oorfix.cli.common import input_errors_exit
from oorfix.distributed.celeryapp import QUEUE, heartbeat, make_app
from oorfix.distributed.payload import worker_key
from oorfix.distributed.worker import Worker, register


@click.command()
@click.option(
    "--workers",
    "url",
    envvar="OORFIX_WORKERS",
    required=True,
    metavar="URL",
    help="the Redis the controllers send tasks to (password from OORFIX_WORKERS_PASSWORD)",
)
@click.option(
    "-c",
    "--concurrency",
    default=10,
    show_default=True,
    type=click.IntRange(1, 500),
    help="hosts worked on at once",
)
@click.option("-n", "--name", help="this worker's name (default: oorfix@HOSTNAME-PID)")
@click.option(
    "--chdir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="where the runbooks and inventory are (the controllers' relative paths)",
)
@click.option("--loglevel", default="WARNING", show_default=True)
@input_errors_exit
def worker(url: str, concurrency: int, name: str | None, chdir: Path | None, loglevel: str) -> None:
    """Run hosts' jobs for controllers that pass --workers (a Celery worker)."""
    worker_key()  # refuse to start without the key, not at the first task
    heartbeat()
    if chdir is not None:
        os.chdir(chdir)
    node = name or f"oorfix@{socket.gethostname()}-{os.getpid()}"
    app = make_app(url)
    register(app, Worker(app.backend.client, node))
    app.worker_main(
        [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--hostname={node}",
            f"--queues={QUEUE}",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
