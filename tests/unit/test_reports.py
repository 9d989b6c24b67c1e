"""Reports of a run record: JUnit XML (checked against a JUnit XSD), Markdown and HTML.

Records are made by ``RunRecord.of`` from result objects with chosen times, so the reports are
tested on exactly the record ``oorfix run`` writes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oorfix.cli.report import report, write_junit
from oorfix.diagnosis.converge import Conflict, Explained
from oorfix.diagnosis.incidents import HostDiagnosis, Hypothesis, Incident, Symptom, Verdict
from oorfix.output.history import save_run
from oorfix.output.record import DiagnosisRecord, RunRecord
from oorfix.output.reports import timeline
from oorfix.output.reports.html import html_report
from oorfix.output.reports.junit import junit_xml
from oorfix.output.reports.markdown import fenced, markdown_report
from oorfix.results import (
    HostResult,
    Outcome,
    Output,
    Phase,
    RunMode,
    RunResult,
    StepResult,
    StepStatus,
)
from oorfix.safety.state import StateDir

XSD = Path(__file__).with_name("junit.xsd")
# Every tag the HTML report writes itself; anything else would have come from the record.
OUR_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "dl", "dt",
    "dd", "code", "section", "table", "thead", "tbody", "tr", "th", "td", "span", "article",
    "p", "ol", "li", "time", "strong", "div", "pre",
}  # fmt: skip
T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)
SCRIPT = "<script>alert('x')</script>"


def xml_root(text: str) -> ET.Element:
    """Parse XML that this test suite wrote itself (so not the untrusted input S314 means)."""
    return ET.fromstring(text)  # noqa: S314


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(
    phase: Phase, name: str, status: StepStatus, start: float, end: float, **kw: Any
) -> StepResult:
    out, err = kw.pop("stdout", ""), kw.pop("stderr", "")
    return StepResult(
        phase,
        name,
        status,
        command=kw.pop("command", name.replace(" ", "-")),
        rc=kw.pop("rc", 0 if status is StepStatus.PASSED else 1),
        stdout=Output(out, len(out.encode())),
        stderr=Output(err, len(err.encode())),
        started=at(start),
        ended=at(end),
        **kw,
    )


def fixed_result(host: str = "api-1") -> HostResult:
    """Confirmed at 2 s, evidence, a fix from 5 s to 65 s, verified on attempt 2 at 187 s."""
    return HostResult(
        host,
        "api-down",
        "software.service_interruption",
        Outcome.FIXED,
        steps=(
            step(Phase.DETECT, "port open", StepStatus.PASSED, 0, 1),
            step(Phase.DETECT, "health", StepStatus.FAILED, 1, 2, reason="exit status 7"),
            step(Phase.DETECT, "disk", StepStatus.FAILED, 2, 3),
            step(Phase.EVIDENCE, "journal", StepStatus.PASSED, 3, 4, stdout=f"panic {SCRIPT}"),
            step(Phase.REMEDIATE, "restart", StepStatus.PASSED, 5, 65, stdout="restarted"),
            step(Phase.VERIFY, "health", StepStatus.FAILED, 66, 67, attempt=1, stderr="refused"),
            step(Phase.VERIFY, "health", StepStatus.PASSED, 186, 187, attempt=2),
        ),
        started=at(0),
        ended=at(188),
    )


def failed_result() -> HostResult:
    """A fix that did not verify: rolled back and escalated."""
    return HostResult(
        "api-2",
        "api-down",
        "software.service_interruption",
        Outcome.FAILED,
        steps=(
            step(Phase.DETECT, "health", StepStatus.FAILED, 0, 1, stdout="HTTP 500"),
            step(Phase.EVIDENCE, "journal", StepStatus.PASSED, 1, 2, stdout="disk full"),
            step(Phase.REMEDIATE, "restart", StepStatus.PASSED, 2, 3),
            step(Phase.VERIFY, "health", StepStatus.FAILED, 3, 4, stdout="HTTP 503"),
            step(Phase.ROLLBACK, "undo", StepStatus.PASSED, 4, 5, stdout="rolled back"),
            step(Phase.ESCALATE, "page", StepStatus.PASSED, 5, 6),
        ),
        error="still faulty after 1 verification attempt(s): health: exit status 1",
        escalation="api down on api-2 <b>page</b> someone",
        started=at(0),
        ended=at(6),
    )


def simple(host: str, status: Outcome, runbook: str = "api-down", **kw: Any) -> HostResult:
    return HostResult(host, runbook, "software.crash", status, started=at(0), ended=at(1), **kw)


def make_record(
    *results: HostResult,
    run_id: str = "abc123def456",
    mode: RunMode = RunMode.FIX,
    started: datetime = T0,
) -> RunRecord:
    run = RunResult(run_id, started, at(200), mode, results)
    return RunRecord.of(run, {"runbooks": ["api-down"], "inventory": "inv.yml", "limit": None})


def every_status_record() -> RunRecord:
    extra = [
        simple("api-3", Outcome.HEALTHY),
        simple("api-4", Outcome.UNREACHABLE, error="connection refused"),
        simple("api-5", Outcome.SKIPPED, error="not started: breaker"),
        simple("db-1", Outcome.WOULD_FIX, runbook="db-slow"),
        simple("db-2", Outcome.DEFERRED, runbook="db-slow", error="outside window"),
        simple("db-3", Outcome.LOCKED, runbook="db-slow", error="locked by run x"),
        simple("db-4", Outcome.ERROR, runbook="db-slow", error="check timed out"),
    ]
    return make_record(fixed_result(), failed_result(), *extra)


# --- a JUnit XSD validator: the real one when installed, else the schema's own subset -----

XS = "{http://www.w3.org/2001/XMLSchema}"
SIMPLE_TYPES = {
    "xs:string": r"(?s).*",
    "xs:nonNegativeInteger": r"\+?\d+",
    "xs:decimal": r"[+-]?(\d+(\.\d*)?|\.\d+)",
    "xs:dateTime": r"-?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?",
}


SUBSET_TAGS = {f"{XS}{t}" for t in ("element", "complexType", "sequence", "attribute")}


def schema_errors(text: str) -> list[str]:
    """Errors of ``text`` against junit.xsd: by xmlschema when installed, else our subset."""
    try:
        import xmlschema  # type: ignore[import-not-found]
    except ImportError:
        return subset_errors(xml_root(text), _declarations())
    return [str(e) for e in xmlschema.XMLSchema(str(XSD)).iter_errors(text)]


def _declarations() -> dict[str, ET.Element]:
    decls = {e.attrib["name"]: e for e in xml_root(XSD.read_text()).findall(f"{XS}element")}
    # The subset check must never pass a document because it skipped what it cannot read.
    for decl in decls.values():
        for part in decl.iter():
            assert part.tag in SUBSET_TAGS, f"junit.xsd uses {part.tag}: teach subset_errors"
            assert part.get("type", "xs:string") in SIMPLE_TYPES, part.get("type")
    return decls


def subset_errors(elem: ET.Element, decls: dict[str, ET.Element]) -> list[str]:
    """Validate against the XSD features junit.xsd uses: refs in sequences, typed attributes."""
    decl = decls.get(elem.tag)
    if decl is None:
        return [f"<{elem.tag}> is not declared"]
    complex_type = decl.find(f"{XS}complexType")
    if complex_type is None:  # a simple type: text only
        bad = elem.attrib or len(elem)
        return [f"<{elem.tag}> must hold text only"] if bad else []
    errors = _attribute_errors(elem, complex_type)
    texts = [elem.text, *(child.tail for child in elem)]
    if complex_type.get("mixed") != "true" and any((t or "").strip() for t in texts):
        errors.append(f"<{elem.tag}> may not hold text")
    errors += _sequence_errors(elem, complex_type.find(f"{XS}sequence"))
    for child in elem:
        errors += subset_errors(child, decls)
    return errors


def _attribute_errors(elem: ET.Element, complex_type: ET.Element) -> list[str]:
    declared = {a.attrib["name"]: a for a in complex_type.findall(f"{XS}attribute")}
    errors = [f"<{elem.tag}> has undeclared @{n}" for n in elem.attrib if n not in declared]
    for name, attr in declared.items():
        value = elem.get(name)
        if value is None:
            if attr.get("use") == "required":
                errors.append(f"<{elem.tag}> lacks required @{name}")
        elif not re.fullmatch(SIMPLE_TYPES[attr.attrib["type"]], value):
            errors.append(f"<{elem.tag}> @{name}={value!r} is not {attr.attrib['type']}")
    return errors


def _sequence_errors(elem: ET.Element, sequence: ET.Element | None) -> list[str]:
    children, index, errors = list(elem), 0, []
    for particle in [] if sequence is None else sequence.findall(f"{XS}element"):
        low = int(particle.get("minOccurs", "1"))
        high = particle.get("maxOccurs", "1")
        limit = len(children) if high == "unbounded" else int(high)
        count = 0
        while index < len(children) and children[index].tag == particle.get("ref"):
            index, count = index + 1, count + 1
        if not low <= count <= limit:
            errors.append(f"<{elem.tag}> has {count} <{particle.get('ref')}>")
    errors += [f"<{elem.tag}> may not hold <{c.tag}> here" for c in children[index:]]
    return errors


# --- JUnit -------------------------------------------------------------------------------


def test_junit_of_every_status_is_valid_against_the_schema() -> None:
    assert schema_errors(junit_xml(every_status_record())) == []


@pytest.mark.parametrize(
    "broken",
    [
        '<testsuites><testsuite tests="1"/></testsuites>',  # no name
        '<testsuites><testsuite name="a" tests="-1"/></testsuites>',
        '<testsuites><testsuite name="a" tests="1"><testcase name="h">'
        "<failure/><skipped/></testcase></testsuite></testsuites>",  # skipped must come first
        '<testsuites><testsuite name="a" tests="1"><case name="h"/></testsuite></testsuites>',
    ],
)
def test_the_schema_check_rejects_what_the_schema_forbids(broken: str) -> None:
    assert schema_errors(broken)


EXPECTED_ELEMENT = {
    Outcome.HEALTHY: None,
    Outcome.FIXED: "system-out",
    Outcome.MITIGATED: "failure",
    Outcome.FAILED: "failure",
    Outcome.WOULD_FIX: "failure",
    Outcome.ERROR: "failure",
    Outcome.DEFERRED: "failure",
    Outcome.LOCKED: "failure",
    Outcome.UNREACHABLE: "error",
    Outcome.SKIPPED: "skipped",
}


@pytest.mark.parametrize("status", list(Outcome))
def test_each_status_becomes_its_junit_element(status: Outcome) -> None:
    root = xml_root(junit_xml(make_record(simple("h1", status, error="why"))))
    case = root.find("testsuite/testcase")
    assert case is not None
    assert (case.get("classname"), case.get("name")) == ("api-down", "h1")
    expected = EXPECTED_ELEMENT[status]
    assert [child.tag for child in case] == ([expected] if expected else [])


def test_junit_counts_suites_per_runbook_and_totals() -> None:
    root = xml_root(junit_xml(every_status_record()))
    suites = {s.get("name"): s.attrib for s in root.findall("testsuite")}
    assert list(suites) == ["api-down", "db-slow"]
    counts = ("tests", "failures", "errors", "skipped")
    assert [suites["api-down"][c] for c in counts] == ["5", "1", "1", "1"]
    assert [suites["db-slow"][c] for c in counts] == ["4", "4", "0", "0"]
    assert [root.get(c) for c in counts] == ["9", "5", "1", "1"]
    assert suites["api-down"]["time"] == "188.000"  # wall-clock span, not a sum
    assert suites["api-down"]["timestamp"] == "2026-03-14T09:00:00+00:00"
    assert root.find("testsuite/testcase").get("time") == "188.000"  # type: ignore[union-attr]


def test_a_remaining_fault_is_a_failure_with_its_evidence_and_failing_steps() -> None:
    root = xml_root(junit_xml(make_record(failed_result())))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == (
        "still faulty after 1 verification attempt(s): health: exit status 1;"
        " escalated: api down on api-2 <b>page</b> someone"
    )
    body = failure.text or ""
    assert body.index("== evidence ==") < body.index("disk full") < body.index("== failing")
    assert "HTTP 500" in body
    assert "HTTP 503" in body
    assert "rolled back" not in body  # passing steps other than evidence are left out


def test_a_fix_carries_its_steps_in_system_out() -> None:
    root = xml_root(junit_xml(make_record(fixed_result())))
    out = root.findtext("testsuite/testcase/system-out") or ""
    assert "$ restart" in out
    assert "restarted" in out
    assert f"panic {SCRIPT}" in out


def test_control_characters_in_output_still_make_well_formed_xml() -> None:
    evidence = step(Phase.EVIDENCE, "e", StepStatus.PASSED, 0, 1, stdout="\x1b[31mred\x1b[0m")
    result = simple("h1", Outcome.FAILED, error="bell\x07 and nul\x00", steps=(evidence,))
    text = junit_xml(make_record(result))
    failure = xml_root(text).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "bell\\x07 and nul\\x00"
    assert "\\x1b[31mred" in (failure.text or "")


def test_write_junit_writes_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "junit.xml"
    write_junit(make_record(fixed_result()), path)
    assert xml_root(path.read_text()).tag == "testsuites"


# --- timeline, Markdown, HTML --------------------------------------------------------------


def test_the_timeline_runs_from_confirmation_to_verification() -> None:
    line = timeline(make_record(fixed_result()).results[0])
    assert [e.kind for e in line.events] == [
        "check", "check", "confirmed", "check", "evidence", "fix", "verify", "verify", "verified"
    ]  # fmt: skip
    assert line.confirmed_at == at(2)  # the end of the first failing detect step
    assert line.verified_at == at(187)  # the end of the last verification attempt
    assert line.time_to_repair == 185.0


def test_a_fault_left_in_place_has_no_time_to_repair() -> None:
    line = timeline(make_record(failed_result()).results[0])
    assert line.verified_at is None
    assert line.time_to_repair is None
    assert [e.kind for e in line.events][-4:] == ["rollback", "escalate", "escalated", "outcome"]


def test_markdown_report_tells_the_story_in_order() -> None:
    text = markdown_report(
        make_record(fixed_result(), failed_result(), simple("h", Outcome.HEALTHY))
    )
    assert text.startswith("# Incident report: api-down\n")
    assert "| api-1 | api-down | software.service\\_interruption | **fixed** | 3 min 5 s |" in text
    assert "Fault `software.service_interruption`." in text
    story = [
        "**09:00:02.000** ✱ **fault confirmed**",
        "evidence: journal",
        "fix: restart",
        "started 09:00:05.000, ended 09:01:05.000",
        "$ restart\n  restarted",
        "verify: attempt 1: health",
        "verify: attempt 2: health",
        "(+3 min 5 s) ✱ **fix verified**",
    ]
    positions = [text.index(s) for s in story]
    assert positions == sorted(positions)
    assert "time to repair **3 min 5 s**" in text
    assert "escalated: api down on api-2 \\<b\\>page\\</b\\> someone" in text
    assert "Healthy, every check passed: h (api-down)." in text


def test_markdown_keeps_host_text_out_of_markup() -> None:
    evidence = step(Phase.EVIDENCE, "e", StepStatus.PASSED, 0, 1, stdout="a ```` b")
    result = simple("h|1", Outcome.FAILED, error=f"{SCRIPT} | *x*", steps=(evidence,))
    text = markdown_report(make_record(result))
    outside_fences = re.sub(r"(?ms)^ *(`{3,}).*?^ *\1$", "", text)
    assert "<script>" not in outside_fences
    assert "\\<script\\>" in outside_fences
    assert "| h\\|1 |" in text
    assert "`````text\n  $ e\n  a ```` b\n  `````" in text


def test_fenced_blocks_outlast_any_backtick_run() -> None:
    assert fenced("plain") == "```text\nplain\n```"
    assert fenced("x ````` y").startswith("``````text")


class Markup(HTMLParser):
    """The tags and attribute names of an HTML document."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def test_html_report_escapes_every_value_and_loads_nothing() -> None:
    fixed = fixed_result("<img src=x onerror=alert(1)>")
    text = html_report(make_record(fixed, failed_result()))
    markup = Markup(text)
    assert markup.tags <= OUR_TAGS
    assert not {a for a in markup.attributes if a.startswith("on") or a in ("src", "href")}
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert 'data-host="&lt;img src=x onerror=alert(1)&gt;"' in text
    assert "api down on api-2 &lt;b&gt;page&lt;/b&gt; someone" in text
    assert not re.search(r"https?://", text)
    assert "Content-Security-Policy" in text


