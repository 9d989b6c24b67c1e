"""``oorfix diagnose``, ``runs``, ``report`` and ``audit verify`` end to end on real sshd hosts.

Every test drives ``python -m oorfix`` as a subprocess with a private ``--state-dir``, over a
copy of four repository runbooks that fit the lab's inventory (payment-api-crashed,
payment-api-down, software-compatibility, environment-temperature; hardware-power needs a
``power`` host the lab here has not) plus a small runbook of our own that covers pg-api-1
only, so the matrix has a ``·`` cell. What the CLI prints and records is checked against the
lab's own view: pids, the package database, the temperature, and what ``GET /health`` and
``POST /pay`` answer.

The round-trip count of the healthy diagnosis comes from sshd itself: a lab of its own on
127.0.31.x whose sshd logs at VERBOSE, where every exec request is a ``Starting session:
command`` line (at the session lab's INFO level only logins are logged).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from oorfix.lab import hardware, services
from oorfix.lab.lab import Lab, payment_hosts
from oorfix.lab.topology import API_PORT
from tests.integration.conftest import LAB_SIZE, REPO, CliRun, Fleet, require_sshd

pytestmark = pytest.mark.integration

HOSTS = ("pg-api-1", "pg-api-2", "pg-api-3")
REPO_RUNBOOKS = (
    "payment-api-crashed.yml",
    "payment-api-down.yml",
    "software-compatibility.yml",
    "environment-temperature.yml",
)
DISK_RUNBOOK = """
    # Ours: one host only, so the hardware.component row shows where no runbook applies.
    name: disk-health
    fault: hardware.component
    severity: major
    hosts: pg-api-1
    detect:
      - name: SMART overall health passes
        run: smartctl -H /dev/sda
        expect: {stdout: "PASSED"}
"""
# Runbook name -> fault id; the matrix lists the faults in category order (hardware first).
FAULTS = {
    "disk-health": "hardware.component",
    "cpu-overheating": "environment.temperature",
    "payment-api-version": "software.compatibility",
    "payment-api-crashed": "software.crash",
    "payment-api-down": "software.service_interruption",
}
PAIRS = {(h, rb) for rb in FAULTS for h in HOSTS if rb != "disk-health" or h == "pg-api-1"}
ALL_OK = {
    fault: ["ok", "·", "·"] if fault == "hardware.component" else ["ok"] * 3
    for fault in FAULTS.values()
}
VERBOSE_BASE = "127.0.31."
STARTING_SESSION = re.compile(r"Starting session: command for \S+ from \S+ port (\d+) id \d+")
CONNECTION = re.compile(r"Connection from \S+ port (\d+) on (\S+) port \d+")


# -- fixtures ---------------------------------------------------------------------------------


def reset_hosts(fleet: Fleet) -> None:
    """Hardware in range, pg-api 2.4.1 installed and running (the API reads it at start).

    The ``fleet`` fixture removes every file but the units, pids and journal, which takes the
    package database with it: dpkg-query would then call pg-api not installed.
    """
    for name in fleet.names:
        host = fleet.lab.hosts[name]
        hardware.init_host(host.state, host.role, rack=host.rack)
        answer = fleet.health(name)
        if answer is None or answer.get("version") != hardware.GOOD_VERSION:
            services.stop(fleet.unit(name))
            assert services.start(fleet.unit(name)), f"pg-api does not start on {name}"
        assert fleet.health(name) == healthy_api(name)


class Triage:
    """The lab, the copied runbooks, a private state directory and the CLI around them."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.runbooks = fleet.tmp / "runbooks"
        self.runbooks.mkdir()
        for name in REPO_RUNBOOKS:
            shutil.copyfile(REPO / "runbooks" / name, self.runbooks / name)
        (self.runbooks / "disk-health.yml").write_text(textwrap.dedent(DISK_RUNBOOK).lstrip())
        self.state = fleet.tmp / "state"
        self.inventory = fleet.inventory()

    def diagnose(self, *args: str | Path, inventory: Path | None = None) -> CliRun:
        """``oorfix diagnose`` over the copied runbooks, with a run record."""
        return self.fleet.oorfix(
            "diagnose",
            "-i",
            inventory or self.inventory,
            "--runbooks",
            self.runbooks,
            "--known-hosts",
            self.fleet.lab.sshd.known_hosts,
            "--state-dir",
            self.state,
            *args,
        )

    def cli(self, *args: str | Path) -> CliRun:
        """Any other oorfix command on the private state directory, without a record."""
        return self.fleet.oorfix(*args, "--state-dir", self.state, record=False)

    def crash_api(self, name: str) -> None:
        """Kill pg-api the way the OOM killer does (journal lines included)."""
        assert services.crash(self.fleet.unit(name))
        assert self.fleet.pid(name) is None

    def install_bad_version(self, name: str) -> None:
        """pg-api 2.3.0-bad installed and restarted: it answers /health, rejects payments."""
        hardware.inject_bad_version(self.fleet.state(name), self.fleet.lab.directory)
        services.stop(self.fleet.unit(name))
        assert services.start(self.fleet.unit(name))
        assert self.fleet.health(name) == {**healthy_api(name), "version": "2.3.0-bad"}
        assert pay(self.fleet, name) == 502

    def files(self, name: str) -> dict[str, tuple[int, str]]:
        """The host's state files (mode, sha256), except the journal the API appends to."""
        return {k: v for k, v in self.fleet.snapshot(name).items() if not k.startswith("journal")}

    def journal(self, name: str) -> str:
        return self.fleet.unit(name).journal.read_text()


