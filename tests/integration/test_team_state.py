"""Team state in Redis end to end: several controllers share locks, budgets, audit and history.

Every controller here is a separate ``python -m oorfix`` process with a state directory of
its own (``--state-dir``) and ``--state redis://…`` pointing at one real redis-server: so
whatever one controller sees of another's run (a held lock, a spent budget, an audit entry,
a run in ``oorfix runs``) can only have come through Redis. The hosts are the sshd lab's;
their payment API is stopped to break them and checked by its pid and ``GET /health``.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from oorfix.lab.redisserver import RedisServer, free_port
from tests.integration.conftest import CLI_TIMEOUT, REPO, CliRun, Fleet

pytestmark = pytest.mark.integration

HOST = "pg-api-1"
LOCK_KEY = f"oorfix:lock:{HOST}"
AUDIT_KEY = "oorfix:audit"
WAIT = 60.0  # a bound on waiting for another process' event; it comes within a second or two
HEALTHY_API = {"status": "ok", "version": "2.4.1"}

# A runbook whose first fix step starts pg-api: FIX is that step's command, POLICY a line of
# the runbook's own (a budget), or a comment.
RESTART = """
    name: NAME
    fault: software.service_interruption
    hosts: payment_api
    POLICY
    detect:
      - name: health endpoint answers
        run: curl -fsS -m 3 http://{{ api_host }}:{{ port }}/health
        expect: {stdout: '"status": *"ok"'}
    remediate:
      - name: start pg-api
        run: >-
          FIX
        timeout: 150
      - name: the API answers again
        wait_for: {url: "http://{{ api_host }}:{{ port }}/health", timeout: 20s}
    verify: {retries: 5, delay: 1s}
    escalate: {message: "pg-api on {{ host.name }} keeps going down: call a person"}
"""
# Leaves a mark per remediation, then holds the fix until the test creates the gate file (a
# bound of its own, so an abandoned step cannot outlive the test for long).
GATED_FIX = (
    "touch {{ state_dir }}/remediating-$(date +%s%N);"
    " end=$(( $(date +%s) + 120 ));"
    " while [ ! -e {{ state_dir }}/gate ]; do [ $(date +%s) -ge $end ] && exit 1; sleep 0.05; done;"
    " systemctl start pg-api"
)
PLAIN_FIX = "touch {{ state_dir }}/remediating-$(date +%s%N) && systemctl start pg-api"
DETECT_ONLY = [("detect", "health endpoint answers", "failed")]
FIXED_STEPS = [
    ("detect", "health endpoint answers", "failed"),
    ("remediate", "start pg-api", "passed"),
    ("remediate", "the API answers again", "passed"),
    ("verify", "health endpoint answers", "passed"),
]
ESCALATION = f"pg-api on {HOST} keeps going down: call a person"


# -- helpers -------------------------------------------------------------------------------


def restart_runbook(fleet: Fleet, name: str, fix: str, policy: str = "# no policy") -> Path:
    text = RESTART.replace("NAME", name).replace("POLICY", policy).replace("FIX", fix)
    return fleet.runbook(text, f"{name}.yml")


def steps(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The steps of a host result as (phase, name, status)."""
    return [(s["phase"], s["name"], s["status"]) for s in result["steps"]]


def owner_of(pid: int) -> str:
    """The lock owner oorfix writes for the process ``pid`` on this machine."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {pid}"


def remediations(fleet: Fleet, name: str = HOST) -> list[str]:
    """The marks the fix steps left on the host, one per remediation that started."""
    return sorted(p.name for p in fleet.state(name).glob("remediating-*"))


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def one_line_error(run: CliRun) -> str:
    """The single line a command printed on stderr; no traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    return lines[0]


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def table_ids(stdout: str) -> list[str]:
    """The first column of a printed table's body rows (``oorfix runs``)."""
    rows = [line.strip("│").split("│") for line in stdout.splitlines() if line.startswith("│")]
    return [cells[0].strip() for cells in rows if cells[0].strip()]


