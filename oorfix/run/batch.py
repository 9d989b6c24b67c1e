"""Batching a host's plain detect checks into one round trip (see ``batch_script``).

Every SSH exec forks a shell on the host, so ten checks cost ten round trips; a batch runs
them as one script and hands each check's result to the step that owns it, which then judges
it as if it had run alone. What a batch cannot deliver runs on its own as usual.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from oorfix.errors import ConnectError, ConnectionLost, ControllerError, InputError
from oorfix.inventory.core import Inventory
from oorfix.redact import Command, Redactor
from oorfix.results import CommandResult, Phase
from oorfix.run.batch_script import BatchItem, budget, new_marker, parse, script, stop_command
from oorfix.run.jobs import Job, registered_names
from oorfix.run.pool import ConnectionPool
from oorfix.run.render import render_step, uses_registers
from oorfix.runbook.actions import ActionError
from oorfix.runbook.models import Step
from oorfix.transport.base import Transport


def _batchable(step: Step, registers: frozenset[str]) -> bool:
    """A plain check on the job's own host, with nothing that depends on earlier steps."""
    plain = step.kind == "run" and step.on is None and step.when is None and not step.privileged
    return plain and step.stdin is None and not uses_registers(step, registers)


def _items(
    jobs: Sequence[Job], inventory: Inventory
) -> tuple[list[BatchItem], list[tuple[int, int]]]:
    items: list[BatchItem] = []
    owners: list[tuple[int, int]] = []
    for index, job in enumerate(jobs):
        registers = registered_names(job)
        checks = [(Phase.SYMPTOMS, s) for s in job.runbook.symptoms]
        for phase, step in [*checks, *((Phase.DETECT, s) for s in job.runbook.detect)]:
            if not _batchable(step, registers):
                continue
            try:
                rendered = render_step(job, phase, step, job.context, inventory)
            except (InputError, ActionError):
                continue  # the step runs alone and reports its error there
            items.append(BatchItem(rendered.command, rendered.timeout))
            owners.append((index, id(step)))
    return items, owners


class InFlight:
    """The batches running now, so an interrupt can stop each before its next check."""

    def __init__(self) -> None:
        self._running: dict[str, Transport] = {}
        self._lock = threading.Lock()

    def add(self, marker: str, transport: Transport) -> None:
        """A batch started."""
        with self._lock:
            self._running[marker] = transport

    def remove(self, marker: str) -> None:
        """A batch ended."""
        with self._lock:
            self._running.pop(marker, None)

    def stop_all(self) -> None:
        """Ask every running batch to start no further check (over its own connection)."""
        with self._lock:
            running = list(self._running.items())
        for marker, transport in running:
            with contextlib.suppress(ConnectError, ConnectionLost):
                transport.run(stop_command(marker), timeout=5)


def prefetch_detect(
    pool: ConnectionPool,
    inventory: Inventory,
    jobs: Sequence[Job],
    in_flight: InFlight | None = None,
) -> list[dict[int, CommandResult]]:
    """Run the plain symptom and detect checks of one host's jobs in one round trip.

    Returns, per job, the results by id of the step. Anything the batch could not deliver
    (the host unreachable, the link lost, output cut short) is simply missing, and that step
    then runs on its own as usual.
    """
    given: list[dict[int, CommandResult]] = [{} for _ in jobs]
    items, owners = _items(jobs, inventory)
    if len(items) < 2:
        return given
    secrets = frozenset().union(*(job.redactor.secrets for job in jobs))
    marker = new_marker()
    command = Command(script(items, marker), Redactor(secrets), limits_itself=True)
    try:
        transport = pool.get(jobs[0].host)
        if in_flight is not None:
            in_flight.add(marker, transport)
        raw = transport.run(command, timeout=budget(items))
    except (ConnectError, ConnectionLost, ControllerError):
        # The checks then run one by one, and each reports what stopped it.
        pool.discard(jobs[0].host)
        return given
    finally:
        if in_flight is not None:
            in_flight.remove(marker)
    results = parse(items, raw.stdout, marker, raw.started)
    for (index, step_id), result in zip(owners, results, strict=True):
        if result is not None:
            given[index][step_id] = result
    return given
