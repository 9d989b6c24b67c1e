"""Runs spread over Celery workers end to end: ``--workers`` with real ``oorfix worker``s.

Every controller and every worker here is a separate ``python -m oorfix`` process; one real
redis-server is the broker, the result backend and the team's state (``--state``); the hosts
are the sshd lab's, broken by stopping their payment API. Workers start with ``--chdir`` the
repository (the controllers' cwd), so a runbook named relatively is the same file on both
sides, unless a test gives a worker other files on purpose.

Nothing waits by sleeping: each step waits for the event that says it happened (a worker's
``ready`` line, the mark a fix step leaves on its host, a key in Redis, a process exit),
bounded only as a safety net. Every worker started is killed and reaped when its test ends.
"""

from __future__ import annotations

import base64
import dataclasses
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import redis

from oorfix.distributed.collector import NO_WORKER
from oorfix.lab.redisserver import RedisServer
from tests.integration.conftest import CLI_TIMEOUT, REPO, CliRun, Fleet
from tests.integration.test_diagnose import REPO_RUNBOOKS, matrix, reset_hosts
from tests.integration.test_team_state import GATED_FIX, PLAIN_FIX
from tests.integration.test_team_state import RESTART as TEAM_RESTART

pytestmark = pytest.mark.integration

WAIT = 60.0  # a bound on waiting for another process' event; it comes within a second or two
KEY = "integration-key-shared-by-controller-and-workers"
OTHER_KEY = "a-key-of-another-site-entirely!!"
HEARTBEAT = "0.3"  # seconds between a running task's liveness refreshes (TTL: 3 of them)
WORKER_ENV = (  # what the tests set themselves, whatever the environment says
    "OORFIX_WORKERS",
    "OORFIX_WORKERS_PASSWORD",
    "OORFIX_WORKER_KEY",
    "OORFIX_WORKER_HEARTBEAT",
    "OORFIX_WORKER_MAX_AGE",
    "OORFIX_STATE",
    "OORFIX_STATE_PASSWORD",
)
AUDIT_KEY = "oorfix:audit"
TASK_PREFIX = "oorfix:task:"
META_PREFIX = "celery-task-meta-"
UNKNOWN = "what it changed is unknown (see the audit log); not retried"
KEY_MISSING = (
    "error: runs on workers need OORFIX_WORKER_KEY: a secret of at least 16 bytes shared "
    "by controllers and workers (it signs every task)"
)
HEALTHY_API = {"status": "ok", "version": "2.4.1"}

# The runbook and fix commands of the team-state tests, without a budget: FIX is the command
# of the step that starts pg-api.
RESTART = TEAM_RESTART.replace("    POLICY\n", "")
HEALTHY_STEPS = [("detect", "health endpoint answers", "passed")]
RESTART_STEP = "service pg-api restarted"


def wait_step(fleet: Fleet, host: str) -> str:
    """The name payment-api-down's wait_for step has on ``host``."""
    return f"wait for http://{fleet.address(host)}:8080/health started"


def fixed_steps(fleet: Fleet, host: str) -> list[tuple[str, str, str]]:
    """What payment-api-down does on a host whose API is down, from detect to verify."""
    return [
        ("detect", "health endpoint answers", "failed"),
        ("evidence", "service state", "passed"),
        ("evidence", "recent service log", "passed"),
        ("remediate", RESTART_STEP, "passed"),
        ("remediate", wait_step(fleet, host), "passed"),
        ("verify", "health endpoint answers", "passed"),
    ]


# -- helpers ---------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def text(value: object) -> str:
    """A Redis reply as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def steps(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The steps of a host result as (phase, name, status)."""
    return [(s["phase"], s["name"], s["status"]) for s in result["steps"]]


def by_job(run: CliRun) -> dict[tuple[str, str], dict[str, Any]]:
    """(host, runbook) -> the record's one result of that job."""
    assert run.record is not None, run.stderr
    results: list[dict[str, Any]] = run.record["results"]
    found = {(r["host"], r["runbook"]): r for r in results}
    assert len(found) == len(results), results
    return found


def restart_runbook(fleet: Fleet, name: str, fix: str) -> Path:
    return fleet.runbook(RESTART.replace("NAME", name).replace("FIX", fix), f"{name}.yml")


def remediations(fleet: Fleet, name: str) -> list[str]:
    """The marks the fix steps left on the host, one per remediation that started."""
    return sorted(p.name for p in fleet.state(name).glob("remediating-*"))