class Started:
    """An ``oorfix run`` process started in the background, and the record it will write."""

    def __init__(self, proc: subprocess.Popen[str], args: tuple[str, ...], json_path: Path):
        self.proc = proc
        self.args = args
        self.json_path = json_path
        self.began = time.monotonic()

    def alive(self) -> bool:
        """Whether it still runs; fails the test at once if it ended (with its output)."""
        if self.proc.poll() is None:
            return True
        stdout, stderr = self.proc.communicate()
        pytest.fail(f"oorfix ended early (exit {self.proc.returncode}):\n{stdout}\n{stderr}")

    def finish(self, timeout: float = CLI_TIMEOUT) -> CliRun:
        """Wait for the process; its exit code, output and parsed record."""
        stdout, stderr = self.proc.communicate(timeout=timeout)
        seconds = time.monotonic() - self.began
        record = json.loads(self.json_path.read_text()) if self.json_path.exists() else None
        return CliRun(self.args, self.proc.returncode, stdout, stderr, seconds, record)


class Controller:
    """One oorfix controller: a state directory of its own, the team's state in Redis."""

    def __init__(self, fleet: Fleet, name: str, state: str) -> None:
        self.fleet = fleet
        self.name = name
        self.state = state
        self.state_dir = fleet.tmp / f"controller-{name}"
        self.started: list[Started] = []

    def _state_args(self) -> list[str]:
        return ["--state", self.state, "--state-dir", str(self.state_dir)]

    def run(self, *args: str | Path) -> CliRun:
        """``oorfix run ARGS`` to completion, with this controller's state."""
        return self.fleet.run(*args, *self._state_args())

    def cli(self, *args: str | Path, record: bool = False) -> CliRun:
        """Any oorfix command with this controller's state (``runs``, ``report``, ``audit``)."""
        return self.fleet.oorfix(*args, *self._state_args(), record=record)

    def start(self, *args: str | Path) -> Started:
        """``oorfix run ARGS`` in the background, argv as ``Fleet.run`` builds it."""
        json_path = self.fleet.tmp / f"record-{uuid.uuid4().hex}.json"
        argv = [str(a) for a in (*args, *self._state_args())]
        argv += ["--known-hosts", str(self.fleet.lab.sshd.known_hosts), "--json", str(json_path)]
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "oorfix", "run", *argv],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = Started(proc, tuple(argv), json_path)
        self.started.append(started)
        return started

    def cleanup(self) -> None:
        """Let what still runs finish (a gate is open by now), else stop it."""
        for started in self.started:
            try:
                started.proc.communicate(timeout=CLI_TIMEOUT)
            except subprocess.TimeoutExpired:
                started.proc.kill()
                started.proc.communicate()


class Team:
    """Controllers sharing one state, and a look into Redis as the test's own client."""

    def __init__(self, fleet: Fleet, state: str, client: redis.Redis) -> None:
        self.fleet = fleet
        self.state = state
        self.redis = client
        self.controllers: list[Controller] = []

    def controller(self, name: str, state: str | None = None) -> Controller:
        made = Controller(self.fleet, name, state or self.state)
        self.controllers.append(made)
        return made

    def lock(self) -> dict[str, Any] | None:
        """The lock on HOST as stored in Redis, if any."""
        raw = self.redis.get(LOCK_KEY)
        return None if raw is None else dict(json.loads(raw))

    def audit(self) -> list[dict[str, Any]]:
        """The audit chain as stored in Redis."""
        return [json.loads(raw) for raw in self.redis.lrange(AUDIT_KEY, 0, -1)]

    def everything(self) -> str:
        """Every key and value in the server, one a line, for a search."""
        found: list[object] = []
        for key in self.redis.scan_iter("*"):
            kind = text(self.redis.type(key))
            found.append(key)
            if kind == "string":
                found.append(self.redis.get(key))
            elif kind == "hash":
                for pair in self.redis.hgetall(key).items():
                    found += pair
            elif kind == "list":
                found += self.redis.lrange(key, 0, -1)
            elif kind == "set":
                found += self.redis.smembers(key)
            elif kind == "zset":
                found += self.redis.zrange(key, 0, -1)
            else:
                pytest.fail(f"a key of an unexpected type in Redis: {key!r} ({kind})")
        return "\n".join(text(value) for value in found)


