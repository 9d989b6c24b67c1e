"""Diagnosis: every runbook's verdict on a host -> hypotheses, root causes and incidents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from oorfix.catalog import BUILTIN, Catalog, FaultType
from oorfix.diagnosis.incidents import (
    HostDiagnosis,
    Hypothesis,
    Incident,
    Symptom,
    Verdict,
    diagnose,
    diagnose_host,
)
from oorfix.results import HostResult, Outcome, Phase, StepResult, StepStatus

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

HC = "hardware.communication"
OUTAGE = "network.outage"
LATENCY = "network.latency"
CRASH = "software.crash"
DOWN = "software.service_interruption"
SECURITY = "network.security"
COMPAT = "software.compatibility"
TEMPERATURE = "environment.temperature"
HUMIDITY = "environment.humidity_dust"

# A made-up catalogue: a chain a -> b -> c, a pair that explain each other, a loner.
CHAIN = Catalog.of(
    [
        FaultType("alpha.root", "root signal", "fix root", explains=("beta.middle",)),
        FaultType("beta.middle", "middle signal", "fix middle", explains=("gamma.leaf",)),
        FaultType("gamma.leaf", "leaf signal", "fix leaf"),
        FaultType("delta.ping", "ping", "fix ping", explains=("delta.pong",)),
        FaultType("delta.pong", "pong", "fix pong", explains=("delta.ping",)),
        FaultType("omega.alone", "alone", "fix alone"),
    ]
)


def check(
    name: str, status: StepStatus = StepStatus.PASSED, reason: str | None = None
) -> StepResult:
    """A cause check (detect phase)."""
    return StepResult(Phase.DETECT, name, status, reason=reason, started=T0, ended=T0)


def failing(name: str, reason: str = "exit status 1, expected 0") -> StepResult:
    """A cause check that failed: it confirms the fault."""
    return check(name, StepStatus.FAILED, reason)


def symptom(
    name: str,
    reason: str | None = "exit status 7, expected 0",
    status: StepStatus = StepStatus.FAILED,
) -> StepResult:
    """An impact check (symptoms phase)."""
    return StepResult(Phase.SYMPTOMS, name, status, reason=reason, started=T0, ended=T0)


def result(
    runbook: str,
    fault: str,
    status: Outcome,
    *steps: StepResult,
    host: str = "api-1",
    error: str | None = None,
) -> HostResult:
    """One runbook's verdict on one host. Without steps: one cause check fitting the status."""
    if not steps:
        if status is Outcome.HEALTHY:
            steps = (check(f"{runbook} check"),)
        elif status not in (Outcome.UNREACHABLE, Outcome.ERROR, Outcome.SKIPPED):
            steps = (failing(f"{runbook} check"),)
    return HostResult(host, runbook, fault, status, steps, error=error, started=T0, ended=T0)


def found(*results: HostResult, catalog: Catalog = BUILTIN) -> HostDiagnosis:
    """The diagnosis of api-1 from ``results``."""
    return diagnose_host("api-1", results, catalog)


def verdicts(diagnosis: HostDiagnosis) -> dict[str, tuple[Verdict, str | None]]:
    """Runbook -> (verdict, the fault that explains it)."""
    return {h.runbook: (h.verdict, h.explained_by) for h in diagnosis.hypotheses}


def hypothesis(diagnosis: HostDiagnosis, runbook: str) -> Hypothesis:
    matches = [h for h in diagnosis.hypotheses if h.runbook == runbook]
    assert len(matches) == 1, matches
    return matches[0]


def incident_of(diagnosis: HostDiagnosis, root: str | None) -> Incident:
    matches = [i for i in diagnosis.incidents if i.root_cause == root]
    assert len(matches) == 1, diagnosis.incidents
    return matches[0]


# ---------------------------------------------------------------------------------------------
# Root causes and consequences


def test_nic_down_explains_the_outage_and_the_latency_it_sets_off() -> None:
    diagnosis = found(
        result("clearing-path-down", OUTAGE, Outcome.WOULD_FIX),
        result("nic-down", HC, Outcome.WOULD_FIX),
        result("path-slow", LATENCY, Outcome.WOULD_FIX),
    )
    assert verdicts(diagnosis) == {
        "clearing-path-down": (Verdict.CONSEQUENCE, HC),
        "nic-down": (Verdict.ROOT_CAUSE, None),
        "path-slow": (Verdict.CONSEQUENCE, HC),
    }
    assert diagnosis.root_causes == (HC,)
    assert diagnosis.incidents == (
        Incident("api-1", HC, "nic-down", Outcome.WOULD_FIX, (LATENCY, OUTAGE), ()),
    )