def owner_of(pid: int) -> str:
    """The actor oorfix writes in the audit for the process ``pid`` on this machine."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {pid}"


def table_ids(stdout: str) -> list[str]:
    """The first column of a printed table's body rows (``oorfix runs``)."""
    rows = [line.strip("│").split("│") for line in stdout.splitlines() if line.startswith("│")]
    return [cells[0].strip() for cells in rows if cells[0].strip()]


def error_lines(run: CliRun) -> list[str]:
    """What a command printed on stderr, line by line; never a traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    return run.stderr.splitlines()


def read_record(path: Path) -> dict[str, Any] | None:
    return dict(json.loads(path.read_text())) if path.exists() else None


class Worker:
    """One ``oorfix worker`` process and its log (stdout and stderr together)."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path, out: IO[bytes]):
        self.name = name
        self.proc = proc
        self.log = log
        self._out = out

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        """Whether it still runs; fails the test at once if it ended (with its log)."""
        if self.proc.poll() is None:
            return True
        pytest.fail(f"worker {self.name} ended (exit {self.proc.returncode}):\n{self.output()}")

    def wait_ready(self) -> None:
        """Until Celery says the worker consumes (its ``NAME ready.`` log line)."""
        wait_until(lambda: self.running() and f"{self.name} ready." in self.output(),
                   f"worker {self.name} to be ready")  # fmt: skip

    def kill(self) -> None:
        """SIGKILL, and reap it (harmless if it already ended)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._out.close()


class Started:
    """A controller started in the background, and the record it will write."""

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
        record = read_record(self.json_path)
        return CliRun(self.args, self.proc.returncode, stdout, stderr, seconds, record)


class Site:
    """Workers, controllers and the Redis they share, seen from a test."""

    def __init__(self, fleet: Fleet, server: RedisServer, client: redis.Redis) -> None:
        self.fleet = fleet
        self.server = server
        self.redis = client
        self.url = server.url  # the password comes from the environment
        self.state_dir = fleet.tmp / "state"
        self.workers: list[Worker] = []
        self.started: list[Started] = []

    def env(self, key: str | None = KEY) -> dict[str, str]:
        """The environment of a worker or controller: Redis passwords, the key, a fast beat."""
        env = {k: v for k, v in os.environ.items() if k not in WORKER_ENV}
        env.update(
            NO_COLOR="1",
            COLUMNS="200",
            PYTHONUNBUFFERED="1",
            OORFIX_WORKERS_PASSWORD=self.server.password,
            OORFIX_STATE_PASSWORD=self.server.password,
            OORFIX_WORKER_HEARTBEAT=HEARTBEAT,
        )
        if key is not None:
            env["OORFIX_WORKER_KEY"] = key
        return env

    def worker(self, name: str, key: str = KEY, chdir: Path = REPO) -> Worker:
        """Start ``oorfix worker`` and wait until it takes tasks."""
        log = self.fleet.tmp / f"worker-{name}.log"
        out = log.open("wb")
        argv = ["worker", "--workers", self.url, "-c", "4", "-n", name, "--chdir", str(chdir)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "oorfix", *argv, "--loglevel", "INFO"],
            cwd=REPO,
            env=self.env(key),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C at the terminal is for pytest, not for it
        )
        started = Worker(name, proc, log, out)
        self.workers.append(started)
        started.wait_ready()
        return started

    def idle_worker(self, name: str) -> Worker:
        """A Celery worker of the same broker that answers pings but takes no oorfix task
        (it consumes another queue): to the controller, a worker busy with other hosts."""
        log = self.fleet.tmp / f"worker-{name}.log"
        out = log.open("wb")
        code = (
            "import sys; from oorfix.distributed.celeryapp import make_app; "
            "make_app(sys.argv[1]).worker_main(['worker', '-Q', 'idle', '-c', '1', '-n', "
            "sys.argv[2], '--loglevel', 'INFO'])"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code, self.url, name],
            cwd=REPO,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = Worker(name, proc, log, out)
        self.workers.append(started)
        started.wait_ready()
        return started

    def argv(self, command: str, *args: str | Path, workers: bool = True) -> list[str]:
        """``command ARGS`` trusting the lab's host keys, on the workers, with a record."""
        argv = [command, *(str(a) for a in args), "--known-hosts"]
        argv += [str(self.fleet.lab.sshd.known_hosts), "--state-dir", str(self.state_dir)]
        return argv + (["--workers", self.url] if workers else [])

    def oorfix(
        self, argv: list[str], cwd: Path = REPO, key: str | None = KEY, record: bool = True
    ) -> CliRun:
        """``python -m oorfix ARGV`` to completion, and the record it wrote."""
        json_path = self.fleet.tmp / f"record-{uuid.uuid4().hex}.json"
        if record:
            argv = [*argv, "--json", str(json_path)]
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "oorfix", *argv],
            cwd=cwd,
            env=self.env(key),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        seconds = time.monotonic() - started
        return CliRun(
            tuple(argv), proc.returncode, proc.stdout, proc.stderr, seconds, read_record(json_path)
        )

    def start(self, argv: list[str]) -> Started:
        """``python -m oorfix ARGV`` in the background, with a record."""
        json_path = self.fleet.tmp / f"record-{uuid.uuid4().hex}.json"
        argv = [*argv, "--json", str(json_path)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "oorfix", *argv],
            cwd=REPO,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = Started(proc, tuple(argv), json_path)
        self.started.append(started)
        return started

    def tasks(self, kind: str) -> dict[str, str]:
        """Task id -> value of each ``oorfix:task:<id>:<kind>`` key (claimed, alive)."""
        found: dict[str, str] = {}
        for key in self.redis.scan_iter(f"{TASK_PREFIX}*:{kind}"):
            value = self.redis.get(key)
            if value is not None:  # not expired since the scan
                found[text(key)[len(TASK_PREFIX) : -len(kind) - 1]] = text(value)
        return found

    def metas(self) -> set[str]:
        """The ids of the tasks whose Celery state is stored (the controller deletes those it
        has read)."""
        return {text(key)[len(META_PREFIX) :] for key in self.redis.scan_iter(f"{META_PREFIX}*")}

    def audit(self) -> list[dict[str, Any]]:
        """The audit chain as stored in Redis."""
        return [json.loads(raw) for raw in self.redis.lrange(AUDIT_KEY, 0, -1)]

    def intents(self, host: str) -> list[tuple[str, str]]:
        """(actor, step) of each intent the audit holds for ``host``."""
        return [(e["actor"], e["step"]) for e in self.audit()
                if e["kind"] == "intent" and e["host"] == host]  # fmt: skip

    def only_task_left(self, controller: Started, hosts: int) -> str:
        """Once every host's task started and all but one were answered: that one's id."""

        def one_left() -> bool:
            waiting = self.metas()
            return (
                controller.alive()
                and len(self.tasks("claimed")) == hosts
                and len(waiting) == 1
                and waiting <= set(self.tasks("alive"))
            )

        wait_until(one_left, "every task but the held one to be answered")
        (task_id,) = self.metas()
        return task_id

    def cleanup(self) -> None:
        """Let any fix held by a gate end, let controllers end, then kill every worker."""
        for name in self.fleet.names:
            (self.fleet.state(name) / "gate").touch()
        try:
            for started in self.started:
                try:
                    started.proc.communicate(timeout=CLI_TIMEOUT)
                except subprocess.TimeoutExpired:
                    started.proc.kill()
                    started.proc.communicate()
        finally:
            for worker in self.workers:
                worker.kill()


