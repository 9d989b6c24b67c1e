"""The service's dashboard page in a real headless Chromium: its DOM and a screenshot.

The records are real: the engine diagnoses three scripted hosts with two runbooks (web-1's
API crashed, which explains its failing health check; web-2 is fine but payments fail there
for no confirmed cause; web-3 is unreachable), the diagnosis comes from the real
``diagnose``, and both runs go through the run history (``save_run`` and ``list_runs``).
Schedules and alerts are plain values, among them an alert whose labels carry a script and
markup. Chromium dumps the DOM it built, so the assertions are about what a reader's browser
shows; a few fast checks of the page text need no browser.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from oorfix.app.execute import diagnose_exit_code
from oorfix.catalog import BUILTIN
from oorfix.diagnosis.incidents import diagnose
from oorfix.inventory.core import load_inventory
from oorfix.inventory.hosts import Host
from oorfix.output.history import RunSummary, list_runs, save_run
from oorfix.output.record import DiagnosisRecord, RunRecord
from oorfix.results import RunMode, RunResult
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import load_runbook
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import OpenGate
from oorfix.safety.state import StateDir
from oorfix.serve.dashboard import TITLE, dashboard_page, runs_page
from oorfix.serve.model import AlertEntry, DashboardData, ScheduleStatus
from tests.integration.test_report_browser import CHROMIUM, chromium, png_pixel_bytes
from tests.support import require
from tests.unit.fakes import FakeTransport, Reply, Script

pytestmark = pytest.mark.integration

HOSTILE = "<script>document.title='pwned'</script>"
MARKUP = '"><img src=x onerror="document.title=1">'
# A run id that needs quoting in a link: the href must carry it encoded, the text whole.
ODD_RUN_ID = "dry/run #1"
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)

RUNBOOKS = {
    "api-crashed": """
        name: api-crashed
        fault: software.crash
        hosts: api
        detect:
          - name: api process runs
            run: check-process
        remediate:
          - name: restart the api
            run: restart-api
    """,
    "api-health": """
        name: api-health
        fault: software.service_interruption
        hosts: api
        symptoms:
          - name: payments go through
            run: check-payments
        detect:
          - name: health endpoint answers
            run: check-health
    """,
}
INVENTORY = """
all:
  children:
    api:
      hosts:
        web-1: {ssh_host: 127.0.0.2}
        web-2: {ssh_host: 127.0.0.3}
        web-3: {ssh_host: 127.0.0.4}
