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
from datetime import datetime

from oorfix.output.record import HostRecord, RunRecord, StepRecord
from oorfix.output.reports import (
    clean,
    excerpt,
    format_time,
    seconds_between,
    step_label,
    step_output,
    step_status,
)
from oorfix.results import Outcome, Phase, StepStatus

PASSED = frozenset({Outcome.HEALTHY, Outcome.FIXED})
# Mitigated is a failure too: the service is back, but a root cause waits for people.
FAILURE = frozenset(
    {
        Outcome.FAILED,
        Outcome.ERROR,
        Outcome.WOULD_FIX,
        Outcome.DEFERRED,
        Outcome.LOCKED,
        Outcome.MITIGATED,
    }
)
ERROR = frozenset({Outcome.UNREACHABLE})
SKIPPED = frozenset({Outcome.SKIPPED})
_BODY_LINES = 200  # a failure body is read in a CI page: long, but bounded
_BODY_CHARS = 20_000


@dataclass
class _Counts:
    """Test, failure, error and skip counts and the time span of a group of results."""

    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    starts: list[datetime] = field(default_factory=list)
    ends: list[datetime] = field(default_factory=list)

    def add(self, result: HostRecord) -> None:
        """Count one result."""
        status = result.status
        self.tests += 1
        self.failures += status in FAILURE
        self.errors += status in ERROR or status not in PASSED | FAILURE | ERROR | SKIPPED
        self.skipped += status in SKIPPED
        self.starts.append(result.start)
        self.ends.append(result.end)

    def attributes(self) -> dict[str, str]:
        """The count, time and timestamp attributes of a suite (or of all suites)."""
        start, end = min(self.starts, default=None), max(self.ends, default=None)
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


def junit_xml(record: RunRecord) -> str:
    """The JUnit XML text of a run record."""
    root = ET.Element("testsuites", name=f"oorfix run {clean(record.run_id)}")
    total = _Counts()
    for index, (runbook, members) in enumerate(_by_runbook(record.results).items()):
        root.append(_suite(record, index, runbook, members))
        for result in members:
            total.add(result)
    root.attrib.update(total.attributes())
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _by_runbook(results: Iterable[HostRecord]) -> dict[str, list[HostRecord]]:
    groups: dict[str, list[HostRecord]] = {}
    for result in results:
        groups.setdefault(clean(result.runbook), []).append(result)
    return groups


def _suite(record: RunRecord, index: int, runbook: str, results: list[HostRecord]) -> ET.Element:
    counts = _Counts()
    for result in results:
        counts.add(result)
    suite = ET.Element("testsuite", name=runbook, id=str(index), package="oorfix")
    suite.attrib.update(counts.attributes())
    properties = ET.SubElement(suite, "properties")
    faults = sorted({clean(r.fault) for r in results} - {""})
    for name, value in (
        ("run_id", clean(record.run_id)),
        ("operator", clean(record.operator)),
        ("dry_run", str(record.dry_run).lower()),
        ("fault", ", ".join(faults)),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    suite.extend(_testcase(result) for result in results)
    return suite


def _testcase(result: HostRecord) -> ET.Element:
    status = result.status
    case = ET.Element(
        "testcase",
        classname=clean(result.runbook),
        name=clean(result.host),
        time=_seconds(seconds_between(result.start, result.end)),
    )
    if status in SKIPPED:
        ET.SubElement(case, "skipped", message=_message(result))
    elif status in FAILURE:
        failure = ET.SubElement(case, "failure", message=_message(result), type=str(status))
        failure.text = _failure_body(result)
    elif status not in PASSED:
        # Unreachable, or a status this version does not know: never a silent pass.
        error = ET.SubElement(case, "error", message=_message(result), type=str(status))
        error.text = _failure_body(result)
    if status is Outcome.FIXED:
        ET.SubElement(case, "system-out").text = _steps_text(result.steps)
    return case


def _message(result: HostRecord) -> str:
    """The error, then the escalation; the bare status when neither was recorded."""
    error, escalation = clean(result.error or ""), clean(result.escalation or "")
    if error and escalation:
        return f"{error}; escalated: {escalation}"
    return error or (f"escalated: {escalation}" if escalation else str(result.status))


def _failure_body(result: HostRecord) -> str:
    """What was seen: the evidence steps' output, then the steps that failed or errored."""
    evidence = [s for s in result.steps if s.phase is Phase.EVIDENCE]
    failing = [s for s in result.steps if s.status in (StepStatus.FAILED, StepStatus.ERROR)]
    parts = [f"status: {clean(result.status)}", f"fault: {clean(result.fault)}"]
    if evidence:
        parts += ["", "== evidence ==", _steps_text(evidence)]
    if failing:
        parts += ["", "== failing steps ==", _steps_text(failing)]
    return excerpt("\n".join(parts), _BODY_LINES, _BODY_CHARS) + "\n"


def _steps_text(steps: Iterable[StepRecord]) -> str:
    """Each step as a header line, its command and its output."""
    blocks = []
    for step in steps:
        when = format_time(step.start)
        lines = [f"[{when}] {clean(step.phase)}: {step_label(step)} ({step_status(step)})"]
        if step.command:
            lines.append(f"$ {clean(step.command)}")
        output = step_output(step)
        if output:
            lines.append(excerpt(output))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