@pytest.fixture
def site(fleet: Fleet, redis_url: str, redis_server: RedisServer) -> Iterator[Site]:
    client = redis.Redis.from_url(redis_server.url_with_password)
    made = Site(fleet, redis_server, client)
    try:
        yield made
    finally:
        made.cleanup()
        client.close()


def root_causes(run: CliRun) -> dict[str, list[str | None]]:
    """Host -> the root cause of each incident the record's diagnosis found there."""
    assert run.record is not None, run.stderr
    hosts: list[dict[str, Any]] = run.record["diagnosis"]["hosts"]
    return {h["host"]: [i["root_cause"] for i in h["incidents"]] for h in hosts}


def copy_runbooks(fleet: Fleet) -> Path:
    """The repository runbooks that fit the lab (test_diagnose's), in the test's tmp dir."""
    runbooks = fleet.tmp / "runbooks"
    runbooks.mkdir()
    for name in REPO_RUNBOOKS:
        shutil.copyfile(REPO / "runbooks" / name, runbooks / name)
    return runbooks


# 1. diagnose on workers is the same diagnosis ----------------------------------------------


def test_a_diagnosis_on_two_workers_finds_what_a_local_one_finds(fleet: Fleet, site: Site) -> None:
    reset_hosts(fleet)
    runbooks = copy_runbooks(fleet)
    inventory = fleet.inventory()
    workers = {site.worker("w1@test").name, site.worker("w2@test").name}
    fleet.break_api("pg-api-2")
    pids = {name: fleet.pid(name) for name in fleet.names}
    args = ("-i", inventory, "--runbooks", runbooks)

    local = site.oorfix(site.argv("diagnose", *args, workers=False))
    remote = site.oorfix(site.argv("diagnose", *args))

    assert local.rc == 1, local.stdout + local.stderr
    assert remote.rc == 1, remote.stdout + remote.stderr
    assert "Traceback" not in remote.stderr
    assert local.record is not None
    assert remote.record is not None
    # Every host x runbook has its result, with the same status and the same checks.
    local_jobs, remote_jobs = by_job(local), by_job(remote)
    assert sorted(remote_jobs) == sorted(local_jobs)
    assert {r[0] for r in remote_jobs} == set(fleet.names)
    assert {job: r["status"] for job, r in remote_jobs.items()} == {
        job: r["status"] for job, r in local_jobs.items()
    }
    assert {job: steps(r) for job, r in remote_jobs.items()} == {
        job: steps(r) for job, r in local_jobs.items()
    }
    assert {job: r["error"] for job, r in remote_jobs.items()} == {
        job: r["error"] for job, r in local_jobs.items()
    }
    assert remote.record["summary"] == local.record["summary"]
    # The same fault matrix, the same incidents and root causes: the crash on pg-api-2.
    assert matrix(remote.stdout) == matrix(local.stdout)
    columns, rows = matrix(remote.stdout)
    assert columns == fleet.names
    assert {fault for fault, cells in rows.items() if "CONFIRMED" in cells} == {
        "software.crash",
        "software.service_interruption",
    }
    assert all(cells[0] == cells[2] == "ok" for cells in rows.values()), rows
    assert remote.record["diagnosis"] == local.record["diagnosis"]
    assert root_causes(remote) == root_causes(local)
    assert root_causes(remote) == {"pg-api-1": [], "pg-api-2": ["software.crash"], "pg-api-3": []}
    root = (
        "pg-api-2: root cause software.crash (payment-api-crashed, would_fix); "
        "explains software.service_interruption"
    )
    assert root in local.stdout
    assert root in remote.stdout
    # The hosts ran on the workers: one task per host, each claimed by one of them.
    claims = site.tasks("claimed")
    assert len(claims) == len(fleet.names)
    assert set(claims.values()) <= workers
    assert {task.rpartition("-")[0] for task in claims} == {remote.record["run_id"]}
    # A diagnosis changes nothing.
    assert {name: fleet.pid(name) for name in fleet.names} == pids
    assert site.audit() == []