def test_html_report_has_rows_and_timeline_entries_in_order() -> None:
    text = html_report(make_record(fixed_result(), failed_result()))
    assert re.findall(r'<tr data-host="([^"]+)" data-status="([^"]+)"', text) == [
        ("api-1", "fixed"),
        ("api-2", "failed"),
    ]
    first = text[text.index('id="timeline-0"') : text.index('id="timeline-1"')]
    kinds = re.findall(r'data-kind="(\w+)"', first)
    assert kinds == ["check", "check", "confirmed", "check", "evidence", "fix", "verify",
                     "verify", "verified"]  # fmt: skip
    assert '<strong class="ttr">3 min 5 s</strong>' in first


def test_reports_of_a_minimal_record_do_not_fail() -> None:
    minimal = RunRecord.of(RunResult("", at(0), at(0)))  # no result, no command-line facts
    assert "nothing run" in markdown_report(minimal)
    assert "Incident report: no runbook" in html_report(minimal)
    assert xml_root(junit_xml(minimal)).get("tests") == "0"


def test_a_dry_run_shows_the_planned_fix_without_a_start_and_end() -> None:
    steps = (
        step(Phase.DETECT, "health", StepStatus.FAILED, 0, 1),
        step(Phase.REMEDIATE, "restart", StepStatus.PLANNED, 1, 1, rc=None),
    )
    dry = make_record(simple("h", Outcome.WOULD_FIX, steps=steps), mode=RunMode.DRY_RUN)
    text = markdown_report(dry)
    assert "(dry-run: nothing was changed)" in text
    assert "fix: restart (planned)\n  ```text\n  $ restart\n  ```" in text
    assert "started" not in text
    assert "dry-run: nothing was changed" in html_report(dry)


