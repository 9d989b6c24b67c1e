"""The one place a run is assembled, for every entry point (CLI, scheduler, webhook, worker).

Typed settings in, an engine out: the connection pool, the gate and the audit chosen by the
run mode (a fixing run gets maintenance windows, approvals, host locks, budgets and the audit
log; a dry-run or a diagnosis gets ``OpenGate`` and ``NoAudit``), rolling batches and the
circuit breaker. Defaults live in ``RunSettings`` and nowhere else. Nothing here prints or
prompts: approvals that need a person come in through an ``Approver``.
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TypeVar

from oorfix.app.settings import RunSettings
from oorfix.app.state import DirectoryState, StateBackend, open_state
from oorfix.errors import InputError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.output.record import RunRecord, write_record
from oorfix.results import RunMode, utcnow
from oorfix.run.engine import Engine, EngineOptions, EngineParts, Observer, RemoteHosts, Silent
from oorfix.run.planner import PlannedJob
from oorfix.run.pool import ConnectionPool
from oorfix.run.rollout import batch_size
from oorfix.runbook.serial import parse_serial
from oorfix.safety.audit import CommandAudit, NoAudit
from oorfix.safety.gates import Gate, OpenGate, RunGate
from oorfix.safety.locks import default_owner
from oorfix.transport import ConnectOptions, Transport, open_transport


class Approver(Protocol):
    """Decides which of the runbooks that require approval may fix (asked once per run)."""

    def __call__(self, required: frozenset[str], planned: Sequence[PlannedJob]) -> frozenset[str]:
        """The approved subset of ``required``."""
        ...


def approve_none(required: frozenset[str], planned: Sequence[PlannedJob]) -> frozenset[str]:
    """Unattended: nobody to ask, so nothing that requires approval is fixed (deferred)."""
    return frozenset()


@dataclass(frozen=True)
class Seams:
    """What a harness replaces in an otherwise real run (`oorfix test`): how hosts are
    reached, how a delay passes and what time the gate sees. None: the real one. ``remote``
    runs hosts on workers (``--workers``; given by the entry points that offer it)."""

    transports: Callable[[Host], Transport] | None = None
    sleep: Callable[[float], object] | None = None
    clock: Callable[[], datetime] | None = None
    batch_detect: bool = True  # a scripted host answers each check on its own
    remote: RemoteFactory | None = None


class RemoteFactory(Protocol):
    """Makes the workers' side of a run: the request and the runbooks approved to fix."""

    def __call__(self, request: RunRequest, approved: frozenset[str]) -> RemoteHosts:
        """The remote hosts runner of ``request``."""
        ...


REAL = Seams()


@dataclass(frozen=True)
class RunRequest:
    """One run to assemble: settings, the rendered plan, the mode and the run's id."""

    settings: RunSettings
    inventory: Inventory
    planned: Sequence[PlannedJob]
    mode: RunMode
    run_id: str


def assemble(
    request: RunRequest,
    observer: Observer | None = None,
    approve: Approver = approve_none,
    seams: Seams = REAL,
) -> Engine:
    """The engine of a run, with the gate and audit its mode calls for."""
    fixing = request.mode.changes_hosts
    if request.settings.workers:
        if seams.remote is None:
            raise InputError("--workers: this command runs its hosts itself")
        return _on_workers(request, observer, approve, seams.remote)
    transports = seams.transports or transport_factory(connect_options(request.settings))
    parts = EngineParts(
        inventory=request.inventory,
        pool=ConnectionPool(transports),
        gate=make_gate(request, approve, seams.clock or utcnow) if fixing else OpenGate(),
        audit=make_audit(request.settings) if fixing else NoAudit(),
        observer=observer or Silent(),
    )
    options = replace(engine_options(request), sleep=seams.sleep, batch_detect=seams.batch_detect)
    return Engine(parts, options)


def _on_workers(
    request: RunRequest, observer: Observer | None, approve: Approver, factory: RemoteFactory
) -> Engine:
    """An engine whose hosts run on workers; each worker takes the locks, spends the budgets
    and writes the audit through the shared state, as a local run does here."""
    settings = request.settings
    approved = approvals(request, approve) if request.mode.changes_hosts else frozenset()
    remote = factory(request, approved)
    parts = EngineParts(
        inventory=request.inventory,
        pool=ConnectionPool(transport_factory(connect_options(settings))),  # never opened
        gate=OpenGate(),
        audit=NoAudit(),
        observer=observer or Silent(),
        remote=remote,
    )
    return Engine(parts, engine_options(request))


def approvals(request: RunRequest, approve: Approver) -> frozenset[str]:
    """The runbooks requiring approval that may fix: all with --yes, else as ``approve`` says."""
    required = frozenset(
        p.job.runbook_name for p in request.planned if p.job.runbook.approval == "required"
    )
    if request.settings.yes or not required:
        return required
    return approve(required, request.planned) & required