@pytest.fixture
def triage(fleet: Fleet) -> Iterator[Triage]:
    reset_hosts(fleet)
    yield Triage(fleet)
    # Leave no bad version running: the next test's restore only starts stopped services.
    reset_hosts(fleet)


@pytest.fixture(scope="module")
def verbose_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab of its own whose sshd logs every session (LogLevel VERBOSE)."""
    require_sshd()
    directory = tmp_path_factory.mktemp("lab31")
    lab = Lab(directory, payment_hosts(directory, LAB_SIZE, VERBOSE_BASE))
    with pytest.MonkeyPatch.context() as patch:
        for server in lab.servers:
            quiet = server._config_text
            patch.setattr(
                server,
                "_config_text",
                lambda quiet=quiet: quiet().replace("LogLevel INFO", "LogLevel VERBOSE"),
            )
        try:
            lab.up()
            assert "LogLevel VERBOSE" in lab.sshd.config.read_text()
            yield lab
        finally:
            lab.down()


@pytest.fixture
def verbose_triage(verbose_lab: Lab, tmp_path: Path) -> Iterator[Triage]:
    fleet = Fleet(verbose_lab, tmp_path)
    fleet.restore()
    reset_hosts(fleet)
    yield Triage(fleet)
    reset_hosts(fleet)


# -- helpers ----------------------------------------------------------------------------------


def healthy_api(name: str) -> dict[str, str]:
    return {"status": "ok", "version": hardware.GOOD_VERSION, "host": name}


def pay(fleet: Fleet, name: str) -> int | None:
    """The HTTP status of a test payment on the host's API (None: nothing answers)."""
    url = f"http://{fleet.address(name)}:{API_PORT}/pay"
    request = urllib.request.Request(url, data=b'{"amount": 0, "test": true}', method="POST")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - http only
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def matrix(stdout: str) -> tuple[list[str], dict[str, list[str]]]:
    """The fault matrix as printed: its host columns and, per fault row, the cells."""
    lines = stdout.splitlines()
    assert lines[0] == "fault matrix", stdout
    header = next(line for line in lines if line.startswith("┃"))
    columns = [c.strip() for c in header.strip("┃").split("┃")]
    assert columns[0] == "fault", header
    rows: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            assert cells[0] not in rows, stdout
            rows[cells[0]] = cells[1:]
    return columns[1:], rows


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of a printed table, each cell's lines joined (long cells may wrap)."""
    rows: list[list[str]] = []
    for line in stdout.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def matrix_with(**confirmed: list[str]) -> dict[str, list[str]]:
    """ALL_OK with CONFIRMED in the given cells: ``software_crash=["pg-api-1"]``."""
    rows = {fault: list(cells) for fault, cells in ALL_OK.items()}
    for key, hosts in confirmed.items():
        for host in hosts:
            rows[key.replace("_", ".", 1)][HOSTS.index(host)] = "CONFIRMED"
    return rows