# 2. A fix on workers, with the team state in Redis -----------------------------------------


def test_a_fix_on_workers_repairs_the_host_and_the_worker_writes_the_audit(
    fleet: Fleet, site: Site
) -> None:
    workers = [site.worker("w1@test"), site.worker("w2@test")]
    fleet.break_api("pg-api-2")
    assert fleet.health("pg-api-2") is None
    state = ("--state", site.url)

    run = site.oorfix(site.argv("run", "payment-api-down", "-i", fleet.inventory(), *state))

    assert run.rc == 0, run.stdout + run.stderr
    assert run.record is not None
    run_id = run.record["run_id"]
    assert run.statuses() == {"pg-api-1": "healthy", "pg-api-2": "fixed", "pg-api-3": "healthy"}
    fixed = run.result("pg-api-2")
    assert fixed["error"] is None
    assert steps(fixed) == fixed_steps(fleet, "pg-api-2")
    for name in ("pg-api-1", "pg-api-3"):
        assert steps(run.result(name)) == HEALTHY_STEPS
    assert fleet.health("pg-api-2") == {**HEALTHY_API, "host": "pg-api-2"}
    # One task per host, run by the workers; the lock was taken and given back there.
    claims = site.tasks("claimed")
    assert len(claims) == 3
    assert set(claims.values()) <= {w.name for w in workers}
    assert site.redis.exists("oorfix:lock:pg-api-2") == 0
    # The audit: an intent and a result per fix step, written by a worker, not the controller.
    entries = site.audit()
    assert [(e["kind"], e["host"], e["step"]) for e in entries] == [
        ("intent", "pg-api-2", RESTART_STEP),
        ("result", "pg-api-2", RESTART_STEP),
        ("intent", "pg-api-2", wait_step(fleet, "pg-api-2")),
        ("result", "pg-api-2", wait_step(fleet, "pg-api-2")),
    ]
    assert {e["run_id"] for e in entries} == {run_id}
    (actor,) = {e["actor"] for e in entries}
    assert actor in {owner_of(w.pid) for w in workers}

    verified = site.oorfix(["audit", "verify", *state], record=False)

    assert (verified.rc, verified.stdout) == (
        0,
        f"audit log {site.url} key {AUDIT_KEY}: 4 entries, chain intact\n",
    ), verified.stderr

    listing = site.oorfix(["runs", *state], record=False)

    assert listing.rc == 0, listing.stderr
    assert table_ids(listing.stdout) == [run_id]


