"""A real Prometheus Alertmanager on loopback, for the service's alert path in tests and the demo.

``start_alertmanager`` writes a one-receiver config (a webhook to the URL under test), runs
``/usr/bin/prometheus-alertmanager`` (Debian ``prometheus-alertmanager``) on a free port of
127.0.0.1 with gossip disabled, and returns once ``/-/ready`` answers. HTTP is plain
``urllib.request`` with proxies ignored, so the harness needs nothing beyond the standard
library and never sends a request off the machine.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
READY_TIMEOUT = 30.0  # a bound against an Alertmanager that never comes up; it takes <1 s
HTTP_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LOG_TAIL = 4000
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

# Loopback only: never through an http_proxy the environment may name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _require_loopback(url: str) -> None:
    """Raise unless ``url`` is plain http to an address in 127.0.0.0/8."""
    parts = urllib.parse.urlsplit(url)
    try:
        loopback = parts.scheme == "http" and ipaddress.ip_address(parts.hostname or "") in LOOPBACK
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"{url!r} is not an http URL on 127.0.0.0/8: the harness stays on loopback"
        )


def _request(
    method: str, url: str, body: Any = None, timeout: float = HTTP_TIMEOUT
) -> tuple[int, bytes]:
    """One HTTP request to a loopback URL; the status and body, error statuses included."""
    _require_loopback(url)
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    # S310: the URL was just checked to be plain http on loopback.
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@dataclass
class Alertmanager:
    """A running Alertmanager: its base URL, process and working directory."""

    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def log(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.workdir / "alertmanager.log"

    @property
    def config(self) -> Path:
        """The alertmanager.yml it runs with."""
        return self.workdir / "alertmanager.yml"

    def log_tail(self, size: int = LOG_TAIL) -> str:
        """The end of the process's log, for failure messages."""
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-size:]
        except OSError as error:
            return f"(no log: {error})"

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """POST /api/v2/alerts: each has labels, and optionally annotations, startsAt, endsAt."""
        status, body = _request("POST", f"{self.url}/api/v2/alerts", alerts)
        if status != 200:
            raise RuntimeError(f"POST /api/v2/alerts: HTTP {status}: {body[:1000]!r}")

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: the alerts Alertmanager holds."""
        status, body = _request("GET", f"{self.url}/api/v2/alerts")
        if status != 200:
            raise RuntimeError(f"GET /api/v2/alerts: HTTP {status}: {body[:1000]!r}")
        found: list[dict[str, Any]] = json.loads(body)
        return found

    def stop(self) -> None:
        """Terminate the process, wait for it, and kill it if it does not go."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def write_config(
    path: Path,
    receiver_url: str,
    *,
    token: str | None,
    group_wait: str,
    group_interval: str,
    repeat_interval: str,
    group_by: Sequence[str],
) -> None:
    """An alertmanager.yml whose single route and receiver is a webhook to ``receiver_url``.

    Written as JSON, which is YAML too, so a token or URL never needs YAML quoting.
    """
    webhook: dict[str, Any] = {"url": receiver_url, "send_resolved": True, "max_alerts": 0}
    if token is not None:
        webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": token}}
    config = {
        "route": {
            "receiver": "oorfix",
            "group_by": list(group_by),
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [{"name": "oorfix", "webhook_configs": [webhook]}],
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _wait_ready(manager: Alertmanager, deadline: float) -> None:
    """Return once GET /-/ready answers 200; raise with the log tail if it never does."""
    last = "no answer yet"
    while time.monotonic() < deadline:
        code = manager.process.poll()
        if code is not None:
            raise RuntimeError(
                f"alertmanager exited with {code} before it was ready; log:\n{manager.log_tail()}"
            )
        try:
            status, _ = _request("GET", f"{manager.url}/-/ready", timeout=2.0)
        except OSError as error:  # not listening yet
            last = str(error)
        else:
            if status == 200:
                return
            last = f"HTTP {status}"
        time.sleep(0.1)
    raise RuntimeError(
        f"alertmanager at {manager.url} not ready within {READY_TIMEOUT:.0f} s ({last}); log:\n"
        f"{manager.log_tail()}"
    )


def start_alertmanager(
    workdir: Path,
    receiver_url: str,
    *,
    token: str | None = None,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "1h",
    group_by: Sequence[str] = ("alertname", "instance"),
) -> Alertmanager:
    """Start Alertmanager on a free 127.0.0.1 port, gossip off, and wait until it is ready.

    ``receiver_url`` must be http on 127.0.0.0/8. The caller owns the returned process and
    must ``stop()`` it (a fixture's finally).
    """
    _require_loopback(receiver_url)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    write_config(
        config,
        receiver_url,
        token=token,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
        group_by=group_by,
    )
    port = free_port()
    command = [
        str(ALERTMANAGER),
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # empty: no gossip (else it binds 0.0.0.0:9094)
    ]
    with (workdir / "alertmanager.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    manager = Alertmanager(url=f"http://127.0.0.1:{port}", process=process, workdir=workdir)
    try:
        _wait_ready(manager, time.monotonic() + READY_TIMEOUT)
    except BaseException:
        with contextlib.suppress(Exception):
            manager.stop()
        raise
    return manager