"""
# (host, runbook) -> the status its matrix cell must show.
CELLS = {
    ("web-1", "api-crashed"): "status-would_fix",
    ("web-1", "api-health"): "status-would_fix",
    ("web-2", "api-crashed"): "status-healthy",
    ("web-2", "api-health"): "status-healthy",
    ("web-3", "api-crashed"): "status-unreachable",
    ("web-3", "api-health"): "status-unreachable",
}


def scripts() -> dict[str, Script]:
    """web-1 crashed (so its health check fails too), web-2 fine but payments fail, web-3 down."""
    return {
        "web-1": Script()
        .on("check-process", Reply(rc=3, stderr="pg-api.service: inactive (dead)"))
        .on("check-health", Reply(rc=7, stderr="connection refused"))
        .on("check-payments", Reply(rc=22, stdout="HTTP 502"))
        .on("restart-api", Reply(stdout="restarted")),
        "web-2": Script()
        .on("check-process", Reply(stdout="active"))
        .on("check-health", Reply(stdout='{"status": "ok"}'))
        .on("check-payments", Reply(rc=22, stdout="HTTP 402 from the clearing peer")),
        "web-3": Script(unreachable="connection timed out"),
    }


def engine_run(tmp_path: Path, mode: RunMode, runbooks: list[str], run_id: str) -> RunResult:
    """The real engine over the scripted hosts."""
    paths = []
    for name in runbooks:
        path = tmp_path / f"{name}.yml"
        path.write_text(textwrap.dedent(RUNBOOKS[name]))
        paths.append(path)
    (tmp_path / "inventory.yml").write_text(textwrap.dedent(INVENTORY))
    inventory = load_inventory(tmp_path / "inventory.yml")
    planned = plan_run([load_runbook(p) for p in paths], inventory, {}, None)
    host_scripts = scripts()

    def factory(host: Host) -> FakeTransport:
        return FakeTransport(host.name, host_scripts[host.name], [])

    parts = EngineParts(inventory, ConnectionPool(factory), OpenGate(), NoAudit())
    # The fake answers one command at a time: no batched detect script.
    options = EngineOptions(forks=3, mode=mode, batch_detect=False, sleep=lambda _: None)
    return Engine(parts, options).run([p.job for p in planned], run_id)


def diagnose_record(tmp_path: Path) -> RunRecord:
    """A ``diagnose`` record as ``oorfix.app.execute`` makes it: detect, then the diagnosis."""
    found = engine_run(tmp_path, RunMode.DETECT, list(RUNBOOKS), "diag-1")
    hosts = diagnose(found.results, BUILTIN)
    meta = {
        "command": "diagnose",
        "runbooks": list(RUNBOOKS),
        "inventory": "inventory.yml",
        "limit": None,
        "exit_code": int(diagnose_exit_code(found, hosts)),
        "diagnosis": DiagnosisRecord(hosts=hosts),
    }
    return RunRecord.of(found, meta)


def dry_run_record(tmp_path: Path) -> RunRecord:
    """An earlier ``run --dry-run`` of api-crashed, started a minute before the diagnosis."""
    result = engine_run(tmp_path, RunMode.DRY_RUN, ["api-crashed"], ODD_RUN_ID)
    earlier = timedelta(minutes=1)
    result = replace(result, started=result.started - earlier, ended=result.ended - earlier)
    return RunRecord.of(result, {"command": "run", "runbooks": ["api-crashed"]})


def schedules(diagnosis: RunRecord) -> list[ScheduleStatus]:
    """A diagnose schedule that ran (and runs again now) and a fix schedule that never ran."""
    return [
        ScheduleStatus(
            name="fleet-check",
            cron="*/5 * * * *",
            timezone="Europe/Berlin",
            what="diagnose",
            mode="detect",
            next_start=NOW + timedelta(minutes=5),
            last_start=diagnosis.start,
            last_run_id=diagnosis.run_id,
            last_exit=diagnosis.exit_code,
            last_success=NOW - timedelta(days=1),
            running=True,
            skipped=2,
            missed=1,
        ),
        ScheduleStatus(
            name="nightly-fix",
            cron="0 3 * * *",
            timezone="UTC",
            what="api-crashed",
            mode="fix",
            next_start=NOW + timedelta(hours=17),
        ),
    ]


def alerts() -> list[AlertEntry]:
    """Newest first: a hostile alert queued, a resolved one, and one read back tampered with."""
    return [
        AlertEntry(
            received=NOW - timedelta(seconds=5),
            fingerprint="beef",
            alertname=HOSTILE,
            status="firing",
            action="queued",
            route="api-down",
            host=MARKUP,
            job_id="job-7",
            detail=MARKUP,
        ),
        AlertEntry(
            received=NOW - timedelta(minutes=3),
            fingerprint="cafe",
            alertname="PaymentApiCrashed",
            status="resolved",
            action="resolved",
            host="web-1",
        ),
        # alerts.jsonl is read back unvalidated: an action that is not a known word.
        AlertEntry.from_json(
            {
                "received": (NOW - timedelta(minutes=9)).isoformat(),
                "fingerprint": "f00d",
                "alertname": "Tampered",
                "status": "firing",
                "action": 'x" onmouseover="document.title=2',
            }
        ),
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DashboardData:
    """The dashboard's data from real records kept in a real run history."""
    tmp = tmp_path_factory.mktemp("records")
    state = StateDir(tmp / "state")
    diagnosis = diagnose_record(tmp)
    save_run(state, dry_run_record(tmp), None)
    save_run(state, diagnosis, None)
    return DashboardData(
        now=NOW,
        diagnosis=diagnosis,
        runs=list_runs(state),
        schedules=schedules(diagnosis),
        alerts=alerts(),
        pending=4,
        running=("job-7",),
    )


@pytest.fixture(scope="module")
def browser() -> Path:
    """Chromium, or a skip (a failure when OORFIX_REQUIRE_BROWSER=1, as in CI)."""
    why = f"{CHROMIUM} is not installed (Debian: apt-get install chromium fonts-liberation)"
    require("BROWSER", CHROMIUM.exists(), why)
    return CHROMIUM


class Dom(HTMLParser):
    """What the assertions need from a page: Chromium's serialized DOM or our own text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.sections: list[str] = []
        self.headings: dict[str, str] = {}  # section id -> its h2's text
        self.cells: dict[tuple[str, str], str] = {}  # (host, runbook) -> status class
        self.links: list[str] = []
        self.metas: list[dict[str, str]] = []
        self.actions: list[str] = []  # the classes of the alerts' action spans
        self.texts: list[str] = []
        self.title = ""
        self._cell: tuple[str, str] | None = None
        self._open = ""  # the element whose text is being collected: title or h2

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        classes = values.get("class", "").split()
        self.tags.append(tag)
        self.attributes.update(values)
        self._open = tag if tag in ("title", "h2") else ""
        if tag == "section":
            self.sections.append(values.get("id", ""))
            self.headings[self.sections[-1]] = ""
        if tag == "td" and "data-runbook" in values:
            self._cell = (values.get("data-host", ""), values["data-runbook"])
            self.cells[self._cell] = "none"
        if tag == "span" and "status" in classes and self._cell is not None:
            self.cells[self._cell] = classes[-1]
        if tag == "span" and "action" in classes:
            self.actions.append(values["class"])
        if tag == "a":
            self.links.append(values.get("href", ""))
        if tag == "meta":
            self.metas.append(values)

    def handle_endtag(self, tag: str) -> None:
        self._open = ""
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._open == "title":
            self.title += data
        elif self._open == "h2" and self.sections:
            self.headings[self.sections[-1]] += data

    def text(self) -> str:
        """Every text node, joined: what a reader sees, in order."""
        return " ".join("".join(self.texts).split())


def parse(html: str) -> Dom:
    dom = Dom()
    dom.feed(html)
    return dom


@pytest.fixture(scope="module")
def page(data: DashboardData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dashboard page written to a file, as the base the service serves it under."""
    path = tmp_path_factory.mktemp("page") / "dashboard.html"
    path.write_text(dashboard_page(data, base="/oorfix", refresh=30), encoding="utf-8")
    return path