def test_long_output_is_cut_to_an_excerpt_that_says_so() -> None:
    result = fixed_result()
    dump = step(Phase.EVIDENCE, "dump", StepStatus.PASSED, 3, 4, stdout="x\n" * 500)
    result = replace(result, steps=(*result.steps[:3], dump, *result.steps[4:]))
    text = markdown_report(make_record(result))
    assert "  x\n" * 40 + "  … 920 more characters in the run record\n" in text


# --- oorfix report -------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    save_run(StateDir(state), make_record(fixed_result(), failed_result()), None)
    return state


@pytest.mark.parametrize(
    ("args", "start"),
    [
        ([], "# Incident report"),
        (["--format", "html"], "<!DOCTYPE html>"),
        (["--format", "junit"], "<?xml"),
    ],
)
def test_report_prints_to_stdout(stored: Path, args: list[str], start: str) -> None:
    done = CliRunner().invoke(report, ["abc1", "--state-dir", str(stored), *args])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(start)


def test_report_writes_a_file_in_the_format_its_suffix_says(stored: Path, tmp_path: Path) -> None:
    out = tmp_path / "incident.html"
    done = CliRunner().invoke(report, ["abc123", "-o", str(out), "--state-dir", str(stored)])
    assert done.exit_code == 0, done.output
    assert done.output == ""
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_report_of_an_unknown_run_exits_2(stored: Path) -> None:
    done = CliRunner().invoke(report, ["fff", "--state-dir", str(stored)])
    assert done.exit_code == 2
    assert "no run matches 'fff'" in done.output