def test_a_crash_explains_the_service_interruption_whatever_the_order() -> None:
    diagnosis = found(
        result("api-down", DOWN, Outcome.WOULD_FIX),
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
    )
    assert verdicts(diagnosis) == {
        "api-down": (Verdict.CONSEQUENCE, CRASH),
        "api-crashed": (Verdict.ROOT_CAUSE, None),
    }
    assert diagnosis.root_causes == (CRASH,)
    assert incident_of(diagnosis, CRASH).consequences == (DOWN,)
    assert incident_of(diagnosis, CRASH).runbook == "api-crashed"


def test_a_fault_alone_is_its_own_root_cause() -> None:
    diagnosis = found(result("api-down", DOWN, Outcome.WOULD_FIX))
    assert verdicts(diagnosis) == {"api-down": (Verdict.ROOT_CAUSE, None)}
    assert diagnosis.incidents == (Incident("api-1", DOWN, "api-down", Outcome.WOULD_FIX),)


def test_a_link_is_followed_through_a_fault_that_was_refuted() -> None:
    # alpha explains gamma through beta; beta itself is not there.
    diagnosis = found(
        result("leaf", "gamma.leaf", Outcome.WOULD_FIX),
        result("middle", "beta.middle", Outcome.HEALTHY),
        result("root", "alpha.root", Outcome.WOULD_FIX),
        catalog=CHAIN,
    )
    assert verdicts(diagnosis) == {
        "leaf": (Verdict.CONSEQUENCE, "alpha.root"),
        "middle": (Verdict.REFUTED, None),
        "root": (Verdict.ROOT_CAUSE, None),
    }
    assert diagnosis.root_causes == ("alpha.root",)


def test_every_fault_of_a_chain_is_put_down_to_its_root_not_the_link_between() -> None:
    diagnosis = found(
        result("leaf", "gamma.leaf", Outcome.WOULD_FIX),
        result("middle", "beta.middle", Outcome.WOULD_FIX),
        result("root", "alpha.root", Outcome.WOULD_FIX),
        catalog=CHAIN,
    )
    assert verdicts(diagnosis) == {
        "leaf": (Verdict.CONSEQUENCE, "alpha.root"),
        "middle": (Verdict.CONSEQUENCE, "alpha.root"),
        "root": (Verdict.ROOT_CAUSE, None),
    }
    assert diagnosis.incidents == (
        Incident("api-1", "alpha.root", "root", Outcome.WOULD_FIX, ("beta.middle", "gamma.leaf")),
    )


def test_without_its_root_the_middle_of_a_chain_is_the_root_cause() -> None:
    diagnosis = found(
        result("leaf", "gamma.leaf", Outcome.WOULD_FIX),
        result("middle", "beta.middle", Outcome.WOULD_FIX),
        result("root", "alpha.root", Outcome.HEALTHY),
        catalog=CHAIN,
    )
    assert verdicts(diagnosis)["leaf"] == (Verdict.CONSEQUENCE, "beta.middle")
    assert diagnosis.root_causes == ("beta.middle",)


def test_built_in_links_are_transitive_humidity_explains_a_service_interruption() -> None:
    # humidity -> temperature -> crash -> service interruption: no link in between confirmed.
    diagnosis = found(
        result("api-down", DOWN, Outcome.WOULD_FIX),
        result("dusty", HUMIDITY, Outcome.WOULD_FIX),
        result("hot", TEMPERATURE, Outcome.HEALTHY),
        result("api-crashed", CRASH, Outcome.HEALTHY),
    )
    assert verdicts(diagnosis)["api-down"] == (Verdict.CONSEQUENCE, HUMIDITY)
    assert diagnosis.root_causes == (HUMIDITY,)


