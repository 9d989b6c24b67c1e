"""`diagnose --fix`: fix root causes in causal order, re-check after each fix, never fight.

Fixes run in waves: each wave fixes the next root cause of every host that has one (hosts
in parallel, one fix per host per wave). After a wave, on every host it changed, the
findings still waiting are re-checked (one that cleared is explained by that fix and never
fixed itself) and so are the fixes made earlier in the run: one that confirms again was
undone by this wave's fix, which is a conflict. The host's remaining fixes are then
dropped and both runbooks are named; nothing loops, since each runbook is fixed at most once
per host. A consequence that outlives its root cause's fix is a fault of its own and is
fixed in a later wave. The end is a re-diagnosis of every host touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from oorfix.catalog import Catalog
from oorfix.diagnosis.incidents import HostDiagnosis, Hypothesis, Verdict, diagnose
from oorfix.results import HostResult, Outcome, RunMode, RunResult
from oorfix.run.planner import PlannedJob

Runner = Callable[[Sequence[PlannedJob], RunMode], RunResult]
Key = tuple[str, str]  # (host, runbook)
# A fix that may have changed the host (a failed one may have, before its rollback).
CHANGED = frozenset({Outcome.FIXED, Outcome.MITIGATED, Outcome.FAILED})
HELD = frozenset({Outcome.FIXED, Outcome.MITIGATED})


@dataclass(frozen=True)
class Conflict:
    """A fix made earlier in the run that a later fix on the same host undid."""

    host: str
    undone: str  # the runbook whose fault came back
    by: str  # the runbook fixed after it
    reason: str


@dataclass(frozen=True)
class Explained:
    """A finding that cleared when another runbook's fix ran: never fixed itself."""

    host: str
    runbook: str
    by: str


@dataclass
class Convergence:
    """What `diagnose --fix` did, and where it ended."""

    results: dict[Key, HostResult]
    conflicts: list[Conflict] = field(default_factory=list)
    explained: list[Explained] = field(default_factory=list)
    waves: int = 0
    after: tuple[HostDiagnosis, ...] = ()
    remaining: tuple[HostResult, ...] = ()  # the re-diagnosis's findings
    rediagnosed: tuple[str, ...] = ()  # the hosts a fix changed

    @property
    def converged(self) -> bool:
        """No conflict, and the re-diagnosis found nothing left to fix and no unexplained
        symptom (a mitigated root cause may stay: it is escalated)."""
        unexplained = any(i.root_cause is None for h in self.after for i in h.incidents)
        # A host no fix changed (deferred, locked, unreachable) keeps what it had.
        unchanged = any(
            r.status.fault_remains for r in self.results.values() if r.host not in self.rediagnosed
        )
        return not (self.conflicts or self.remaining or unexplained or unchanged)


def _key(result: HostResult) -> Key:
    return result.host, result.runbook


def _pkey(planned: PlannedJob) -> Key:
    return planned.job.host_name, planned.job.runbook_name


@dataclass
class _Host:
    """One host's way through the waves."""

    roots: list[PlannedJob]
    consequences: list[PlannedJob]
    fixed: list[PlannedJob] = field(default_factory=list)
    stopped: bool = False