def connect_options(settings: RunSettings) -> ConnectOptions:
    """SSH options: host keys and one time limit for connect, banner and authentication."""
    timeout = settings.connect_timeout
    return ConnectOptions(
        known_hosts=settings.known_hosts,
        accept_new_host_keys=settings.accept_new_host_keys,
        ssh_config=settings.ssh_config,
        connect_timeout=timeout,
        banner_timeout=timeout,
        auth_timeout=timeout,
    )


def transport_factory(options: ConnectOptions) -> Callable[[Host], Transport]:
    """Opens each host's transport with ``options``."""

    def factory(host: Host) -> Transport:
        return open_transport(host.connection(), options)

    return factory


def engine_options(request: RunRequest) -> EngineOptions:
    """Batches and the breaker: the settings win, else the most careful runbook."""
    settings, planned = request.settings, request.planned
    runbooks = {p.job.runbook_name: p.job.runbook for p in planned}.values()
    hosts = len({p.job.host_name for p in planned})
    serials = [settings.serial] if settings.serial else [r.serial for r in runbooks if r.serial]
    try:
        sizes = [batch_size(parse_serial(s), hosts) for s in serials if s is not None]
    except ValueError as exc:
        raise InputError(f"--serial: {exc}") from None
    percents = [r.max_fail_percent for r in runbooks if r.max_fail_percent is not None]
    if settings.max_fail_percent is not None:
        percents = [settings.max_fail_percent]
    return EngineOptions(
        forks=settings.forks,
        mode=request.mode,
        serial=min(sizes) if sizes else None,
        max_fail_percent=min(percents) if percents else None,
    )


def state_backend(settings: RunSettings) -> StateBackend:
    """The run's state backend, checked usable (exit 2 for a bad directory or URL)."""
    backend = open_state(settings.state, settings.state_dir)
    if isinstance(backend, DirectoryState):
        backend.check()  # a Redis that does not answer fails closed per host, not here
    return backend


def make_gate(
    request: RunRequest, approve: Approver, clock: Callable[[], datetime] = utcnow
) -> Gate:
    """The gate of a fixing run: windows, approvals, host locks and budgets."""
    settings = request.settings
    state = state_backend(settings)
    return RunGate(
        locks=state.locks(request.run_id, default_owner(), settings.lock_ttl),
        budget=state.budget(),
        approved=approvals(request, approve),
        force=settings.force,
        clock=clock,
    )


def make_audit(settings: RunSettings) -> CommandAudit:
    """The audit log of a run that may change hosts."""
    return state_backend(settings).audit(default_owner())


T = TypeVar("T")


def run_interruptibly(
    body: Callable[[], T], abort: Callable[[], None], notify: Callable[[str], None] = lambda _: None
) -> T:
    """``body()`` with SIGINT and SIGTERM calling ``abort`` (no new host or step starts) and
    ``notify`` with the signal's name, e.g. to tell the operator; the result still comes.

    Signal handlers can only be set from the main thread: the service stops its runs itself.
    """

    def stop(name: str) -> None:
        notify(name)
        abort()

    previous = {sig: _on_signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return body()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _on_signal(signum: signal.Signals, stop: Callable[[str], None]) -> Any:
    def handler(received: int, frame: FrameType | None) -> None:
        stop(signal.Signals(received).name)

    return signal.signal(signum, handler)


def check_writable(path: Path | None) -> None:
    """Refuse an unwritable output path before any host is touched, not after."""
    if path is None or str(path) == "-":
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".oorfix-check-"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write the run record: {exc.strerror or exc}", path) from None
    if path.is_dir():
        raise InputError("cannot write the run record: it is a directory", path)


def write_outputs(record: RunRecord, json_path: Path | None, junit_path: Path | None) -> str | None:
    """Write the record and JUnit XML where asked; the record's text when it goes to stdout."""
    if junit_path is not None:
        from oorfix.output.reports.junit import junit_xml  # xml.etree only when asked

        write_record(junit_path, junit_xml(record))
    if json_path is None:
        return None
    if str(json_path) == "-":
        return record.to_json()
    write_record(json_path, record.to_json())
    return None


def keep_history(settings: RunSettings, record: RunRecord, planned: Sequence[PlannedJob]) -> str:
    """Store the run (record, plan, evidence); where it went. OSError or StateUnavailable if
    it cannot be kept."""
    return state_backend(settings).history().save(record, plan_data(planned))


def plan_data(planned: Sequence[PlannedJob]) -> list[dict[str, Any]]:
    """The rendered plan as JSON-ready data (commands masked), for the run history."""
    return [
        {
            "host": p.job.host.name,
            "runbook": p.job.runbook_name,
            "steps": [
                {
                    "phase": str(s.phase),
                    "name": s.label,
                    "command": str(s.command),
                    "mutating": s.mutating,
                    "on": [h.name for h in s.targets] if s.step.on else None,
                    "become": {h: b.user for h, b in s.become.items() if b is not None} or None,
                }
                for s in p.steps
            ],
        }
        for p in planned
    ]