# --- diagnose: incidents, hypotheses and what --fix did ------------------------------------

EVIDENCE = f"no route | *via* {SCRIPT}"


def diagnosis_record(**fix: Any) -> RunRecord:
    """api-1: a route missing that explains the API being down; db-1: a symptom no confirmed
    cause explains; web-1: nothing. ``fix`` gives the --fix fields (waves, conflicts, ...)."""
    api = HostDiagnosis(
        "api-1",
        (
            Hypothesis("api-down", "software.service_interruption", Verdict.CONSEQUENCE,
                       Outcome.WOULD_FIX, "health: exit status 7", "network.route_missing"),
            Hypothesis("disk-full", "storage.disk_full", Verdict.REFUTED, Outcome.HEALTHY,
                       "passed: df"),
            Hypothesis("net-route", "network.route_missing", Verdict.ROOT_CAUSE,
                       Outcome.WOULD_FIX, EVIDENCE),
        ),
        (
            Incident("api-1", "network.route_missing", "net-route", Outcome.WOULD_FIX,
                     ("software.service_interruption",),
                     (Symptom("api-down", "peer answers", "timeout", "network.route_missing"),)),
        ),
    )  # fmt: skip
    db = HostDiagnosis(
        "db-1",
        (Hypothesis("db-slow", "storage.io_slow", Verdict.UNKNOWN, Outcome.ERROR, "timed out"),),
        (Incident("db-1", None, None, None, (), (Symptom("db-slow", "p99 latency", "900 ms"),)),),
    )
    web = HostDiagnosis(
        "web-1",
        (Hypothesis("api-down", "software.crash", Verdict.REFUTED, Outcome.HEALTHY, "passed"),),
        (),
    )
    run = RunResult("d1a6", T0, at(60), RunMode.DETECT, (simple("api-1", Outcome.WOULD_FIX),))
    record = RunRecord.of(run, {"diagnosis": DiagnosisRecord(hosts=(api, db, web), **fix)})
    return RunRecord.parse(record.to_json())  # as `oorfix report` reads it back


