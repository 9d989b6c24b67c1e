"""Many read-only checks of one host in one round trip, each judged as if run alone.

Every SSH exec forks a shell on the host (and here a login shell's rc files), so ten
checks cost ten round trips. A batch is one script that runs each check under its own host
enforced budget (``timeout -k``), with its output redirected to files, and then prints one
framing line per check: a random marker, the index, exit status, start and end times in
nanoseconds, total output sizes, and the (bounded) outputs in base64. A check's own output
never reaches the channel, so it cannot forge a framing line, and base64 keeps the bytes
exact whatever they are.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import shlex
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from oorfix.errors import ConnectError, ConnectionLost, InputError
from oorfix.inventory.core import Inventory
from oorfix.redact import Command, Redactor
from oorfix.results import CommandResult, Output, Phase
from oorfix.run.jobs import Job, registered_names
from oorfix.run.pool import ConnectionPool
from oorfix.run.render import render_step, uses_registers
from oorfix.runbook.actions import ActionError
from oorfix.runbook.models import Step
from oorfix.transport.base import Transport
from oorfix.transport.shell import TIMEOUT_KILLED_STATUS, TIMEOUT_STATUS, seconds

KILL_GRACE = 2.0
# Per check and stream: what is kept of the output. Checks print little; evidence is not batched.
KEEP_BYTES = 16 * 1024
FRAME = "@@oorfix-batch"


@dataclass(frozen=True)
class BatchItem:
    """One check to run inside a batch."""

    command: Command
    timeout: float


def _segment(index: int, item: BatchItem, marker: str) -> str:
    body = shlex.quote(item.command.text)
    budget = f"timeout -k {seconds(KILL_GRACE)} {seconds(item.timeout)}"
    out, err = f'"$d/{index}.o"', f'"$d/{index}.e"'
    encode = f"head -c {KEEP_BYTES} {{}} | base64 | tr -d '\\n'"
    return (
        f'[ -e "$stop" ] && exit 0; '
        f"s=$(date +%s%N); {budget} sh -c {body} >{out} 2>{err} </dev/null; rc=$?; "
        f"e=$(date +%s%N); "
        f"printf '%s %s %s %s %s %s %s ' {FRAME} {marker} {index} $rc $s $e "
        f"$(wc -c <{out}); printf '%s ' $(wc -c <{err}); "
        f"printf '%s ' $({encode.format(out)}) ; printf '%s\\n' $({encode.format(err)})"
    )


def script(items: Sequence[BatchItem], marker: str) -> str:
    """The shell script that runs every item in order and frames each result."""
    # The batch's directory is named by its marker, so the engine can drop a stop file in it
    # from another session; mkdir refuses a directory that already exists (or a link).
    folder = shlex.quote(batch_dir(marker))
    setup = f'd={folder}; stop="$d/stop"; mkdir -m 700 "$d" || exit 97; trap \'rm -rf "$d"\' EXIT'
    return "; ".join([setup, *(_segment(i, item, marker) for i, item in enumerate(items))])


def batch_dir(marker: str) -> str:
    """The private directory of one batch on the host."""
    return f"/tmp/oorfix-batch-{marker}"  # noqa: S108 - created with mkdir -m 700, never reused


def stop_command(marker: str) -> Command:
    """The command that stops the batch ``marker`` before its next check."""
    folder = shlex.quote(batch_dir(marker))
    return Command(f"[ -d {folder} ] && touch -- {folder}/stop")


def budget(items: Sequence[BatchItem]) -> float:
    """Seconds the whole batch may take: every check's budget and grace, back to back."""
    return sum(item.timeout + KILL_GRACE for item in items) + 5.0


def new_marker() -> str:
    """A marker no earlier batch used."""
    return secrets.token_hex(8)


def _stamp(nanoseconds: str) -> datetime:
    return datetime.fromtimestamp(int(nanoseconds) / 1e9, UTC)


def _output(total: str, encoded: str) -> Output:
    raw = base64.b64decode(encoded) if encoded else b""
    size = int(total)
    return Output(raw.decode("utf-8", "backslashreplace"), size, size > len(raw))


def parse(items: Sequence[BatchItem], stdout: str, marker: str) -> list[CommandResult | None]:
    """One result per item; None for an item the batch never reached (it was cut short)."""
    results: list[CommandResult | None] = [None] * len(items)
    for line in stdout.splitlines():
        fields = line.split(" ")
        if len(fields) < 9 or fields[0] != FRAME or fields[1] != marker:
            continue
        index, rc, start, end, out_total, err_total = fields[2:8]
        out_b64 = fields[8] if len(fields) > 8 else ""
        err_b64 = fields[9] if len(fields) > 9 else ""
        item = items[int(index)]
        status, started, ended = int(rc), _stamp(start), _stamp(end)
        elapsed = (ended - started).total_seconds()
        timed_out = status in (TIMEOUT_STATUS, TIMEOUT_KILLED_STATUS) and elapsed >= item.timeout
        results[int(index)] = CommandResult(
            command=str(item.command),
            rc=status,
            stdout=_output(out_total, out_b64),
            stderr=_output(err_total, err_b64),
            started=started,
            ended=ended,
            timed_out=timed_out,
        )
    return results


def _batchable(step: Step, registers: frozenset[str]) -> bool:
    """A plain check on the job's own host, with nothing that depends on earlier steps."""
    plain = step.kind == "run" and step.on is None and step.when is None and not step.sudo
    return plain and step.stdin is None and not uses_registers(step, registers)


def _items(
    jobs: Sequence[Job], inventory: Inventory
) -> tuple[list[BatchItem], list[tuple[int, int]]]:
    items: list[BatchItem] = []
    owners: list[tuple[int, int]] = []
    for index, job in enumerate(jobs):
        registers = registered_names(job)
        for step in job.runbook.detect:
            if not _batchable(step, registers):
                continue
            try:
                rendered = render_step(job, Phase.DETECT, step, job.context, inventory)
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
    """Run the plain detect checks of one host's jobs in one round trip.

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
    command = Command(script(items, marker), Redactor(secrets))
    try:
        transport = pool.get(jobs[0].host)
        if in_flight is not None:
            in_flight.add(marker, transport)
        raw = transport.run(command, timeout=budget(items))
    except (ConnectError, ConnectionLost):
        pool.discard(jobs[0].host)
        return given
    finally:
        if in_flight is not None:
            in_flight.remove(marker)
    for (index, step_id), result in zip(owners, parse(items, raw.stdout.text, marker), strict=True):
        if result is not None:
            given[index][step_id] = result
    return given