def test_two_independent_root_causes_on_one_host_are_two_incidents() -> None:
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
        result("nic-down", HC, Outcome.WOULD_FIX),
        result("clearing-path-down", OUTAGE, Outcome.WOULD_FIX),
        result("api-down", DOWN, Outcome.WOULD_FIX),
    )
    assert len(diagnosis.incidents) == 2
    assert set(diagnosis.root_causes) == {CRASH, HC}
    assert incident_of(diagnosis, CRASH).consequences == (DOWN,)
    assert incident_of(diagnosis, HC).consequences == (OUTAGE,)
    assert verdicts(diagnosis)["clearing-path-down"] == (Verdict.CONSEQUENCE, HC)
    assert verdicts(diagnosis)["api-down"] == (Verdict.CONSEQUENCE, CRASH)


def test_faults_that_explain_each_other_are_both_root_causes() -> None:
    diagnosis = found(
        result("ping", "delta.ping", Outcome.WOULD_FIX),
        result("pong", "delta.pong", Outcome.WOULD_FIX),
        catalog=CHAIN,
    )
    assert verdicts(diagnosis) == {
        "ping": (Verdict.ROOT_CAUSE, None),
        "pong": (Verdict.ROOT_CAUSE, None),
    }
    assert all(i.consequences == () for i in diagnosis.incidents)
    assert len(diagnosis.incidents) == 2


def test_fault_ids_the_catalogue_does_not_know_are_root_causes() -> None:
    diagnosis = found(
        result("site-a", "site.thing", Outcome.WOULD_FIX),
        result("site-b", "site.other", Outcome.WOULD_FIX),
        catalog=CHAIN,
    )
    assert set(diagnosis.root_causes) == {"site.thing", "site.other"}


def test_a_custom_catalogue_replaces_the_built_in_links() -> None:
    # The built-in catalogue links a crash to a service interruption; this one does not.
    results = (
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
        result("api-down", DOWN, Outcome.WOULD_FIX),
    )
    assert found(*results).root_causes == (CRASH,)
    assert set(found(*results, catalog=CHAIN).root_causes) == {CRASH, DOWN}


def test_an_unconfirmed_explaining_fault_does_not_make_a_consequence() -> None:
    diagnosis = found(
        result("nic-down", HC, Outcome.UNREACHABLE, error="connection refused"),
        result("clearing-path-down", OUTAGE, Outcome.WOULD_FIX),
    )
    assert verdicts(diagnosis) == {
        "nic-down": (Verdict.UNKNOWN, None),
        "clearing-path-down": (Verdict.ROOT_CAUSE, None),
    }
    assert diagnosis.root_causes == (OUTAGE,)


# ---------------------------------------------------------------------------------------------
# Verdicts and evidence

VERDICT_OF = [
    (Outcome.WOULD_FIX, Verdict.ROOT_CAUSE),
    (Outcome.MITIGATED, Verdict.ROOT_CAUSE),
    (Outcome.FIXED, Verdict.ROOT_CAUSE),
    (Outcome.FAILED, Verdict.ROOT_CAUSE),
    (Outcome.DEFERRED, Verdict.ROOT_CAUSE),
    (Outcome.LOCKED, Verdict.ROOT_CAUSE),
    (Outcome.HEALTHY, Verdict.REFUTED),
    (Outcome.UNREACHABLE, Verdict.UNKNOWN),
    (Outcome.ERROR, Verdict.UNKNOWN),
    (Outcome.SKIPPED, Verdict.UNKNOWN),
]


def test_every_outcome_has_a_verdict() -> None:
    assert {status for status, _ in VERDICT_OF} == set(Outcome)


@pytest.mark.parametrize(("status", "verdict"), VERDICT_OF)
def test_the_outcome_decides_the_verdict(status: Outcome, verdict: Verdict) -> None:
    diagnosis = found(result("api-crashed", CRASH, status))
    assert hypothesis(diagnosis, "api-crashed").verdict is verdict
    assert hypothesis(diagnosis, "api-crashed").status is status
    confirmed = verdict is Verdict.ROOT_CAUSE
    assert diagnosis.root_causes == ((CRASH,) if confirmed else ())
    if confirmed:
        assert diagnosis.incidents == (Incident("api-1", CRASH, "api-crashed", status),)
    else:
        assert diagnosis.incidents == ()


