"""Runbook test results as data: per scenario what happened, as JSON and as JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oorfix.testing.checks import Coverage
from oorfix.testing.scripted import Sent


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario: whether it passed, what differed, what each host ended as."""

    file: Path
    runbook: str
    name: str
    problems: tuple[str, ...]
    outcomes: dict[str, str]
    sent: tuple[Sent, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        """No difference from what the scenario expects."""
        return not self.problems


def as_json(results: Sequence[ScenarioResult], coverage: Sequence[Coverage]) -> str:
    """Every scenario result and the coverage of each runbook, as JSON text."""
    data: dict[str, Any] = {
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "scenarios": [
            {
                "file": str(r.file),
                "runbook": r.runbook,
                "name": r.name,
                "passed": r.passed,
                "problems": list(r.problems),
                "outcomes": r.outcomes,
                "sent": [{"host": s.host, "step": s.label, "command": s.text} for s in r.sent],
                "seconds": round(r.seconds, 4),
            }
            for r in results
        ],
        "coverage": [
            {
                "runbook": c.runbook,
                "phases_not_reached": list(c.phases),
                "steps_not_reached": list(c.steps),
            }
            for c in coverage
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def as_junit(results: Sequence[ScenarioResult]) -> str:
    """One test suite per test file, one test case per scenario; a failure lists the
    differences."""
    root = ET.Element("testsuites", name="oorfix test")
    files: dict[Path, list[ScenarioResult]] = {}
    for r in results:
        files.setdefault(r.file, []).append(r)
    for path, cases in files.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=str(path),
            tests=str(len(cases)),
            failures=str(sum(not c.passed for c in cases)),
            errors="0",
            time=f"{sum(c.seconds for c in cases):.3f}",
        )
        for case in cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=case.runbook,
                name=case.name,
                time=f"{case.seconds:.3f}",
            )
            if not case.passed:
                failure = ET.SubElement(
                    element, "failure", message=case.problems[0], type="scenario"
                )
                failure.text = "\n".join(case.problems)
    root.set("tests", str(len(results)))
    root.set("failures", str(sum(not r.passed for r in results)))
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
