"""The HTML incident report in a real headless browser: its DOM and a screenshot.

The record comes from the real engine over a scripted fake transport (no sshd needed): one
host fixed after a failed verification attempt, one whose fix does not hold (rolled back and
escalated), one healthy and one unreachable; a host's output carries a ``<script>`` that
must reach the page as text. Chromium dumps the DOM it built, so the assertions are about
what a reader's browser shows, not about the HTML text we wrote.
"""

from __future__ import annotations

import subprocess
import textwrap
import time
import zlib
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from oorfix.inventory.core import load_inventory
from oorfix.inventory.hosts import Host
from oorfix.output.record import RunRecord
from oorfix.output.reports.html import html_report
from oorfix.redact import Command
from oorfix.results import CommandResult, utcnow
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import load_runbook
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import OpenGate
from oorfix.transport.shell import Become
from tests.support import require
from tests.unit.fakes import FakeTransport, Reply, Script

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_TIMEOUT = 90.0  # a bound against a hung browser; a render takes a few seconds
INJECTED = "<script>document.title='pwned'</script>"

RUNBOOK = """
name: payment-api-down
fault: software.service_interruption
hosts: payment_api
detect:
  - name: health endpoint answers
    run: check-health
evidence:
  - name: recent journal
    run: collect-journal
remediate:
  - name: restart the api
    run: restart-api
verify: {retries: 1, delay: 1s}
rollback:
  - name: restore the previous build
    run: undo-restart
escalate:
  message: "payment API on {{ host.name }} still fails"
"""

INVENTORY = """
all:
  children:
    payment_api:
      hosts:
        pg-api-1: {ssh_host: 127.0.0.2}
        pg-api-2: {ssh_host: 127.0.0.3}
        pg-api-3: {ssh_host: 127.0.0.4}
        pg-api-4: {ssh_host: 127.0.0.5}
"""


class SlowFake(FakeTransport):
    """A fake host that takes a little time per command, so the timeline has real spans."""

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        started = utcnow()
        time.sleep(0.02)
        return replace(super().run(command, timeout=timeout, become=become), started=started)


def scripts() -> dict[str, Script]:
    """pg-api-1 fixed on the second attempt, pg-api-2 not fixed, pg-api-3 fine, -4 down."""
    journal = Reply(stdout=f"May 09 pg-api[812]: panic: {INJECTED}\nMay 09 systemd: failed\n")
    return {
        "pg-api-1": Script()
        .on("check-health", Reply(rc=7, stderr="connection refused"), Reply(rc=7), Reply(rc=0))
        .on("collect-journal", journal)
        .on("restart-api", Reply(stdout="restarted pg-api")),
        "pg-api-2": Script()
        .on("check-health", Reply(rc=22, stdout="HTTP 500"))
        .on("collect-journal", Reply(stdout="disk full"))
        .on("restart-api")
        .on("undo-restart", Reply(stdout="previous build restored")),
        "pg-api-3": Script().on("check-health", Reply(stdout='{"status": "ok"}')),
        "pg-api-4": Script(unreachable="connection timed out"),
    }


def engine_record(tmp_path: Path) -> RunRecord:
    """Run the real engine over fake hosts and return the run record it makes."""
    (tmp_path / "runbook.yml").write_text(textwrap.dedent(RUNBOOK))
    (tmp_path / "inventory.yml").write_text(textwrap.dedent(INVENTORY))
    inventory = load_inventory(tmp_path / "inventory.yml")
    planned = plan_run([load_runbook(tmp_path / "runbook.yml")], inventory, {}, None)
    sent: list[tuple[str, str, bool]] = []
    host_scripts = scripts()

    def factory(host: Host) -> SlowFake:
        return SlowFake(host.name, host_scripts[host.name], sent)

    parts = EngineParts(inventory, ConnectionPool(factory), OpenGate(), NoAudit())
    engine = Engine(parts, EngineOptions(forks=4, sleep=lambda _: None))
    meta = {"runbooks": ["payment-api-down"], "inventory": "inventory.yml", "limit": None}
    return RunRecord.of(engine.run([p.job for p in planned]), meta)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium as the brief for CI says: as root, no sandbox, no network chatter."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # we run as root, where Chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def browser() -> Path:
    """Chromium, or a skip (a failure when OORFIX_REQUIRE_BROWSER=1, as in CI)."""
    why = f"{CHROMIUM} is not installed (Debian: apt-get install chromium fonts-liberation)"
    require("BROWSER", CHROMIUM.exists(), why)
    return CHROMIUM


@pytest.fixture
def report(tmp_path: Path) -> Path:
    """The HTML report of the engine-made record, written to a file."""
    path = tmp_path / "report.html"
    path.write_text(html_report(engine_record(tmp_path)), encoding="utf-8")
    return path


class DomReader(HTMLParser):
    """Collects what the assertions need from Chromium's serialized DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.events: list[tuple[str, str]] = []  # (timeline host, event kind)
        self.texts: list[str] = []
        self.title = ""
        self._host = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self._in_title = tag == "title"
        if tag == "tr" and "data-host" in values:
            self.rows.append(values)
        if tag == "article" and "timeline" in values.get("class", ""):
            self._host = values.get("data-host", "")
        if tag == "li" and "data-kind" in values:
            self.events.append((self._host, values["data-kind"]))

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._in_title:
            self.title += data


def test_the_report_renders_in_chromium_with_rows_timelines_and_inert_output(
    browser: Path, report: Path, tmp_path: Path
) -> None:
    dom = chromium(tmp_path, "--dump-dom", report.as_uri()).stdout
    reader = DomReader()
    reader.feed(dom)
    statuses = {row["data-host"]: row["data-status"] for row in reader.rows}
    assert statuses == {
        "pg-api-1": "fixed",
        "pg-api-2": "failed",
        "pg-api-3": "healthy",
        "pg-api-4": "unreachable",
    }
    fixed = [kind for host, kind in reader.events if host == "pg-api-1"]
    assert fixed == ["check", "confirmed", "evidence", "fix", "verify", "verify", "verified"]
    failed = [kind for host, kind in reader.events if host == "pg-api-2"]
    assert failed[-4:] == ["verify", "rollback", "escalated", "outcome"]
    assert "script" not in reader.tags
    assert reader.title.startswith("Incident report: payment-api-down")  # no script ran
    assert any(INJECTED in text for text in reader.texts)  # shown as text, whole


def test_the_report_screenshot_is_a_non_empty_png(
    browser: Path, report: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "r.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(png_pixel_bytes(data)) > 50  # a blank page would have a handful of values


def png_pixel_bytes(data: bytes) -> set[int]:
    """The distinct byte values of a PNG's decompressed image data."""
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length  # length, type, data, CRC
    return set(zlib.decompress(b"".join(chunks)))