@pytest.mark.parametrize(
    "status",
    [Outcome.MITIGATED, Outcome.FIXED, Outcome.FAILED, Outcome.DEFERRED, Outcome.LOCKED],
)
def test_a_confirmed_fault_of_any_outcome_explains_its_consequences(status: Outcome) -> None:
    diagnosis = found(
        result("api-down", DOWN, Outcome.WOULD_FIX),
        result("api-crashed", CRASH, status),
    )
    assert verdicts(diagnosis)["api-down"] == (Verdict.CONSEQUENCE, CRASH)
    assert diagnosis.incidents == (Incident("api-1", CRASH, "api-crashed", status, (DOWN,), ()),)


def test_a_refuted_hypothesis_names_every_check_that_passed_once() -> None:
    healthy = result(
        "nic-down",
        HC,
        Outcome.HEALTHY,
        symptom("clearing peer reachable"),
        check("nic link up"),
        check("peer answers arp"),
        check("nic link up", reason=None),  # a second attempt of the same check
    )
    h = hypothesis(found(healthy), "nic-down")
    assert h.verdict is Verdict.REFUTED
    assert h.evidence == "passed: nic link up; peer answers arp"
    assert h.explained_by is None


def test_a_confirmed_hypothesis_is_shown_by_the_first_failed_cause_check() -> None:
    confirmed = result(
        "nic-down",
        HC,
        Outcome.WOULD_FIX,
        symptom("clearing peer reachable", "curl: (7) failed to connect"),
        check("bond has a slave"),
        failing("nic link up", "stdout does not contain 'state UP'"),
        failing("peer answers arp", "exit status 2, expected 0"),
    )
    h = hypothesis(found(confirmed), "nic-down")
    assert h.verdict is Verdict.ROOT_CAUSE
    assert h.evidence == "nic link up: stdout does not contain 'state UP'"


def test_steps_after_detect_do_not_change_the_evidence() -> None:
    fixed = result(
        "api-crashed",
        CRASH,
        Outcome.FIXED,
        failing("service active", "inactive (dead)"),
        StepResult(Phase.REMEDIATE, "restart", StepStatus.PASSED, started=T0, ended=T0),
        StepResult(Phase.VERIFY, "service active", StepStatus.PASSED, started=T0, ended=T0),
    )
    assert hypothesis(found(fixed), "api-crashed").evidence == "service active: inactive (dead)"


@pytest.mark.parametrize(
    ("outcome", "steps", "error", "evidence"),
    [
        pytest.param(
            Outcome.UNREACHABLE,
            (),
            "ssh: connection refused",
            "ssh: connection refused",
            id="unreachable: its error",
        ),
        pytest.param(Outcome.UNREACHABLE, (), None, "unreachable", id="unreachable: no error"),
        pytest.param(
            Outcome.ERROR,
            (check("nic link up"), check("peer answers arp", StepStatus.ERROR, "timed out")),
            "peer answers arp: timed out",
            "peer answers arp: timed out",
            id="error: the check that could not be judged",
        ),
        pytest.param(
            Outcome.ERROR,
            (),
            "template error: 'clearing_net' is undefined",
            "template error: 'clearing_net' is undefined",
            id="error: no check ran",
        ),
        pytest.param(Outcome.SKIPPED, (), None, "skipped", id="skipped: never started"),
    ],
)
def test_a_hypothesis_that_was_not_judged(
    outcome: Outcome, steps: tuple[StepResult, ...], error: str | None, evidence: str
) -> None:
    h = hypothesis(found(result("nic-down", HC, outcome, *steps, error=error)), "nic-down")
    assert h.verdict is Verdict.UNKNOWN
    assert str(h.verdict) == "not judged"
    assert h.evidence == evidence
    assert h.explained_by is None


def test_hypotheses_keep_the_order_of_the_results() -> None:
    diagnosis = found(
        result("path-slow", LATENCY, Outcome.WOULD_FIX),
        result("api-crashed", CRASH, Outcome.HEALTHY),
        result("nic-down", HC, Outcome.WOULD_FIX),
    )
    assert [h.runbook for h in diagnosis.hypotheses] == ["path-slow", "api-crashed", "nic-down"]
    assert [h.fault for h in diagnosis.hypotheses] == [LATENCY, CRASH, HC]