def a_conflict() -> dict[str, Any]:
    after = HostDiagnosis(
        "api-1",
        (Hypothesis("net-route", "network.route_missing", Verdict.ROOT_CAUSE,
                    Outcome.MITIGATED, "backup path"),),
        (Incident("api-1", "network.route_missing", "net-route", Outcome.MITIGATED),),
    )  # fmt: skip
    return {
        "waves": 2,
        "explained": (Explained("api-1", "api-down", "net-route"),),
        "conflicts": (Conflict("api-1", "net-route", "fw-open", "its fault is confirmed again"),),
        "converged": False,
        "after": (after,),
    }


def test_markdown_report_shows_incidents_and_every_hypothesis() -> None:
    text = markdown_report(diagnosis_record())
    diagnosis = text[text.index("## Diagnosis") : text.index("## Timeline")]
    assert text.index("## Outcome per host") < text.index("## Diagnosis")
    assert "### api-1\n\n- root cause `network.route_missing` (net-route, **would\\_fix**);" in (
        diagnosis
    )
    assert "; explains software.service\\_interruption; symptoms: peer answers" in diagnosis
    assert "- **symptoms with no confirmed cause**: p99 latency (db-slow); escalate" in diagnosis
    assert "| hypothesis | runbook | verdict | evidence |" in diagnosis
    rows = re.findall(r"^\| (\S+) \| (\S+) \| ([^|]+?) \|", diagnosis, re.MULTILINE)
    assert rows[1:4] == [
        ("network.route\\_missing", "net-route", "**root cause**"),
        ("software.service\\_interruption", "api-down", "consequence of network.route\\_missing"),
        ("storage.disk\\_full", "disk-full", "refuted"),
    ]
    assert "| storage.io\\_slow | db-slow | not judged | timed out |" in diagnosis
    assert "No incident on web-1." in diagnosis
    assert "## Fixes" not in text  # no --fix


