"""Fleet-scale safety controls end to end, against the real sshd lab hosts (issue 5).

Rolling batches and the circuit breaker, remediation budgets, per-host locks (held, and a
killed run's lock reclaimed), approvals, secrets, maintenance windows and SIGINT. Every
test drives the real CLI as a subprocess (or, for windows, the engine with the real SSH
transport and a fake clock: the CLI has no clock hook), reads the ``--json`` record, and
checks the hosts' own state: marker files the runbooks' steps write into the hosts' state
directories, the lock and budget files, and the sshd log's count of logins.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from oorfix.inventory.core import load_inventory
from oorfix.results import HostResult, Outcome, RunResult
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import LoadedRunbook, load_runbooks
from oorfix.runbook.windows import Window
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import RunGate
from oorfix.transport import ConnectOptions, open_transport
from tests.integration.conftest import CLI_TIMEOUT, REPO, CliRun, Fleet

pytestmark = pytest.mark.integration

MASK = "********"


# -- helpers -------------------------------------------------------------------------------


class Started:
    """An ``oorfix run`` process started in the background, and the record it will write."""

    def __init__(self, proc: subprocess.Popen[str], args: tuple[str, ...], json_path: Path):
        self.proc = proc
        self.args = args
        self.json_path = json_path
        self.began = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout: float = CLI_TIMEOUT) -> CliRun:
        """Wait for the process; its exit code, output and parsed record."""
        stdout, stderr = self.proc.communicate(timeout=timeout)
        seconds = time.monotonic() - self.began
        path = self.json_path
        record = json.loads(path.read_text()) if path.exists() else None
        return CliRun(self.args, self.proc.returncode, stdout, stderr, seconds, record)


class Launcher:
    """Starts ``oorfix run`` processes the way ``Fleet.run`` does, but in the background,
    with extra environment variables or another stdin; kills what is left at teardown."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.started: list[Started] = []

    def start(
        self,
        *args: str | Path,
        env: Mapping[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
    ) -> Started:
        json_path = self.fleet.tmp / f"record-{uuid.uuid4().hex}.json"
        argv = [str(a) for a in args]
        argv += ["--known-hosts", str(self.fleet.lab.sshd.known_hosts), "--json", str(json_path)]
        environment = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        environment.update(env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "oorfix", "run", *argv],
            cwd=REPO,
            env=environment,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = Started(proc, tuple(argv), json_path)
        self.started.append(started)
        return started

    def run(self, *args: str | Path, **kw: Any) -> CliRun:
        return self.start(*args, **kw).finish()

    def cleanup(self) -> None:
        for started in self.started:
            if started.proc.poll() is None:
                started.proc.kill()
                started.proc.communicate()


@pytest.fixture
def cli(fleet: Fleet) -> Iterator[Launcher]:
    launcher = Launcher(fleet)
    try:
        yield launcher
    finally:
        launcher.cleanup()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A fresh oorfix state directory (locks, budgets) for this test only."""
    return tmp_path / "oorfix-state"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def steps(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The steps of a host result as (phase, name, status)."""
    return [(s["phase"], s["name"], s["status"]) for s in result["steps"]]


def entries(directory: Path) -> list[str]:
    """The names in a directory, sorted, without the lab's own entries."""
    return sorted(p.name for p in directory.iterdir() if p.name not in {"units", "run", "journal"})


def lock_files(state: Path) -> list[str]:
    """The host lock files left in a state dir (not temporaries, not the reclaim log)."""
    locks = state / "locks"
    return sorted(p.name for p in locks.glob("*.json") if not p.name.startswith("."))


def owner_of(pid: int) -> str:
    """The lock owner oorfix writes for the process ``pid`` on this machine."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {pid}"


def files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


def fixed_markers(state: Path) -> list[str]:
    return sorted(p.name for p in state.glob("fixed-*"))


# 1. Rolling batches and the circuit breaker ----------------------------------------------

BREAKER = """
    name: breaker-probe
    fault: software.service_interruption
    hosts: payment_api
    vars: {broken: false, fail_delay: 0}
    # policy
    detect:
      - name: ok marker present
        run: touch {{ state_dir }}/detected && test -f {{ state_dir }}/ok
    remediate:
      - name: fix
        run: touch {{ state_dir }}/ok {{ state_dir }}/fixed
        when: not broken
      - name: broken fix
        run: sleep {{ fail_delay }}; exit 1
        when: broken
    verify: {retries: 0}
    escalate: {message: "breaker-probe still failing on {{ host.name }}"}
"""
FAILED_STEPS = [
    ("detect", "ok marker present", "failed"),
    ("remediate", "fix", "skipped"),
    ("remediate", "broken fix", "failed"),
]
FIXED_STEPS = [
    ("detect", "ok marker present", "failed"),
    ("remediate", "fix", "passed"),
    ("remediate", "broken fix", "skipped"),
    ("verify", "ok marker present", "passed"),
]


def four_host_inventory(fleet: Fleet, broken: tuple[str, ...]) -> tuple[Path, Path]:
    """pg-api-1..3 plus pg-api-4 (pg-api-1's sshd address, its own state dir)."""
    fourth = fleet.tmp / "pg-api-4-state"
    fourth.mkdir()
    inventory = fleet.inventory(
        {name: {"broken": True} for name in broken if name != "pg-api-4"},
        extra_hosts={
            "pg-api-4": fleet.host_entry(
                "pg-api-1", state_dir=str(fourth), broken="pg-api-4" in broken
            )
        },
    )
    return inventory, fourth


def assert_failed(result: dict[str, Any], name: str) -> None:
    assert result["status"] == "failed"
    assert steps(result) == FAILED_STEPS
    assert result["error"] == "remediation step 'broken fix' failed: exit status 1, expected 0"
    assert result["escalation"] == f"breaker-probe still failing on {name}"


def assert_fixed(state: Path, result: dict[str, Any]) -> None:
    assert (result["status"], result["error"], result["escalation"]) == ("fixed", None, None)
    assert steps(result) == FIXED_STEPS
    assert entries(state) == ["detected", "fixed", "ok"]


def assert_untouched_skip(result: dict[str, Any], reason: str, state: Path) -> None:
    """Skipped by the breaker: no step, the reason in ``error``, nothing on the host."""
    assert result["status"] == "skipped"
    assert result["error"] == f"not started: {reason}"
    assert (result["steps"], result["escalation"], result["notes"]) == ([], None, [])
    assert entries(state) == []  # not even the detect step's marker


@pytest.mark.parametrize("percent", ["30", "33"])
def test_the_breaker_stops_the_run_once_failures_exceed_the_limit(
    fleet: Fleet, state_dir: Path, percent: str
) -> None:
    runbook = fleet.runbook(BREAKER)
    inventory = fleet.inventory({"pg-api-1": {"broken": True}})
    logins = fleet.logins()

    run = fleet.run(
        runbook, "-i", inventory, "--serial", "1", "--max-fail-percent", percent,
        "--state-dir", state_dir,
    )  # fmt: skip

    assert run.rc == 1, run.stderr
    assert run.record is not None
    assert (run.record["exit_code"], run.record["aborted"]) == (1, False)
    assert run.record["summary"] == {"failed": 1, "skipped": 2}
    assert run.statuses() == {"pg-api-1": "failed", "pg-api-2": "skipped", "pg-api-3": "skipped"}
    assert_failed(run.result("pg-api-1"), "pg-api-1")
    reason = f"circuit breaker: 1 of 3 hosts failed (33%), more than max_fail_percent {percent}%"
    for name in ("pg-api-2", "pg-api-3"):
        assert_untouched_skip(run.result(name), reason, fleet.state(name))
    # Exactly one login: pg-api-2 and pg-api-3 were never connected to.
    assert fleet.logins() == logins + 1
    assert entries(fleet.state("pg-api-1")) == ["detected"]


def test_the_breaker_does_not_trip_below_the_limit(fleet: Fleet, state_dir: Path) -> None:
    runbook = fleet.runbook(BREAKER)
    inventory = fleet.inventory({"pg-api-1": {"broken": True}})
    logins = fleet.logins()

    run = fleet.run(
        runbook, "-i", inventory, "--serial", "1", "--max-fail-percent", "34",
        "--state-dir", state_dir,
    )  # fmt: skip

    assert run.rc == 1, run.stderr  # pg-api-1's fault remains
    assert run.statuses() == {"pg-api-1": "failed", "pg-api-2": "fixed", "pg-api-3": "fixed"}
    assert_failed(run.result("pg-api-1"), "pg-api-1")
    for name in ("pg-api-2", "pg-api-3"):
        assert_fixed(fleet.state(name), run.result(name))
    assert fleet.logins() == logins + 3


@pytest.mark.parametrize("source", ["flags", "runbook"])
def test_reaching_the_limit_is_not_exceeding_it(fleet: Fleet, state_dir: Path, source: str) -> None:
    # 1 of 4 failed is exactly 25%: the run goes on; 2 of 4 (50%) exceeds it and stops it.
    text = BREAKER
    flags: list[str] = []
    if source == "runbook":
        text = BREAKER.replace("    # policy\n", "    serial: 1\n    max_fail_percent: 25\n")
    else:
        flags = ["--serial", "1", "--max-fail-percent", "25"]
    runbook = fleet.runbook(text)
    inventory, fourth = four_host_inventory(fleet, broken=("pg-api-1", "pg-api-3"))
    logins = fleet.logins()

    run = fleet.run(runbook, "-i", inventory, *flags, "--state-dir", state_dir)

    assert run.rc == 1, run.stderr
    assert run.statuses() == {
        "pg-api-1": "failed",
        "pg-api-2": "fixed",
        "pg-api-3": "failed",
        "pg-api-4": "skipped",
    }
    assert_failed(run.result("pg-api-1"), "pg-api-1")
    assert_fixed(fleet.state("pg-api-2"), run.result("pg-api-2"))
    assert_failed(run.result("pg-api-3"), "pg-api-3")
    reason = "circuit breaker: 2 of 4 hosts failed (50%), more than max_fail_percent 25%"
    assert_untouched_skip(run.result("pg-api-4"), reason, fourth)
    assert fleet.logins() == logins + 3


def test_a_batch_where_half_the_hosts_fail_leaves_the_next_batch_untouched(
    fleet: Fleet, state_dir: Path
) -> None:
    runbook = fleet.runbook(BREAKER)
    inventory, fourth = four_host_inventory(fleet, broken=("pg-api-1",))
    logins = fleet.logins()

    # The failing fix takes a second, so pg-api-2 surely started alongside it, in its batch.
    run = fleet.run(
        runbook, "-i", inventory, "--serial", "2", "--max-fail-percent", "20",
        "-e", "fail_delay=1", "--state-dir", state_dir,
    )  # fmt: skip

    assert run.rc == 1, run.stderr
    assert run.statuses() == {
        "pg-api-1": "failed",
        "pg-api-2": "fixed",
        "pg-api-3": "skipped",
        "pg-api-4": "skipped",
    }
    assert_failed(run.result("pg-api-1"), "pg-api-1")
    assert_fixed(fleet.state("pg-api-2"), run.result("pg-api-2"))
    reason = "circuit breaker: 1 of 4 hosts failed (25%), more than max_fail_percent 20%"
    assert_untouched_skip(run.result("pg-api-3"), reason, fleet.state("pg-api-3"))
    assert_untouched_skip(run.result("pg-api-4"), reason, fourth)
    assert fleet.logins() == logins + 2


def test_an_unreachable_host_counts_as_a_failure_for_the_breaker(
    fleet: Fleet, state_dir: Path
) -> None:
    runbook = fleet.runbook(BREAKER)
    ghost = "127.0.30.250"  # on loopback, but no sshd listens there
    inventory = fleet.inventory(
        hosts=[],
        extra_hosts={
            "pg-ghost": {**fleet.host_entry("pg-api-3"), "ansible_host": ghost},
            "pg-api-1": fleet.host_entry("pg-api-1"),
            "pg-api-2": fleet.host_entry("pg-api-2"),
        },
    )
    logins = fleet.logins()

    run = fleet.run(
        runbook, "-i", inventory, "--serial", "1", "--max-fail-percent", "30",
        "--state-dir", state_dir,
    )  # fmt: skip

    assert run.rc == 3, run.stderr  # unreachable, and no fault is known to remain
    assert run.statuses() == {
        "pg-ghost": "unreachable",
        "pg-api-1": "skipped",
        "pg-api-2": "skipped",
    }
    assert run.result("pg-ghost")["error"] == f"connection refused by {ghost}:{fleet.port}"
    reason = "circuit breaker: 1 of 3 hosts failed (33%), more than max_fail_percent 30%"
    for name in ("pg-api-1", "pg-api-2"):
        assert_untouched_skip(run.result(name), reason, fleet.state(name))
    assert fleet.logins() == logins


# 2. Remediation budget --------------------------------------------------------------------

BUDGET = """
    name: budget-probe
    fault: software.service_interruption
    hosts: payment_api
    max_remediations: {count: COUNT, per: PER}
    detect:
      - name: ok marker present
        run: test -f {{ state_dir }}/ok
    remediate:
      - name: fix that does not hold
        run: touch {{ state_dir }}/fixed-$(date +%s%N)
    verify: {retries: 0}
    escalate: {message: "budget-probe keeps failing on {{ host.name }}: call a person"}
"""


def budget_runbook(fleet: Fleet, count: int, per: str) -> Path:
    return fleet.runbook(BUDGET.replace("COUNT", str(count)).replace("PER", per))


def budget_entries(state_dir: Path, host: str = "pg-api-1") -> list[datetime]:
    path = state_dir / "budget" / "budget-probe" / f"{host}.json"
    return [datetime.fromisoformat(t) for t in json.loads(path.read_text())]


def next_allowed(at: datetime) -> str:
    """How the budget shows when a remediation is next allowed: rounded up, in UTC."""
    whole = at.replace(microsecond=0)
    if whole < at:
        whole += timedelta(seconds=1)
    same_day = whole.date() == datetime.now(UTC).date()
    return whole.strftime("%H:%M:%S UTC" if same_day else "%Y-%m-%d %H:%M:%S UTC")


def test_the_budget_holds_across_processes_and_defers_with_an_escalation(
    fleet: Fleet, state_dir: Path
) -> None:
    runbook = budget_runbook(fleet, 2, "1h")
    inventory = fleet.inventory(hosts=["pg-api-1"])
    state = fleet.state("pg-api-1")
    args = (runbook, "-i", inventory, "--state-dir", state_dir)
    escalation = "budget-probe keeps failing on pg-api-1: call a person"

    for number in (1, 2):  # two processes, each spends one remediation
        run = fleet.run(*args)

        assert run.rc == 1, run.stderr
        failed = run.result("pg-api-1")
        assert failed["status"] == "failed"
        assert steps(failed) == [
            ("detect", "ok marker present", "failed"),
            ("remediate", "fix that does not hold", "passed"),
            ("verify", "ok marker present", "failed"),
        ]
        assert failed["escalation"] == escalation
        assert len(fixed_markers(state)) == number
    spent = budget_entries(state_dir)
    assert len(spent) == 2

    third = fleet.run(*args)

    assert third.rc == 1, third.stderr
    assert third.record is not None
    assert third.record["exit_code"] == 1
    deferred = third.result("pg-api-1")
    assert deferred["status"] == "deferred"
    assert steps(deferred) == [("detect", "ok marker present", "failed")]
    assert deferred["error"] == (
        "fix deferred: budget spent: 2 remediations of budget-probe on pg-api-1 in the last 1h "
        f"(next allowed at {next_allowed(spent[0] + timedelta(hours=1))})"
    )
    assert deferred["escalation"] == escalation
    assert len(fixed_markers(state)) == 2  # the third process did not remediate
    assert budget_entries(state_dir) == spent  # a refusal spends nothing
    assert lock_files(state_dir) == []


def test_concurrent_runs_never_spend_more_than_the_budget(
    fleet: Fleet, cli: Launcher, state_dir: Path
) -> None:
    runbook = budget_runbook(fleet, 2, "1h")
    inventory = fleet.inventory(hosts=["pg-api-1"])
    state = fleet.state("pg-api-1")

    started = [cli.start(runbook, "-i", inventory, "--state-dir", state_dir) for _ in range(4)]
    runs = [s.finish() for s in started]

    statuses = [run.result("pg-api-1")["status"] for run in runs]
    assert all(run.rc == 1 for run in runs), [run.stderr for run in runs]
    remediated = [run for run in runs if run.result("pg-api-1")["status"] == "failed"]
    # Whoever did not remediate was held off by the lock or by the spent budget.
    assert set(statuses) <= {"failed", "locked", "deferred"}, statuses
    assert 1 <= len(remediated) <= 2, statuses
    assert len(fixed_markers(state)) == len(remediated)
    assert len(budget_entries(state_dir)) == len(remediated)
    for run in runs:
        result = run.result("pg-api-1")
        if result["status"] == "deferred":
            assert result["error"].startswith("fix deferred: budget spent: 2 remediations")
        if result["status"] != "failed":
            assert steps(result) == [("detect", "ok marker present", "failed")]
    assert lock_files(state_dir) == []


def test_the_budget_allows_a_remediation_again_once_the_window_passed(
    fleet: Fleet, state_dir: Path
) -> None:
    runbook = budget_runbook(fleet, 1, "4s")
    inventory = fleet.inventory(hosts=["pg-api-1"])
    state = fleet.state("pg-api-1")
    args = (runbook, "-i", inventory, "--state-dir", state_dir)

    first, second = fleet.run(*args), fleet.run(*args)

    assert (first.result("pg-api-1")["status"], second.result("pg-api-1")["status"]) == (
        "failed",
        "deferred",
    )
    (spent,) = budget_entries(state_dir)
    assert second.result("pg-api-1")["error"] == (
        "fix deferred: budget spent: 1 remediation of budget-probe on pg-api-1 in the last 4s "
        f"(next allowed at {next_allowed(spent + timedelta(seconds=4))})"
    )
    wait_until(lambda: (datetime.now(UTC) - spent).total_seconds() > 4.05, 6, "the window")

    third = fleet.run(*args)

    assert third.result("pg-api-1")["status"] == "failed"  # remediated (and failed) again
    assert len(fixed_markers(state)) == 2
    # The old entry left the window and was pruned: one remediation in the last 4s.
    assert len(budget_entries(state_dir)) == 1


# 3. Per-host locks ------------------------------------------------------------------------

SLOW_FIX = """
    name: slow-fix
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: ok marker present
        run: test -f {{ state_dir }}/ok
    remediate:
      - name: slow fix
        run: touch {{ state_dir }}/fixed-$(date +%s%N) && sleep SECONDS && touch {{ state_dir }}/ok
        timeout: TIMEOUT
    verify: {retries: 0}
"""


def slow_fix(fleet: Fleet, seconds: str, timeout: int = 60, filename: str = "slow.yml") -> Path:
    text = SLOW_FIX.replace("SECONDS", seconds).replace("TIMEOUT", str(timeout))
    return fleet.runbook(text, filename)


def test_two_concurrent_runs_never_remediate_one_host_at_once(
    fleet: Fleet, cli: Launcher, state_dir: Path
) -> None:
    runbook = slow_fix(fleet, "3")
    inventory = fleet.inventory(hosts=["pg-api-1"])
    lock = state_dir / "locks" / "pg-api-1.json"

    first = cli.start(runbook, "-i", inventory, "--state-dir", state_dir)
    wait_until(lock.exists, 20, "run A's lock file")
    held = json.loads(lock.read_text())
    second = cli.run(runbook, "-i", inventory, "--state-dir", state_dir)
    a = first.finish()

    assert a.rc == 0, a.stderr
    assert a.record is not None
    assert held["run_id"] == a.record["run_id"]
    assert (held["host"], held["owner"]) == ("pg-api-1", owner_of(first.pid))
    assert a.statuses() == {"pg-api-1": "fixed"}
    assert second.rc == 1, second.stderr
    assert second.record is not None
    assert second.record["run_id"] != a.record["run_id"]
    locked = second.result("pg-api-1")
    assert locked["status"] == "locked"
    assert locked["error"].startswith(
        f"locked by run {a.record['run_id']} ({owner_of(first.pid)}) until "
    )
    assert steps(locked) == [("detect", "ok marker present", "failed")]
    assert len(fixed_markers(fleet.state("pg-api-1"))) == 1  # only A remediated
    assert lock_files(state_dir) == []
    assert not (state_dir / "locks" / "reclaimed.jsonl").exists()


def test_a_killed_runs_lock_is_reclaimed_after_its_expiry(
    fleet: Fleet, cli: Launcher, state_dir: Path
) -> None:
    # The host's `timeout` ends the killed run's orphaned sleep after 4 s.
    hanging = slow_fix(fleet, "30", timeout=4, filename="hanging.yml")
    quick = slow_fix(fleet, "0", filename="quick.yml")
    inventory = fleet.inventory(hosts=["pg-api-1"])
    lock = state_dir / "locks" / "pg-api-1.json"

    killed = cli.start(hanging, "-i", inventory, "--state-dir", state_dir, "--lock-ttl", "2")
    wait_until(lock.exists, 20, "the lock file")
    stale = json.loads(lock.read_text())
    killed.proc.send_signal(signal.SIGKILL)
    assert killed.finish(timeout=10).rc == -signal.SIGKILL
    assert stale["owner"] == owner_of(killed.pid)
    expires = datetime.fromisoformat(stale["expires"])
    wait_until(lambda: datetime.now(UTC) > expires, 5, "the lock's expiry")
    assert lock.exists()  # nobody cleaned up after the killed run

    reclaiming = cli.start(quick, "-i", inventory, "--state-dir", state_dir)
    run = reclaiming.finish()

    assert run.rc == 0, run.stderr
    assert run.record is not None
    assert run.statuses() == {"pg-api-1": "fixed"}
    reclaims = (state_dir / "locks" / "reclaimed.jsonl").read_text().splitlines()
    assert len(reclaims) == 1
    reclaim = json.loads(reclaims[0])
    assert reclaim["host"] == "pg-api-1"
    assert reclaim["stale"] == stale  # names the dead run id and its owner
    assert reclaim["run_id"] == run.record["run_id"] != stale["run_id"]
    assert reclaim["owner"] == owner_of(reclaiming.pid)
    assert datetime.fromisoformat(reclaim["at"]) > expires
    assert lock_files(state_dir) == []


RACY_FIX = """
    name: racy-fix
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: ok marker present
        run: test -f {{ state_dir }}/ok
    remediate:
      # mkdir fails when another remediation of this host is under way.
      - name: exclusive fix
        run: mkdir {{ state_dir }}/fixing && sleep 4 && rmdir {{ state_dir }}/fixing
      - name: mark fixed
        run: touch {{ state_dir }}/ok
    verify: {retries: 0}
"""


def test_a_live_run_keeps_its_lock_while_a_step_outlasts_the_ttl(
    fleet: Fleet, cli: Launcher, state_dir: Path
) -> None:
    runbook = fleet.runbook(RACY_FIX)
    inventory = fleet.inventory(hosts=["pg-api-1"])
    lock = state_dir / "locks" / "pg-api-1.json"

    first = cli.start(runbook, "-i", inventory, "--state-dir", state_dir, "--lock-ttl", "1")
    wait_until(lock.exists, 20, "run A's lock file")
    expires = datetime.fromisoformat(json.loads(lock.read_text())["expires"])
    wait_until(lambda: datetime.now(UTC) > expires, 5, "the lock's expiry")
    second = cli.run(runbook, "-i", inventory, "--state-dir", state_dir, "--lock-ttl", "1")
    a = first.finish()

    assert a.statuses() == {"pg-api-1": "fixed"}
    # A is alive and remediating: B must be held off, not reclaim A's lock as stale.
    assert second.statuses() == {"pg-api-1": "locked"}
    assert not (state_dir / "locks" / "reclaimed.jsonl").exists()


# 4. Approvals -----------------------------------------------------------------------------

APPROVAL = """
    name: approve-probe
    fault: software.service_interruption
    hosts: payment_api
    approval: required
    detect:
      - name: ok marker present
        run: test -f {{ state_dir }}/ok
    remediate:
      - name: fix
        run: touch {{ state_dir }}/ok {{ state_dir }}/fixed
    verify: {retries: 0}
"""


def test_approval_is_refused_without_a_terminal_and_given_by_yes(
    fleet: Fleet, state_dir: Path
) -> None:
    runbook = fleet.runbook(APPROVAL)
    inventory = fleet.inventory(hosts=["pg-api-1"])
    state = fleet.state("pg-api-1")

    refused = fleet.run(runbook, "-i", inventory, "--state-dir", state_dir)

    assert refused.rc == 1, refused.stderr
    assert refused.seconds < 30  # refused, never hung waiting for an answer
    assert (
        "approval required for approve-probe: no terminal to ask and no --yes, "
        "so their fixes are deferred"
    ) in refused.stderr
    deferred = refused.result("pg-api-1")
    assert deferred["status"] == "deferred"
    assert deferred["error"] == "fix not approved: the runbook requires approval"
    assert deferred["escalation"] is None
    assert steps(deferred) == [("detect", "ok marker present", "failed")]
    assert entries(state) == []  # the fix never ran
    assert lock_files(state_dir) == []

    approved = fleet.run(runbook, "-i", inventory, "--state-dir", state_dir, "--yes")

    assert approved.rc == 0, approved.stderr
    assert approved.statuses() == {"pg-api-1": "fixed"}
    assert steps(approved.result("pg-api-1")) == [
        ("detect", "ok marker present", "failed"),
        ("remediate", "fix", "passed"),
        ("verify", "ok marker present", "passed"),
    ]
    assert entries(state) == ["fixed", "ok"]


@pytest.mark.parametrize(("answer", "status"), [("y", "fixed"), ("n", "deferred")])
def test_approval_on_a_terminal_shows_the_plan_and_asks(
    fleet: Fleet, cli: Launcher, state_dir: Path, answer: str, status: str
) -> None:
    runbook = fleet.runbook(APPROVAL)
    inventory = fleet.inventory(hosts=["pg-api-1"])
    state = fleet.state("pg-api-1")
    logins = fleet.logins()
    master, slave = pty.openpty()
    try:
        started = cli.start(runbook, "-i", inventory, "--state-dir", state_dir, stdin=slave)
        os.close(slave)
        slave = -1
        os.write(master, f"{answer}\n".encode())
        run = started.finish()
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)

    question = "Apply the changes of approve-probe where their faults are confirmed?"
    assert question in run.stdout, run.stdout + run.stderr
    plan = run.stdout[: run.stdout.index(question)]
    assert "pg-api-1 approve-probe (software.service_interruption)" in plan
    assert f"$ touch {state}/ok {state}/fixed" in plan  # the exact command, before asking
    assert "test -f" not in plan  # changes only
    assert fleet.logins() == logins + 1
    result = run.result("pg-api-1")
    assert result["status"] == status
    if status == "fixed":
        assert run.rc == 0, run.stderr
        assert entries(state) == ["fixed", "ok"]
    else:
        assert run.rc == 1, run.stderr
        assert result["error"] == "fix not approved: the runbook requires approval"
        assert entries(state) == []


# 5. Secrets -------------------------------------------------------------------------------

SECRETS = """
    name: secret-probe
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: ok marker present
        run: test -f {{ state_dir }}/ok
    evidence:
      - name: token in argv
        run: printf '%s' {{ secret(REF) }} > {{ state_dir }}/argv.txt; echo {{ secret(REF) }}
      - name: token on stdin
        run: tee {{ state_dir }}/stdin.txt
        stdin: "{{ secret(REF) }}"
      - name: token then hang
        run: echo {{ secret(REF) }}; echo {{ secret(REF) }} >&2; sleep 30
        timeout: 1
    remediate:
      - name: fix that fails loudly
        run: echo {{ secret(REF) }} >&2; exit 1
    escalate:
      message: "token {{ secret(REF) }} was refused on {{ host.name }}"
"""


@pytest.mark.parametrize("source", ["env", "file"])
def test_a_secret_reaches_the_host_and_no_artifact(
    fleet: Fleet, cli: Launcher, state_dir: Path, source: str
) -> None:
    secret = f"tok-{uuid.uuid4().hex}"
    env = {"OORFIX_TEST_TOKEN": secret} if source == "env" else {}
    ref = "'OORFIX_TEST_TOKEN'"
    if source == "file":
        token_file = fleet.tmp / "token"
        token_file.write_text(secret + "\n")
        ref = f"'file:{token_file}'"
    runbook = fleet.runbook(SECRETS.replace("REF", ref))
    inventory = fleet.inventory(hosts=["pg-api-1"])
    state = fleet.state("pg-api-1")

    started = cli.start(runbook, "-i", inventory, "--state-dir", state_dir, "-vv", env=env)
    run = started.finish()

    assert run.rc == 1, run.stderr
    assert run.record is not None
    failed = run.result("pg-api-1")
    assert failed["status"] == "failed"
    assert steps(failed) == [
        ("detect", "ok marker present", "failed"),
        ("evidence", "token in argv", "passed"),
        ("evidence", "token on stdin", "passed"),
        ("evidence", "token then hang", "error"),
        ("remediate", "fix that fails loudly", "failed"),
    ]
    argv, stdin, hang, fix = failed["steps"][1:]
    assert argv["command"] == f"printf '%s' {MASK} > {state}/argv.txt; echo {MASK}"
    assert argv["stdout"] == f"{MASK}\n"
    assert (stdin["command"], stdin["stdout"]) == (f"tee {state}/stdin.txt", f"{MASK}\n")
    assert hang["command"] == f"echo {MASK}; echo {MASK} >&2; sleep 30"
    assert (hang["timed_out"], hang["stdout"], hang["stderr"]) == (True, f"{MASK}\n", f"{MASK}\n")
    assert hang["reason"].startswith("timed out after ")
    assert (fix["command"], fix["stderr"]) == (f"echo {MASK} >&2; exit 1", f"{MASK}\n")
    assert failed["escalation"] == f"token {MASK} was refused on pg-api-1"
    # The host really got the value, both on the command line and on stdin.
    assert (state / "argv.txt").read_text() == secret
    assert (state / "stdin.txt").read_text() == f"{secret}\n"  # a line: `read` takes it whole
    # ... and no artifact shows it: the record file, the console (-vv), the escalation.
    leaks = {
        "record file": secret in started.json_path.read_text(),
        "stdout": secret in run.stdout,
        "stderr": secret in run.stderr,
        "escalation": secret in failed["escalation"],
        # locks, budgets, and the audit log or run history when oorfix keeps them there
        "state dir": any(secret.encode() in f.read_bytes() for f in files_under(state_dir)),
    }
    assert leaks == dict.fromkeys(leaks, False)
    # The audit log has the fix's intent and result, with the command masked.
    audit = [json.loads(line) for line in (state_dir / "audit.log").read_text().splitlines()]
    assert [(e["kind"], e["phase"], e["command"]) for e in audit] == [
        ("intent", "remediate", f"echo {MASK} >&2; exit 1"),
        ("result", "remediate", f"echo {MASK} >&2; exit 1"),
    ]
    assert f"token {MASK} was refused on pg-api-1" in run.stdout  # the summary shows it masked
    assert f"$ echo {MASK}; echo {MASK} >&2; sleep 30" in run.stdout


@pytest.mark.parametrize("kind", ["env", "file"])
def test_a_missing_secret_is_an_input_error_naming_file_and_line(
    fleet: Fleet, cli: Launcher, state_dir: Path, kind: str
) -> None:
    missing = f"OORFIX_TEST_ABSENT_{uuid.uuid4().hex.upper()}"
    ref = missing if kind == "env" else f"file:{fleet.tmp / missing}"
    runbook = fleet.runbook(
        f"""
        name: secret-missing
        fault: software.service_interruption
        hosts: payment_api
        detect:
          - name: leave a mark
            run: touch {{{{ state_dir }}}}/contacted
        remediate:
          - name: use it
            run: echo {{{{ secret('{ref}') }}}}
        """
    )
    inventory = fleet.inventory()
    logins = fleet.logins()

    run = cli.run(runbook, "-i", inventory, "--state-dir", state_dir)

    assert run.rc == 2, run.stderr
    line = next(n for n, text in enumerate(runbook.read_text().splitlines(), 1) if ref in text)
    why = "no such environment variable" if kind == "env" else "cannot read: No such file"
    assert f"{runbook}:{line}: remediate[0].run: secret {ref!r}: {why}" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.record is None
    assert fleet.logins() == logins
    for name in fleet.names:
        assert not (fleet.state(name) / "contacted").exists()


HEAD_BYTES = 64 * 1024  # what the record keeps of the start of a long output


def test_a_secret_cut_by_output_truncation_does_not_leak_in_part(
    fleet: Fleet, cli: Launcher, state_dir: Path
) -> None:
    secret = f"tok-{uuid.uuid4().hex}"
    kept = 20  # the secret's bytes that fall inside the kept head of stdout
    runbook = fleet.runbook(
        f"""
        name: secret-long-output
        fault: software.service_interruption
        hosts: payment_api
        detect:
          - name: long output
            run: >-
              head -c {HEAD_BYTES - kept} /dev/zero | tr '\\0' x;
              printf '%s' {{{{ secret('OORFIX_TEST_TOKEN') }}}};
              head -c 70000 /dev/zero | tr '\\0' y
        """
    )
    inventory = fleet.inventory(hosts=["pg-api-1"])

    started = cli.start(
        runbook, "-i", inventory, "--state-dir", state_dir, env={"OORFIX_TEST_TOKEN": secret}
    )
    run = started.finish()

    assert run.rc == 0, run.stderr
    stdout = run.result("pg-api-1")["steps"][0]
    assert (stdout["stdout_bytes"], stdout["stdout_truncated"]) == (
        HEAD_BYTES - kept + len(secret) + 70000,
        True,
    )
    assert secret not in started.json_path.read_text()  # the whole value never shows ...
    assert secret[:kept] not in started.json_path.read_text()  # ... nor its first 20 chars


# 6. Maintenance windows (the engine with a fake clock) -----------------------------------

WINDOWED = """
    name: windowed-fix
    fault: software.service_interruption
    hosts: payment_api
    windows:
      - WINDOW
    detect:
      - name: ok marker present
        run: touch {{ state_dir }}/detected && test -f {{ state_dir }}/ok
    remediate:
      - name: fix
        run: touch {{ state_dir }}/ok {{ state_dir }}/fixed
    verify: {retries: 0}
"""
WEEKLY = '{days: mon-fri, start: "02:00", end: "04:00", timezone: Europe/Paris}'
CRON = '{cron: "0 2 * * 1-5", duration: 2h, timezone: Europe/Paris}'
# Wednesday 10 January 2024; Paris is UTC+1 in winter, UTC+2 in summer.
INSIDE_WINTER = datetime(2024, 1, 10, 1, 30, tzinfo=UTC)  # 02:30 in Paris
INSIDE_SUMMER = datetime(2024, 7, 10, 0, 30, tzinfo=UTC)  # 02:30 in Paris (CEST)
OUTSIDE_NOON = datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
OUTSIDE_BY_ZONE = datetime(2024, 1, 10, 3, 30, tzinfo=UTC)  # in the window in UTC, not Paris
SATURDAY = datetime(2024, 1, 13, 1, 30, tzinfo=UTC)  # 02:30 in Paris, on a Saturday


def run_engine(fleet: Fleet, loaded: list[LoadedRunbook], gate: RunGate) -> RunResult:
    """Plan and run like `oorfix run`, over the real SSH transport, with ``gate``."""
    inventory = load_inventory(fleet.inventory(hosts=["pg-api-1"]))
    planned = plan_run(loaded, inventory, {})
    options = ConnectOptions(known_hosts=fleet.lab.sshd.known_hosts)
    pool = ConnectionPool(lambda host: open_transport(host.connection(), options))
    parts = EngineParts(inventory, pool, gate, NoAudit())
    return Engine(parts, EngineOptions()).run([p.job for p in planned])


def only(run: RunResult) -> HostResult:
    (result,) = run.results
    assert result.host == "pg-api-1"
    return result


def host_steps(result: HostResult) -> list[tuple[str, str, str]]:
    return [(str(s.phase), s.name, str(s.status)) for s in result.steps]


@pytest.mark.parametrize(
    ("clock", "next_open"),
    [
        (OUTSIDE_NOON, "2024-01-11 02:00"),
        (OUTSIDE_BY_ZONE, "2024-01-11 02:00"),
        (SATURDAY, "2024-01-15 02:00"),
    ],
    ids=["noon", "utc-would-be-inside", "saturday"],
)
@pytest.mark.parametrize("window", [WEEKLY, CRON], ids=["weekly", "cron"])
def test_a_closed_window_defers_the_fix_and_force_overrides_it(
    fleet: Fleet, clock: datetime, next_open: str, window: str
) -> None:
    loaded = load_runbooks([fleet.runbook(WINDOWED.replace("WINDOW", window))])
    state = fleet.state("pg-api-1")

    deferred = only(run_engine(fleet, loaded, RunGate(clock=lambda: clock)))

    assert deferred.status is Outcome.DEFERRED
    assert deferred.error == (
        f"fix deferred: outside the maintenance windows; next opens at {next_open} "
        "Europe/Paris (--force overrides)"
    )
    assert deferred.escalation is None
    assert host_steps(deferred) == [("detect", "ok marker present", "failed")]
    assert entries(state) == ["detected"]  # detect ran; the fix did not

    forced = only(run_engine(fleet, loaded, RunGate(clock=lambda: clock, force=True)))

    assert forced.status is Outcome.FIXED
    assert entries(state) == ["detected", "fixed", "ok"]


@pytest.mark.parametrize("clock", [INSIDE_WINTER, INSIDE_SUMMER], ids=["winter", "summer"])
@pytest.mark.parametrize("window", [WEEKLY, CRON], ids=["weekly", "cron"])
def test_an_open_window_lets_the_fix_run(fleet: Fleet, clock: datetime, window: str) -> None:
    loaded = load_runbooks([fleet.runbook(WINDOWED.replace("WINDOW", window))])

    fixed = only(run_engine(fleet, loaded, RunGate(clock=lambda: clock)))

    assert (fixed.status, fixed.error) == (Outcome.FIXED, None)
    assert host_steps(fixed) == [
        ("detect", "ok marker present", "failed"),
        ("remediate", "fix", "passed"),
        ("verify", "ok marker present", "passed"),
    ]
    assert entries(fleet.state("pg-api-1")) == ["detected", "fixed", "ok"]


def test_an_unreadable_window_fails_closed(fleet: Fleet) -> None:
    (loaded,) = load_runbooks([fleet.runbook(WINDOWED.replace("WINDOW", WEEKLY))])
    bogus = Window.model_construct(days="mon-fri", start="02:00", end="04:00", timezone="Mars/Base")
    broken = dataclasses.replace(
        loaded, runbook=loaded.runbook.model_copy(update={"windows": [bogus]})
    )

    # Inside the window's hours as written: only the bad zone can refuse it.
    deferred = only(run_engine(fleet, [broken], RunGate(clock=lambda: INSIDE_WINTER)))

    assert deferred.status is Outcome.DEFERRED
    assert deferred.error is not None
    assert deferred.error.startswith(
        "fix deferred: window check failed (fail closed): ZoneInfoNotFoundError: "
    )
    assert "Mars/Base" in deferred.error
    assert host_steps(deferred) == [("detect", "ok marker present", "failed")]
    assert entries(fleet.state("pg-api-1")) == ["detected"]


# 7. SIGINT / SIGTERM mid-run --------------------------------------------------------------

SLOW_FAULT = """
    name: slow-fault
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: slow check
        run: touch {{ state_dir }}/started && sleep 2 && test -f {{ state_dir }}/ok
    evidence:
      - name: collect evidence
        run: touch {{ state_dir }}/evidence
    remediate:
      - name: fix
        run: touch {{ state_dir }}/ok {{ state_dir }}/fixed
"""
SLOW_PROBES = """
    name: slow-probes
    fault: software.service_interruption
    hosts: payment_api
    detect:
      - name: slow check
        run: touch {{ state_dir }}/started && sleep 2
      - name: second check
        run: touch {{ state_dir }}/second
"""


def interrupt(
    fleet: Fleet, cli: Launcher, runbook: Path, state_dir: Path, sig: signal.Signals
) -> tuple[CliRun, datetime]:
    """Run on all three hosts one at a time; send ``sig`` once pg-api-1's first check runs."""
    marker = fleet.state("pg-api-1") / "started"
    started = cli.start(runbook, "-i", fleet.inventory(), "--forks", "1", "--state-dir", state_dir)
    wait_until(marker.exists, 20, "the first host's slow check")
    signalled = datetime.now(UTC)
    started.proc.send_signal(sig)
    return started.finish(), signalled


def assert_interrupted_record(fleet: Fleet, run: CliRun, sig: signal.Signals) -> dict[str, Any]:
    """Exit 130, a complete record, pg-api-2 and pg-api-3 never started; pg-api-1's result."""
    assert run.rc == 130, run.stderr
    assert f"{sig.name}: finishing running steps" in run.stderr
    assert run.record is not None  # written, and parsed
    assert (run.record["aborted"], run.record["exit_code"]) == (True, 130)
    assert run.record["summary"] == {"error": 1, "skipped": 2}
    assert [r["host"] for r in run.record["results"]] == fleet.names
    for name in ("pg-api-2", "pg-api-3"):
        skipped = run.result(name)
        assert skipped["status"] == "skipped"
        assert skipped["error"] == "not started: the run was interrupted"
        assert skipped["steps"] == []
        assert entries(fleet.state(name)) == []
    first = run.result("pg-api-1")
    assert first["status"] == "error"
    assert first["error"] == "interrupted by the operator after detect; no further step was run"
    return first


def assert_finished_after(step: dict[str, Any], signalled: datetime) -> None:
    """The running step was let finish, not cut off: its full 2 s, ending after the signal."""
    end = datetime.fromisoformat(step["end"])
    assert end > signalled
    assert (end - datetime.fromisoformat(step["start"])).total_seconds() >= 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_starts_nothing_new_and_writes_a_complete_record(
    fleet: Fleet, cli: Launcher, state_dir: Path, sig: signal.Signals
) -> None:
    runbook = fleet.runbook(SLOW_FAULT)
    logins = fleet.logins()

    run, signalled = interrupt(fleet, cli, runbook, state_dir, sig)

    first = assert_interrupted_record(fleet, run, sig)
    # The fault was confirmed after the signal: neither evidence nor the fix started.
    assert steps(first) == [("detect", "slow check", "failed")]
    assert_finished_after(first["steps"][0], signalled)
    assert entries(fleet.state("pg-api-1")) == ["started"]
    assert lock_files(state_dir) == []
    assert fleet.logins() == logins + 1


def test_a_signal_during_one_of_several_checks_starts_no_further_check(
    fleet: Fleet, cli: Launcher, state_dir: Path
) -> None:
    runbook = fleet.runbook(SLOW_PROBES)

    run, signalled = interrupt(fleet, cli, runbook, state_dir, signal.SIGINT)

    assert entries(fleet.state("pg-api-1")) == ["started"]  # the second check never started
    first = assert_interrupted_record(fleet, run, signal.SIGINT)
    assert steps(first) == [("detect", "slow check", "passed")]
    assert_finished_after(first["steps"][0], signalled)
