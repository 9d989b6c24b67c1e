"""JUnit XML from a run record, for CI systems: one test case per host x runbook.

The layout is the common Jenkins/Ant one (``testsuites`` > ``testsuite`` > ``testcase``):
one suite per runbook, ``classname`` the runbook and ``name`` the host. Healthy and fixed
pass (a fix carries its steps in ``system-out``); an outcome that leaves a fault is a
``failure`` whose body holds the evidence and the failing steps; an unreachable host is an
``error``; a host not started is ``skipped``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from oorfix.output.reports import (
    Record,
    clean,
    excerpt,
    format_time,
    parse_time,
    seconds_between,
    step_label,
    step_output,
    step_status,
)

PASSED = frozenset({"healthy", "fixed"})
FAILURE = frozenset({"failed", "error", "would_fix", "deferred", "locked"})
ERROR = frozenset({"unreachable"})
SKIPPED = frozenset({"skipped"})
_BODY_LINES = 200  # a failure body is read in a CI page: long, but bounded
_BODY_CHARS = 20_000


@dataclass
class _Counts:
    """Test, failure, error and skip counts and the time span of a group of results."""

    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    starts: list[str] = field(default_factory=list)
    ends: list[str] = field(default_factory=list)

    def add(self, result: Record) -> None:
        """Count one result."""
        status = result.get("status")
        self.tests += 1
        self.failures += status in FAILURE
        self.errors += status in ERROR or status not in PASSED | FAILURE | ERROR | SKIPPED
        self.skipped += status in SKIPPED
        self.starts.append(str(result.get("start") or ""))
        self.ends.append(str(result.get("end") or ""))

    def attributes(self) -> dict[str, str]:
        """The count, time and timestamp attributes of a suite (or of all suites)."""
        start = min((t for t in map(parse_time, self.starts) if t), default=None)
        end = max((t for t in map(parse_time, self.ends) if t), default=None)
        attrs = {
            "tests": str(self.tests),
            "failures": str(self.failures),
            "errors": str(self.errors),
            "skipped": str(self.skipped),
            # Wall-clock span: hosts run in parallel, so a sum would overstate it.
            "time": _seconds(seconds_between(start, end)),
        }
        if start is not None:
            attrs["timestamp"] = start.isoformat(timespec="seconds")
        return attrs


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def junit_xml(record: Record) -> str:
    """The JUnit XML text of a run record."""
    results: list[Record] = list(record.get("results") or [])
    root = ET.Element("testsuites", name=f"oorfix run {clean(record.get('run_id', ''))}")
    total = _Counts()
    for index, (runbook, members) in enumerate(_by_runbook(results).items()):
        root.append(_suite(record, index, runbook, members))
        for result in members:
            total.add(result)
    root.attrib.update(total.attributes())
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _by_runbook(results: Iterable[Record]) -> dict[str, list[Record]]:
    groups: dict[str, list[Record]] = {}
    for result in results:
        groups.setdefault(clean(result.get("runbook", "?")), []).append(result)
    return groups


def _suite(record: Record, index: int, runbook: str, results: list[Record]) -> ET.Element:
    counts = _Counts()
    for result in results:
        counts.add(result)
    suite = ET.Element("testsuite", name=runbook, id=str(index), package="oorfix")
    suite.attrib.update(counts.attributes())
    properties = ET.SubElement(suite, "properties")
    faults = sorted({clean(r.get("fault", "")) for r in results} - {""})
    for name, value in (
        ("run_id", clean(record.get("run_id", ""))),
        ("operator", clean(record.get("operator", ""))),
        ("dry_run", str(bool(record.get("dry_run"))).lower()),
        ("fault", ", ".join(faults)),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    suite.extend(_testcase(result) for result in results)
    return suite


def _testcase(result: Record) -> ET.Element:
    status = str(result.get("status", "?"))
    span = seconds_between(parse_time(result.get("start")), parse_time(result.get("end")))
    case = ET.Element(
        "testcase",
        classname=clean(result.get("runbook", "?")),
        name=clean(result.get("host", "?")),
        time=_seconds(span),
    )
    if status in SKIPPED:
        ET.SubElement(case, "skipped", message=_message(result))
    elif status in FAILURE:
        failure = ET.SubElement(case, "failure", message=_message(result), type=status)
        failure.text = _failure_body(result)
    elif status not in PASSED:
        # Unreachable, or a status this version does not know: never a silent pass.
        error = ET.SubElement(case, "error", message=_message(result), type=status)
        error.text = _failure_body(result)
    if status == "fixed":
        ET.SubElement(case, "system-out").text = _steps_text(result.get("steps") or [])
    return case


def _message(result: Record) -> str:
    """The error, then the escalation; the bare status when neither was recorded."""
    error, escalation = clean(result.get("error") or ""), clean(result.get("escalation") or "")
    if error and escalation:
        return f"{error}; escalated: {escalation}"
    return error or (f"escalated: {escalation}" if escalation else str(result.get("status")))


def _failure_body(result: Record) -> str:
    """What was seen: the evidence steps' output, then the steps that failed or errored."""
    steps: list[Record] = list(result.get("steps") or [])
    evidence = [s for s in steps if s.get("phase") == "evidence"]
    failing = [s for s in steps if s.get("status") in ("failed", "error")]
    parts = [f"status: {clean(result.get('status'))}", f"fault: {clean(result.get('fault'))}"]
    if evidence:
        parts += ["", "== evidence ==", _steps_text(evidence)]
    if failing:
        parts += ["", "== failing steps ==", _steps_text(failing)]
    return excerpt("\n".join(parts), _BODY_LINES, _BODY_CHARS) + "\n"


def _steps_text(steps: Iterable[Record]) -> str:
    """Each step as a header line, its command and its output."""
    blocks = []
    for step in steps:
        when = format_time(parse_time(step.get("start")))
        lines = [f"[{when}] {clean(step.get('phase'))}: {step_label(step)} ({step_status(step)})"]
        if step.get("command"):
            lines.append(f"$ {clean(step['command'])}")
        output = step_output(step)
        if output:
            lines.append(excerpt(output))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