# ---------------------------------------------------------------------------------------------
# Symptoms


def test_symptoms_go_to_the_root_cause_that_explains_the_runbooks_fault() -> None:
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
        result("nic-down", HC, Outcome.WOULD_FIX),
        result(
            "clearing-path-down",
            OUTAGE,
            Outcome.WOULD_FIX,
            symptom("clearing peer reachable", "curl: (7)"),
            failing("route installed"),
        ),
        result(
            "api-down",
            DOWN,
            Outcome.HEALTHY,
            symptom("health endpoint answers", "503"),
            check("api listening"),
        ),
    )
    assert incident_of(diagnosis, HC).symptoms == (
        Symptom("clearing-path-down", "clearing peer reachable", "curl: (7)", HC),
    )
    # The interruption was refuted, but its symptom is what a crash sets off.
    assert incident_of(diagnosis, CRASH).symptoms == (
        Symptom("api-down", "health endpoint answers", "503", CRASH),
    )
    assert len(diagnosis.incidents) == 2


def test_a_root_that_explains_the_runbooks_fault_beats_one_of_its_category() -> None:
    # The outage runbook's symptom: the NIC explains the outage; the open port is only a
    # network fault like it.
    diagnosis = found(
        result("open-port", SECURITY, Outcome.WOULD_FIX),
        result("nic-down", HC, Outcome.WOULD_FIX),
        result("clearing-path-down", OUTAGE, Outcome.HEALTHY, symptom("peer", "curl: (7)")),
    )
    assert incident_of(diagnosis, HC).symptoms == (
        Symptom("clearing-path-down", "peer", "curl: (7)", HC),
    )
    assert incident_of(diagnosis, SECURITY).symptoms == ()


def test_a_root_causes_own_symptom_is_its_own() -> None:
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX, symptom("pid alive", "no pid")),
        result("nic-down", HC, Outcome.WOULD_FIX),
    )
    assert incident_of(diagnosis, CRASH).symptoms == (
        Symptom("api-crashed", "pid alive", "no pid", CRASH),
    )
    assert incident_of(diagnosis, HC).symptoms == ()


def test_a_symptom_no_root_explains_goes_to_a_root_of_the_same_category() -> None:
    # Nothing confirmed explains latency; of the roots only network.security is a network fault,
    # although the crash comes first in fix order.
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
        result("open-port", SECURITY, Outcome.WOULD_FIX),
        result("path-slow", LATENCY, Outcome.HEALTHY, symptom("rtt below 50ms", "rtt 180ms")),
    )
    assert [s.check for s in incident_of(diagnosis, SECURITY).symptoms] == ["rtt below 50ms"]
    assert incident_of(diagnosis, CRASH).symptoms == ()
    assert incident_of(diagnosis, SECURITY).symptoms[0].explained_by == SECURITY


def test_else_a_symptom_goes_to_the_first_root_cause_in_fix_order() -> None:
    # No root explains temperature or shares its category: the first root in fix order (the
    # NIC, which explains more) takes it, not the first result (the open port).
    diagnosis = found(
        result("open-port", SECURITY, Outcome.WOULD_FIX),
        result("nic-down", HC, Outcome.WOULD_FIX),
        result("hot", TEMPERATURE, Outcome.HEALTHY, symptom("inlet below 27C", "31C")),
    )
    assert incident_of(diagnosis, HC).symptoms == (Symptom("hot", "inlet below 27C", "31C", HC),)
    assert incident_of(diagnosis, SECURITY).symptoms == ()
    assert all(i.root_cause is not None for i in diagnosis.incidents)


def test_a_symptom_shared_by_two_runbooks_appears_once() -> None:
    diagnosis = found(
        result(
            "nic-down",
            HC,
            Outcome.WOULD_FIX,
            symptom("clearing peer reachable", "first reason"),
            failing("nic link up"),
        ),
        result(
            "clearing-path-down",
            OUTAGE,
            Outcome.WOULD_FIX,
            symptom("clearing peer reachable", "second reason"),
            failing("route installed"),
        ),
        result(
            "path-slow",
            LATENCY,
            Outcome.WOULD_FIX,
            symptom("clearing peer reachable", "third reason"),
            failing("primary path fast"),
        ),
    )
    every = [s for i in diagnosis.incidents for s in i.symptoms]
    assert every == [Symptom("nic-down", "clearing peer reachable", "first reason", HC)]