def text(value: object) -> str:
    """A Redis reply as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@pytest.fixture
def team(fleet: Fleet, redis_url: str, redis_server: RedisServer) -> Iterator[Team]:
    client = redis.Redis.from_url(redis_server.url_with_password)
    made = Team(fleet, redis_url, client)
    try:
        yield made
    finally:
        # Let any fix still waiting on a gate end on the host, then stop what is left.
        for name in fleet.names:
            (fleet.state(name) / "gate").touch()
        for controller in made.controllers:
            controller.cleanup()
        client.close()


def unreachable_url(password: str | None = None) -> str:
    """A Redis URL on loopback where nothing listens (the port was free a moment ago)."""
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{free_port()}/0"


# 1. Two controllers race for one host ----------------------------------------------------


def test_two_controllers_racing_for_one_host_fix_it_once(fleet: Fleet, team: Team) -> None:
    runbook = restart_runbook(fleet, "gated-restart", GATED_FIX)
    inventory = fleet.inventory(hosts=[HOST])
    fleet.break_api(HOST)
    assert fleet.health(HOST) is None  # nothing else answers in its place
    a, b = team.controller("a"), team.controller("b")

    first = a.start(runbook, "-i", inventory)
    wait_until(lambda: first.alive() and team.lock() is not None, "A's lock in Redis")
    wait_until(lambda: first.alive() and len(remediations(fleet)) == 1, "A's fix to start")
    held = team.lock()
    assert held is not None
    assert (held["host"], held["owner"]) == (HOST, owner_of(first.proc.pid))

    second = b.run(runbook, "-i", inventory)

    assert second.rc == 1, json.dumps(second.record, indent=1) + second.stdout + second.stderr
    assert second.record is not None
    assert second.record["run_id"] != held["run_id"]
    locked = second.result(HOST)
    assert locked["status"] == "locked"
    assert locked["error"].startswith(
        f"locked by run {held['run_id']} ({owner_of(first.proc.pid)}) until "
    )
    assert steps(locked) == DETECT_ONLY
    assert team.lock() == held  # B neither took nor released A's lock
    assert len(remediations(fleet)) == 1
    assert fleet.pid(HOST) is None  # A's fix still waits: nobody started the API

    (fleet.state(HOST) / "gate").touch()
    done = first.finish()

    assert done.rc == 0, done.stderr
    assert done.record is not None
    assert done.record["run_id"] == held["run_id"]
    fixed = done.result(HOST)
    assert (fixed["status"], fixed["error"]) == ("fixed", None)
    assert steps(fixed) == FIXED_STEPS
    assert fleet.health(HOST) == {**HEALTHY_API, "host": HOST}
    assert team.lock() is None  # released when A was done
    # Exactly one remediation: one mark on the host, and in the audit one intent per fix step,
    # all A's.
    assert len(remediations(fleet)) == 1
    export = fleet.tmp / "audit.jsonl"
    exported = a.cli("audit", "export", export)
    assert exported.rc == 0, exported.stderr
    intents = [
        (e["run_id"], e["host"], e["step"])
        for e in audit_lines(export)
        if e["kind"] == "intent" and e["phase"] == "remediate"
    ]
    assert intents == [
        (held["run_id"], HOST, "start pg-api"),
        (held["run_id"], HOST, "the API answers again"),
    ]
    # Neither controller kept a lock (or anything else) in its own state directory.
    assert files_under(a.state_dir) == files_under(b.state_dir) == []


# 2. One budget for the whole team --------------------------------------------------------


def test_a_budget_spent_by_one_controller_defers_the_others_fix(fleet: Fleet, team: Team) -> None:
    runbook = restart_runbook(
        fleet, "budget-restart", PLAIN_FIX, policy="max_remediations: {count: 1, per: 1h}"
    )
    inventory = fleet.inventory(hosts=[HOST])
    a, b = team.controller("a"), team.controller("b")
    fleet.break_api(HOST)
    assert fleet.health(HOST) is None

    first = a.run(runbook, "-i", inventory)

    assert first.rc == 0, first.stderr
    assert first.statuses() == {HOST: "fixed"}
    assert steps(first.result(HOST)) == FIXED_STEPS
    assert fleet.health(HOST) == {**HEALTHY_API, "host": HOST}
    budget = f"oorfix:budget:budget-restart:{HOST}"
    assert team.redis.zcard(budget) == 1

    fleet.break_api(HOST)
    second = b.run(runbook, "-i", inventory)

    assert second.rc == 1, second.stderr
    deferred = second.result(HOST)
    assert deferred["status"] == "deferred"
    assert deferred["error"].startswith(
        f"fix deferred: budget spent: 1 remediation of budget-restart on {HOST} in the last 1h "
        "(next allowed at "
    )
    assert deferred["escalation"] == ESCALATION
    assert steps(deferred) == DETECT_ONLY
    assert (fleet.pid(HOST), fleet.health(HOST)) == (None, None)  # the API stays down
    assert len(remediations(fleet)) == 1
    assert team.redis.zcard(budget) == 1  # a refusal spends nothing
    assert team.lock() is None  # the lock taken before the budget was refused is given back
    assert files_under(a.state_dir) == files_under(b.state_dir) == []


# 3. Redis unreachable: fail closed -------------------------------------------------------


def test_an_unreachable_state_server_refuses_fixes_but_not_detection(
    fleet: Fleet, team: Team
) -> None:
    url = unreachable_url()
    controller = team.controller("a", state=url)
    inventory = fleet.inventory(hosts=[HOST])
    fleet.break_api(HOST)

    run = controller.run("payment-api-down", "-i", inventory)

    assert run.rc == 1, run.stderr
    assert "Traceback" not in run.stderr
    locked = run.result(HOST)
    assert locked["status"] == "locked"
    assert locked["error"].startswith(
        f"fix not started without a lock: acquire the lock on {HOST}: Redis {url} failed: "
    )
    # Detection and evidence ran; no remediation did: the API is still down.
    assert [(s["phase"], s["status"]) for s in locked["steps"]] == [
        ("detect", "failed"),
        ("evidence", "passed"),
        ("evidence", "passed"),
    ]
    assert (fleet.pid(HOST), fleet.health(HOST)) == (None, None)
    assert f"the run was not kept in {url}: " in run.stderr
    # No fallback to the state directory: no lock, no audit, no run kept there.
    assert files_under(controller.state_dir) == []

    runbooks = fleet.tmp / "runbooks"
    runbooks.mkdir()
    shutil.copyfile(REPO / "runbooks" / "payment-api-down.yml", runbooks / "payment-api-down.yml")
    diagnosis = controller.cli(
        "diagnose", "-i", inventory, "--runbooks", runbooks,
        "--known-hosts", fleet.lab.sshd.known_hosts, record=True,
    )  # fmt: skip

    assert diagnosis.rc == 1, diagnosis.stderr
    assert "Traceback" not in diagnosis.stderr
    assert diagnosis.statuses() == {HOST: "would_fix"}
    assert "CONFIRMED" in diagnosis.stdout
    assert f"{HOST}: root cause software.service_interruption (payment-api-down" in (
        diagnosis.stdout
    )
    assert (fleet.pid(HOST), fleet.health(HOST)) == (None, None)

    listing = controller.cli("runs")

    assert (listing.rc, listing.stdout) == (3, "")
    assert one_line_error(listing).startswith(f"error: list runs: Redis {url} failed: ")


# 4. History and audit across controllers -------------------------------------------------


def test_runs_reports_and_the_audit_chain_are_shared_by_every_controller(
    fleet: Fleet, team: Team
) -> None:
    a, b = team.controller("a"), team.controller("b")
    fleet.break_api("pg-api-1")
    fleet.break_api("pg-api-2")

    first = a.run("payment-api-down", "-i", fleet.inventory(hosts=["pg-api-1"]))
    second = b.run("payment-api-down", "-i", fleet.inventory(hosts=["pg-api-2"], filename="b.yml"))

    assert (first.rc, second.rc) == (0, 0), first.stderr + second.stderr
    assert first.record is not None
    assert second.record is not None
    assert (first.statuses(), second.statuses()) == ({"pg-api-1": "fixed"}, {"pg-api-2": "fixed"})
    ids = [second.record["run_id"], first.record["run_id"]]  # newest first

    for controller in (a, b):  # either controller lists both runs
        listing = controller.cli("runs")
        assert listing.rc == 0, listing.stderr
        assert table_ids(listing.stdout) == ids
    local = fleet.oorfix("runs", "--state-dir", a.state_dir, record=False)
    assert local.stdout.startswith("no run is stored in ")  # nothing was kept but in Redis

    report = b.cli("report", ids[1])

    assert report.rc == 0, report.stderr
    assert report.stdout.startswith("# Incident report: ")
    assert f"- **Run** `{ids[1]}`" in report.stdout
    assert "| pg-api-1 | payment-api-down |" in report.stdout
    assert ids[0] not in report.stdout

    entries = team.audit()
    # An intent and a result for each of the two fix steps of each run, in one chain.
    assert len(entries) == 8
    assert [e["seq"] for e in entries] == list(range(1, 9))
    assert sorted({e["run_id"] for e in entries}) == sorted(ids)
    verified = a.cli("audit", "verify")

    assert verified.rc == 0, verified.stderr
    assert verified.stdout == f"audit log {team.state} key {AUDIT_KEY}: 8 entries, chain intact\n"

    export = fleet.tmp / "exported-audit.log"
    exported = b.cli("audit", "export", export)

    assert exported.rc == 0, exported.stderr
    assert exported.stderr == f"exported 8 entries from {team.state} key {AUDIT_KEY}\n"
    assert audit_lines(export) == entries
    from_file = fleet.oorfix("audit", "verify", "--file", export, record=False)
    assert (from_file.rc, from_file.stdout) == (0, f"audit log {export}: 8 entries, chain intact\n")


# 5. The Redis password never shows -------------------------------------------------------


@pytest.mark.parametrize("source", ["env", "url"])
def test_the_state_password_never_shows_in_outputs_records_or_reports(
    fleet: Fleet,
    team: Team,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    password = redis_server.password
    if source == "url":  # the URL is then the only place the password comes from
        monkeypatch.delenv("OORFIX_STATE_PASSWORD")
        state = redis_server.url_with_password
        shown = f"redis://:***@127.0.0.1:{redis_server.port}/0"
        dead = unreachable_url(password)
        dead_shown = dead.replace(password, "***")
    else:
        state = shown = redis_server.url
        dead = dead_shown = unreachable_url()
    assert password not in shown
    controller = team.controller("a", state=state)
    offline = team.controller("b", state=dead)
    inventory = fleet.inventory(hosts=[HOST])
    fleet.break_api(HOST)
    outputs: dict[str, str] = {}

    def keep(name: str, run: CliRun) -> CliRun:
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = run.stdout, run.stderr
        if run.record is not None:
            outputs[f"{name} record"] = json.dumps(run.record)
        return run

    fixed = keep("run", controller.run("payment-api-down", "-i", inventory, "-vv"))
    assert fixed.rc == 0, fixed.stderr
    assert fixed.statuses() == {HOST: "fixed"}
    assert fixed.record is not None
    run_id = fixed.record["run_id"]

    listing = keep("runs", controller.cli("runs"))
    assert (listing.rc, table_ids(listing.stdout)) == (0, [run_id]), listing.stderr
    report = keep("report", controller.cli("report", run_id))
    assert report.rc == 0, report.stderr
    html_path = fleet.tmp / "report.html"
    html = keep("html report", controller.cli("report", run_id, "-o", html_path))
    assert html.rc == 0, html.stderr
    outputs["html file"] = html_path.read_text()
    verified = keep("audit verify", controller.cli("audit", "verify"))
    assert (verified.rc, verified.stdout) == (
        0,
        f"audit log {shown} key {AUDIT_KEY}: 4 entries, chain intact\n",
    )
    export = fleet.tmp / "audit.log"
    exported = keep("audit export", controller.cli("audit", "export", export))
    assert exported.rc == 0, exported.stderr
    assert exported.stderr == f"exported 4 entries from {shown} key {AUDIT_KEY}\n"
    outputs["exported file"] = export.read_text()
    from_file = keep("verify file", fleet.oorfix("audit", "verify", "--file", export, record=False))
    assert from_file.rc == 0, from_file.stderr

    # The server cannot be reached: the refusal and the errors name it, masked.
    fleet.break_api(HOST)
    refused = keep("offline run", offline.run("payment-api-down", "-i", inventory))
    assert refused.rc == 1, refused.stderr
    assert refused.result(HOST)["status"] == "locked"
    assert refused.result(HOST)["error"].startswith(
        f"fix not started without a lock: acquire the lock on {HOST}: Redis {dead_shown} failed: "
    )
    assert f"the run was not kept in {dead_shown}: " in refused.stderr
    for command in (("runs",), ("report", run_id), ("audit", "verify")):
        failed = keep(" ".join(("offline", *command)), offline.cli(*command))
        assert failed.rc == 3, failed.stderr
        assert one_line_error(failed).startswith("error: ")
        assert f"Redis {dead_shown} failed: " in failed.stderr

    outputs["redis"] = team.everything()
    outputs["state dirs"] = "\n".join(
        p.read_text(errors="replace")
        for p in files_under(controller.state_dir) + files_under(offline.state_dir)
    )
    assert run_id in outputs["redis"]  # the search saw the run kept there
    leaks = {name: password in output for name, output in outputs.items()}
    assert leaks == dict.fromkeys(leaks, False)
    if source == "url":
        masked = [name for name, output in outputs.items() if "redis://:***@127.0.0.1:" in output]
        assert {"audit verify stdout", "audit export stderr", "offline run record"} <= set(masked)