def statuses(run: CliRun) -> dict[tuple[str, str], str]:
    assert run.record is not None, run.stderr
    return {(r["host"], r["runbook"]): r["status"] for r in run.record["results"]}


def result_of(run: CliRun, host: str, runbook: str) -> dict[str, Any]:
    assert run.record is not None, run.stderr
    results: list[dict[str, Any]] = run.record["results"]
    found = [r for r in results if (r["host"], r["runbook"]) == (host, runbook)]
    assert len(found) == 1, results
    return found[0]


def steps(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["phase"], s["name"], s["status"]) for s in result["steps"]]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def sessions(log: str) -> tuple[Counter[str], Counter[str]]:
    """From a VERBOSE sshd log: connections and exec sessions per address a client reached.

    Every client comes from 127.0.0.1, so a session is tied to its host through the client
    port of its connection (``Connection from 127.0.0.1 port P on ADDRESS``).
    """
    address_of = dict(CONNECTION.findall(log))
    execs = Counter(address_of[port] for port in STARTING_SESSION.findall(log))
    return Counter(address_of.values()), execs


def junit_cases(path: Path) -> dict[tuple[str, str], list[str]]:
    """(host, runbook) -> the tags inside each testcase of a JUnit file."""
    root = ET.parse(path).getroot()  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    cases: dict[tuple[str, str], list[str]] = {}
    for case in root.iter("testcase"):
        key = (case.attrib["name"], case.attrib["classname"])
        assert key not in cases, key
        cases[key] = [child.tag for child in case]
    return cases


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


# 1. A healthy fleet ---------------------------------------------------------------------------


def test_a_healthy_fleet_is_all_ok_in_one_exec_per_host(verbose_triage: Triage) -> None:
    fleet = verbose_triage.fleet
    pids = {name: fleet.pid(name) for name in HOSTS}
    log_before = fleet.lab.sshd.log.read_text()

    run = verbose_triage.diagnose()

    assert run.rc == 0, run.stderr
    assert matrix(run.stdout) == (list(HOSTS), ALL_OK)
    # Nothing but the matrix and one line: no evidence when no fault is confirmed.
    *table, verdict = [line for line in run.stdout.splitlines()[1:] if line]
    assert all(line[:1] in "┏┃┡│└" for line in table), run.stdout
    assert verdict == f"no incident on {', '.join(HOSTS)}", run.stdout
    assert run.record is not None
    assert (run.record["command"], run.record["exit_code"]) == ("diagnose", 0)
    assert run.record["summary"] == {"healthy": len(PAIRS)}
    assert statuses(run) == dict.fromkeys(PAIRS, "healthy")
    for result in run.record["results"]:
        assert result["fault"] == FAULTS[result["runbook"]]
        assert (result["error"], result["escalation"]) == (None, None)
        checks = {(s["phase"], s["status"]) for s in result["steps"]}
        assert ("detect", "passed") in checks
        assert checks <= {("symptoms", "passed"), ("detect", "passed")}
    assert [s["name"] for s in result_of(run, "pg-api-2", "payment-api-version")["steps"]] == [
        "a test payment is accepted",
        "installed version is the required one",
    ]
    # sshd's own count: one connection and ONE exec per host for every check of every runbook.
    connections, execs = sessions(fleet.lab.sshd.log.read_text()[len(log_before) :])
    addresses = {fleet.address(name): 1 for name in HOSTS}
    assert (connections, execs) == (Counter(addresses), Counter(addresses))
    checks = Counter(r["host"] for r in run.record["results"] for _ in r["steps"])
    assert checks == {"pg-api-1": 6, "pg-api-2": 5, "pg-api-3": 5}
    # Read-only: no audit log, every API still the same process.
    assert not (verbose_triage.state / "audit.log").exists()
    assert {name: fleet.pid(name) for name in HOSTS} == pids


# 2. Two faults: confirmed, evidenced, nothing changed -----------------------------------------