# --- in the browser ---------------------------------------------------------------------------


def test_the_dashboard_renders_in_chromium_with_the_matrix_links_and_inert_alerts(
    browser: Path, page: Path, data: DashboardData, tmp_path: Path
) -> None:
    dom = parse(chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    assert dom.sections == ["fleet", "runs", "schedules", "alerts"]
    assert all(dom.headings[s] for s in dom.sections)
    assert dom.cells == CELLS
    text = dom.text()
    assert data.diagnosis is not None
    assert "diagnosed " + data.diagnosis.start.strftime("%Y-%m-%d %H:%M:%S UTC") in text
    # The incidents: the crash explains the failing health check; web-2's symptom is unexplained.
    assert "software.crash would_fix → software.service_interruption" in text
    assert "web-2: symptoms with no confirmed cause: payments go through (api-health)" in text
    assert "Not judged: web-3." in text  # unreachable: no incident found is not none there
    # Runs newest first, each linked under the base, the odd id quoted in the href only.
    assert [r.id for r in data.runs] == ["diag-1", ODD_RUN_ID]
    assert "/oorfix/runs/diag-1" in dom.links
    assert "/oorfix/runs/dry%2Frun%20%231" in dom.links
    assert ODD_RUN_ID in dom.texts
    assert "fleet-check running" in text
    assert "*/5 * * * * Europe/Berlin" in text
    assert "2 / 1" in text
    assert "1 job(s) running (job-7), 4 queued" in text
    # The hostile labels are text on the page; nothing of them ran or became an element.
    assert HOSTILE in dom.texts
    assert MARKUP in dom.texts
    assert "script" not in dom.tags
    assert "img" not in dom.tags
    assert not any(name.startswith("on") for name in dom.attributes)
    assert dom.title == TITLE
    # The tampered action is one harmless class token, not an attribute of its own.
    tampered = "action action-x_onmouseover_document_title_2"
    assert dom.actions == ["action action-queued", "action action-resolved", tampered]
    refresh = [m for m in dom.metas if m.get("http-equiv", "").lower() == "refresh"]
    assert [m["content"] for m in refresh] == ["30"]
    [policy] = [m for m in dom.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in policy["content"]


def test_the_dashboard_screenshot_is_a_non_trivial_png(
    browser: Path, page: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri())
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 1600)
    assert len(png_pixel_bytes(png)) > 50  # a blank page would have a handful of values


# --- the page text, no browser ----------------------------------------------------------------


def test_the_page_has_no_script_no_external_resource_and_escapes_every_value(
    data: DashboardData,
) -> None:
    html = dashboard_page(data)
    dom = parse(html)
    assert dom.cells == CELLS
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    # No value became an attribute (the tampered action is a class token and text).
    assert not any(name.startswith("on") for name in dom.attributes)
    assert not any(link.startswith(("http:", "https:", "//")) for link in dom.links)
    assert "/runs/diag-1" in dom.links
    assert {"link", "img", "script", "iframe", "object"}.isdisjoint(dom.tags)


def test_an_empty_service_shows_no_diagnosis_and_empty_sections() -> None:
    empty = DashboardData(now=NOW, diagnosis=None, runs=(), schedules=(), alerts=())
    html = dashboard_page(empty, refresh=None)
    dom = parse(html)
    assert dom.sections == ["fleet", "runs", "schedules", "alerts"]
    text = dom.text()
    for message in (
        "No diagnosis yet.",
        "No run yet.",
        "No schedule is configured.",
        "No alert received yet.",
    ):
        assert message in text
    assert "table" not in dom.tags
    assert not any(m.get("http-equiv") == "refresh" for m in dom.metas)
    assert "0 job(s) running, 0 queued" in text
    assert "as of 2026-12-03 10:00:00 UTC" in text


def test_refresh_is_optional_and_never_zero() -> None:
    empty = DashboardData(now=NOW, diagnosis=None, runs=(), schedules=(), alerts=())
    for refresh, expected in ((30, ["30"]), (5, ["5"]), (0, []), (None, [])):
        metas = parse(dashboard_page(empty, refresh=refresh)).metas
        assert [m["content"] for m in metas if m.get("http-equiv") == "refresh"] == expected


def test_the_runs_page_lists_every_run_linked(data: DashboardData) -> None:
    runs: list[RunSummary] = list(data.runs)
    dom = parse(runs_page(runs, base="/oorfix/"))
    assert dom.sections == ["runs"]
    assert "/oorfix/runs/diag-1" in dom.links
    assert "/oorfix/" in dom.links
    assert not any(m.get("http-equiv") == "refresh" for m in dom.metas)
    assert "detect" in dom.text()
    assert "dry-run" in dom.text()
