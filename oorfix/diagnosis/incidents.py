"""From every runbook's verdict on a host to incidents: the guide's hypothesis table.

Each runbook that ran on a host is a hypothesis about its fault. A confirmed fault that
another confirmed fault on the host explains (a catalogue link) is a consequence, not a root
cause; the failing symptom checks are attributed to the root cause that explains them, and a
symptom no confirmed cause explains is an open question (an incident with no known cause).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from oorfix.catalog import Catalog
from oorfix.results import HostResult, Outcome, Phase, StepStatus

# Outcomes that say the cause was found on the host, fixed since or not.
CONFIRMED = frozenset(
    {
        Outcome.WOULD_FIX,
        Outcome.MITIGATED,
        Outcome.FIXED,
        Outcome.FAILED,
        Outcome.DEFERRED,
        Outcome.LOCKED,
    }
)


class Verdict(enum.StrEnum):
    """What testing one hypothesis (one runbook's cause checks) showed."""

    ROOT_CAUSE = "root cause"
    CONSEQUENCE = "consequence"  # confirmed, and explained by a root cause on the host
    REFUTED = "refuted"  # the cause checks passed
    UNKNOWN = "not judged"  # a check could not be judged, or the host was not reached


@dataclass(frozen=True)
class Hypothesis:
    """One runbook's fault tested on one host, with the check that decided it."""

    runbook: str
    fault: str
    verdict: Verdict
    status: Outcome
    evidence: str
    explained_by: str | None = None  # the root cause's fault id, for a consequence


@dataclass(frozen=True)
class Symptom:
    """A failing symptom check, and the root cause it is put down to (None: unexplained)."""

    runbook: str
    check: str
    reason: str
    explained_by: str | None = None


@dataclass(frozen=True)
class Incident:
    """One root cause on one host (None: symptoms no confirmed cause explains)."""

    host: str
    root_cause: str | None
    runbook: str | None
    status: Outcome | None
    consequences: tuple[str, ...] = ()
    symptoms: tuple[Symptom, ...] = ()


@dataclass(frozen=True)
class HostDiagnosis:
    """Every hypothesis tested on one host and the incidents they add up to."""

    host: str
    hypotheses: tuple[Hypothesis, ...]
    incidents: tuple[Incident, ...]

    @property
    def root_causes(self) -> tuple[str, ...]:
        """The fault ids found to be root causes."""
        return tuple(i.root_cause for i in self.incidents if i.root_cause is not None)


def _deciding_check(result: HostResult) -> str:
    judged = [s for s in result.steps if s.phase is Phase.DETECT]
    bad = [s for s in judged if s.status in (StepStatus.FAILED, StepStatus.ERROR)]
    if bad:
        return f"{bad[0].name}: {bad[0].reason}"
    if result.status is Outcome.UNREACHABLE or not judged:
        return result.error or str(result.status)
    return "passed: " + "; ".join(dict.fromkeys(s.name for s in judged))


def _roots(confirmed: Sequence[HostResult], catalog: Catalog) -> dict[str, str | None]:
    """Fault id -> the fault id of the root cause that explains it (None: a root itself)."""
    faults = sorted({r.fault for r in confirmed}, key=catalog.fix_rank)
    roots = [
        f
        for f in faults
        if not any(catalog.explains(o, f) and not catalog.explains(f, o) for o in faults if o != f)
    ]
    return {
        f: None if f in roots else next(r for r in roots if catalog.explains(r, f)) for f in faults
    }


def _owner(fault: str, roots: Sequence[str], catalog: Catalog) -> str | None:
    """The root cause a symptom of ``fault``'s runbook is put down to.

    Symptoms are shared (every network fault makes the clearing peer unreachable), so: the
    root that is or explains the runbook's fault; else a root of the same category; else
    the host's first root cause. Only a host with no root cause has unexplained symptoms.
    """
    category = fault.split(".", 1)[0]
    explaining = [r for r in roots if r == fault or catalog.explains(r, fault)]
    same_category = [r for r in roots if r.split(".", 1)[0] == category]
    for candidates in (explaining, same_category, list(roots)):
        if candidates:
            return candidates[0]
    return None


def _symptoms(
    results: Iterable[HostResult], roots: dict[str, str | None], catalog: Catalog
) -> list[Symptom]:
    """Every failing symptom check, once per name, put down to a root cause that explains it.

    Runbooks share symptom checks (the clearing peer answers); the check is put down by the
    faults of every runbook that saw it fail.
    """
    faults: dict[str, list[str]] = {}
    first: dict[str, tuple[str, str]] = {}
    for result in results:
        for step in result.steps:
            if step.phase is Phase.SYMPTOMS and step.status is StepStatus.FAILED:
                faults.setdefault(step.name, []).append(result.fault)
                first.setdefault(step.name, (result.runbook, step.reason or ""))
    root_ids = [f for f, by in roots.items() if by is None]
    found = []
    for name, seen_by in faults.items():
        owners = [_owner(f, root_ids, catalog) for f in seen_by]
        explaining = [
            o
            for f, o in zip(seen_by, owners, strict=True)
            if o in _explainers(f, root_ids, catalog)
        ]
        owner = (explaining or owners or [None])[0]
        runbook, reason = first[name]
        found.append(Symptom(runbook, name, reason, owner))
    return found


def _explainers(fault: str, roots: Sequence[str], catalog: Catalog) -> list[str]:
    return [r for r in roots if r == fault or catalog.explains(r, fault)]


def diagnose_host(host: str, results: Sequence[HostResult], catalog: Catalog) -> HostDiagnosis:
    """The hypothesis table and incidents of one host."""
    confirmed = [r for r in results if r.status in CONFIRMED]
    roots = _roots(confirmed, catalog)
    hypotheses = []
    for r in results:
        if r.status in CONFIRMED:
            by = roots[r.fault]
            verdict = Verdict.ROOT_CAUSE if by is None else Verdict.CONSEQUENCE
        elif r.status is Outcome.HEALTHY:
            verdict, by = Verdict.REFUTED, None
        else:
            verdict, by = Verdict.UNKNOWN, None
        hypotheses.append(Hypothesis(r.runbook, r.fault, verdict, r.status, _deciding_check(r), by))
    symptoms = _symptoms(results, roots, catalog)
    incidents = []
    for r in {c.fault: c for c in reversed(confirmed)}.values():  # one incident per fault
        if roots[r.fault] is None:
            explained = tuple(sorted({c.fault for c in confirmed if roots[c.fault] == r.fault}))
            own = tuple(s for s in symptoms if s.explained_by == r.fault)
            incidents.append(Incident(host, r.fault, r.runbook, r.status, explained, own))
    unexplained = tuple(s for s in symptoms if s.explained_by is None)
    if unexplained:
        incidents.append(Incident(host, None, None, None, (), unexplained))
    return HostDiagnosis(host, tuple(hypotheses), tuple(incidents))


def diagnose(results: Sequence[HostResult], catalog: Catalog) -> tuple[HostDiagnosis, ...]:
    """One diagnosis per host, in the order the hosts first appear."""
    hosts = list(dict.fromkeys(r.host for r in results))
    return tuple(diagnose_host(h, [r for r in results if r.host == h], catalog) for h in hosts)