def test_a_shared_symptom_goes_to_a_root_that_explains_one_of_its_runbooks() -> None:
    # The first runbook to see it (compatibility, refuted) would put it down to the crash by
    # category; the outage runbook saw it too, and the NIC explains the outage.
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
        result("nic-down", HC, Outcome.WOULD_FIX),
        result(
            "version-drift",
            COMPAT,
            Outcome.HEALTHY,
            symptom("clearing peer reachable", "curl: (7)"),
            check("version matches"),
        ),
        result(
            "clearing-path-down",
            OUTAGE,
            Outcome.WOULD_FIX,
            symptom("clearing peer reachable", "curl: (28)"),
            failing("route installed"),
        ),
    )
    assert incident_of(diagnosis, HC).symptoms == (
        Symptom("version-drift", "clearing peer reachable", "curl: (7)", HC),
    )
    assert incident_of(diagnosis, CRASH).symptoms == ()


def test_symptoms_with_no_confirmed_cause_are_an_incident_with_no_root_cause() -> None:
    diagnosis = found(
        result(
            "clearing-path-down",
            OUTAGE,
            Outcome.HEALTHY,
            symptom("clearing peer reachable", "curl: (7)"),
            check("route installed"),
        ),
        result("nic-down", HC, Outcome.UNREACHABLE, error="ssh: timed out"),
        result(
            "api-down",
            DOWN,
            Outcome.HEALTHY,
            symptom("health endpoint answers", "503"),
            symptom("clearing peer reachable", "curl: (28)"),
            check("api listening"),
        ),
    )
    assert diagnosis.root_causes == ()
    assert diagnosis.incidents == (
        Incident(
            "api-1",
            None,
            None,
            None,
            (),
            (
                Symptom("clearing-path-down", "clearing peer reachable", "curl: (7)", None),
                Symptom("api-down", "health endpoint answers", "503", None),
            ),
        ),
    )


def test_symptoms_that_passed_or_were_skipped_are_no_incident() -> None:
    diagnosis = found(
        result(
            "api-down",
            DOWN,
            Outcome.HEALTHY,
            symptom("health endpoint answers", None, StepStatus.PASSED),
            symptom("clearing peer reachable", None, StepStatus.SKIPPED),
            symptom("pid alive", "timed out", StepStatus.ERROR),
            check("api listening"),
        ),
    )
    assert diagnosis.incidents == ()


def test_a_failed_cause_check_is_not_a_symptom() -> None:
    diagnosis = found(result("api-down", DOWN, Outcome.HEALTHY), result("x", CRASH, Outcome.ERROR))
    assert diagnosis.incidents == ()
    diagnosis = found(result("api-down", DOWN, Outcome.WOULD_FIX, failing("health")))
    assert diagnosis.incidents[0].symptoms == ()


def test_a_symptom_with_no_reason_has_an_empty_one() -> None:
    diagnosis = found(result("api-down", DOWN, Outcome.HEALTHY, symptom("health", None)))
    assert diagnosis.incidents[0].symptoms == (Symptom("api-down", "health", "", None),)


def test_only_symptoms_no_root_explains_are_left_without_a_cause() -> None:
    # One root cause on the host: every symptom is put down to it, none is left open.
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX),
        result("hot", TEMPERATURE, Outcome.HEALTHY, symptom("inlet below 27C", "31C")),
        result("path-slow", LATENCY, Outcome.HEALTHY, symptom("rtt below 50ms", "rtt 180ms")),
    )
    assert [i.root_cause for i in diagnosis.incidents] == [CRASH]
    assert [s.check for s in diagnosis.incidents[0].symptoms] == [
        "inlet below 27C",
        "rtt below 50ms",
    ]


# ---------------------------------------------------------------------------------------------
# Mitigated