def test_two_faults_are_confirmed_with_evidence_and_nothing_is_changed(
    triage: Triage, tmp_path: Path
) -> None:
    fleet = triage.fleet
    triage.crash_api("pg-api-1")
    triage.install_bad_version("pg-api-2")
    files = {name: triage.files(name) for name in HOSTS}
    journals = {name: triage.journal(name) for name in HOSTS}
    pids = {name: fleet.pid(name) for name in HOSTS}
    junit = tmp_path / "diagnose.xml"

    run = triage.diagnose("--junit", junit)

    assert run.rc == 1, run.stderr
    # The crash also fails pg-api-1's health check (a consequence: the catalogue links a
    # crash to a dead health endpoint) and its test payment, which is only a symptom of the
    # version runbook: its cause, the installed version, is refuted there.
    confirmed = {
        ("pg-api-1", "payment-api-crashed"),
        ("pg-api-1", "payment-api-down"),
        ("pg-api-2", "payment-api-version"),
    }
    assert matrix(run.stdout) == (
        list(HOSTS),
        matrix_with(
            software_crash=["pg-api-1"],
            software_service_interruption=["pg-api-1"],
            software_compatibility=["pg-api-2"],
        ),
    )
    assert run.record is not None
    assert run.record["exit_code"] == 1
    assert run.record["summary"] == {"healthy": len(PAIRS) - 3, "would_fix": 3}
    assert statuses(run) == {p: "would_fix" if p in confirmed else "healthy" for p in PAIRS}
    assert steps(result_of(run, "pg-api-1", "payment-api-crashed")) == [
        ("detect", "service is active", "failed"),
        ("evidence", "why it stopped", "passed"),
        ("evidence", "memory at the time", "passed"),
    ]
    version = result_of(run, "pg-api-2", "payment-api-version")
    assert steps(version) == [
        ("symptoms", "a test payment is accepted", "failed"),
        ("detect", "installed version is the required one", "failed"),
        ("evidence", "package status", "passed"),
        ("evidence", "recent service log", "passed"),
    ]
    assert [(s["rc"], s["reason"], s["stdout"]) for s in version["steps"][:2]] == [
        (22, "exit status 22, expected 0", ""),
        (0, "not true: result.stdout == required_version", "2.3.0-bad"),
    ]
    assert "Version: 2.3.0-bad" in version["steps"][2]["stdout"]
    for host, runbook in PAIRS - confirmed:
        phases = {s["phase"] for s in result_of(run, host, runbook)["steps"]}
        assert "detect" in phases, (host, runbook)
        assert phases <= {"symptoms", "detect"}, (host, runbook)
    # The incidents: one root cause per host, the consequence and symptom put down to it.
    assert (
        "pg-api-1: root cause software.crash (payment-api-crashed, would_fix); explains "
        "software.service_interruption; symptoms: a test payment is accepted"
    ) in run.stdout
    assert (
        "pg-api-2: root cause software.compatibility (payment-api-version, would_fix); "
        "symptoms: a test payment is accepted"
    ) in run.stdout
    assert run.record["diagnosis"]["hosts"][0]["incidents"] == [
        {
            "host": "pg-api-1",
            "root_cause": "software.crash",
            "runbook": "payment-api-crashed",
            "status": "would_fix",
            "consequences": ["software.service_interruption"],
            "symptoms": [
                {
                    "runbook": "payment-api-version",
                    "check": "a test payment is accepted",
                    "reason": "exit status 7, expected 0",
                    "explained_by": "software.crash",
                }
            ],
        }
    ]

    # The evidence section, after the last table: each confirmed fault, its failed checks,
    # then its evidence.
    evidence = run.stdout.rsplit("└", 1)[1]
    blocks = [b for b in re.split(r"\n(?=pg-api-\d )", evidence) if b.strip()]
    heads = [block.splitlines()[0] for block in blocks if block[:1] == "p"]
    assert heads == [
        "pg-api-1 payment-api-crashed (software.crash)",
        "pg-api-1 payment-api-down (software.service_interruption)",
        "pg-api-2 payment-api-version (software.compatibility)",
    ]
    by_head = {block.splitlines()[0]: block for block in blocks}
    crashed = by_head["pg-api-1 payment-api-crashed (software.crash)"].splitlines()
    assert crashed[1:3] == [
        "  failed service is active: stdout does not match '^active$'",
        "  evidence why it stopped",
    ]
    assert "Out of memory: Killed process" in crashed[3]
    assert "  evidence memory at the time" in crashed
    bad = by_head["pg-api-2 payment-api-version (software.compatibility)"].splitlines()
    assert bad[1:4] == [
        "  failed a test payment is accepted: exit status 22, expected 0",
        "  failed installed version is the required one: not true: "
        "result.stdout == required_version",
        "  evidence package status",
    ]
    assert "Version: 2.3.0-bad" in bad
    down = by_head["pg-api-1 payment-api-down (software.service_interruption)"].splitlines()
    assert down[1] == "  failed health endpoint answers: exit status 7, expected 0"

    # Nothing was changed: same processes, same files; the journal only gained the API's
    # access lines for the checks' own requests (and pg-api-1, down, none).
    assert {name: fleet.pid(name) for name in HOSTS} == pids
    assert fleet.pid("pg-api-1") is None
    assert fleet.health("pg-api-1") is None
    assert fleet.health("pg-api-2") == {**healthy_api("pg-api-2"), "version": "2.3.0-bad"}
    assert {name: triage.files(name) for name in HOSTS} == files
    for name in HOSTS:
        after = triage.journal(name)
        assert after.startswith(journals[name])
        added = after[len(journals[name]) :].splitlines()
        assert all(re.search(r'"(GET /health|POST /pay) HTTP/1.1" \d{3} -$', a) for a in added)
    assert journals["pg-api-1"] == triage.journal("pg-api-1")
    assert not (triage.state / "audit.log").exists()

    # JUnit: one test case per host x runbook, a failure exactly where a fault was confirmed.
    cases = junit_cases(junit)
    assert cases == {p: ["failure"] if p in confirmed else [] for p in PAIRS}
    root = ET.parse(junit).getroot()  # noqa: S314
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["errors"]) == (
        str(len(PAIRS)),
        "3",
        "0",
    )
    failure = root.find("./testsuite[@name='payment-api-version']/testcase[@name='pg-api-2']/")
    assert failure is not None
    assert failure.attrib["type"] == "would_fix"
    assert failure.text is not None
    assert "== evidence ==" in failure.text
    assert "Version: 2.3.0-bad" in failure.text
    assert "symptoms: a test payment is accepted (failed, rc=22: exit status 22" in failure.text
    assert "curl: (22) The requested URL returned error: 502" in failure.text

    # The run is kept with one file per piece of evidence.
    (kept,) = (triage.state / "runs").iterdir()
    assert kept.name.endswith(f"-{run.record['run_id']}")
    assert json.loads((kept / "record.json").read_text()) == run.record
    crash_files = sorted(p.name for p in (kept / "evidence/pg-api-1/payment-api-crashed").iterdir())
    assert crash_files == ["1-why-it-stopped.txt", "2-memory-at-the-time.txt"]
    assert (
        "Out of memory"
        in (kept / "evidence/pg-api-1/payment-api-crashed/1-why-it-stopped.txt").read_text()
    )


