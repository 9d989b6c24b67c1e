"""`oorfix diagnose` names the root cause on a real lab, and `diagnose --fix` converges.

Every test starts a fresh namespaced lab (real sshd hosts, real routes, the lab's simulated
hardware), injects faults the way ``oorfix lab inject`` does, and runs the CLI over every
runbook in ``runbooks/``. What it concludes is checked against what was injected:

- a freshly started lab has no incident (exit 0);
- each of the 12 catalogue faults, alone, is the only root cause on its host (the slow
  clearing path is the primary path of every host, so there it is every host's), and the
  symptoms it sets off are put down to it;
- two faults at once, on one host and on two, are told apart;
- the guide's case study (a sagging feed, a bad version, a slow clearing path) goes through
  `diagnose --fix` to a converged fleet, and a second `diagnose` finds only the mitigated
  causes, which stay escalated.

The README's table of injected fault against diagnosis is what these tests assert.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from oorfix.catalog import FAULT_IDS
from oorfix.lab import faults, network
from oorfix.lab.lab import Lab
from oorfix.lab.topology import CLEARING_NET, GATEWAY_A, GATEWAY_B
from tests.integration.conftest import REPO, CliRun, run_cli
from tests.integration.test_faults import fresh_lab, net

pytestmark = pytest.mark.integration

__all__ = ["fresh_lab"]  # the fixture each test starts from: a new namespaced lab
CLI_TIMEOUT = 600.0
HOST = "pg-api-2"
CASE_STUDY = (
    ("pg-api-1", "environment.power_fluctuation"),
    ("pg-api-2", "software.compatibility"),
    ("pg-api-3", "network.latency"),
)
# The slow clearing path is gw-a's uplink: every host's primary path.
FLEET_WIDE = {"network.latency"}


def diagnose(lab: Lab, tmp: Path, *args: str, runbooks: Path = REPO / "runbooks") -> CliRun:
    """`oorfix diagnose` over every repository runbook, with a private state directory."""
    record = tmp / f"diagnose-{time.monotonic_ns()}.json"
    argv = [
        "diagnose",
        "--runbooks",
        str(runbooks),
        "-i",
        str(lab.directory / "inventory.yml"),
        "--known-hosts",
        str(lab.known_hosts),
        "--state-dir",
        str(tmp / "state"),
        "--json",
        str(record),
        "-q",
        *args,
    ]
    return run_cli(argv, record, CLI_TIMEOUT)


def run(lab: Lab, tmp: Path, *args: str) -> CliRun:
    """`oorfix run` against the lab, with a private state directory."""
    record = tmp / f"run-{time.monotonic_ns()}.json"
    inventory = ["-i", str(lab.directory / "inventory.yml"), "--known-hosts", str(lab.known_hosts)]
    argv = ["run", *args, *inventory, "--state-dir", str(tmp / "state"), "--json", str(record)]
    return run_cli(argv, record, CLI_TIMEOUT)


def hosts_of(run: CliRun, key: str = "hosts") -> dict[str, dict[str, Any]]:
    """Host name -> its diagnosis (hypotheses and incidents) from the run record."""
    assert run.record is not None, run.stdout + run.stderr
    diagnosis = run.record["diagnosis"]
    assert diagnosis is not None, run.record
    return {h["host"]: h for h in diagnosis[key]}


def roots(run: CliRun, key: str = "hosts") -> dict[str, set[str]]:
    """Host name -> the root causes found there (None: symptoms with no known cause)."""
    return {
        name: {i["root_cause"] for i in h["incidents"]}
        for name, h in hosts_of(run, key).items()
        if h["incidents"]
    }


def confirmed(run: CliRun) -> dict[str, set[str]]:
    """Host name -> every fault id whose cause checks confirmed it (roots and consequences)."""
    found: dict[str, set[str]] = {}
    for name, h in hosts_of(run).items():
        for hypothesis in h["hypotheses"]:
            if hypothesis["verdict"] in ("root cause", "consequence"):
                found.setdefault(name, set()).add(hypothesis["fault"])
    return found


def test_a_fresh_lab_diagnoses_clean(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    run = diagnose(lab, tmp_path)
    assert run.rc == 0, run.stdout + run.stderr
    assert roots(run) == {}
    assert {r["status"] for r in run.record["results"]} == {"healthy"}  # type: ignore[index]
    assert "no incident on" in run.stdout


@pytest.mark.parametrize("fault_id", sorted(FAULT_IDS))
def test_one_fault_is_the_only_root_cause(fresh_lab: Lab, tmp_path: Path, fault_id: str) -> None:
    lab = fresh_lab
    faults.inject(lab, HOST, fault_id)
    run = diagnose(lab, tmp_path)

    assert run.rc == 1, run.stdout + run.stderr
    found = roots(run)
    hosts = set(found) if fault_id in FLEET_WIDE else {HOST}
    assert found == {h: {fault_id} for h in hosts}, found
    diagnosis = hosts_of(run)[HOST]
    (incident,) = diagnosis["incidents"]
    assert (incident["status"], incident["runbook"] is not None) == ("would_fix", True)
    # What else confirmed is explained by the injected fault, by a link of the catalogue.
    for hypothesis in diagnosis["hypotheses"]:
        if hypothesis["verdict"] == "consequence":
            assert hypothesis["explained_by"] == fault_id, hypothesis
            assert hypothesis["fault"] in incident["consequences"]
    for symptom in incident["symptoms"]:
        assert symptom["explained_by"] == fault_id, symptom
    if fault_id in FLEET_WIDE:
        assert HOST in found
    # The symptoms named are failing symptom checks of the hypotheses on the host.
    steps = {
        (r["runbook"], s["name"])
        for r in run.record["results"]  # type: ignore[index]
        if r["host"] == HOST
        for s in r["steps"]
        if s["phase"] == "symptoms" and s["status"] == "failed"
    }
    assert {(s["runbook"], s["check"]) for s in incident["symptoms"]} <= steps


@pytest.mark.parametrize(
    ("injected", "expected_roots", "expected_consequences"),
    [
        pytest.param(
            (("pg-api-1", "hardware.communication"), ("pg-api-3", "software.compatibility")),
            {"pg-api-1": {"hardware.communication"}, "pg-api-3": {"software.compatibility"}},
            {"pg-api-1": {"network.outage", "network.latency"}},
            id="NIC down and a bad version on two hosts",
        ),
        pytest.param(
            (("pg-api-2", "network.outage"), ("pg-api-2", "software.crash")),
            {"pg-api-2": {"network.outage", "software.crash"}},
            {"pg-api-2": {"network.latency", "software.service_interruption"}},
            id="route gone and a crash on one host",
        ),
        pytest.param(
            (("pg-api-1", "environment.temperature"), ("pg-api-1", "network.security")),
            {"pg-api-1": {"environment.temperature", "network.security"}},
            {},
            id="overheating and an intrusion on one host",
        ),
    ],
)
def test_two_faults_are_told_apart(
    fresh_lab: Lab,
    tmp_path: Path,
    injected: tuple[tuple[str, str], ...],
    expected_roots: dict[str, set[str]],
    expected_consequences: dict[str, set[str]],
) -> None:
    lab = fresh_lab
    for host, fault_id in injected:
        faults.inject(lab, host, fault_id)
    run = diagnose(lab, tmp_path)

    assert run.rc == 1, run.stdout + run.stderr
    assert roots(run) == expected_roots
    found = confirmed(run)
    for host, expected in expected_roots.items():
        assert found[host] - expected == expected_consequences.get(host, set()), found


def test_two_faults_on_one_host_are_fixed_root_first_and_converge(
    fresh_lab: Lab, tmp_path: Path
) -> None:
    lab = fresh_lab
    faults.inject(lab, HOST, "network.outage")
    faults.inject(lab, HOST, "software.crash")

    run = diagnose(lab, tmp_path, "--fix", "--yes")

    assert run.rc == 0, run.stdout + run.stderr
    diagnosis = run.record["diagnosis"]  # type: ignore[index]
    assert (diagnosis["converged"], diagnosis["conflicts"]) == (True, [])
    assert diagnosis["waves"] == 2  # one root cause per host per wave
    statuses = {r["runbook"]: r for r in run.record["results"] if r["host"] == HOST}  # type: ignore[index]
    assert statuses["clearing-path-down"]["status"] == "fixed"
    assert statuses["payment-api-crashed"]["status"] == "fixed"
    # The consequences cleared with their root causes: explained, never fixed themselves.
    for name, by in (
        ("clearing-path-slow", "clearing-path-down"),
        ("payment-api-down", "payment-api-crashed"),
    ):
        result = statuses[name]
        assert (result["status"], result["explained_by"]) == ("fixed", by), result
        assert "remediate" not in {s["phase"] for s in result["steps"]}
    assert {(e["runbook"], e["by"]) for e in diagnosis["explained"]} == {
        ("clearing-path-slow", "clearing-path-down"),
        ("payment-api-down", "payment-api-crashed"),
    }
    assert roots(run, "after") == {}
    for fault_id in ("network.outage", "software.crash"):
        assert faults.FAULTS[fault_id].gone(lab, lab.hosts[HOST])


def test_the_case_study_converges_through_diagnose_fix(fresh_lab: Lab, tmp_path: Path) -> None:
    lab = fresh_lab
    for host, fault_id in CASE_STUDY:
        faults.inject(lab, host, fault_id)
    first = diagnose(lab, tmp_path)
    assert first.rc == 1, first.stdout + first.stderr
    found = roots(first)
    assert found["pg-api-1"] == {"environment.power_fluctuation", "network.latency"}
    assert found["pg-api-2"] == {"software.compatibility", "network.latency"}
    assert found["pg-api-3"] == {"network.latency"}

    fixed = diagnose(lab, tmp_path, "--fix", "--yes")

    # Mitigated: service restored, the carrier's path and feed A still escalated.
    assert fixed.rc == 4, fixed.stdout + fixed.stderr
    diagnosis = fixed.record["diagnosis"]  # type: ignore[index]
    assert (diagnosis["converged"], diagnosis["conflicts"]) == (True, [])
    by_key = {(r["host"], r["runbook"]): r for r in fixed.record["results"]}  # type: ignore[index]
    assert by_key[("pg-api-2", "payment-api-version")]["status"] == "fixed"
    assert by_key[("pg-api-1", "rack-voltage-unstable")]["status"] == "mitigated"
    for host in ("pg-api-1", "pg-api-2", "pg-api-3"):
        result = by_key[(host, "clearing-path-slow")]
        assert result["status"] == "mitigated", result
        assert result["escalation"], result
    assert "converged" in fixed.stdout
    for host, fault_id in CASE_STUDY:
        assert faults.FAULTS[fault_id].gone(lab, lab.hosts[host]), (host, fault_id)

    again = diagnose(lab, tmp_path)

    assert again.rc == 4, again.stdout + again.stderr
    statuses = {r["status"] for r in again.record["results"]}  # type: ignore[index]
    assert statuses == {"healthy", "mitigated"}
    left = roots(again)
    assert left["pg-api-1"] == {"environment.power_fluctuation", "network.latency"}
    assert all(r <= {"environment.power_fluctuation", "network.latency"} for r in left.values())

    # Prevention: the scheduled fail-back looks at the primary path first, and leaves the
    # mitigated hosts on the backup path while the primary is still slow ...
    fail_back = str(REPO / "runbooks" / "maintenance" / "network-path.yml")
    kept = run(lab, tmp_path, fail_back, "--limit", "payment_api")
    assert kept.rc == 0, kept.stdout + kept.stderr
    assert set(kept.statuses().values()) == {"healthy"}
    api = [lab.hosts[h] for h, _ in CASE_STUDY]
    assert {network.route_via(net(lab), h, CLEARING_NET) for h in api} == {GATEWAY_B}
    # ... and moves them back once the carrier has repaired it; the latency is then gone.
    network.restore_primary_path(net(lab))
    moved = run(lab, tmp_path, fail_back, "--limit", "payment_api")
    assert moved.rc == 0, moved.stdout + moved.stderr
    assert set(moved.statuses().values()) == {"fixed"}
    assert {network.route_via(net(lab), h, CLEARING_NET) for h in api} == {GATEWAY_A}
    last = diagnose(lab, tmp_path)
    assert "network.latency" not in set().union(*roots(last).values())


CONFLICTING = {
    "catalog.yml": """
        faults:
          - id: site.primary_route
            summary: clearing traffic must use the primary gateway
          - id: site.backup_route
            summary: clearing traffic must use the backup gateway
    """,
    "prefer-backup.yml": """
        name: prefer-backup
        fault: site.backup_route
        hosts: pg-api-1
        detect:
          - name: clearing route via the backup gateway
            run: ip route show {{ clearing_net }}
            expect: {that: "('via ' ~ backup_gateway ~ ' ') in result.stdout"}
        remediate:
          - route: {dest: "{{ clearing_net }}", via: "{{ backup_gateway }}"}
            sudo: true
        verify: {retries: 0}
    """,
    "prefer-primary.yml": """
        name: prefer-primary
        fault: site.primary_route
        hosts: pg-api-1
        detect:
          - name: clearing route via the primary gateway
            run: ip route show {{ clearing_net }}
            expect: {that: "('via ' ~ primary_gateway ~ ' ') in result.stdout"}
        remediate:
          - route: {dest: "{{ clearing_net }}", via: "{{ primary_gateway }}"}
            sudo: true
        verify: {retries: 0}
    """,
}


def test_a_fix_that_undoes_an_earlier_one_is_a_conflict_and_nothing_loops(
    fresh_lab: Lab, tmp_path: Path
) -> None:
    lab = fresh_lab
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    for name, text in CONFLICTING.items():
        (runbooks / name).write_text(textwrap.dedent(text).lstrip())
    faults.inject(lab, "pg-api-1", "network.outage")  # no clearing route: both confirm

    done = diagnose(lab, tmp_path, "--fix", "--yes", runbooks=runbooks)

    assert done.rc == 1, done.stdout + done.stderr
    diagnosis = done.record["diagnosis"]  # type: ignore[index]
    assert roots(done) == {"pg-api-1": {"site.primary_route", "site.backup_route"}}
    assert [(c["host"], c["undone"], c["by"]) for c in diagnosis["conflicts"]] == [
        ("pg-api-1", "prefer-backup", "prefer-primary")
    ]
    assert (diagnosis["converged"], diagnosis["waves"]) == (False, 2)
    assert "conflict on pg-api-1: prefer-primary undid prefer-backup" in done.stdout
    # Each was fixed once: two route changes in all, in the audit log.
    audit = (tmp_path / "state" / "audit.log").read_text().splitlines()
    intents = [e for e in map(json.loads, audit) if e["kind"] == "intent"]
    assert [i["runbook"] for i in intents] == ["prefer-backup", "prefer-primary"]
