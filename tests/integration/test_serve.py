"""`oorfix serve` end to end: a real Alertmanager, the real service process, real lab hosts.

An alert posted to Alertmanager's API goes through its grouping to the service's webhook;
the service fixes the lab host over SSH and notifies a local receiver exactly once. Hostile
requests are refused or neutralised and start nothing. A service killed with SIGKILL in the
middle of a fix is restarted: the host lock expires, the job resumes, checks again, and fixes.
Every wait is for a condition (a file, an HTTP answer), bounded by a deadline; no assertion
is about how long something took.
"""

# ruff: noqa: S105, S106, S310 - test secrets, and plain HTTP to the service on loopback
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oorfix.lab.alertmanager import start_alertmanager
from tests.integration.conftest import REPO, Fleet
from tests.support import require

pytestmark = pytest.mark.integration

TOKEN = "alert-token-for-tests"
DEADLINE = 120.0  # a bound against a hang; the lab fixes a host in seconds
AM_BINARY = Path("/usr/bin/prometheus-alertmanager")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` at the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


class Receiver:
    """A local notification receiver: every POST's JSON body, in order."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Service:
    """``python -m oorfix serve`` as a subprocess, and HTTP calls to it."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config = config
        self.env = env
        self.log = log
        data = json.loads(config.read_text())
        self.url = f"http://127.0.0.1:{data['listen']['port']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "oorfix", "serve", "--config", str(self.config), "-v"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until("the service to answer /healthz", self._healthy)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"oorfix serve exited {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            return self.get("/healthz")["status"] == "ok"
        except (urllib.error.URLError, ConnectionError):
            return False

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, body: bytes, token: str | None = TOKEN) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def idle(self) -> bool:
        return self.get("/api/v1/jobs") == []

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    try:
        yield hook
    finally:
        hook.close()


def write_config(
    fleet: Fleet,
    receiver: Receiver,
    runbook: str = "payment-api-crashed",
    runbooks: Path = REPO / "runbooks",
    **defaults: object,
) -> tuple[Path, dict[str, str]]:
    """serve.yml (JSON is YAML) for the lab: one alert route that fixes a crashed API."""
    config = {
        "listen": {"host": "127.0.0.1", "port": free_port()},
        "public_url": "http://127.0.0.1/oorfix",
        "defaults": {
            "inventory": str(fleet.inventory()),
            "runbooks": str(runbooks),
            "known_hosts": str(fleet.lab.sshd.known_hosts),
            "state_dir": str(fleet.tmp / "state"),
            **defaults,
        },
        "alertmanager": {
            "token": {"env": "OORFIX_TEST_ALERT_TOKEN"},
            "max_body": 65536,
            "routes": [
                {
                    "name": "api-crashed",
                    "match": {"alertname": "PaymentApiCrashed"},
                    "job": {"runbooks": [runbook], "mode": "fix", "auto_approve": True},
                    "notify": ["hook"],
                }
            ],
        },
        "notify": [{"name": "hook", "kind": "webhook", "url": {"env": "OORFIX_TEST_HOOK"}}],
    }
    path = fleet.tmp / "serve.yml"
    path.write_text(json.dumps(config, indent=2))
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "OORFIX_TEST_ALERT_TOKEN": TOKEN,
        "OORFIX_TEST_HOOK": receiver.url,
    }
    return path, env


def payload(labels: dict[str, str], fingerprint: str = "0123456789abcdef") -> bytes:
    """An Alertmanager version 4 webhook body with one firing alert."""
    return json.dumps({
        "version": "4", "groupKey": "{}:{alertname=\"x\"}", "status": "firing",
        "receiver": "oorfix", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                    "startsAt": "2026-12-03T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": fingerprint}],
    }).encode()  # fmt: skip


def runs_of(service: Service) -> list[dict[str, Any]]:
    return list(service.get("/api/v1/runs"))


def test_an_alert_through_alertmanager_fixes_the_host_and_notifies_once(
    fleet: Fleet, receiver: Receiver
) -> None:
    require("ALERTMANAGER", AM_BINARY.exists(), f"{AM_BINARY} is not installed")
    config, env = write_config(fleet, receiver)
    service = Service(config, env, fleet.tmp / "serve.log")
    service.start()
    manager = start_alertmanager(fleet.tmp / "am", f"{service.url}/hooks/alertmanager", token=TOKEN)
    try:
        fleet.break_api("pg-api-1")
        labels = {"alertname": "PaymentApiCrashed", "instance": "pg-api-1:9100"}
        manager.post_alerts([{"labels": labels}])
        wait_until("the fix notification", lambda: receiver.bodies)
        wait_until("the service to be idle", service.idle)
        assert fleet.pid("pg-api-1") is not None
        assert fleet.health("pg-api-1") is not None
        note = receiver.bodies[0]
        assert (note["event"], note["host"], note["runbook"]) == (
            "fixed",
            "pg-api-1",
            "payment-api-crashed",
        )
        run = service.get(f"/api/v1/runs/{note['run_id']}")
        assert run["trigger"]["source"] == "alert"
        assert run["trigger"]["name"] == "api-crashed"
        assert [r["status"] for r in run["results"]] == ["fixed"]
        # Resolving the alert is recorded; it sends nothing, so one notification stays one.
        manager.post_alerts([{"labels": labels, "endsAt": "2020-01-01T00:00:00Z"}])
        wait_until(
            "the resolved alert",
            lambda: any(a["action"] == "resolved" for a in service.get("/api/v1/alerts")),
        )
        assert service.idle()
        assert len(receiver.bodies) == 1
        metrics = urllib.request.urlopen(service.url + "/metrics", timeout=10).read().decode()
        assert 'oorfix_faults_fixed_total{fault="software.crash"} 1.0' in metrics
        assert 'oorfix_alerts_total{result="queued",route="api-crashed"} 1.0' in metrics
    finally:
        manager.stop()
        assert service.stop() == 0


def test_hostile_requests_are_refused_or_neutralised_and_nothing_runs(
    fleet: Fleet, receiver: Receiver
) -> None:
    config, env = write_config(fleet, receiver)
    service = Service(config, env, fleet.tmp / "serve.log")
    service.start()
    before = fleet.snapshot("pg-api-1")
    try:
        good = {"alertname": "PaymentApiCrashed", "instance": "pg-api-1:9100"}
        assert service.post("/hooks/alertmanager", payload(good), token="wrong")[0] == 401
        assert service.post("/hooks/alertmanager", payload(good), token=None)[0] == 401
        huge = payload({**good, "padding": "x" * 1000}) + b" " * 70000
        assert service.post("/hooks/alertmanager", huge)[0] == 413
        assert service.post("/hooks/alertmanager", b"{not json")[0] == 400
        hostile = [
            "pg-api-1; touch /tmp/oorfix-pwned",
            "$(touch /tmp/oorfix-pwned)",
            "../../../etc/passwd",
            "{{ 7*7 }}",
            "pg-api-1:&pg-api-2",
        ]
        for i, value in enumerate(hostile):
            status, answer = service.post(
                "/hooks/alertmanager", payload({**good, "instance": value}, f"{i + 1:016x}")
            )
            assert status == 200, answer
            assert [a["action"] for a in answer["alerts"]] == ["unknown_host"]
        assert service.idle()
        assert runs_of(service) == []
        assert fleet.snapshot("pg-api-1") == before
        assert not Path("/tmp/oorfix-pwned").exists()
        refused = urllib.request.urlopen(service.url + "/metrics", timeout=10).read().decode()
        assert 'oorfix_webhook_refused_total{reason="token"} 2.0' in refused
        assert receiver.bodies == []
    finally:
        assert service.stop() == 0


SLOW_FIX = """
name: slow-restart
fault: software.crash
hosts: payment_api
detect:
  - name: service is active
    run: systemctl is-active pg-api
    expect: {rc: [0, 3], stdout: "^active$"}
remediate:
  - name: wait for the test's go
    run: touch {{ state_dir }}/started; while [ ! -e {{ state_dir }}/go ]; do sleep 0.1; done
    timeout: 100s
  - service: {name: pg-api, state: started}
    sudo: true
verify: {retries: 3, delay: 1s}
"""


def test_a_service_killed_mid_fix_resumes_after_the_lock_expires(
    fleet: Fleet, receiver: Receiver
) -> None:
    runbooks = fleet.tmp / "runbooks"
    runbooks.mkdir()
    (runbooks / "slow-restart.yml").write_text(textwrap.dedent(SLOW_FIX).lstrip())
    config, env = write_config(fleet, receiver, "slow-restart", runbooks, lock_ttl="2s")
    service = Service(config, env, fleet.tmp / "serve.log")
    service.start()
    state = fleet.tmp / "state"
    host = fleet.state("pg-api-1")
    fleet.break_api("pg-api-1")
    labels = {"alertname": "PaymentApiCrashed", "instance": "pg-api-1"}
    assert service.post("/hooks/alertmanager", payload(labels))[0] == 200
    wait_until("the fix to start on the host", (host / "started").exists)
    assert service.stop(signal.SIGKILL) == -signal.SIGKILL
    queued = list((state / "serve" / "queue").glob("*.json"))
    assert len(queued) == 1, "the job must survive the crash"
    job_id = json.loads(queued[0].read_text())["id"]
    lock = json.loads((state / "locks" / "pg-api-1.json").read_text())
    expires = datetime.fromisoformat(lock["expires"])
    wait_until("the dead service's lock to expire",
               lambda: datetime.now(expires.tzinfo) > expires)  # fmt: skip
    (host / "started").unlink()
    (host / "go").touch()
    service.start()
    try:
        wait_until("the resumed job to finish", service.idle)
        runs = runs_of(service)
        assert len(runs) == 1
        run = service.get(f"/api/v1/runs/{runs[0]['id']}")
        assert run["trigger"]["job"] == job_id
        assert [r["status"] for r in run["results"]] == ["fixed"]
        # It checked before it fixed, and took over the expired lock.
        phases = [s["phase"] for s in run["results"][0]["steps"]]
        assert phases[0] == "detect"
        reclaimed = (state / "locks" / "reclaimed.jsonl").read_text()
        assert '"host": "pg-api-1"' in reclaimed
        assert fleet.pid("pg-api-1") is not None
        assert list((state / "serve" / "queue").glob("*.json")) == []
    finally:
        assert service.stop() == 0