# 3. --fix: in category order, verified, audited ------------------------------------------------


def test_fix_repairs_in_category_order_audits_every_change_and_leaves_all_ok(
    triage: Triage,
) -> None:
    fleet = triage.fleet
    triage.crash_api("pg-api-1")
    hardware.inject_overheat(fleet.state("pg-api-1"))
    triage.install_bad_version("pg-api-2")

    run = triage.diagnose("--fix")

    assert run.rc == 0, run.stderr
    # The matrix is the diagnosis, taken before any fix.
    assert matrix(run.stdout)[1] == matrix_with(
        environment_temperature=["pg-api-1"],
        software_crash=["pg-api-1"],
        software_service_interruption=["pg-api-1"],
        software_compatibility=["pg-api-2"],
    )
    fixed = {
        ("pg-api-1", "cpu-overheating"),
        ("pg-api-1", "payment-api-crashed"),
        ("pg-api-2", "payment-api-version"),
    }
    # pg-api-1's health check fails only because the API was down: a consequence, re-checked
    # after the crash fix, it passes and is never fixed itself; the record keeps its diagnosis
    # and names the fix that cleared it. The crash itself is a consequence of the heat in the
    # catalogue; the fans' fix did not clear it, so it was fixed in the next wave.
    cleared = {("pg-api-1", "payment-api-down")}
    assert statuses(run) == {p: "fixed" if p in fixed | cleared else "healthy" for p in PAIRS}
    assert run.record is not None
    assert run.record["exit_code"] == 0
    for host, runbook in sorted(cleared):
        result = result_of(run, host, runbook)
        assert result["explained_by"] == "payment-api-crashed"
        assert result["notes"] == [
            "cleared when payment-api-crashed was fixed on this host: not fixed itself"
        ]
        assert "remediate" not in {s["phase"] for s in result["steps"]}
        assert (result["steps"][-1]["phase"], result["steps"][-1]["status"]) == ("detect", "passed")
    heat = result_of(run, "pg-api-1", "cpu-overheating")
    # The diagnosis's checks and evidence, then the fix run's, which checks again first.
    diagnosed = [
        ("detect", "CPU package below its limit", "failed"),
        ("evidence", "all sensors", "passed"),
        ("evidence", "BMC temperatures and fans", "passed"),
    ]
    assert steps(heat) == [
        *diagnosed,
        *diagnosed,
        ("remediate", "fans to full", "passed"),
        ("verify", "CPU package below its limit", "passed"),
    ]
    assert heat["escalation"] == (
        "pg-api-1 (rack r1) ran above 80 C: facilities, check the aisle cooling"
    )  # escalate: always
    crash = result_of(run, "pg-api-1", "payment-api-crashed")
    assert [s[0] for s in steps(crash)] == [
        *["detect", "evidence", "evidence"] * 2,
        "remediate",
        "remediate",
        "verify",
    ]
    version = result_of(run, "pg-api-2", "payment-api-version")
    assert [(p, n) for p, n, _ in steps(version) if p in ("remediate", "verify")] == [
        ("remediate", "package pg-api 2.4.1 present"),
        ("remediate", "service pg-api restarted"),
        ("remediate", f"wait for http://{fleet.address('pg-api-2')}:8080/health started"),
        ("verify", "a test payment is accepted"),
        ("verify", "installed version is the required one"),
    ]
    assert {s["status"] for s in version["steps"] if s["phase"] not in ("symptoms", "detect")} == {
        "passed"
    }

    # Order on pg-api-1: environment (major) before software (critical); every fix is
    # verified before the next runbook's re-check starts.
    def span(runbook: str, phase: str) -> tuple[datetime, datetime]:
        chosen = [s for s in result_of(run, "pg-api-1", runbook)["steps"] if s["phase"] == phase]
        return when(chosen[0]["start"]), when(chosen[-1]["end"])

    assert span("cpu-overheating", "remediate")[1] <= span("cpu-overheating", "verify")[0]
    # The crash's own check in the fix run (its diagnosis came first) follows the fans' fix.
    crash_steps = result_of(run, "pg-api-1", "payment-api-crashed")["steps"]
    fix_run_check = [s for s in crash_steps if s["phase"] == "detect"][-1]
    assert span("cpu-overheating", "verify")[1] <= when(fix_run_check["start"])
    assert span("payment-api-crashed", "remediate")[1] <= span("payment-api-crashed", "verify")[0]
    for later in ("payment-api-down",):
        # Their re-check (the last detect; the diagnosis comes first) follows the crash fix.
        recheck = [s for s in result_of(run, "pg-api-1", later)["steps"] if s["phase"] == "detect"]
        assert span("payment-api-crashed", "verify")[1] <= when(recheck[-1]["start"])

    # The lab's view.
    for name in HOSTS:
        assert fleet.health(name) == healthy_api(name)
        assert pay(fleet, name) == 200
    assert hardware.temperature_c(fleet.state("pg-api-1")) <= hardware.TEMPERATURE_MAX_C
    assert hardware.load_hardware(fleet.state("pg-api-1"))["fan_mode"] == "full"
    assert hardware.installed(fleet.state("pg-api-2"), "pg-api") == hardware.GOOD_VERSION

    # The audit log: intact, and an intent and a result for each command that changed a host.
    verify = triage.cli("audit", "verify")
    entries = [json.loads(line) for line in (triage.state / "audit.log").read_text().splitlines()]
    assert (verify.rc, verify.stdout) == (
        0,
        f"audit log {triage.state / 'audit.log'}: {len(entries)} entries, chain intact\n",
    )
    changes = [
        (r["host"], r["runbook"], s)
        for r in run.record["results"]
        for s in r["steps"]
        if s["phase"] == "remediate"
    ]
    assert len(changes) == 6
    assert len(entries) == 2 * len(changes)
    intents = {e["hash"]: e for e in entries if e["kind"] == "intent"}
    results = [e for e in entries if e["kind"] == "result"]
    seen = []
    for result in results:
        intent = intents[result["intent"]]
        assert entries.index(intent) < entries.index(result)
        keys = ("run_id", "host", "runbook", "phase", "step", "command")
        assert {k: intent[k] for k in keys} == {k: result[k] for k in keys}
        seen.append((intent["host"], intent["runbook"], intent["step"], intent["command"]))
        assert (result["rc"], result["status"]) == (0, "passed")
    assert sorted(seen) == sorted((h, rb, s["name"], s["command"]) for h, rb, s in changes)
    assert {e["run_id"] for e in entries} == {run.record["run_id"]}
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))

    again = triage.diagnose()

    assert again.rc == 0, again.stderr
    assert matrix(again.stdout) == (list(HOSTS), ALL_OK)
    assert statuses(again) == dict.fromkeys(PAIRS, "healthy")