# 3. A worker killed mid-job: its host is lost, nothing is run twice -----------------------


def test_a_worker_killed_mid_fix_loses_only_its_host_and_the_fix_is_never_run_twice(
    fleet: Fleet, site: Site
) -> None:
    from kombu.connection import Connection

    workers = {w.name: w for w in (site.worker("w1@test"), site.worker("w2@test"))}
    host = "pg-api-2"
    runbook = restart_runbook(fleet, "gated-restart", GATED_FIX)
    fleet.break_api(host)
    controller = site.start(site.argv("run", runbook, "-i", fleet.inventory(), "--state", site.url))

    wait_until(lambda: controller.alive() and len(remediations(fleet, host)) == 1,
               f"the fix on {host} to start")  # fmt: skip
    task_id = site.only_task_left(controller, hosts=3)
    doomed = workers[site.tasks("alive")[task_id]]
    survivor = next(w for w in workers.values() if w is not doomed)
    doomed.kill()
    run = controller.finish()

    assert run.rc == 1, run.stdout + run.stderr
    assert run.record is not None
    assert run.record["run_id"] == task_id.rpartition("-")[0]
    lost = run.result(host)
    assert lost["status"] == "error"
    assert lost["error"].startswith("worker lost: ")
    assert lost["error"].endswith(UNKNOWN)
    assert lost["steps"] == []
    for name in ("pg-api-1", "pg-api-3"):
        assert run.result(name)["status"] == "healthy"
        assert steps(run.result(name)) == HEALTHY_STEPS
    assert site.tasks("claimed")[task_id] == doomed.name
    assert site.intents(host) == [(owner_of(doomed.pid), "start pg-api")]

    # Redis gives the task again, as it does once the broker's visibility timeout passes
    # (kombu's own restore of an unacknowledged message): the survivor must not run it.
    unacked = {text(k): json.loads(v) for k, v in site.redis.hgetall("unacked").items()}
    (tag,) = unacked
    assert unacked[tag][0]["headers"]["id"] == task_id
    with Connection(site.server.url_with_password) as connection:  # type: ignore[no-untyped-call]
        connection.default_channel.qos.restore_by_tag(tag, leftmost=True)
    wait_until(lambda: survivor.running()
               and f"task {task_id} delivered again: not run twice" in survivor.output(),
               "the survivor to drop the task given again")  # fmt: skip
    wait_until(lambda: site.redis.hlen("unacked") == 0, "the dropped task to be acknowledged")

    gate = fleet.state(host) / "gate"
    gate.touch()  # the dead worker's step may end now, and must end before the next test
    wait_until(lambda: subprocess.run(["pgrep", "-f", str(gate)], capture_output=True,
                                      check=False).returncode == 1,
               "the dead worker's step to end")  # fmt: skip
    assert len(remediations(fleet, host)) == 1
    assert site.intents(host) == [(owner_of(doomed.pid), "start pg-api")]
    assert site.tasks("claimed")[task_id] == doomed.name
    assert site.redis.llen("oorfix") == 0
    # The second delivery stored no result: the state is still the first start's.
    meta = site.redis.get(f"{META_PREFIX}{task_id}")
    assert meta is not None
    assert json.loads(meta)["status"] == "STARTED"


# 4. A task signed with another key is refused ----------------------------------------------


