"""`make demo-serve`: the second act. The service runs, an alert fires, the host is fixed.

A loopback lab of three payment API hosts; `oorfix serve` with one alert route (a crashed
payment API is fixed unattended) and a notification webhook to a local receiver; a real
Alertmanager (Debian's prometheus-alertmanager) whose webhook points at the service. The
demo crashes the API on pg-api-2, fires the alert through Alertmanager, and shows the
notification, the alert-to-fix time, the run the service recorded, the dashboard and a few
metrics. A `diagnose` from the command line shares the service's state directory, so the
dashboard's fleet matrix shows it. Everything is torn down at the end.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console

from oorfix.lab import services
from oorfix.lab.alertmanager import ALERTMANAGER, free_port, start_alertmanager
from oorfix.lab.lab import Lab, payment_hosts

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = ("payment-api-crashed", "payment-api-down")
TOKEN_ENV = "OORFIX_DEMO_ALERT_TOKEN"  # noqa: S105 - the name of a variable, not a secret
HOOK_ENV = "OORFIX_DEMO_HOOK"
DEADLINE = 120.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only


@contextmanager
def receiver() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """A local notification receiver: its URL and a queue of the JSON bodies it got."""
    got: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            got.put(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> bytes:
    with _OPENER.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def _wait(what: str, check: Callable[[], Any]) -> Any:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        try:
            value = check()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def write_config(directory: Path, lab: Lab, port: int) -> Path:
    """The service's configuration for the lab (JSON is YAML), with the payment API's
    runbooks: the loopback lab has no racks, standby or clearing network to diagnose."""
    (directory / "runbooks").mkdir()
    for name in RUNBOOKS:
        shutil.copyfile(REPO / "runbooks" / f"{name}.yml", directory / "runbooks" / f"{name}.yml")
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "public_url": f"http://127.0.0.1:{port}",
        "defaults": {
            "inventory": str(directory / "inventory.yml"),
            "runbooks": str(directory / "runbooks"),
            "known_hosts": str(lab.known_hosts),
            "state_dir": str(directory / "state"),
        },
        "schedules": [
            {"name": "nightly-diagnose", "cron": "0 2 * * *", "timezone": "UTC",
             "job": {"mode": "diagnose"}},
        ],
        "alertmanager": {
            "token": {"env": TOKEN_ENV},
            "routes": [
                {"name": "api-crashed", "match": {"alertname": "PaymentApiCrashed"},
                 "job": {"runbooks": ["payment-api-crashed"], "mode": "fix",
                         "auto_approve": True}},
            ],
        },
        "notify": [{"name": "oncall", "kind": "webhook", "url": {"env": HOOK_ENV}}],
    }  # fmt: skip
    path = directory / "serve.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else 0


def act_two(console: Console, directory: Path) -> bool:
    """Run the second act; True when the alert's fix was verified and notified once."""
    with Lab(directory, payment_hosts(directory, 3)) as lab, receiver() as (hook, got):
        lab.write_inventory(directory / "inventory.yml")
        port = free_port()
        config = write_config(directory, lab, port)
        token = os.urandom(16).hex()
        env = {**os.environ, TOKEN_ENV: token, HOOK_ENV: hook, "NO_COLOR": "1"}
        url = f"http://127.0.0.1:{port}"
        console.rule("[bold]$ oorfix serve --config serve.yml")
        log = (directory / "serve.log").open("ab")
        argv = [sys.executable, "-m", "oorfix", "serve", "--config", str(config), "-v"]
        service = subprocess.Popen(argv, env=env, stdout=log, stderr=log, cwd=REPO)
        manager = None
        try:
            _wait("the service", lambda: json.loads(_get(f"{url}/healthz"))["status"] == "ok")
            console.print(f"listening on {url}; idle RSS {_rss_kib(service.pid) / 1024:.0f} MiB")
            inventory = str(directory / "inventory.yml")
            state = str(directory / "state")
            cli = [sys.executable, "-m", "oorfix", "diagnose", "-i", inventory, "-q",
                   "--runbooks", str(directory / "runbooks"),
                   "--known-hosts", str(lab.known_hosts), "--state-dir", state]  # fmt: skip
            console.rule("[bold]$ oorfix diagnose (same state directory as the service)")
            done = subprocess.run(cli, env=env, cwd=REPO, check=False)
            console.print(f"exit code {done.returncode}: the dashboard's fleet matrix shows it")
            if ALERTMANAGER.exists():
                manager = start_alertmanager(
                    directory / "alertmanager", f"{url}/hooks/alertmanager", token=token
                )
                console.print(f"Alertmanager {manager.url} -> {url}/hooks/alertmanager")
            console.rule("[bold red]pg-api-2: the payment API crashes; the alert fires")
            services.crash(services.Unit(lab.hosts["pg-api-2"].state, "pg-api"))
            alert = {"labels": {"alertname": "PaymentApiCrashed", "instance": "pg-api-2:9100"}}
            fired = time.monotonic()
            if manager is not None:
                manager.post_alerts([alert])
            else:
                console.print("[yellow]no Alertmanager installed: posting to the webhook[/]")
                _post_direct(url, token, alert)
            note = got.get(timeout=DEADLINE)
            latency = time.monotonic() - fired
            console.print(f"notification after {latency:.1f}s (group wait 1s included):")
            console.print_json(data=note)
            _wait("the job to end", lambda: json.loads(_get(f"{url}/api/v1/jobs")) == [])
            run = json.loads(_get(f"{url}/api/v1/runs/{note['run_id']}"))
            statuses = [r["status"] for r in run["results"]]
            console.print(f"run {run['run_id']}: {statuses}, trigger {run['trigger']}")
            page = _get(f"{url}/").decode()
            (directory / "dashboard.html").write_text(page)
            console.rule(f"[bold]the dashboard: {url}/")
            sections = re.findall(r'<section id="([a-z]+)"', page)
            console.print(f"sections: {', '.join(sections)}")
            metrics = _get(f"{url}/metrics").decode()
            for line in metrics.splitlines():
                if line.startswith(("oorfix_faults_fixed_total", "oorfix_alerts_total",
                                    "oorfix_runs_total")):  # fmt: skip
                    console.print(f"  {line}")
            # The job has ended and its notices were queued before it did: any second
            # notification would already be delivered or on its way; allow it a moment.
            time.sleep(0.5)
            once = got.empty()
            return statuses == ["fixed"] and note["event"] == "fixed" and once
        finally:
            if manager is not None:
                manager.stop()
            service.send_signal(signal.SIGTERM)
            code = service.wait(timeout=DEADLINE)
            log.close()
            console.print(f"oorfix serve stopped on SIGTERM with exit code {code}")


def _post_direct(url: str, token: str, alert: dict[str, Any]) -> None:
    body = {"version": "4", "groupKey": "demo", "status": "firing", "receiver": "oorfix",
            "alerts": [{**alert, "status": "firing", "fingerprint": "d3e0"}]}  # fmt: skip
    request = urllib.request.Request(  # noqa: S310 - our own service on loopback
        f"{url}/hooks/alertmanager",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    _OPENER.open(request, timeout=30).close()


def main() -> None:
    """Run the second act end to end."""
    console = Console(highlight=False)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="oorfix-demo-serve-") as tmp:
        ok = act_two(console, Path(tmp))
    console.rule(f"demo-serve finished in {time.monotonic() - started:.0f}s")
    if not ok:
        sys.exit("demo-serve failed: the alert's fix was not verified and notified once")


if __name__ == "__main__":
    main()