def test_html_report_shows_incidents_and_every_hypothesis() -> None:
    text = html_report(diagnosis_record())
    assert Markup(text).tags <= OUR_TAGS
    section = text[text.index('<section id="diagnosis">') : text.index('<section id="timelines">')]
    assert re.findall(r'<article class="diagnosis" data-host="([^"]+)"', section) == [
        "api-1",
        "db-1",
    ]
    assert (
        "root cause <code>network.route_missing</code> (net-route,"
        ' <span class="status status-would_fix">would_fix</span>);'
        " explains software.service_interruption; symptoms: peer answers"
    ) in section
    assert "<strong>symptoms with no confirmed cause</strong>: p99 latency (db-slow)" in section
    assert re.findall(r'<tr data-verdict="(\w+)">', section) == [
        "root_cause", "consequence", "refuted", "unknown"
    ]  # fmt: skip
    assert ">consequence of network.route_missing</span>" in section
    assert '<p class="muted">No incident on web-1.</p>' in section
    assert 'id="fixes"' not in text


def test_evidence_with_markup_is_escaped_in_both_reports() -> None:
    record = diagnosis_record()
    text = markdown_report(record)
    assert "| no route \\| \\*via\\* \\<script\\>alert('x')\\</script\\> |" in text
    assert "<script>" not in text
    page = html_report(record)
    assert '<td class="evidence">no route | *via* &lt;script&gt;alert(&#x27;x&#x27;)' in page
    assert "<script>" not in page
    assert Markup(page).tags <= OUR_TAGS


