"""The Alertmanager harness itself: a real Alertmanager delivers webhooks to a local receiver.

A receiver on 127.0.0.1 records every POST; Alertmanager, started by
``tests.integration.alertmanager`` with a bearer token, must deliver a firing notification
for an alert we post and then a resolved one once the alert ends, and must listen on
loopback only (its gossip port, 0.0.0.0:9094 by default, stays closed).
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from oorfix.lab.alertmanager import ALERTMANAGER, Alertmanager, start_alertmanager
from tests.support import require

pytestmark = pytest.mark.integration

DELIVERY_TIMEOUT = 60.0  # a bound against a notification that never comes; it takes ~1-2 s
TOKEN = "oorfix-test-token-3f9a"  # noqa: S105 - a throwaway token between two loopback processes
LABELS = {"alertname": "PaymentApiDown", "instance": "pg-api-1:9100", "severity": "critical"}
GOSSIP_PORT = 9094
TCP_LISTEN = "0A"  # the LISTEN state in /proc/net/tcp


def require_alertmanager() -> None:
    """Skip without Alertmanager, or fail when OORFIX_REQUIRE_ALERTMANAGER=1 (CI)."""
    why = f"{ALERTMANAGER} is not installed (Debian: apt-get install prometheus-alertmanager)"
    require("ALERTMANAGER", ALERTMANAGER.exists(), why)


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """Every POST to the local webhook receiver; ``received`` is set on each one."""

    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    received: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, delivery: Delivery) -> None:
        """Keep one delivery and wake whoever waits."""
        with self.lock:
            self.deliveries.append(delivery)
        self.received.set()

    def wait_for(
        self, matches: Callable[[Delivery], bool], timeout: float = DELIVERY_TIMEOUT
    ) -> Delivery:
        """The first delivery that ``matches``, waited for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.received.clear()  # cleared before looking, so a delivery in between still wakes
            with self.lock:
                found = [d for d in self.deliveries if matches(d)]
            if found:
                return found[0]
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.received.wait(remaining):
                with self.lock:
                    seen = [d.body.get("status") for d in self.deliveries]
                pytest.fail(f"no matching webhook within {timeout:.0f} s; got statuses {seen}")


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    """A request handler class that records POSTs into ``receiver`` and answers 200."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            receiver.record(Delivery(self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the deliveries are the record."""

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a free 127.0.0.1 port, served from a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    port = server.server_address[1]
    recording = Receiver(url=f"http://127.0.0.1:{port}/alerts")
    server.RequestHandlerClass = handler_for(recording)
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield recording
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[Alertmanager]:
    """A real Alertmanager on loopback whose only receiver is ``receiver``, with a token."""
    require_alertmanager()
    manager = start_alertmanager(tmp_path / "alertmanager", receiver.url, token=TOKEN)
    try:
        yield manager
    finally:
        manager.stop()


def utc(moment: datetime) -> str:
    """RFC 3339 in UTC, as the Alertmanager API takes it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def with_status(status: str) -> Callable[[Delivery], bool]:
    """Matches a delivery whose notification has ``status`` (firing or resolved)."""
    return lambda delivery: delivery.body.get("status") == status


def test_alertmanager_delivers_firing_then_resolved_webhooks(
    alertmanager: Alertmanager, receiver: Receiver
) -> None:
    alertmanager.post_alerts([{"labels": LABELS, "annotations": {"summary": "payment API down"}}])
    held = alertmanager.alerts()
    assert [a["labels"] for a in held] == [LABELS]

    firing = receiver.wait_for(with_status("firing"))
    body = firing.body
    assert firing.path == "/alerts"
    assert firing.headers.get("Authorization") == f"Bearer {TOKEN}"
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "oorfix"
    assert body["groupKey"]
    assert body["groupLabels"] == {"alertname": "PaymentApiDown", "instance": "pg-api-1:9100"}
    [alert] = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == LABELS
    assert alert["annotations"] == {"summary": "payment API down"}
    assert alert["fingerprint"] == held[0]["fingerprint"]

    ended = utc(datetime.now(UTC) - timedelta(minutes=1))
    alertmanager.post_alerts([{"labels": LABELS, "endsAt": ended}])

    resolved = receiver.wait_for(with_status("resolved"))
    assert resolved.headers.get("Authorization") == f"Bearer {TOKEN}"
    assert resolved.body["version"] == "4"
    assert resolved.body["groupKey"] == body["groupKey"]
    [gone] = resolved.body["alerts"]
    assert gone["status"] == "resolved"
    assert gone["labels"] == LABELS
    assert gone["fingerprint"] == alert["fingerprint"]


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _address(hex_address: str) -> tuple[str, int]:
    """Decode a /proc/net/{tcp,udp}[6] ``ADDR:PORT`` (the address in host byte order words)."""
    hex_ip, hex_port = hex_address.split(":")
    raw = bytes.fromhex(hex_ip)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(packed)), int(hex_port, 16)


def bound_sockets(pid: int) -> list[tuple[str, str, int]]:
    """Process ``pid``'s listening TCP and unconnected UDP sockets: (protocol, address, port)."""
    inodes = _socket_inodes(pid)
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/{pid}/net/{protocol}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if inode not in inodes:
                continue
            if protocol.startswith("tcp") and state != TCP_LISTEN:
                continue
            if protocol.startswith("udp") and _address(remote)[1] != 0:
                continue  # a connected UDP socket (a lookup), not one that listens
            found.append((protocol, *_address(local)))
    return found


def test_alertmanager_listens_on_its_loopback_port_only(alertmanager: Alertmanager) -> None:
    port = int(alertmanager.url.rsplit(":", 1)[1])
    sockets = bound_sockets(alertmanager.process.pid)
    assert sockets == [("tcp", "127.0.0.1", port)], sockets
    assert all(found_port != GOSSIP_PORT for _, _, found_port in sockets)
