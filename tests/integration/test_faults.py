"""Every catalogue fault, end to end in the namespaced lab: inject, fix, verify, fix again.

Each test gets a fresh lab (the default payment-gateway topology, every host in its own
network namespace behind a real sshd), because namespace names are global and a fault
leaves traces a reset could miss. For each fault id of ``oorfix.lab.faults.FAULTS`` the test
records what the lab sees, injects the fault, runs the catalogue runbook with the real CLI
(``oorfix run ... --json``), and then checks the outcome from the lab's side, never through
the runbook: the fault's own ``gone`` check plus an observation of the fault's symptom (the
API answers, a payment is accepted, the clearing peer answers fast, the reading is in
range, the drained host is out of the pool and the VIP still takes payments …) and of how
the runbook fixed it (the route now goes via the backup gateway, the rack is on feed B …).
A second run of the same runbook must find every host healthy with read-only steps only,
and change nothing. The reverse test runs every fault runbook against a healthy fleet and
compares a snapshot of the whole lab (state files, pool, power, routes, links, qdiscs,
pids) before and after.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oorfix.lab import balancer, faults, hardware, network, services
from oorfix.lab.faults import FAULTS, OFFENDER, ROGUE_PORT
from oorfix.lab.iproute import lab_namespaces
from oorfix.lab.lab import Lab
from oorfix.lab.payment_api import PaymentServer
from oorfix.lab.power import load_power, psu_state
from oorfix.lab.tools import FAN_LIMITS
from oorfix.lab.topology import (
    API_PORT,
    CLEARING_NET,
    GATEWAY_A,
    GATEWAY_B,
    LabHost,
    default_topology,
)
from oorfix.runbook.loader import load_runbooks
from tests.integration.conftest import CliRun, require_sshd, run_cli
from tests.support import require

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RUNBOOK_DIR = REPO / "runbooks"
API_HOSTS = 3
CLI_TIMEOUT = 180.0  # far above any run here (the latency runbook takes ~20 s)
CLI_INJECTED = "network.security"  # injected with `oorfix lab inject`, to cover the CLI
STATE_EXCLUDED = "journal"  # the lab's own processes log there while the test runs
PAYMENT = '{"amount": 0, "test": true}'
# The lab's HTTP services (pg-api, pg-lb) bind their socket, then look up its name
# (http.server's getfqdn) through the machine's resolver, unreachable from the namespaces:
# when gw-a rate-limits its ICMP "unreachable" answers the lookup waits out the resolver's
# 5 s timeout before the socket listens. See test_the_lab_api_binds_without_a_dns_lookup.
BIND_STALL = 12.0
FAN_CRITICAL_RPM = FAN_LIMITS[1]  # lower critical: the BMC flags a fan below it


def require_netns() -> None:
    """Skip without root and network namespaces, or fail when CI says they must be there."""
    why = "network namespaces are not available (needs root and `ip netns`)"
    require("NETNS", network.available(), why)


def catalogue() -> dict[str, list[str]]:
    """Fault id -> names of the runbooks in ``runbooks/`` that handle it (no maintenance)."""
    found: dict[str, list[str]] = {}
    for loaded in load_runbooks([RUNBOOK_DIR]):
        if not loaded.runbook.fault.startswith("maintenance."):
            found.setdefault(loaded.runbook.fault, []).append(loaded.name)
    return found


CATALOGUE = catalogue()
RUNBOOKS = {loaded.name: loaded.runbook for loaded in load_runbooks([RUNBOOK_DIR])}
# One case per fault id and runbook; the injected API host rotates so that no runbook can
# lean on one host's name. A fault without a runbook still gets a case, which fails.
CASES = [
    pytest.param(fault_id, f"pg-api-{i % API_HOSTS + 1}", runbook, id=f"{fault_id}-{runbook}")
    for i, fault_id in enumerate(FAULTS)
    for runbook in CATALOGUE.get(fault_id, [None])
]


# -- the lab ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_lab(tmp_path: Path) -> Iterator[Lab]:
    """A new namespaced lab (lb, pg-api-1..3, db, standby, power) for one test, then gone."""
    require_sshd()
    require_netns()
    directory = tmp_path / "lab"
    lab = Lab(directory, default_topology(directory, API_HOSTS), namespaced=True)
    try:
        lab.up()
        lab.write_inventory(directory / "inventory.yml")
        # up() returns once its services run, not once they listen (see BIND_STALL).
        lb = role(lab, "lb")
        for host in [lb, *api_hosts(lab), role(lab, "standby")]:
            url = vip_url(lab, "/health") if host is lb else api_url(lab, host, "/health")
            waited = eventually(lambda h=host, u=url: http(lab, h, u).status == 200, BIND_STALL)
            assert waited is not None, f"{host.name} does not answer {url}"
        yield lab
    finally:
        lab.down()
    assert lab_namespaces() == [], "lab.down() left namespaces behind"


def eventually(check: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until ``check()`` held (polling), or None when it did not within ``seconds``."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > seconds:
            return None
        time.sleep(0.1)


def net(lab: Lab) -> network.Network:
    assert lab.net is not None, "the lab runs without network namespaces"
    return lab.net


def api_hosts(lab: Lab) -> list[LabHost]:
    return [h for h in lab.hosts.values() if h.role == "api"]


def role(lab: Lab, name: str) -> LabHost:
    return next(h for h in lab.hosts.values() if h.role == name)


def in_host(
    lab: Lab, host: LabHost, argv: list[str], timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the host's network namespace, as the lab (not through SSH)."""
    return subprocess.run(
        net(lab).host_exec(host, argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status (0: none), lower-case headers, body (JSON when it parses)."""

    status: int
    headers: dict[str, str]
    body: Any


def http(lab: Lab, client: LabHost, url: str, *, pay: bool = False) -> Reply:
    """GET ``url`` (or POST a test payment to it) from inside ``client``'s namespace."""
    argv = ["curl", "-sS", "-i", "-m", "3", "--noproxy", "*", url]
    if pay:
        argv += ["-H", "Content-Type: application/json", "-d", PAYMENT]
    done = in_host(lab, client, argv)
    if done.returncode != 0:
        return Reply(0, {}, done.stderr.strip())
    head, _, text = done.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = {}
    for line in header_lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return Reply(int(status_line.split()[1]), headers, body)


def api_url(lab: Lab, host: LabHost, path: str) -> str:
    return f"http://{host.data_address(lab.namespaced)}:{API_PORT}{path}"


def vip_url(lab: Lab, path: str) -> str:
    address, port = lab.vip()
    return f"http://{address}:{port}{path}"


def unit(host: LabHost, name: str = "pg-api") -> services.Unit:
    return services.Unit(host.state, name)


def process_state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` (R, S, T for stopped …)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


# -- what the lab sees: one symptom check and one fix check per fault --------------------------
# A symptom check lists what is wrong on the host as the fault would show it (empty: the
# fault's symptom is absent); it must be empty before the injection, non-empty after it and
# empty again after the run. A fix check lists how the state differs from what the
# runbook's fix should have left (only checked after the run).

Check = Callable[[Lab, LabHost], list[str]]


def no_problems(lab: Lab, host: LabHost) -> list[str]:
    return []


def api_problems(lab: Lab, host: LabHost) -> list[str]:
    """pg-api runs (not stopped) and answers ``/health`` as itself."""
    pid = services.running_pid(unit(host))
    if pid is None:
        return ["pg-api is not running"]
    problems = []
    if process_state(pid) == "T":
        problems.append(f"pg-api (pid {pid}) is stopped")
    reply = http(lab, host, api_url(lab, host, "/health"))
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status != 200 or body.get("status") != "ok" or body.get("host") != host.name:
        problems.append(f"GET /health answered {reply.status}: {reply.body}")
    return problems


def payment_problems(lab: Lab, host: LabHost) -> list[str]:
    """The good version is installed and runs, and a test payment is accepted."""
    problems = []
    installed = hardware.installed(host.state, "pg-api")
    if installed != hardware.GOOD_VERSION:
        problems.append(f"pg-api {installed} installed")
    health = http(lab, host, api_url(lab, host, "/health"))
    if not isinstance(health.body, dict) or health.body.get("version") != hardware.GOOD_VERSION:
        problems.append(f"the running pg-api reports {health.body}")
    reply = http(lab, host, api_url(lab, host, "/pay"), pay=True)
    if reply.status != 200 or not isinstance(reply.body, dict):
        problems.append(f"POST /pay answered {reply.status}: {reply.body}")
    elif reply.body.get("status") != "accepted":
        problems.append(f"POST /pay answered {reply.body}")
    return problems


def clearing_problems(lab: Lab, host: LabHost) -> list[str]:
    if network.clearing_reachable(net(lab), host, timeout=3):
        return []
    return ["the clearing peer does not answer"]


def link_problems(lab: Lab, host: LabHost) -> list[str]:
    state = network.link_state(net(lab), host, "eth0")
    problems = [] if state == "UP" else [f"eth0 is {state}"]
    return problems + clearing_problems(lab, host)


def latency_problems(lab: Lab, host: LabHost) -> list[str]:
    try:
        seconds = network.clearing_latency(net(lab), host)
    except network.NetworkError as exc:
        return [str(exc)]
    if seconds >= network.LATENCY_THRESHOLD:
        return [f"a clearing request takes {seconds:.3f} s"]
    return []


def route_via(gateway: str) -> Check:
    def check(lab: Lab, host: LabHost) -> list[str]:
        found = network.route_via(net(lab), host, CLEARING_NET)
        return [] if found == gateway else [f"{CLEARING_NET} is routed via {found}, not {gateway}"]

    return check


def intrusion_problems(lab: Lab, host: LabHost) -> list[str]:
    """Nothing listens on the rogue port; an address that failed to log in is blackholed."""
    problems = []
    listening = in_host(lab, host, ["ss", "-Htln", f"sport = :{ROGUE_PORT}"])
    assert listening.returncode == 0, listening.stderr
    if listening.stdout.strip():
        problems.append(f"port {ROGUE_PORT} listens: {listening.stdout.strip()}")
    log = unit(host, "ssh").journal
    lines = log.read_text().splitlines() if log.exists() else []
    failed = sum(f"Failed password for root from {OFFENDER} " in line for line in lines)
    if failed and not network.blackholed(net(lab), host, OFFENDER):
        problems.append(f"{OFFENDER} failed {failed} logins and is not blackholed")
    return problems


def intrusion_fixed(lab: Lab, host: LabHost) -> list[str]:
    """The offender is blackholed, the rogue process is gone, and pg-api was left alone."""
    problems = []
    if not network.blackholed(net(lab), host, OFFENDER):
        problems.append(f"{OFFENDER} is not blackholed")
    if services.running_pid(unit(host, "backdoor")) is not None:
        problems.append("the rogue listener still runs")
    return problems + api_problems(lab, host)


def temperature_problems(lab: Lab, host: LabHost) -> list[str]:
    celsius = hardware.temperature_c(host.state)
    return [] if celsius < hardware.TEMPERATURE_MAX_C else [f"CPU at {celsius} C"]


def fans_full(lab: Lab, host: LabHost) -> list[str]:
    mode = hardware.load_hardware(host.state)["fan_mode"]
    return [] if mode == "full" else [f"fan mode {mode}"]


def power_problems(lab: Lab, host: LabHost) -> list[str]:
    """The rack's selected input is alive and in range, every PSU has AC, the UPS is OL."""
    problems = []
    if not hardware.power_ok(lab.directory, host.rack):
        problems.append(f"rack {host.rack}: selected input dead or out of range")
    state, power = hardware.load_hardware(host.state), load_power(lab.directory)
    for psu in state["psu"]:
        reading = psu_state(state, power, psu)
        if reading != "ok":
            problems.append(f"{psu['name']}: {reading}")
    if not hardware.voltage_ok(lab.directory):
        ups = power["ups"]["vars"]
        problems.append(f"UPS {ups['ups.status']} at {ups['input.voltage']} V")
    return problems


def on_feed_b(lab: Lab, host: LabHost) -> list[str]:
    source = hardware.ats_source(lab.directory, host.rack)
    return [] if source == "B" else [f"rack {host.rack} is on feed {source}"]


def pool(lab: Lab) -> list[str]:
    return list(balancer.read_pool(role(lab, "lb").state)["enabled"])


def vip_problems(lab: Lab, avoid: LabHost | None = None) -> tuple[list[str], set[str]]:
    """POST payments through the VIP from a client (the db host): problems, backends seen."""
    problems, served = [], set()
    for _ in range(2 * len(pool(lab)) or 1):
        reply = http(lab, role(lab, "db"), vip_url(lab, "/pay"), pay=True)
        by = reply.headers.get("x-served-by", "-")
        served.add(by)
        if reply.status != 200 or not isinstance(reply.body, dict):
            problems.append(f"POST /pay via the VIP: {reply.status} {reply.body} (by {by})")
        elif reply.body.get("status") != "accepted":
            problems.append(f"POST /pay via the VIP: {reply.body} (by {by})")
        if avoid is not None and by == avoid.name:
            problems.append(f"the VIP sent a payment to {avoid.name}")
    return problems, served


def in_service_problems(bad: Callable[[LabHost], str | None]) -> Check:
    """Payments flow via the VIP, and the host is out of the pool while ``bad`` finds a reason."""

    def check(lab: Lab, host: LabHost) -> list[str]:
        problems = vip_problems(lab)[0]
        reason = bad(host)
        if reason is not None and host.name in pool(lab):
            problems.append(f"{host.name} takes payments with {reason}")
        return problems

    return check


def failing_part(host: LabHost) -> str | None:
    smart, (_, ue) = hardware.smart_health(host.state), hardware.memory_errors(host.state)
    return None if smart == "PASSED" and ue == 0 else f"SMART {smart}, {ue} memory UE"


def bad_air(host: LabHost) -> str | None:
    low, high = hardware.HUMIDITY_RANGE_RH
    humidity, fans = hardware.humidity_rh(host.state), hardware.fan_rpms(host.state)
    if low <= humidity <= high and min(fans) >= FAN_CRITICAL_RPM:
        return None
    return f"humidity {humidity} %RH, fans {fans}"


def drained(lab: Lab, host: LabHost) -> list[str]:
    """The host is out of the pool, the standby in, and the VIP serves without the host."""
    enabled, standby = pool(lab), role(lab, "standby")
    problems = [f"{host.name} is in the pool {enabled}"] if host.name in enabled else []
    if standby.name not in enabled:
        problems.append(f"the standby is not in the pool {enabled}")
    vip, served = vip_problems(lab, avoid=host)
    if standby.name not in served:
        problems.append(f"no payment went to the standby ({sorted(served)})")
    return problems + vip


@dataclass(frozen=True)
class Expect:
    symptom: Check
    fix: Check


EXPECT: dict[str, Expect] = {
    "hardware.power": Expect(power_problems, on_feed_b),
    "hardware.component": Expect(in_service_problems(failing_part), drained),
    "hardware.communication": Expect(link_problems, route_via(GATEWAY_A)),
    "software.crash": Expect(api_problems, no_problems),
    "software.service_interruption": Expect(api_problems, no_problems),
    "software.compatibility": Expect(payment_problems, api_problems),
    # The routes come back over the primary gateway, which answers in the lab.
    "network.outage": Expect(clearing_problems, route_via(GATEWAY_A)),
    "network.latency": Expect(latency_problems, route_via(GATEWAY_B)),
    "network.security": Expect(intrusion_problems, intrusion_fixed),
    "environment.temperature": Expect(temperature_problems, fans_full),
    "environment.power_fluctuation": Expect(power_problems, on_feed_b),
    "environment.humidity_dust": Expect(in_service_problems(bad_air), drained),
}
# For these faults the lab's ``gone`` check looks for the containment the fix puts in place
# (the host drained, since its bad part or air stays until someone acts; the offender
# blackholed), which a host that never had the fault does not have.
GONE_MEANS_CONTAINED = {"hardware.component", "environment.humidity_dust", "network.security"}
# Fixes that work around a cause oorfix cannot repair: the impact goes, the cause stays
# (a drained host's failing part, the carrier's slow path, feed A's sag), escalated.
MITIGATES = {
    "hardware.component",
    "environment.humidity_dust",
    "network.latency",
    "environment.power_fluctuation",
}
# The software faults are fixed by restarting pg-api on the host; no other fix restarts it.
RESTARTS_API = {"software.crash", "software.service_interruption", "software.compatibility"}


# -- snapshots: everything a runbook could change --------------------------------------------


def pids(lab: Lab) -> dict[str, int | None]:
    """Every lab process: each host's units, the clearing peer and the sshds."""
    found: dict[str, int | None] = {}
    for host in lab.hosts.values():
        for spec in sorted((host.state / "units").glob("*.json")):
            found[f"{host.name}/{spec.stem}"] = services.running_pid(unit(host, spec.stem))
    found["clearing"] = services.running_pid(net(lab).clearing)
    for i, server in enumerate(lab.servers):
        found[f"sshd-{i}"] = server.running_pid()
    return found


def files(lab: Lab) -> dict[str, tuple[str, str]]:
    """Every entry under the hosts' state dirs (but journals): path -> (mode, sha256)."""
    root = lab.directory / "hosts"
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if STATE_EXCLUDED in relative.parts[1:2]:
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(relative)] = (oct(info.st_mode), digest)
    return found


def network_state(lab: Lab) -> dict[str, dict[str, str]]:
    """Per lab namespace: its routes (every table), links and queueing disciplines."""
    found: dict[str, dict[str, str]] = {}
    for ns in net(lab).namespaces:
        found[ns] = {
            what: subprocess.run(
                argv, capture_output=True, text=True, timeout=30, check=True
            ).stdout
            for what, argv in (
                ("routes", ["ip", "-n", ns, "route", "show", "table", "all"]),
                ("links", ["ip", "-n", ns, "-o", "link", "show"]),
                ("qdiscs", ["tc", "-n", ns, "qdisc", "show"]),
            )
        }
    return found


def snapshot(lab: Lab) -> dict[str, Any]:
    return {
        "files": files(lab),
        "pool": balancer.read_pool(role(lab, "lb").state),
        "power": load_power(lab.directory),
        "repo": hardware.repository(lab.directory),
        "network": network_state(lab),
        "pids": pids(lab),
    }


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    for part in before:
        assert after[part] == before[part], f"{part} changed"


# -- the CLI ---------------------------------------------------------------------------------


def oorfix(lab: Lab, tmp: Path, *args: str | Path) -> CliRun:
    """``python -m oorfix ARGS`` (cwd: the repo) and, for ``run``, the record it wrote."""
    argv = [str(a) for a in args]
    record = tmp / f"record-{time.monotonic_ns()}.json"
    if argv[0] == "run":
        inventory = lab.directory / "inventory.yml"
        argv += ["-i", str(inventory), "--known-hosts", str(lab.known_hosts)]
        argv += ["--json", str(record)]
    return run_cli(argv, record, CLI_TIMEOUT)


def phases(result: dict[str, Any]) -> set[str]:
    return {step["phase"] for step in result["steps"]}


def assert_read_only(run: CliRun, mitigated: frozenset[str] = frozenset()) -> None:
    """Every host healthy (or still mitigated), nothing but read-only steps ran."""
    assert run.rc == (4 if mitigated else 0), run.stdout + run.stderr
    assert run.record is not None
    assert run.record["exit_code"] == run.rc
    for result in run.record["results"]:
        where = f"{result['runbook']} on {result['host']}"
        if result["host"] in mitigated:
            # The cause is still there, the impact is not: evidence is taken, nothing fixed.
            assert result["status"] == "mitigated", f"{where}: {result}"
            assert phases(result) <= {"symptoms", "detect", "evidence"}, where
            assert result["escalation"] is None, where
            continue
        assert result["status"] == "healthy", f"{where}: {result}"
        assert (result["error"], result["escalation"]) == (None, None), where
        assert phases(result) <= {"symptoms", "detect"}, where
        statuses = {step["status"] for step in result["steps"]}
        assert statuses <= {"passed", "skipped"}, where
        assert "passed" in statuses, where


def lab_status(lab: Lab, tmp: Path) -> str:
    done = oorfix(lab, tmp, "lab", "status", "--dir", lab.directory)
    assert done.rc == 0, done.stderr
    return done.stdout


# -- the tests -------------------------------------------------------------------------------


def test_every_fault_has_a_runbook_a_lab_check_and_nothing_else() -> None:
    """The parametrisation below covers the whole catalogue, and only it."""
    assert set(CATALOGUE) == set(FAULTS)
    assert set(EXPECT) == set(FAULTS)


@pytest.mark.parametrize(("fault_id", "host_name", "runbook"), CASES)
def test_an_injected_fault_is_fixed_verified_and_stays_fixed(
    fresh_lab: Lab, tmp_path: Path, fault_id: str, host_name: str, runbook: str | None
) -> None:
    lab, fault, expect = fresh_lab, FAULTS[fault_id], EXPECT[fault_id]
    assert runbook is not None, f"no runbook in runbooks/ handles {fault_id}"
    host = lab.host(host_name)
    names = sorted(h.name for h in api_hosts(lab))

    # Before: the lab sees no fault, and the observations agree.
    assert fault.gone(lab, host) is (fault_id not in GONE_MEANS_CONTAINED)
    assert expect.symptom(lab, host) == []
    before = snapshot(lab)

    if fault_id == CLI_INJECTED:
        done = oorfix(lab, tmp_path, "lab", "inject", "--dir", lab.directory, host_name, fault_id)
        assert done.rc == 0, done.stdout + done.stderr
        assert f"injected {fault_id} into {host_name}" in done.stdout
        assert f"fault {fault_id} on {host_name} at " in lab_status(lab, tmp_path)
    else:
        faults.inject(lab, host_name, fault_id)

    # The injection took: the lab sees the fault, and so does the symptom check.
    assert not fault.gone(lab, host)
    assert expect.symptom(lab, host) != []

    first = oorfix(lab, tmp_path, "run", runbook, "--limit", "payment_api")

    mitigates = fault_id in MITIGATES
    done, code = ("mitigated", 4) if mitigates else ("fixed", 0)
    assert first.rc == code, first.stdout + first.stderr
    assert first.record is not None
    assert (first.record["exit_code"], first.record["runbooks"]) == (code, [runbook])
    statuses = first.statuses()
    assert sorted(statuses) == names
    if fault_id == "network.latency":  # the slow path is every API host's primary path
        assert statuses[host_name] == done, statuses
        assert set(statuses.values()) <= {done, "healthy"}, statuses
    else:
        assert statuses == {n: done if n == host_name else "healthy" for n in names}
    fixed = first.result(host_name)
    assert fixed["fault"] == fault_id
    assert {"detect", "remediate", "verify"} <= phases(fixed)
    last = max(s["attempt"] for s in fixed["steps"] if s["phase"] == "verify")
    verified = [s for s in fixed["steps"] if s["phase"] == "verify" and s["attempt"] == last]
    cause_checks = {s.label for s in RUNBOOKS[runbook].detect}
    if mitigates:
        assert fixed["error"].startswith("service restored; the cause remains"), fixed
        impact = [s for s in verified if s["name"] not in cause_checks]
        assert {s["status"] for s in impact} <= {"passed", "skipped"}, verified
        assert "failed" in {s["status"] for s in verified if s["name"] in cause_checks}
    else:
        assert fixed["error"] is None, fixed
        assert {s["status"] for s in verified} <= {"passed", "skipped"}, verified
    escalate = RUNBOOKS[runbook].escalate
    if mitigates or (escalate is not None and escalate.always):  # people must still act
        assert fixed["escalation"], fixed
    else:
        assert fixed["escalation"] is None, fixed
    for name, status in statuses.items():
        if status == "healthy":
            assert phases(first.result(name)) <= {"symptoms", "detect"}, name

    # After: the lab sees the fault gone, its symptom gone, and the fix the runbook chose.
    if fault_id == "software.crash":
        # payment-api-crashed verifies `systemctl is-active` only, so "fixed" can come
        # before the restarted API listens (up to BIND_STALL later, in the lab).
        assert eventually(lambda: fault.gone(lab, host), BIND_STALL) is not None
    assert fault.gone(lab, host)
    assert expect.symptom(lab, host) == []
    assert expect.fix(lab, host) == []
    for other in api_hosts(lab):
        if statuses[other.name] == done and other is not host:
            assert expect.symptom(lab, other) == [], other.name
            assert expect.fix(lab, other) == [], other.name
    if fault_id == CLI_INJECTED:
        assert f"fault {fault_id} on {host_name} at " in lab_status(lab, tmp_path)
        assert lab_status(lab, tmp_path).rstrip().endswith(": gone")
    # No service was restarted but the one the fix restarts.
    after = pids(lab)
    restarted = {f"{host_name}/pg-api"} if fault_id in RESTARTS_API else set()
    for key, pid in before["pids"].items():
        if key in restarted:
            assert after[key] not in (None, pid), (key, pid, after[key])
        else:
            assert after[key] == pid, key

    # A second run finds every host healthy, runs only detect steps and changes nothing.
    settled = snapshot(lab)
    second = oorfix(lab, tmp_path, "run", runbook, "--limit", "payment_api")

    assert_read_only(second, frozenset(n for n, v in statuses.items() if v == "mitigated"))
    assert sorted(second.statuses()) == names
    assert_unchanged(settled, snapshot(lab))
    assert fault.gone(lab, host)


def test_on_a_healthy_fleet_every_fault_runbook_finds_every_host_healthy_and_changes_nothing(
    fresh_lab: Lab, tmp_path: Path
) -> None:
    lab = fresh_lab
    paths = sorted(RUNBOOK_DIR.glob("*.yml"))  # runbooks/maintenance/ is not matched
    chosen = [RUNBOOKS[name] for names in CATALOGUE.values() for name in names]
    assert len(paths) == len(chosen)
    before = snapshot(lab)

    run = oorfix(lab, tmp_path, "run", *paths)

    assert_read_only(run)
    assert run.record is not None
    assert sorted(run.record["runbooks"]) == sorted(str(p) for p in paths)
    assert {r["runbook"] for r in run.record["results"]} == {r.name for r in chosen}
    # Every runbook ran on every host its pattern (a union of groups) selects; no --limit.
    for runbook in chosen:
        assert re.fullmatch(r"\w+(:\w+)*", runbook.hosts), runbook.hosts
        groups = set(runbook.hosts.split(":"))
        expected = {h.name for h in lab.hosts.values() if groups & set(h.groups)}
        got = {r["host"] for r in run.record["results"] if r["runbook"] == runbook.name}
        assert got == expected, runbook.name
    assert_unchanged(before, snapshot(lab))
    for host in lab.hosts.values():
        for fault_id, fault in FAULTS.items():
            if host.role in fault.roles and fault_id not in GONE_MEANS_CONTAINED:
                assert fault.gone(lab, host), (fault_id, host.name)


def test_after_a_nic_comes_back_the_host_routes_as_before(fresh_lab: Lab, tmp_path: Path) -> None:
    lab, host = fresh_lab, fresh_lab.host("pg-api-2")
    routes = ["ip", "-n", host.netns, "route", "show"]
    before = subprocess.run(routes, capture_output=True, text=True, check=True).stdout
    assert network.route_via(net(lab), host, "default") == GATEWAY_A
    faults.inject(lab, host.name, "hardware.communication")

    run = oorfix(lab, tmp_path, "run", "nic-link-down", "--limit", "payment_api")

    assert run.rc == 0, run.stdout + run.stderr
    assert run.statuses()[host.name] == "fixed"
    assert network.route_via(net(lab), host, "default") == GATEWAY_A
    assert subprocess.run(routes, capture_output=True, text=True, check=True).stdout == before


def test_the_lab_api_binds_without_a_dns_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []

    def getfqdn(name: str = "") -> str:
        looked_up.append(name)
        return name

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    server = PaymentServer(("127.0.0.1", 0), hardware.GOOD_VERSION)
    server.server_close()
    assert looked_up == []