def test_host_names_in_a_diagnosis_are_escaped() -> None:
    record = diagnosis_record()
    assert record.diagnosis is not None
    hosts = tuple(replace(d, host=f"{d.host}<b>|*") for d in record.diagnosis.hosts)
    odd = record.model_copy(update={"diagnosis": DiagnosisRecord(hosts=hosts)})
    assert "### api-1\\<b\\>\\|\\*" in markdown_report(odd)
    page = html_report(odd)
    assert 'data-host="api-1&lt;b&gt;|*"' in page
    assert "No incident on web-1&lt;b&gt;|*." in page
    assert Markup(page).tags <= OUR_TAGS


def test_a_record_without_diagnosis_has_no_diagnosis_section() -> None:
    record = make_record(fixed_result(), failed_result())
    assert record.diagnosis is None
    assert "Diagnosis" not in markdown_report(record)
    assert "Re-diagnosis" not in markdown_report(record)
    page = html_report(record)
    assert 'id="diagnosis"' not in page
    assert "<h2>Diagnosis</h2>" not in page


def test_the_fixes_name_both_runbooks_of_a_conflict_and_do_not_converge() -> None:
    record = diagnosis_record(**a_conflict())
    text = markdown_report(record)
    fixes = text[text.index("## Fixes") : text.index("## Re-diagnosis of the hosts touched")]
    assert "- api-1: api-down cleared when net-route was fixed (explained, not fixed itself)" in (
        fixes
    )
    assert (
        "- **conflict** on api-1: fw-open undid net-route (its fault is confirmed again);"
        " stopped fixing this host"
    ) in fixes
    assert "- **not converged**: a conflict" in fixes
    after = text[text.index("## Re-diagnosis") : text.index("## Timeline")]
    assert "### api-1 (after the fixes)" in after
    assert "(net-route, **mitigated**)" in after
    assert "| network.route\\_missing | net-route | **root cause (mitigated)** | backup path |" in (
        after
    )
    page = html_report(record)
    assert (
        '<p class="conflict"><strong>conflict</strong> on api-1: fw-open undid net-route'
        " (its fault is confirmed again); stopped fixing this host</p>"
    ) in page
    assert '<p class="not-converged"><strong>not converged</strong>: a conflict</p>' in page
    assert page.index('id="fixes"') < page.index('id="after"') < page.index('id="timelines"')
    assert '<article class="diagnosis" data-host="api-1" data-stage="after">' in page
    assert '<span class="status status-mitigated">mitigated</span>' in page


def test_a_fix_run_that_converged_says_so() -> None:
    fix = {**a_conflict(), "conflicts": (), "converged": True}
    record = diagnosis_record(**fix)
    assert "- **converged** after 2 fix wave(s)" in markdown_report(record)
    page = html_report(record)
    assert '<p class="converged"><strong>converged</strong> after 2 fix wave(s)</p>' in page
    assert "not converged" not in page + markdown_report(record)


def test_not_converged_without_a_conflict_names_the_faults_left() -> None:
    left = HostDiagnosis(
        "api-1",
        (Hypothesis("api-down", "software.crash", Verdict.ROOT_CAUSE, Outcome.WOULD_FIX, "x"),),
        (Incident("api-1", "software.crash", "api-down", Outcome.WOULD_FIX),),
    )
    record = diagnosis_record(waves=1, converged=False, after=(left,))
    assert "- **not converged**: faults remain: api-1 api-down" in markdown_report(record)
    assert "<strong>not converged</strong>: faults remain: api-1 api-down</p>" in html_report(
        record
    )


def test_mitigated_is_counted_and_styled_like_the_other_outcomes() -> None:
    mitigated = simple("api-1", Outcome.MITIGATED, error="cause open: escalated")
    record = make_record(mitigated, simple("api-2", Outcome.HEALTHY))
    assert "1 mitigated, 1 healthy" in markdown_report(record)
    page = html_report(record)
    assert '<span class="status status-mitigated">mitigated</span>' in page
    assert ".status-mitigated" in page  # the stylesheet has a colour for it
