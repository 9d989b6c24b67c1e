"""`diagnose --fix`: root causes fixed in waves, re-checked, and never fought over.

The runner is a scripted world: which runbooks' faults are present on which host. A DETECT
(or dry-run) job reports the world; a FIX job changes it (its own fault goes, and it may
clear or bring back others). Every runner call is recorded, so the order of the waves, the
re-checks and the final re-diagnosis can be asserted exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oorfix.catalog import BUILTIN
from oorfix.diagnosis.converge import Conflict, Convergence, Explained, Fixer
from oorfix.inventory.core import Inventory
from oorfix.results import HostResult, Outcome, Phase, RunMode, RunResult, StepResult, StepStatus
from oorfix.run.planner import PlannedJob, plan_run
from oorfix.runbook.loader import load_runbook

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
HOSTS = ("api-1", "api-2", "lb-1")  # the inventory fixture's hosts, in inventory order

# name -> (fault, severity), in plan order. Fix order of the faults (built-in catalogue): the
# NIC (explains two), then the crash and the outage (explain one; software before network),
# then the rest: software before network, then by severity, then by name. The plan order and
# the severities are chosen to disagree with the names, so each tie-break shows.
RUNBOOKS: dict[str, tuple[str, str]] = {
    "nic-down": ("hardware.communication", "critical"),
    "clearing-path-down": ("network.outage", "critical"),
    "path-slow": ("network.latency", "critical"),
    "api-crashed": ("software.crash", "critical"),
    "version-drift": ("software.compatibility", "critical"),
    "api-down": ("software.service_interruption", "critical"),
    "open-port": ("network.security", "major"),
}

Key = tuple[str, str]
Call = tuple[RunMode, tuple[Key, ...]]


def runbook_yaml(name: str, fault: str, severity: str) -> str:
    return f"""
    name: {name}
    fault: {fault}
    severity: {severity}
    hosts: all
    detect:
      - name: {name} check
        run: check-{name}
    remediate:
      - run: fix-{name}
    """


@pytest.fixture
def planned(inventory: Inventory, write: Callable[[str, str], Path]) -> list[PlannedJob]:
    """Every runbook on every host: runbook by runbook, hosts in inventory order."""
    loaded = [
        load_runbook(write(f"runbooks/{name}.yml", runbook_yaml(name, fault, severity)))
        for name, (fault, severity) in RUNBOOKS.items()
    ]
    jobs = plan_run(loaded, inventory, {})
    assert [(p.job.host_name, p.job.runbook_name) for p in jobs] == [
        (h, n) for n in RUNBOOKS for h in HOSTS
    ]
    return jobs


@dataclass(frozen=True)
class Fix:
    """What fixing one runbook on one host does to the world."""

    outcome: Outcome = Outcome.FIXED
    clears: tuple[str, ...] = ()  # other runbooks' faults this fix also clears
    brings: tuple[str, ...] = ()  # runbooks' faults this fix (re)introduces


class World:
    """The faults present per host, and a runner over them that records every call."""

    def __init__(
        self,
        faults: Mapping[str, Sequence[str]],
        fixes: Mapping[Key, Fix] | None = None,
        mitigated: Sequence[Key] = (),
        symptoms: Mapping[Key, str] | None = None,
    ):
        self.faults = {h: set(faults.get(h, ())) for h in HOSTS}
        self.fixes = dict(fixes or {})
        self.mitigated = set(mitigated)  # cause present, no impact
        self.symptoms = dict(symptoms or {})  # a failing impact check, whatever the cause
        self.calls: list[Call] = []
        self.tick = 0

    def diagnose(self, jobs: Sequence[PlannedJob]) -> RunResult:
        """The diagnosis `diagnose --fix` starts from (not a call of the fixer)."""
        return self._run(jobs, RunMode.DETECT)

    def __call__(self, jobs: Sequence[PlannedJob], mode: RunMode) -> RunResult:
        self.calls.append((mode, tuple(key(p) for p in jobs)))
        return self._run(jobs, mode)

    def _run(self, jobs: Sequence[PlannedJob], mode: RunMode) -> RunResult:
        self.tick += 1
        when = T0 + timedelta(minutes=self.tick)
        results = tuple(self._job(p, mode, when) for p in jobs)
        return RunResult(f"run-{self.tick}", when, when, mode, results)

    def _job(self, planned: PlannedJob, mode: RunMode, when: datetime) -> HostResult:
        host, name = key(planned)
        fault = planned.job.runbook.fault
        present = name in self.faults[host]
        cause_there = present or (host, name) in self.mitigated
        steps = []
        if (host, name) in self.symptoms:
            steps.append(step(Phase.SYMPTOMS, self.symptoms[host, name], False, when))
        steps.append(step(Phase.DETECT, f"{name} check", not cause_there, when))

        def done(status: Outcome, error: str | None = None) -> HostResult:
            return HostResult(host, name, fault, status, tuple(steps), error, None, (), when, when)

        if not present:
            return done(Outcome.MITIGATED if cause_there else Outcome.HEALTHY)
        confirmed = f"fault confirmed: {name} check: exit status 1, expected 0"
        if mode is not RunMode.FIX:
            return done(Outcome.WOULD_FIX, confirmed)
        fix = self.fixes.get((host, name), Fix())
        changed = fix.outcome in (Outcome.FIXED, Outcome.MITIGATED)
        steps.append(step(Phase.REMEDIATE, f"fix-{name}", changed, when))
        if changed:
            self.faults[host] -= {name, *fix.clears}
            self.faults[host] |= set(fix.brings)
        if fix.outcome is Outcome.MITIGATED:
            self.mitigated.add((host, name))
        return done(fix.outcome, None if fix.outcome is Outcome.FIXED else str(fix.outcome))

    # What the fixer asked for, in a shape tests compare.

    def fix_calls(self) -> list[list[str]]:
        return [[f"{h} {n}" for h, n in jobs] for mode, jobs in self.calls if mode is RunMode.FIX]

    def shape(self) -> list[tuple[RunMode, dict[str, list[str]]]]:
        """Every call: its mode and, per host, its runbooks in order.

        The hosts of one call run in parallel, so only the order within a host is compared.
        """
        shaped = []
        for mode, jobs in self.calls:
            per_host: dict[str, list[str]] = {}
            for host, name in jobs:
                per_host.setdefault(host, []).append(name)
            shaped.append((mode, per_host))
        return shaped


def key(planned: PlannedJob) -> Key:
    return planned.job.host_name, planned.job.runbook_name


def step(phase: Phase, name: str, passed: bool, when: datetime) -> StepResult:
    status = StepStatus.PASSED if passed else StepStatus.FAILED
    reason = None if passed else "exit status 1, expected 0"
    return StepResult(phase, name, status, reason=reason, started=when, ended=when)


def every(*hosts: str) -> dict[str, list[str]]:
    """The re-diagnosis of ``hosts``: every runbook planned on them, in plan order."""
    return {h: list(RUNBOOKS) for h in hosts}


def converge(
    world: World, planned: Sequence[PlannedJob], mode: RunMode = RunMode.FIX
) -> Convergence:
    found = world.diagnose(planned)
    return Fixer(world, BUILTIN, planned).fix(found, mode)


FIX, DETECT, DRY_RUN = RunMode.FIX, RunMode.DETECT, RunMode.DRY_RUN


# ---------------------------------------------------------------------------------------------
# Root causes first; consequences explained


def test_only_the_root_cause_is_fixed_and_what_it_cleared_is_explained(
    planned: list[PlannedJob],
) -> None:
    world = World(
        {"api-1": ["nic-down", "clearing-path-down", "path-slow"]},
        fixes={("api-1", "nic-down"): Fix(clears=("clearing-path-down", "path-slow"))},
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["nic-down"]}),
        (DETECT, {"api-1": ["clearing-path-down", "path-slow"]}),  # the consequences
        (DETECT, every("api-1")),  # the re-diagnosis
    ]
    assert done.explained == [
        Explained("api-1", "clearing-path-down", "nic-down"),
        Explained("api-1", "path-slow", "nic-down"),
    ]
    assert done.waves == 1
    assert done.conflicts == []
    assert done.remaining == ()
    assert done.converged
    assert world.faults["api-1"] == set()


def test_a_cleared_consequence_is_recorded_fixed_by_its_root_cause(
    planned: list[PlannedJob],
) -> None:
    world = World(
        {"api-1": ["nic-down", "clearing-path-down"]},
        fixes={("api-1", "nic-down"): Fix(clears=("clearing-path-down",))},
    )
    done = converge(world, planned)
    outage = done.results["api-1", "clearing-path-down"]
    assert outage.status is Outcome.FIXED
    assert outage.explained_by == "nic-down"
    assert outage.error is None
    assert outage.notes == ("cleared when nic-down was fixed on this host: not fixed itself",)
    # The diagnosis's failed check, then the re-check that passed; no remediation.
    assert [(s.phase, s.status) for s in outage.steps] == [
        (Phase.DETECT, StepStatus.FAILED),
        (Phase.DETECT, StepStatus.PASSED),
    ]
    assert outage.started == T0 + timedelta(minutes=1)  # the diagnosis
    assert outage.ended == T0 + timedelta(minutes=3)  # the re-check, after the fix
    nic = done.results["api-1", "nic-down"]
    assert nic.status is Outcome.FIXED
    assert nic.explained_by is None


def test_a_crash_fix_explains_the_service_interruption(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-2": ["api-down", "api-crashed"]},
        fixes={("api-2", "api-crashed"): Fix(clears=("api-down",))},
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["api-2 api-crashed"]]
    assert done.explained == [Explained("api-2", "api-down", "api-crashed")]
    assert done.results["api-2", "api-down"].explained_by == "api-crashed"
    assert done.converged


def test_a_consequence_that_outlives_its_root_causes_fix_is_fixed_in_a_later_wave(
    planned: list[PlannedJob],
) -> None:
    world = World({"api-1": ["nic-down", "clearing-path-down"]})  # the NIC fix clears nothing
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["nic-down"]}),
        (DETECT, {"api-1": ["clearing-path-down"]}),  # still there: a fault of its own
        (FIX, {"api-1": ["clearing-path-down"]}),
        (DETECT, {"api-1": ["nic-down"]}),  # did the outage's fix undo the NIC's?
        (DETECT, every("api-1")),
    ]
    assert done.waves == 2
    assert done.explained == []
    outage = done.results["api-1", "clearing-path-down"]
    assert (outage.status, outage.explained_by) == (Outcome.FIXED, None)
    assert done.converged


def test_consequences_wait_for_every_root_cause_on_their_host(planned: list[PlannedJob]) -> None:
    # The outage outlives the NIC's fix but is fixed only once the crash (another root) is.
    world = World({"api-1": ["nic-down", "api-crashed", "clearing-path-down"]})
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["nic-down"]}),
        (DETECT, {"api-1": ["api-crashed", "clearing-path-down"]}),
        (FIX, {"api-1": ["api-crashed"]}),
        (DETECT, {"api-1": ["nic-down", "clearing-path-down"]}),
        (FIX, {"api-1": ["clearing-path-down"]}),
        (DETECT, {"api-1": ["nic-down", "api-crashed"]}),
        (DETECT, every("api-1")),
    ]
    assert done.waves == 3
    assert done.converged


def test_a_transitive_consequence_is_explained_by_the_root_not_the_link_between(
    planned: list[PlannedJob],
) -> None:
    # NIC -> outage -> latency; the outage's fix would clear the latency, but the NIC's does.
    world = World(
        {"lb-1": ["path-slow", "clearing-path-down", "nic-down"]},
        fixes={
            ("lb-1", "nic-down"): Fix(clears=("clearing-path-down", "path-slow")),
            ("lb-1", "clearing-path-down"): Fix(clears=("path-slow",)),
        },
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["lb-1 nic-down"]]
    assert {e.runbook: e.by for e in done.explained} == {
        "clearing-path-down": "nic-down",
        "path-slow": "nic-down",
    }


def test_a_consequence_cleared_by_a_partly_successful_chain(planned: list[PlannedJob]) -> None:
    # The NIC fix clears the outage but not the latency: the latency is fixed on its own.
    world = World(
        {"api-1": ["nic-down", "clearing-path-down", "path-slow"]},
        fixes={("api-1", "nic-down"): Fix(clears=("clearing-path-down",))},
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["api-1 nic-down"], ["api-1 path-slow"]]
    assert done.explained == [Explained("api-1", "clearing-path-down", "nic-down")]
    assert done.results["api-1", "path-slow"].explained_by is None
    assert done.results["api-1", "path-slow"].status is Outcome.FIXED
    assert done.converged


def test_a_root_cause_cleared_by_another_roots_fix_is_not_fixed_itself(
    planned: list[PlannedJob],
) -> None:
    world = World(
        {"api-1": ["nic-down", "version-drift"]},
        fixes={("api-1", "nic-down"): Fix(clears=("version-drift",))},
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["api-1 nic-down"]]
    assert done.explained == [Explained("api-1", "version-drift", "nic-down")]
    assert done.results["api-1", "version-drift"].status is Outcome.FIXED


# ---------------------------------------------------------------------------------------------
# Waves


def test_root_causes_are_fixed_one_per_host_per_wave_in_fix_order_hosts_in_parallel(
    planned: list[PlannedJob],
) -> None:
    world = World(
        {
            "api-1": ["open-port", "api-crashed", "nic-down"],
            "api-2": ["version-drift", "clearing-path-down"],
            "lb-1": ["api-crashed"],
        }
    )
    done = converge(world, planned)
    assert world.fix_calls() == [
        ["api-1 nic-down", "api-2 clearing-path-down", "lb-1 api-crashed"],
        ["api-1 api-crashed", "api-2 version-drift"],
        ["api-1 open-port"],
    ]
    assert world.shape() == [
        (FIX, {"api-1": ["nic-down"], "api-2": ["clearing-path-down"], "lb-1": ["api-crashed"]}),
        (DETECT, {"api-1": ["api-crashed", "open-port"], "api-2": ["version-drift"]}),
        (FIX, {"api-1": ["api-crashed"], "api-2": ["version-drift"]}),
        (DETECT, {"api-1": ["nic-down", "open-port"], "api-2": ["clearing-path-down"]}),
        (FIX, {"api-1": ["open-port"]}),
        (DETECT, {"api-1": ["nic-down", "api-crashed"]}),
        (DETECT, every(*HOSTS)),
    ]
    assert done.waves == 3
    assert done.converged
    assert done.conflicts == []
    assert all(world.faults[h] == set() for h in HOSTS)


def test_equal_ranks_are_fixed_by_severity_then_name(planned: list[PlannedJob]) -> None:
    # Compatibility and interruption rank alike (software, explain nothing) and are both
    # critical: by name, not plan order. Security and latency rank alike (network): the
    # critical latency first, though "open-port" comes first by name.
    world = World({"api-1": ["open-port", "path-slow", "version-drift", "api-down"]})
    converge(world, planned)
    assert world.fix_calls() == [
        ["api-1 api-down"],
        ["api-1 version-drift"],
        ["api-1 path-slow"],
        ["api-1 open-port"],
    ]


def test_a_host_with_nothing_confirmed_is_neither_fixed_nor_re_diagnosed(
    planned: list[PlannedJob],
) -> None:
    world = World({"api-2": ["api-crashed"]})
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-2": ["api-crashed"]}),
        (DETECT, every("api-2")),
    ]
    assert [d.host for d in done.after] == ["api-2"]
    assert done.converged


def test_nothing_found_nothing_run(planned: list[PlannedJob]) -> None:
    world = World({})
    done = converge(world, planned)
    assert world.calls == []
    assert done.waves == 0
    assert done.converged
    assert len(done.results) == len(planned)
    assert all(r.status is Outcome.HEALTHY for r in done.results.values())


def test_a_fix_merges_into_the_diagnosis_result(planned: list[PlannedJob]) -> None:
    world = World({"api-1": ["api-crashed"]})
    done = converge(world, planned)
    crashed = done.results["api-1", "api-crashed"]
    assert crashed.status is Outcome.FIXED
    assert [(s.phase, s.status) for s in crashed.steps] == [
        (Phase.DETECT, StepStatus.FAILED),  # the diagnosis
        (Phase.DETECT, StepStatus.FAILED),  # the fix's own detect
        (Phase.REMEDIATE, StepStatus.PASSED),
    ]
    assert crashed.started == T0 + timedelta(minutes=1)
    assert crashed.ended == T0 + timedelta(minutes=2)
    # The re-diagnosis is not written over the results.
    assert done.results["api-1", "nic-down"].started == T0 + timedelta(minutes=1)


def test_a_fix_that_did_not_change_the_host_is_not_re_checked(planned: list[PlannedJob]) -> None:
    # The NIC fix waits for a window: nothing changed, so nothing to re-check; the crash is
    # fixed next, and the NIC fault is still there at the end.
    world = World(
        {"api-1": ["nic-down", "api-crashed"]},
        fixes={("api-1", "nic-down"): Fix(Outcome.DEFERRED)},
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["nic-down"]}),
        (FIX, {"api-1": ["api-crashed"]}),
        (DETECT, every("api-1")),
    ]
    assert done.results["api-1", "nic-down"].status is Outcome.DEFERRED
    assert [(r.host, r.runbook) for r in done.remaining] == [("api-1", "nic-down")]
    assert not done.converged


def test_a_failed_fix_is_re_diagnosed_and_leaves_a_fault(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-1": ["api-crashed"]},
        fixes={("api-1", "api-crashed"): Fix(Outcome.FAILED)},
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["api-crashed"]}),
        (DETECT, every("api-1")),
    ]
    assert done.results["api-1", "api-crashed"].status is Outcome.FAILED
    assert [(r.host, r.runbook, r.status) for r in done.remaining] == [
        ("api-1", "api-crashed", Outcome.WOULD_FIX)
    ]
    assert done.conflicts == []  # a fix that did not hold undid nothing
    assert not done.converged


def test_a_failed_root_fix_still_lets_its_consequence_be_fixed(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-1": ["api-crashed", "api-down"]},
        fixes={("api-1", "api-crashed"): Fix(Outcome.FAILED)},
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["api-crashed"]}),
        (DETECT, {"api-1": ["api-down"]}),  # the failed fix is not re-checked: it did not hold
        (FIX, {"api-1": ["api-down"]}),
        (DETECT, every("api-1")),
    ]
    assert not done.converged  # the crash remains


# ---------------------------------------------------------------------------------------------
# Conflicts


def test_a_fix_that_undoes_an_earlier_fix_is_a_conflict_and_stops_the_host(
    planned: list[PlannedJob],
) -> None:
    # On api-1 restarting the crashed API takes the NIC down again; api-2 has no such trouble.
    world = World(
        {
            "api-1": ["nic-down", "api-crashed", "open-port"],
            "api-2": ["nic-down", "api-crashed", "open-port"],
        },
        fixes={("api-1", "api-crashed"): Fix(brings=("nic-down",))},
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["nic-down"], "api-2": ["nic-down"]}),
        (DETECT, {"api-1": ["api-crashed", "open-port"], "api-2": ["api-crashed", "open-port"]}),
        (FIX, {"api-1": ["api-crashed"], "api-2": ["api-crashed"]}),
        (DETECT, {"api-1": ["nic-down", "open-port"], "api-2": ["nic-down", "open-port"]}),
        (FIX, {"api-2": ["open-port"]}),  # api-1 stopped: its open port is left alone
        (DETECT, {"api-2": ["nic-down", "api-crashed"]}),
        (DETECT, every("api-1", "api-2")),
    ]
    conflict = Conflict(
        "api-1",
        "nic-down",
        "api-crashed",
        "fault confirmed: nic-down check: exit status 1, expected 0",
    )
    assert done.conflicts == [conflict]  # once: the re-diagnosis does not record it again
    assert done.waves == 3
    port = done.results["api-1", "open-port"]
    assert port.status is Outcome.WOULD_FIX
    assert port.notes == ("not fixed: api-crashed undid nic-down on this host",)
    assert done.results["api-2", "open-port"].status is Outcome.FIXED
    assert not done.converged
    assert {(r.host, r.runbook) for r in done.remaining} == {
        ("api-1", "nic-down"),
        ("api-1", "open-port"),
    }


def test_a_conflict_does_not_loop_each_runbook_is_fixed_once(planned: list[PlannedJob]) -> None:
    # Each fix brings the other's fault back: fixing them in turn would never end.
    world = World(
        {"lb-1": ["nic-down", "api-crashed"]},
        fixes={
            ("lb-1", "nic-down"): Fix(brings=("api-crashed",)),
            ("lb-1", "api-crashed"): Fix(brings=("nic-down",)),
        },
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["lb-1 nic-down"], ["lb-1 api-crashed"]]
    assert world.shape() == [
        (FIX, {"lb-1": ["nic-down"]}),
        (DETECT, {"lb-1": ["api-crashed"]}),
        (FIX, {"lb-1": ["api-crashed"]}),
        (DETECT, {"lb-1": ["nic-down"]}),  # back: a conflict, and the host is done
        (DETECT, every("lb-1")),
    ]
    assert {(c.undone, c.by) for c in done.conflicts} == {("nic-down", "api-crashed")}
    assert not done.converged


def test_a_fix_that_brings_back_a_fault_fixed_two_waves_before_names_both(
    planned: list[PlannedJob],
) -> None:
    world = World(
        {"api-1": ["nic-down", "api-crashed", "version-drift"]},
        fixes={("api-1", "version-drift"): Fix(brings=("nic-down",))},
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["api-1 nic-down"], ["api-1 api-crashed"], ["api-1 version-drift"]]
    assert world.shape()[-2] == (DETECT, {"api-1": ["nic-down", "api-crashed"]})
    assert {(c.host, c.undone, c.by) for c in done.conflicts} == {
        ("api-1", "nic-down", "version-drift")
    }


def test_a_fault_that_comes_back_by_itself_is_no_fix_of_ours_but_no_convergence(
    planned: list[PlannedJob],
) -> None:
    # The crash is fixed and verified, then crashes again before the re-diagnosis.
    world = World(
        {"api-1": ["api-crashed"]},
        fixes={("api-1", "api-crashed"): Fix(brings=("api-crashed",))},
    )
    done = converge(world, planned)
    assert world.fix_calls() == [["api-1 api-crashed"]]
    assert [(c.undone, c.by) for c in done.conflicts] == [("api-crashed", "a later check")]
    assert not done.converged


def test_a_conflict_is_recorded_once(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-1": ["nic-down", "api-crashed"]},
        fixes={("api-1", "api-crashed"): Fix(brings=("nic-down",))},
    )
    done = converge(world, planned)
    assert done.conflicts == [
        Conflict(
            "api-1",
            "nic-down",
            "api-crashed",
            "fault confirmed: nic-down check: exit status 1, expected 0",
        )
    ]


# ---------------------------------------------------------------------------------------------
# Converged or not


def test_converged_allows_a_mitigated_root_cause(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-1": ["path-slow"]},
        fixes={("api-1", "path-slow"): Fix(Outcome.MITIGATED)},
    )
    done = converge(world, planned)
    assert done.results["api-1", "path-slow"].status is Outcome.MITIGATED
    assert done.remaining == ()
    (after,) = done.after
    assert [(i.root_cause, i.status) for i in after.incidents] == [
        ("network.latency", Outcome.MITIGATED)
    ]
    assert done.converged


def test_a_mitigated_fix_that_is_undone_is_a_conflict_too(planned: list[PlannedJob]) -> None:
    # The crash is mitigated (service restored); updating the version crashes it again.
    world = World(
        {"api-1": ["api-crashed", "version-drift"]},
        fixes={
            ("api-1", "api-crashed"): Fix(Outcome.MITIGATED),
            ("api-1", "version-drift"): Fix(brings=("api-crashed",)),
        },
    )
    done = converge(world, planned)
    assert world.shape()[:4] == [
        (FIX, {"api-1": ["api-crashed"]}),
        (DETECT, {"api-1": ["version-drift"]}),
        (FIX, {"api-1": ["version-drift"]}),
        (DETECT, {"api-1": ["api-crashed"]}),  # the mitigation held until now
    ]
    assert [(c.undone, c.by) for c in done.conflicts] == [("api-crashed", "version-drift")]
    assert not done.converged


def test_a_consequence_of_a_root_mitigated_in_the_run_waits_for_its_repair(
    planned: list[PlannedJob],
) -> None:
    # The outage's fix only mitigates it (backup gateway); the latency it explains remains and
    # is not fixed on its own: it is mitigated with its root cause.
    world = World(
        {"api-1": ["clearing-path-down", "path-slow"]},
        fixes={("api-1", "clearing-path-down"): Fix(Outcome.MITIGATED)},
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["clearing-path-down"]}),
        (DETECT, {"api-1": ["path-slow"]}),
        (DETECT, every("api-1")),
    ]
    slow = done.results["api-1", "path-slow"]
    assert (slow.status, slow.explained_by) == (Outcome.MITIGATED, "clearing-path-down")
    assert slow.notes[-1] == "explained by clearing-path-down, which was mitigated, not repaired"
    assert done.remaining == ()
    assert done.converged


def test_not_converged_when_the_re_diagnosis_finds_a_fault(planned: list[PlannedJob]) -> None:
    # Fixing the crash introduces a version drift nobody had seen.
    world = World(
        {"api-1": ["api-crashed"]},
        fixes={("api-1", "api-crashed"): Fix(brings=("version-drift",))},
    )
    done = converge(world, planned)
    assert [(r.host, r.runbook) for r in done.remaining] == [("api-1", "version-drift")]
    assert done.conflicts == []
    assert not done.converged
    assert done.after[0].root_causes == ("software.compatibility",)


def test_not_converged_when_a_symptom_is_left_without_a_cause(planned: list[PlannedJob]) -> None:
    # The health endpoint still fails after the crash is fixed, and no cause check says why.
    world = World(
        {"api-1": ["api-crashed"]},
        symptoms={("api-1", "api-down"): "health endpoint answers"},
    )
    done = converge(world, planned)
    assert done.remaining == ()
    assert done.conflicts == []
    assert [(i.root_cause, [s.check for s in i.symptoms]) for i in done.after[0].incidents] == [
        (None, ["health endpoint answers"])
    ]
    assert not done.converged


def test_converged_needs_no_conflict() -> None:
    assert Convergence({}).converged
    assert not Convergence({}, conflicts=[Conflict("h", "a", "b", "why")]).converged


# ---------------------------------------------------------------------------------------------
# Dry-run; mitigated findings


def test_a_dry_run_is_one_call_with_every_root_cause_and_no_re_check(
    planned: list[PlannedJob],
) -> None:
    world = World(
        {
            "api-1": ["clearing-path-down", "api-crashed", "nic-down", "api-down"],
            "lb-1": ["open-port"],
        }
    )
    done = converge(world, planned, DRY_RUN)
    assert world.calls == [
        (DRY_RUN, (("api-1", "nic-down"), ("api-1", "api-crashed"), ("lb-1", "open-port")))
    ]
    assert done.waves == 0
    assert done.explained == []
    assert done.after == ()
    nic = done.results["api-1", "nic-down"]
    assert nic.status is Outcome.WOULD_FIX
    assert len(nic.steps) == 2  # the diagnosis's check and the dry-run's
    outage = done.results["api-1", "clearing-path-down"]  # a consequence: not in the dry-run
    assert (outage.status, len(outage.steps)) == (Outcome.WOULD_FIX, 1)
    assert world.faults["api-1"] == {"clearing-path-down", "api-crashed", "nic-down", "api-down"}


def test_mitigated_findings_are_not_fixed(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-1": ["api-crashed"]},
        mitigated=[("api-1", "path-slow"), ("api-2", "clearing-path-down")],
    )
    done = converge(world, planned)
    assert world.shape() == [
        (FIX, {"api-1": ["api-crashed"]}),
        (DETECT, every("api-1")),
    ]
    assert done.results["api-1", "path-slow"].status is Outcome.MITIGATED
    assert done.results["api-2", "clearing-path-down"].status is Outcome.MITIGATED
    assert done.converged


def test_a_fleet_with_only_mitigated_findings_runs_nothing(planned: list[PlannedJob]) -> None:
    world = World({}, mitigated=[("lb-1", "path-slow")])
    done = converge(world, planned)
    assert world.calls == []
    assert done.converged


# ---------------------------------------------------------------------------------------------
# Found wanting


def test_a_consequence_of_a_root_cause_mitigated_before_the_run_is_not_left_open(
    planned: list[PlannedJob],
) -> None:
    # The outage is mitigated (traffic on the backup gateway); the latency it explains is not.
    world = World({"api-1": ["path-slow"]}, mitigated=[("api-1", "clearing-path-down")])
    done = converge(world, planned)
    slow = done.results["api-1", "path-slow"]
    # Fixed, or waiting with its mitigated root: either way not open in a converged run.
    assert not (done.converged and slow.status is Outcome.WOULD_FIX)


def test_a_deferred_fix_is_not_convergence(planned: list[PlannedJob]) -> None:
    world = World(
        {"api-1": ["api-crashed"]},
        fixes={("api-1", "api-crashed"): Fix(Outcome.DEFERRED)},
    )
    done = converge(world, planned)
    assert done.results["api-1", "api-crashed"].status is Outcome.DEFERRED
    assert not done.converged