# 4. Run history and reports ------------------------------------------------------------------


def test_runs_lists_diagnoses_newest_first_and_report_writes_html_and_junit(
    triage: Triage, tmp_path: Path
) -> None:
    healthy = triage.diagnose()
    triage.crash_api("pg-api-1")
    broken = triage.diagnose()
    assert (healthy.rc, broken.rc) == (0, 1)
    assert healthy.record is not None
    assert broken.record is not None
    ids = [broken.record["run_id"], healthy.record["run_id"]]

    listing = triage.cli("runs")

    assert listing.rc == 0, listing.stderr
    rows = table_rows(listing.stdout)
    # The runbooks in the order of the results: their files' names sorted.
    order = ["disk-health", "cpu-overheating", "payment-api-crashed", "payment-api-down"]
    runbooks = ", ".join([*order, "payment-api-version"])
    operator = broken.record["operator"]
    assert [[r[0], *r[2:]] for r in rows] == [  # newest first; "when" is checked below
        [ids[0], operator, runbooks, f"2 would_fix, {len(PAIRS) - 2} healthy (exit 1)"],
        [ids[1], operator, runbooks, f"{len(PAIRS)} healthy (exit 0)"],
    ]
    assert [r[1] for r in rows] == [
        when(record["start"]).strftime("%Y-%m-%d %H:%M:%S UTC")
        for record in (broken.record, healthy.record)
    ]
    newest = triage.cli("runs", "-n", "1")
    assert newest.rc == 0, newest.stderr
    assert [r[0] for r in table_rows(newest.stdout)] == ids[:1]

    markdown = triage.cli("report", broken.record["run_id"])  # md on stdout by default
    assert markdown.rc == 0, markdown.stderr
    assert "fault confirmed" in markdown.stdout
    assert all(name in markdown.stdout for name in HOSTS)

    html_path = tmp_path / "incident.html"
    html = triage.cli("report", broken.record["run_id"], "--format", "html", "-o", html_path)

    assert (html.rc, html.stdout, html.stderr) == (0, "", "")
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    for name in HOSTS:
        assert name in page
    assert "fault confirmed" in page
    assert "Out of memory: Killed process" in page  # the evidence excerpt
    # Self-contained: no script, no stylesheet link, nothing fetched from elsewhere.
    parser = Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "style" in tags
    for _, attrs in parser.tags:
        assert "src" not in attrs
        assert (attrs.get("href") or "#").startswith("#"), attrs  # in-page links only
    csp = [a["content"] for t, a in parser.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    assert "default-src 'none'" in (csp[0] or "")

    xml_path = tmp_path / "incident.xml"
    junit = triage.cli("report", broken.record["run_id"][:6], "--format", "junit", "-o", xml_path)

    assert junit.rc == 0, junit.stderr
    confirmed = {("pg-api-1", "payment-api-crashed"), ("pg-api-1", "payment-api-down")}
    assert junit_cases(xml_path) == {p: ["failure"] if p in confirmed else [] for p in PAIRS}


# 5. Unreachable hosts --------------------------------------------------------------------------


def test_an_unreachable_host_is_marked_and_exits_3_unless_a_fault_remains(
    triage: Triage,
) -> None:
    fleet = triage.fleet
    dead = {
        "ansible_host": "127.0.30.250",  # no sshd listens there
        "ansible_port": fleet.port,
        "ansible_user": fleet.lab.sshd.user,
        "ansible_ssh_private_key_file": str(fleet.lab.sshd.client_key),
        "rack": "r9",  # cpu-overheating's escalation names it: checked before any connection
    }
    inventory = fleet.inventory(extra_hosts={"pg-api-9": dead}, filename="with-dead.yml")
    hosts = [*HOSTS, "pg-api-9"]
    expected = {
        fault: [*cells, "·" if fault == "hardware.component" else "unreachable"]
        for fault, cells in ALL_OK.items()
    }

    junit = fleet.tmp / "unreachable.xml"
    run = triage.diagnose("--junit", junit, inventory=inventory)

    assert run.rc == 3, run.stderr
    assert matrix(run.stdout) == (hosts, expected)
    assert run.record is not None
    assert run.record["exit_code"] == 3
    dead_results = [r for r in run.record["results"] if r["host"] == "pg-api-9"]
    assert sorted(r["runbook"] for r in dead_results) == sorted(set(FAULTS) - {"disk-health"})
    for result in dead_results:
        assert (result["status"], result["steps"]) == ("unreachable", [])
        assert "127.0.30.250" in result["error"]
    assert {p: s for p, s in statuses(run).items() if p[0] != "pg-api-9"} == dict.fromkeys(
        PAIRS, "healthy"
    )
    dead_cases = {("pg-api-9", r["runbook"]): ["error"] for r in dead_results}
    assert junit_cases(junit) == {**{p: [] for p in PAIRS}, **dead_cases}

    triage.crash_api("pg-api-2")
    faulty = triage.diagnose(inventory=inventory)

    assert faulty.rc == 1, faulty.stderr  # a fault known to remain outranks the unreachable host
    rows = matrix(faulty.stdout)[1]
    assert rows["software.crash"] == ["ok", "CONFIRMED", "ok", "unreachable"]


# Bugs found -------------------------------------------------------------------------------------


def test_a_fault_cleared_by_an_earlier_fix_keeps_its_diagnosis_in_the_record(
    triage: Triage,
) -> None:
    triage.crash_api("pg-api-1")

    run = triage.diagnose("--fix")

    assert run.rc == 0, run.stderr
    assert matrix(run.stdout)[1]["software.service_interruption"] == ["CONFIRMED", "ok", "ok"]
    down = result_of(run, "pg-api-1", "payment-api-down")
    assert ("detect", "health endpoint answers", "failed") in steps(down)
    assert "evidence" in {s["phase"] for s in down["steps"]}
    assert down["status"] == "fixed"
    assert down["notes"] == [
        "cleared when payment-api-crashed was fixed on this host: not fixed itself"
    ]
    assert down["explained_by"] == "payment-api-crashed"


def test_every_batched_check_lies_within_its_result_span(triage: Triage) -> None:
    run = triage.diagnose()

    assert run.rc == 0, run.stderr
    assert run.record is not None
    for result in run.record["results"]:
        for step in result["steps"]:
            assert when(result["start"]) <= when(step["start"]) <= when(step["end"])
            assert when(step["end"]) <= when(result["end"]), (result["host"], result["runbook"])
