"""What a scenario expected against what the run did: a list of differences, in words."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from oorfix.results import HostResult, Phase, RunMode, RunResult, StepStatus
from oorfix.runbook.loader import runbook_steps
from oorfix.runbook.models import Runbook
from oorfix.testing.models import Expect
from oorfix.testing.scripted import Script, Sent

RAN = frozenset({StepStatus.PASSED, StepStatus.FAILED, StepStatus.ERROR})


def _short(text: str, limit: int = 120) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _sent_list(sent: Sequence[Sent]) -> str:
    return "; ".join(f"{s.host}: {_short(s.text, 60)}" for s in sent) or "nothing"


def _outcomes(expect: Expect, run: RunResult) -> Iterable[str]:
    wanted = expect.outcomes()
    if wanted is None:
        return
    results = {r.host: r for r in run.results}
    per_host = wanted if isinstance(wanted, dict) else dict.fromkeys(results, wanted)
    for host, outcome in per_host.items():
        result = results.get(host)
        if result is None:
            yield f"{host}: no result (hosts run: {', '.join(results) or 'none'})"
        elif result.status is not outcome:
            why = f" ({_short(result.error)})" if result.error else ""
            yield f"{host}: outcome {result.status}, expected {outcome}{why}"


def _in_order(patterns: Sequence[str], sent: Sequence[Sent]) -> Iterable[str]:
    position = 0
    for pattern in patterns:
        found = next(
            (i for i in range(position, len(sent)) if re.search(pattern, sent[i].text)), None
        )
        if found is None:
            after = f" after {_short(sent[position - 1].text, 60)!r}" if position else ""
            yield f"no command matching {pattern!r} was sent{after}; sent: {_sent_list(sent)}"
            return
        position = found + 1


def _escalation(expect: Expect, results: Sequence[HostResult]) -> Iterable[str]:
    if expect.escalation is False:
        for r in results:
            if r.escalation is not None:
                yield f"{r.host}: escalated {_short(r.escalation)!r}, expected no escalation"
    elif isinstance(expect.escalation, str):
        messages = [r.escalation for r in results if r.escalation is not None]
        if not any(re.search(expect.escalation, m) for m in messages):
            got = "; ".join(repr(_short(m)) for m in messages) or "no escalation"
            yield f"escalation does not match {expect.escalation!r}: {got}"


def _registered(expect: Expect, results: Sequence[HostResult]) -> Iterable[str]:
    for name, pattern in expect.registered.items():
        outputs = [s.stdout.text for r in results for s in r.steps if s.name == name]
        if not outputs:
            yield f"step {name!r} did not run"
        elif not any(re.search(pattern, out) for out in outputs):
            yield f"step {name!r}: stdout {_short(outputs[-1])!r} does not match {pattern!r}"


def _read_only(run: RunResult) -> Iterable[str]:
    """Dry-run and detect send nothing that may change a host: the engine's promise."""
    if run.mode is RunMode.FIX:
        return
    for r in run.results:
        for step in r.steps:
            if step.phase.mutating and step.status in RAN:
                yield f"{r.host}: {run.mode} ran the {step.phase} step {step.name!r}"


def differences(expect: Expect, run: RunResult, script: Script) -> list[str]:
    """Every way the run differs from what the scenario expects (empty: it passed)."""
    problems = [
        f"unscripted command on {s.host}"
        + (f" (step {s.label!r})" if s.label else "")
        + f": {s.text}"
        for s in script.refused
    ]
    problems += _outcomes(expect, run)
    problems += _in_order(expect.sent, script.sent)
    for pattern in expect.not_sent:
        problems += [
            f"sent {_short(s.text)!r} to {s.host}, which matches not_sent {pattern!r}"
            for s in script.sent
            if re.search(pattern, s.text)
        ]
    problems += _escalation(expect, run.results)
    if expect.error is not None and not any(
        re.search(expect.error, r.error or "") for r in run.results
    ):
        errors = "; ".join(repr(r.error) for r in run.results)
        problems.append(f"no result's reason matches {expect.error!r}: {errors}")
    problems += _registered(expect, run.results)
    problems += _read_only(run)
    return problems


@dataclass(frozen=True)
class Coverage:
    """The phases and named steps of a runbook that no scenario reached."""

    runbook: str
    phases: tuple[str, ...]
    steps: tuple[str, ...]

    def line(self) -> str:
        """One line for people."""
        if not self.phases and not self.steps:
            return f"{self.runbook}: every phase and step reached"
        parts = []
        if self.phases:
            parts.append(f"phases not reached: {', '.join(self.phases)}")
        if self.steps:
            parts.append(f"steps not reached: {', '.join(self.steps)}")
        return f"{self.runbook}: " + "; ".join(parts)


def coverage(name: str, runbook: Runbook, runs: Iterable[RunResult]) -> Coverage:
    """What of ``runbook`` no run reached (a step with a templated name counts by phase)."""
    reached: set[tuple[Phase, str]] = set()
    phases: set[Phase] = set()
    for run in runs:
        for r in run.results:
            for step in r.steps:
                if step.status in RAN or step.status is StepStatus.PLANNED:
                    reached.add((step.phase, step.name))
                    phases.add(step.phase)
    declared = [(Phase(str(loc[0])), step.label) for loc, step in runbook_steps(runbook)]
    if runbook.remediate:
        declared += [
            (Phase.VERIFY, s.label) for s in runbook.detect if runbook.verify.checks is None
        ]
    missing_phases = sorted({str(p) for p, _ in declared} - {str(p) for p in phases})
    missing_steps = sorted(
        {
            f"{p} {label!r}"
            for p, label in declared
            if "{{" not in label and (p, label) not in reached and str(p) not in missing_phases
        }
    )
    return Coverage(name, tuple(missing_phases), tuple(missing_steps))