def test_a_worker_with_another_key_refuses_every_task_and_touches_no_host(
    fleet: Fleet, site: Site
) -> None:
    site.worker("stranger@test", key=OTHER_KEY)
    fleet.break_api("pg-api-2")
    snapshots = {name: fleet.snapshot(name) for name in fleet.names}
    logins = fleet.logins()

    run = site.oorfix(
        site.argv("run", "payment-api-down", "-i", fleet.inventory(), "--state", site.url)
    )

    assert run.rc == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.statuses() == dict.fromkeys(fleet.names, "error")
    for name in fleet.names:
        refused = run.result(name)
        # The stranger's refusal is signed with its own key: the controller cannot trust it.
        assert refused["error"].startswith("the result of task ")
        assert refused["error"].endswith(
            " is not signed with this controller's OORFIX_WORKER_KEY (a worker with another "
            "key, or written by someone else): not trusted"
        )
        assert refused["steps"] == []
    # Nothing ran: no login, no change on any host, no claim, no lock, no audit.
    assert fleet.logins() == logins
    assert {name: fleet.snapshot(name) for name in fleet.names} == snapshots
    assert fleet.health("pg-api-2") is None
    assert site.tasks("claimed") == {}
    assert list(site.redis.scan_iter("oorfix:lock:*")) == []
    assert site.audit() == []


# 5. A signed task copied from the broker and sent again is refused -------------------------


def test_a_signed_task_copied_from_the_broker_and_sent_again_is_refused_and_changes_nothing(
    fleet: Fleet, site: Site
) -> None:
    from oorfix.distributed.celeryapp import TASK, alive_key, make_app
    from oorfix.distributed.payload import HostTask, open_reply

    worker = site.worker("w1@test")
    host = "pg-api-2"
    runbook = restart_runbook(fleet, "gated-restart", GATED_FIX)
    fleet.break_api(host)
    controller = site.start(
        site.argv("run", runbook, "-i", fleet.inventory(hosts=[host]), "--state", site.url)
    )
    wait_until(lambda: controller.alive() and len(remediations(fleet, host)) == 1,
               f"the fix on {host} to start")  # fmt: skip

    # Whoever can read the broker copies the task while it runs: the message is unacknowledged
    # (a Celery protocol 2 body, base64: [args, kwargs, embed]; the signed task is args[0]).
    (raw,) = site.redis.hvals("unacked")
    message = json.loads(raw)[0]
    task_id = message["headers"]["id"]
    assert message["properties"]["body_encoding"] == "base64"
    (signed,), _, _ = json.loads(base64.b64decode(message["body"]))
    copied = HostTask.verify(signed, KEY.encode())
    assert (copied.task_id, copied.host) == (task_id, host)
    (fleet.state(host) / "gate").touch()
    run = controller.finish()

    assert run.rc == 0, run.stdout + run.stderr
    assert run.statuses() == {host: "fixed"}
    assert len(remediations(fleet, host)) == 1
    assert site.tasks("claimed") == {task_id: worker.name}
    audit = site.audit()
    assert {(e["host"], e["run_id"]) for e in audit} == {(host, task_id.rpartition("-")[0])}

    # The host goes down again, so a copy that ran would fix it again (its gate stays open).
    # The very same signed text under a new id, and a task signed with the right key for
    # its id but issued two hours ago: both are refused before any claim or login.
    fleet.break_api(host)
    snapshot = fleet.snapshot(host)
    logins = fleet.logins()
    replay_id, stale_id = (f"replay-{uuid.uuid4().hex}" for _ in range(2))
    stale = dataclasses.replace(copied, task_id=stale_id, issued=time.time() - 7200)
    app = make_app(site.server.url_with_password)
    try:
        app.send_task(TASK, args=[signed], task_id=replay_id)
        app.send_task(TASK, args=[stale.sign(KEY.encode())], task_id=stale_id)
    finally:
        app.close()

    def answered(task: str) -> bool:
        meta = site.redis.get(f"{META_PREFIX}{task}")
        return meta is not None and json.loads(meta)["status"] == "SUCCESS"

    wait_until(lambda: worker.running() and answered(replay_id) and answered(stale_id),
               "the worker's answers to the copies")  # fmt: skip
    replies = {}
    for task in (replay_id, stale_id):
        meta = site.redis.get(f"{META_PREFIX}{task}")
        assert meta is not None
        replies[task] = open_reply(KEY.encode(), task, json.loads(meta)["result"])
    assert replies[replay_id] == {
        "refused": f"delivered as {replay_id}, signed for {task_id}: a copy sent again"
    }
    assert set(replies[stale_id]) == {"refused"}
    assert re.fullmatch(
        r"issued 720\ds ago, more than OORFIX_WORKER_MAX_AGE=3600: "
        "replayed, or left queued by a controller that stopped",
        replies[stale_id]["refused"],
    ), replies[stale_id]
    # The log line and the acknowledgement come around the stored answer, not before it.
    logged = [f"task {task} refused: {reply['refused']}" for task, reply in replies.items()]
    wait_until(lambda: all(line in worker.output() for line in logged)
               and (site.redis.llen("oorfix"), site.redis.hlen("unacked")) == (0, 0),
               "the refusals to be logged and acknowledged")  # fmt: skip
    # Nothing ran: no login, no change on the host, no claim, no lock, no audit entry.
    assert fleet.logins() == logins
    assert fleet.snapshot(host) == snapshot
    assert len(remediations(fleet, host)) == 1
    assert fleet.health(host) is None
    assert site.tasks("claimed") == {task_id: worker.name}
    assert site.redis.exists(alive_key(replay_id), alive_key(stale_id)) == 0
    assert list(site.redis.scan_iter("oorfix:lock:*")) == []
    assert site.audit() == audit