def test_a_mitigated_fault_is_a_root_cause_with_status_mitigated() -> None:
    diagnosis = found(
        result("clearing-path-down", OUTAGE, Outcome.MITIGATED, symptom("peer", "slow")),
        result("path-slow", LATENCY, Outcome.WOULD_FIX),
    )
    assert verdicts(diagnosis) == {
        "clearing-path-down": (Verdict.ROOT_CAUSE, None),
        "path-slow": (Verdict.CONSEQUENCE, OUTAGE),
    }
    assert diagnosis.incidents == (
        Incident(
            "api-1",
            OUTAGE,
            "clearing-path-down",
            Outcome.MITIGATED,
            (LATENCY,),
            (Symptom("clearing-path-down", "peer", "slow", OUTAGE),),
        ),
    )
    assert hypothesis(diagnosis, "clearing-path-down").status is Outcome.MITIGATED


def test_a_mitigated_consequence_is_still_a_consequence() -> None:
    diagnosis = found(
        result("nic-down", HC, Outcome.WOULD_FIX),
        result("path-slow", LATENCY, Outcome.MITIGATED),
    )
    assert verdicts(diagnosis)["path-slow"] == (Verdict.CONSEQUENCE, HC)
    assert hypothesis(diagnosis, "path-slow").status is Outcome.MITIGATED
    assert diagnosis.root_causes == (HC,)


# ---------------------------------------------------------------------------------------------
# Hosts


def test_diagnose_keeps_the_hosts_in_the_order_they_first_appear() -> None:
    results = [
        result("api-crashed", CRASH, Outcome.WOULD_FIX, host="lb-1"),
        result("api-crashed", CRASH, Outcome.HEALTHY, host="api-2"),
        result("api-down", DOWN, Outcome.WOULD_FIX, host="lb-1"),
        result("nic-down", HC, Outcome.WOULD_FIX, host="api-1"),
        result("api-down", DOWN, Outcome.WOULD_FIX, host="api-2"),
    ]
    hosts = diagnose(results, BUILTIN)
    assert [d.host for d in hosts] == ["lb-1", "api-2", "api-1"]
    lb, api2, api1 = hosts
    assert [h.runbook for h in lb.hypotheses] == ["api-crashed", "api-down"]
    assert [h.runbook for h in api2.hypotheses] == ["api-crashed", "api-down"]
    assert [h.runbook for h in api1.hypotheses] == ["nic-down"]
    # Each host is judged on its own: the crash on lb-1 explains nothing on api-2.
    assert lb.root_causes == (CRASH,)
    assert api2.root_causes == (DOWN,)
    assert api1.root_causes == (HC,)
    assert all(i.host == d.host for d in hosts for i in d.incidents)


def test_diagnose_is_diagnose_host_per_host() -> None:
    results = [
        result("nic-down", HC, Outcome.WOULD_FIX, host="api-2"),
        result("clearing-path-down", OUTAGE, Outcome.WOULD_FIX, host="api-2"),
        result("clearing-path-down", OUTAGE, Outcome.WOULD_FIX, host="api-1"),
    ]
    hosts = diagnose(results, BUILTIN)
    assert hosts == (
        diagnose_host("api-2", results[:2], BUILTIN),
        diagnose_host("api-1", results[2:], BUILTIN),
    )
    assert hosts[1].root_causes == (OUTAGE,)


def test_no_results_no_diagnosis() -> None:
    assert diagnose([], BUILTIN) == ()
    assert found() == HostDiagnosis("api-1", (), ())


def test_a_healthy_host_has_hypotheses_and_no_incident() -> None:
    diagnosis = found(
        result("nic-down", HC, Outcome.HEALTHY), result("api-down", DOWN, Outcome.HEALTHY)
    )
    assert diagnosis.incidents == ()
    assert diagnosis.root_causes == ()
    assert [h.verdict for h in diagnosis.hypotheses] == [Verdict.REFUTED, Verdict.REFUTED]


# ---------------------------------------------------------------------------------------------
# Found wanting


def test_two_runbooks_of_one_root_fault_list_a_symptom_once() -> None:
    diagnosis = found(
        result("api-crashed", CRASH, Outcome.WOULD_FIX, symptom("pid alive", "no pid")),
        result("api-oom-killed", CRASH, Outcome.WOULD_FIX),
        result("api-down", DOWN, Outcome.WOULD_FIX),
    )
    assert [s.check for i in diagnosis.incidents for s in i.symptoms] == ["pid alive"]
    assert [c for i in diagnosis.incidents for c in i.consequences] == [DOWN]