class Fixer:
    """Runs the waves for one diagnosis (see the module's docstring)."""

    def __init__(self, runner: Runner, catalog: Catalog, planned: Sequence[PlannedJob]):
        self.runner = runner
        self.catalog = catalog
        self.planned = {_pkey(p): p for p in planned}

    def plan(self, diagnoses: Sequence[HostDiagnosis]) -> dict[str, _Host]:
        """Per host: root causes in fix order, and the consequences to re-check."""
        hosts: dict[str, _Host] = {}
        for diagnosis in diagnoses:
            roots: list[PlannedJob] = []
            consequences: list[PlannedJob] = []
            for h in diagnosis.hypotheses:
                key = (diagnosis.host, h.runbook)
                if h.status is not Outcome.WOULD_FIX or key not in self.planned:
                    continue  # mitigated already, or not judged: nothing to fix
                (roots if h.explained_by is None else consequences).append(self.planned[key])
            if roots:
                roots.sort(key=self._order)
                hosts[diagnosis.host] = _Host(roots, consequences)
        return hosts

    def _order(self, planned: PlannedJob) -> tuple[tuple[int, int], int, str]:
        rb = planned.job.runbook
        severity = ("critical", "major", "minor").index(rb.severity)
        return self.catalog.fix_rank(rb.fault), severity, rb.name

    def fix(self, found: RunResult, mode: RunMode) -> Convergence:
        """Fix every root cause ``found`` confirmed; re-diagnose what was touched."""
        state = Convergence({_key(r): r for r in found.results})
        diagnoses = diagnose(found.results, self.catalog)
        hosts = self.plan(diagnoses)
        self._explained_by_mitigated(state, diagnoses)
        if mode is not RunMode.FIX:  # a dry-run changes nothing, so one pass shows every fix
            every = [p for h in hosts.values() for p in h.roots]
            self._record(state, self.runner(every, mode))
            return state
        while True:
            wave = {name: h.roots.pop(0) for name, h in hosts.items() if h.roots and not h.stopped}
            if not wave:
                break
            state.waves += 1
            done = self._record(state, self.runner(list(wave.values()), mode))
            # In wave order, so what follows does not depend on hash seeds.
            touched = list(dict.fromkeys(r.host for r in done if r.status in CHANGED))
            for name in touched:
                hosts[name].fixed.append(wave[name])
            self._recheck(state, hosts, {n: wave[n] for n in touched})
        for h in hosts.values():
            for p in h.consequences:
                root = self._mitigated_root(state, h, p)
                if root is not None:
                    key = _pkey(p)
                    note = f"explained by {root}, which was mitigated, not repaired"
                    state.results[key] = replace(
                        state.results[key],
                        status=Outcome.MITIGATED,
                        explained_by=root,
                        notes=(*state.results[key].notes, note),
                    )
        self._rediagnose(state, hosts)
        return state

    def _explained_by_mitigated(
        self, state: Convergence, diagnoses: Sequence[HostDiagnosis]
    ) -> None:
        """A consequence of a root cause mitigated before the run waits for its repair."""
        for diagnosis in diagnoses:
            by_fault = {h.fault: h for h in diagnosis.hypotheses}
            for h in diagnosis.hypotheses:
                root = by_fault.get(h.explained_by or "")
                if (
                    h.verdict is Verdict.CONSEQUENCE
                    and h.status is Outcome.WOULD_FIX
                    and (root is not None and root.status is Outcome.MITIGATED)
                ):
                    key = (diagnosis.host, h.runbook)
                    note = f"explained by {root.runbook}, which is mitigated, not repaired"
                    state.results[key] = replace(
                        state.results[key],
                        status=Outcome.MITIGATED,
                        explained_by=root.runbook,
                        notes=(*state.results[key].notes, note),
                    )

    def _mitigated_root(self, state: Convergence, h: _Host, p: PlannedJob) -> str | None:
        """The runbook of a fix on the host that mitigated a fault explaining ``p``'s."""
        fault = p.job.runbook.fault
        for fixed in h.fixed:
            mitigated = state.results[_pkey(fixed)].status is Outcome.MITIGATED
            if mitigated and self.catalog.explains(fixed.job.runbook.fault, fault):
                return fixed.job.runbook_name
        return None

    def _record(self, state: Convergence, run: RunResult) -> tuple[HostResult, ...]:
        for r in run.results:
            before = state.results.get(_key(r))
            state.results[_key(r)] = _merged(before, r)
        return run.results

    def _recheck(
        self, state: Convergence, hosts: dict[str, _Host], wave: dict[str, PlannedJob]
    ) -> None:
        """After a wave: what cleared (explained) and what came back (a conflict)."""
        jobs = []
        for name, by in wave.items():
            h = hosts[name]
            earlier = [p for p in h.fixed if p is not by and state.results[_pkey(p)].status in HELD]
            jobs += earlier + h.roots + h.consequences
        if not jobs:
            return
        checked = {_key(r): r for r in self.runner(jobs, RunMode.DETECT).results}
        for name, by in wave.items():
            h = hosts[name]
            for p in h.fixed:
                again = checked.get(_pkey(p))
                if p is not by and again is not None and again.status is Outcome.WOULD_FIX:
                    reason = again.error or "its fault is confirmed again"
                    undone, later = p.job.runbook_name, by.job.runbook_name
                    self._conflict(state, h, Conflict(name, undone, later, reason))
            for waiting in (h.roots, h.consequences):
                for p in list(waiting):
                    again = checked.get(_pkey(p))
                    if again is not None and again.status is Outcome.HEALTHY:
                        waiting.remove(p)
                        key = _pkey(p)
                        state.results[key] = _explained(state.results[key], again, by)
                        state.explained.append(Explained(name, key[1], by.job.runbook_name))
            if not h.roots and not h.stopped:
                # What its root cause's fix did not clear is a fault of its own.
                # What its root cause's fix did not clear is a fault of its own, unless that
                # fix only mitigated the root cause: then the cause that explains it is still
                # there, and it waits for the root cause's repair.
                kept = [p for p in h.consequences if self._mitigated_root(state, h, p)]
                free = [p for p in h.consequences if p not in kept]
                h.roots, h.consequences = sorted(free, key=self._order), kept

    def _conflict(self, state: Convergence, h: _Host, conflict: Conflict) -> None:
        """Record a conflict; the host's remaining fixes are dropped (and say why)."""
        state.conflicts.append(conflict)
        h.stopped = True
        note = f"not fixed: {conflict.by} undid {conflict.undone} on this host"
        for p in h.roots + h.consequences:
            key = _pkey(p)
            state.results[key] = replace(
                state.results[key], notes=(*state.results[key].notes, note)
            )
        h.roots, h.consequences = [], []

    def _rediagnose(self, state: Convergence, hosts: dict[str, _Host]) -> None:
        touched = [name for name, h in hosts.items() if h.fixed]
        jobs = [p for key, p in self.planned.items() if key[0] in touched]
        if not jobs:
            return
        state.rediagnosed = tuple(touched)
        after = self.runner(jobs, RunMode.DETECT)
        state.after = diagnose(after.results, self.catalog)
        open_keys = {(d.host, h.runbook) for d in state.after for h in still_open(d)}
        state.remaining = tuple(r for r in after.results if _key(r) in open_keys)
        for name in touched:
            for p in hosts[name].fixed:
                again = next((r for r in after.results if _key(r) == _pkey(p)), None)
                held = state.results[_pkey(p)].status in HELD
                known = any(
                    c.host == name and c.undone == p.job.runbook_name for c in state.conflicts
                )
                if held and not known and again is not None and again.status is Outcome.WOULD_FIX:
                    later = hosts[name].fixed[hosts[name].fixed.index(p) + 1 :]
                    by = later[-1].job.runbook_name if later else "a later check"
                    reason = again.error or "its fault is confirmed again"
                    state.conflicts.append(Conflict(name, p.job.runbook_name, by, reason))


def still_open(diagnosis: HostDiagnosis) -> list[Hypothesis]:
    """Faults left to fix: root causes, and consequences of a root cause that is not
    mitigated (a mitigated one is escalated; what it explains waits for its repair)."""
    status = {h.fault: h.status for h in diagnosis.hypotheses}
    return [
        h
        for h in diagnosis.hypotheses
        if h.status.fault_remains
        and (
            h.verdict is not Verdict.CONSEQUENCE
            or h.explained_by is None
            or status.get(h.explained_by) is not Outcome.MITIGATED
        )
    ]


def _merged(before: HostResult | None, fix: HostResult) -> HostResult:
    """The diagnosis's steps in front of the fix's, one result per host and runbook."""
    if before is None:
        return fix
    return replace(fix, steps=before.steps + fix.steps, started=before.started)


def _explained(before: HostResult, check: HostResult, by: PlannedJob) -> HostResult:
    name = by.job.runbook_name
    return replace(
        before,
        status=Outcome.FIXED,
        steps=before.steps + check.steps,
        ended=check.ended,
        error=None,
        explained_by=name,
        notes=(*before.notes, f"cleared when {name} was fixed on this host: not fixed itself"),
    )