# 6. Tasks no worker is left to start end, and no worker starts them later ------------------


def test_tasks_left_queued_when_every_worker_is_gone_end_and_never_run_later(
    fleet: Fleet, site: Site
) -> None:
    busy = site.idle_worker("busy@test")
    for name in fleet.names:
        fleet.break_api(name)
    controller = site.start(site.argv("run", "payment-api-down", "-i", fleet.inventory(),
                                      "--state", site.url))  # fmt: skip
    wait_until(lambda: controller.alive() and site.redis.llen("oorfix") == len(fleet.names),
               "every host's task to wait in the queue")  # fmt: skip
    busy.kill()  # the last worker goes: nobody will start the queued tasks
    run = controller.finish()

    assert run.rc == 1, run.stdout + run.stderr
    assert run.record is not None
    for name in fleet.names:
        result = run.result(name)
        assert result["status"] == "error"
        assert result["error"] == NO_WORKER
        assert result["steps"] == []
    task_ids = [text(k)[len(TASK_PREFIX) : -len(":cancelled")]
                for k in site.redis.scan_iter(f"{TASK_PREFIX}*:cancelled")]  # fmt: skip
    assert len(task_ids) == len(fleet.names)

    # A worker that comes up later gets the queued tasks, and starts none of them.
    late = site.worker("late@test")
    wait_until(lambda: late.running() and site.redis.llen("oorfix") == 0
               and site.redis.hlen("unacked") == 0,
               "the late worker to take the queue")  # fmt: skip
    assert set(site.tasks("claimed")) == set(task_ids)
    assert site.tasks("alive") == {}
    for name in fleet.names:
        assert remediations(fleet, name) == []
        assert fleet.health(name) is None
    assert site.audit() == []


# 7. A worker that plans otherwise is refused -----------------------------------------------


def test_a_worker_whose_runbook_differs_refuses_to_run_the_controllers_plan(
    fleet: Fleet, site: Site
) -> None:
    here, there = fleet.tmp / "controller", fleet.tmp / "worker"
    for side, fix in ((here, PLAIN_FIX), (there, f"echo not the same fix; {PLAIN_FIX}")):
        (side / "runbooks").mkdir(parents=True)
        text_ = RESTART.replace("NAME", "restart").replace("FIX", fix)
        (side / "runbooks" / "restart.yml").write_text(textwrap.dedent(text_).lstrip())
    worker = site.worker("other@test", chdir=there)
    fleet.break_api("pg-api-2")
    snapshots = {name: fleet.snapshot(name) for name in fleet.names}
    logins = fleet.logins()
    inventory = fleet.inventory()

    # The same relative name on both sides: runbooks/restart.yml of each one's cwd.
    run = site.oorfix(site.argv("run", "restart", "-i", inventory, "--state", site.url), cwd=here)

    assert run.rc == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.statuses() == dict.fromkeys(fleet.names, "error")
    for name in fleet.names:
        refused = run.result(name)
        assert refused["error"] == (
            f"worker {worker.name}: its plan for {name} differs from the controller's "
            "(are its runbooks, inventory and -e files the same?)"
        )
        assert refused["steps"] == []
    assert fleet.logins() == logins
    assert {name: fleet.snapshot(name) for name in fleet.names} == snapshots
    assert remediations(fleet, "pg-api-2") == []
    assert len(site.tasks("claimed")) == 3
    assert list(site.redis.scan_iter("oorfix:lock:*")) == []
    assert site.audit() == []


