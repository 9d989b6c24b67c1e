"""One run or one diagnosis, carried out and kept: the same for the CLI and the service.

``Execution`` takes a planned run (``app.loading``), assembles its engine (``app.wiring``),
runs it, and for ``diagnose`` turns the findings into incidents and, when asked, fixes the
root causes in waves (``diagnosis.converge``). The typed record it ends with is kept in the
run history; nothing here prints. The entry points differ only in what they plug in:
``Hooks`` (observers, the approver, what to do once the findings are in) and ``Seams``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from oorfix.app.loading import Loaded
from oorfix.app.settings import RunSettings
from oorfix.app.wiring import REAL, Approver, RunRequest, Seams, approve_none, assemble
from oorfix.catalog import Catalog, is_maintenance
from oorfix.diagnosis.converge import Convergence, Fixer
from oorfix.diagnosis.incidents import HostDiagnosis, diagnose
from oorfix.output.record import DiagnosisRecord, RunRecord
from oorfix.results import ExitCode, RunMode, RunResult, new_run_id, utcnow
from oorfix.run.engine import Engine, Observer, Silent
from oorfix.run.planner import PlannedJob

Command = Literal["run", "diagnose"]


@dataclass(frozen=True)
class RunSpec:
    """What to carry out: ``run`` (FIX or DRY_RUN) or ``diagnose`` (DETECT; FIX or DRY_RUN
    to fix the root causes), with the settings, and who asked (kept in the record)."""

    command: Command
    settings: RunSettings
    mode: RunMode
    catalog: Catalog | None = None  # diagnose: the built-in catalogue plus the site's
    trigger: Mapping[str, str] = field(default_factory=dict)

    @property
    def fixes(self) -> bool:
        """Whether the run may change hosts."""
        return self.mode.changes_hosts


def _silent(mode: RunMode) -> Observer:
    return Silent()


@dataclass(frozen=True)
class Hooks:
    """What an entry point plugs into an execution; the defaults are unattended and quiet."""

    observer: Callable[[RunMode], Observer] = _silent  # one per engine (diagnose has several)
    approve: Approver = approve_none
    # diagnose: called with the findings and incidents before any fix starts.
    diagnosed: Callable[[RunResult, Sequence[HostDiagnosis]], None] = lambda _r, _d: None


@dataclass(frozen=True)
class Finished:
    """How an execution ended: the results, the kept record and the exit code."""

    result: RunResult
    record: RunRecord
    exit_code: ExitCode
    diagnosis: tuple[HostDiagnosis, ...] = ()
    convergence: Convergence | None = None


class Execution:
    """One run from its plan to its record; ``abort`` (from any thread) stops it at the next
    step, and no new wave starts."""

    def __init__(
        self,
        spec: RunSpec,
        loaded: Loaded,
        hooks: Hooks | None = None,
        seams: Seams = REAL,
    ) -> None:
        self.spec = spec
        self.loaded = loaded
        self.hooks = hooks or Hooks()
        self.seams = seams
        self.run_id = new_run_id()
        self._aborted = threading.Event()
        self._engine: Engine | None = None
        self._guard = threading.Lock()

    @property
    def planned(self) -> list[PlannedJob]:
        """The jobs this execution runs (diagnose leaves preventive runbooks out)."""
        every = self.loaded.planned
        if self.spec.command == "diagnose":
            return [p for p in every if not is_maintenance(p.job.runbook.fault)]
        return every

    def abort(self) -> None:
        """No new step, host or wave starts; running steps finish; the record is still kept."""
        self._aborted.set()
        with self._guard:
            if self._engine is not None:
                self._engine.abort()

    def runner(self, jobs: Sequence[PlannedJob], mode: RunMode) -> RunResult:
        """Run ``jobs`` in ``mode`` on a newly assembled engine (the Fixer's waves use it)."""
        request = RunRequest(
            self.spec.settings, self.loaded.inventory, list(jobs), mode, self.run_id
        )
        engine = assemble(request, self.hooks.observer(mode), self.hooks.approve, self.seams)
        with self._guard:
            self._engine = engine
            if self._aborted.is_set():
                engine.abort()
        try:
            return engine.run([p.job for p in jobs], self.run_id)
        finally:
            with self._guard:
                self._engine = None

    def execute(self) -> Finished:
        """Carry the run out and keep its record (OSError if the history cannot be written)."""
        planned = self.planned
        if not planned:
            now = utcnow()
            empty = RunResult(self.run_id, now, now, self.spec.mode)
            return self._finish(empty, planned, empty.exit_code())
        if self.spec.command == "run":
            result = self.runner(planned, self.spec.mode)
            return self._finish(result, planned, result.exit_code())
        return self._diagnose(planned)

    def _diagnose(self, planned: list[PlannedJob]) -> Finished:
        catalog = self.spec.catalog
        assert catalog is not None, "diagnose needs the catalogue"
        found = self.runner(planned, RunMode.DETECT)
        hosts = tuple(diagnose(found.results, catalog))
        self.hooks.diagnosed(found, hosts)
        if self.spec.mode is RunMode.DETECT or found.aborted or self._aborted.is_set():
            code = diagnose_exit_code(found, hosts)
            return self._finish(found, planned, code, DiagnosisRecord(hosts=hosts), hosts)
        done = Fixer(self.runner, catalog, planned).fix(found, self.spec.mode)
        result = replace(found, mode=self.spec.mode, results=tuple(done.results.values()))
        fixing = self.spec.mode is RunMode.FIX
        code = fix_exit_code(result, done) if fixing else result.exit_code()
        record = DiagnosisRecord(
            hosts=hosts,
            waves=done.waves,
            explained=tuple(done.explained),
            conflicts=tuple(done.conflicts),
            converged=done.converged if fixing else None,
            after=done.after,
        )
        return self._finish(result, planned, code, record, hosts, done)

    def _finish(  # noqa: PLR0913 - the parts of a record, each optional but the first three
        self,
        result: RunResult,
        planned: Sequence[PlannedJob],
        code: ExitCode,
        diagnosis: DiagnosisRecord | None = None,
        hosts: tuple[HostDiagnosis, ...] = (),
        done: Convergence | None = None,
    ) -> Finished:
        record = RunRecord.of(result, self.meta(code, diagnosis))
        return Finished(result, record, code, hosts, done)

    def meta(self, code: ExitCode, diagnosis: DiagnosisRecord | None) -> dict[str, Any]:
        """What the record says besides the results: command, inputs, trigger, diagnosis."""
        settings = self.spec.settings
        meta: dict[str, Any] = {
            "command": self.spec.command,
            "runbooks": list(settings.runbooks),
            "inventory": ", ".join(str(path) for path in settings.inventory_paths),
            "limit": settings.limit,
            "exit_code": int(code),
        }
        if diagnosis is not None:
            meta["diagnosis"] = diagnosis
        if self.spec.trigger:
            meta["trigger"] = dict(self.spec.trigger)
        return meta


def diagnose_exit_code(found: RunResult, hosts: Sequence[HostDiagnosis]) -> ExitCode:
    """The results' exit code; symptoms that no confirmed cause explains are a fault too."""
    code = found.exit_code()
    unexplained = any(i.root_cause is None for h in hosts for i in h.incidents)
    if unexplained and code in (ExitCode.OK, ExitCode.MITIGATED):
        return ExitCode.FAULT
    return code


def fix_exit_code(result: RunResult, done: Convergence) -> ExitCode:
    """A conflict, or a fault the re-diagnosis still finds, leaves a fault."""
    code = result.exit_code()
    if not done.converged and code in (ExitCode.OK, ExitCode.MITIGATED):
        return ExitCode.FAULT
    return code