# 8. Options that cannot work on workers: exit 2, said plainly ------------------------------


@pytest.mark.parametrize(
    ("case", "key", "message"),
    [
        ("fix", None, KEY_MISSING),
        ("fix", "too-short", KEY_MISSING),
        ("diagnose", None, KEY_MISSING),
        ("worker", None, KEY_MISSING),
        (
            "fix without state",
            KEY,
            "error: a fix on workers needs --state redis://…: locks, budgets and the audit "
            "must be shared by every worker",
        ),
        (
            "fix with a state dir",
            KEY,
            "error: a fix on workers needs --state redis://…: locks, budgets and the audit "
            "must be shared by every worker",
        ),
        (
            "accept new host keys",
            KEY,
            "error: --accept-new-host-keys cannot be used with --workers: a key a worker "
            "trusted would not be known to the others",
        ),
    ],
)
def test_options_that_cannot_work_on_workers_exit_2_before_any_host_is_contacted(
    fleet: Fleet, site: Site, case: str, key: str | None, message: str
) -> None:
    inventory = fleet.inventory()
    state = ("--state", site.url)
    argv = {
        "fix": site.argv("run", "payment-api-down", "-i", inventory, *state),
        "diagnose": site.argv("diagnose", "-i", inventory, "--runbooks", copy_runbooks(fleet)),
        "worker": ["worker", "--workers", site.url, "-n", "never@test"],
        "fix without state": site.argv("run", "payment-api-down", "-i", inventory),
        "fix with a state dir": site.argv(
            "run", "payment-api-down", "-i", inventory, "--state", fleet.tmp / "shared"
        ),
        "accept new host keys": site.argv(
            "run", "payment-api-down", "-i", inventory, "--dry-run", "--accept-new-host-keys"
        ),
    }[case]
    logins = fleet.logins()

    run = site.oorfix(argv, key=key, record=case != "worker")

    assert run.rc == 2, run.stdout + run.stderr
    assert error_lines(run) == [message]
    assert run.record is None
    assert fleet.logins() == logins
    assert site.redis.dbsize() == 0  # neither a task nor a worker ever reached Redis


# 9. Ctrl-C on the controller stops the workers' jobs at their next step --------------------


def test_ctrl_c_on_the_controller_stops_the_job_on_its_worker_at_the_next_step(
    fleet: Fleet, site: Site
) -> None:
    site.worker("w1@test")
    site.worker("w2@test")
    host = "pg-api-2"
    runbook = restart_runbook(fleet, "gated-restart", GATED_FIX)
    fleet.break_api(host)
    controller = site.start(site.argv("run", runbook, "-i", fleet.inventory(), "--state", site.url))
    wait_until(lambda: controller.alive() and len(remediations(fleet, host)) == 1,
               f"the fix on {host} to start")  # fmt: skip
    task_id = site.only_task_left(controller, hosts=3)
    run_id = task_id.rpartition("-")[0]

    controller.proc.send_signal(signal.SIGINT)
    wait_until(lambda: controller.alive() and site.redis.exists(f"oorfix:stop:{run_id}") == 1,
               "the controller's stop mark in Redis")  # fmt: skip
    (fleet.state(host) / "gate").touch()
    run = controller.finish()

    assert run.rc == 130, run.stdout + run.stderr
    assert "SIGINT: finishing running steps" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.record is not None
    assert (run.record["run_id"], run.record["exit_code"]) == (run_id, 130)
    stopped = run.result(host)
    assert stopped["status"] == "error"
    assert stopped["error"] == (
        "interrupted by the operator after remediate; no further step was run"
    )
    # The step running when the stop came finished; neither the wait nor verify ran.
    assert steps(stopped) == [
        ("detect", "health endpoint answers", "failed"),
        ("remediate", "start pg-api", "passed"),
    ]
    for name in ("pg-api-1", "pg-api-3"):
        assert steps(run.result(name)) == HEALTHY_STEPS
    assert [step for _, step in site.intents(host)] == ["start pg-api"]
    assert len(remediations(fleet, host)) == 1
    assert fleet.health(host) == {**HEALTHY_API, "host": host}  # the step itself completed
