"""What every report of a run record shares: its timeline, times, excerpts and safe text.

A record is an ``oorfix.output.record.RunRecord``: made from the run that just ended or read
back from the run history, so reports work on past runs as well. Output from hosts is data:
each renderer escapes it for its own format; ``clean`` only removes what no format can carry
(control characters, lone surrogates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from oorfix.diagnosis.converge import still_open
from oorfix.diagnosis.incidents import HostDiagnosis, Hypothesis, Verdict
from oorfix.output.record import DiagnosisRecord, HostRecord, RunRecord, StepRecord, Stream
from oorfix.results import Outcome, Phase, StepStatus

# Everything XML 1.0 cannot carry at all, plus the C1 controls and DEL that a terminal would
# act on; tab, newline and carriage return stay.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
EXCERPT_LINES = 40
EXCERPT_CHARS = 4000
_STREAMS: tuple[Stream, ...] = ("stdout", "stderr")


def clean(text: object) -> str:
    """``text`` as a string with unsafe characters shown as ``\\xNN``/``\\uNNNN`` escapes."""
    return _UNSAFE.sub(_escape_char, "" if text is None else str(text))


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def format_time(value: datetime | None) -> str:
    """A time of day in UTC with milliseconds, or an em dash."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def format_when(value: datetime | None) -> str:
    """A date and time in UTC, for headers and tables."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``2 min 5 s`` or ``1 h 3 min``; an em dash for None."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from ``start`` to ``end``, when both are known."""
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def excerpt(text: str, max_lines: int = EXCERPT_LINES, max_chars: int = EXCERPT_CHARS) -> str:
    """The head of ``text``, cut at ``max_lines`` lines or ``max_chars``, saying what was cut."""
    lines = text.rstrip("\n").splitlines()
    kept = "\n".join(lines[:max_lines])
    if len(kept) > max_chars:
        kept = kept[:max_chars]
    hidden = len(text.rstrip("\n")) - len(kept)
    if hidden > 0:
        kept += f"\n… {hidden} more characters in the run record"
    return kept


def step_output(step: StepRecord) -> str:
    """A step's stdout and stderr as recorded, each marked, with truncation noted."""
    parts = []
    for name in _STREAMS:
        stream = step.stream(name)
        text = clean(stream.text)
        if stream.truncated:
            text += f"\n[{name} truncated when captured: {stream.total_bytes} bytes in all]"
        if text.strip():
            parts.append(text if name == "stdout" else f"[stderr]\n{text}")
    return "\n".join(p.rstrip("\n") for p in parts)


def step_label(step: StepRecord) -> str:
    """``name`` plus where it ran when that was another host, plus the attempt number."""
    label = clean(step.name or step.command or "step")
    if step.host:
        label += f" (on {clean(step.host)})"
    if step.phase is Phase.VERIFY:
        label = f"attempt {step.attempt}: {label}"
    return label


def step_status(step: StepRecord) -> str:
    """Status, exit status and reason of a step in one short line."""
    text = clean(step.status)
    if step.rc is not None:
        text += f", rc={step.rc}"
    if step.timed_out:
        text += ", timed out"
    if step.reason:
        text += f": {clean(step.reason)}"
    return text


@dataclass(frozen=True)
class Event:
    """One entry of a timeline: a step, or a milestone such as "fault confirmed"."""

    kind: str  # check, confirmed, evidence, fix, verify, verified, rollback, escalate, outcome
    title: str
    at: datetime | None
    end: datetime | None = None
    step: StepRecord | None = None
    message: str | None = None


_STEP_KIND = {Phase.DETECT: "check", Phase.REMEDIATE: "fix"}
MILESTONES = frozenset({"confirmed", "verified"})
# Kinds whose output belongs in a report even when the step passed.
_SHOW_OUTPUT = frozenset({"evidence", "fix", "rollback", "escalate"})
_NOT_RUN = frozenset({StepStatus.PLANNED, StepStatus.SKIPPED})
_BAD = frozenset({StepStatus.FAILED, StepStatus.ERROR})


def shows_span(event: Event) -> bool:
    """Whether an entry shows start and end: a fix step that ran (not planned or skipped)."""
    ran = event.step is not None and event.step.status not in _NOT_RUN
    return event.kind == "fix" and ran


def shows_output(event: Event, output: str) -> bool:
    """Whether a report shows a step's output: evidence and changes always, checks on failure."""
    failed = event.step is not None and event.step.status in _BAD
    return bool(output and event.kind in _SHOW_OUTPUT) or failed


@dataclass(frozen=True)
class Timeline:
    """The story of one runbook on one host, in the order it happened."""

    result: HostRecord
    events: tuple[Event, ...]
    confirmed_at: datetime | None
    verified_at: datetime | None

    @property
    def time_to_repair(self) -> float | None:
        """Seconds from the fault being confirmed to the fix being verified."""
        return seconds_between(self.confirmed_at, self.verified_at)


def timeline(result: HostRecord) -> Timeline:
    """Build the timeline of one host result from its steps, in record (= run) order."""
    steps = result.steps
    first_fault = _index(steps, Phase.DETECT, StepStatus.FAILED)
    # Verified: the end of the last verification attempt of a host that ended fixed.
    fixed = result.status in (Outcome.FIXED, Outcome.MITIGATED)
    last_verify = _index(steps, Phase.VERIFY, last=True) if fixed else None
    confirmed, verified = _end_of(steps, first_fault), _end_of(steps, last_verify)
    events: list[Event] = []
    for index, step in enumerate(steps):
        events.append(_step_event(step))
        if index == first_fault:
            events.append(Event("confirmed", "fault confirmed", confirmed, step=step))
        if index == last_verify:
            events.append(Event("verified", "fix verified", verified))
    events.extend(_closing_events(result))
    return Timeline(result, tuple(events), confirmed, verified)


def _index(
    steps: Sequence[StepRecord],
    phase: Phase,
    status: StepStatus | None = None,
    last: bool = False,
) -> int | None:
    """The first (or last) step of ``phase`` (with ``status``), or None."""
    found = [
        i
        for i, s in enumerate(steps)
        if s.phase is phase and (status is None or s.status is status)
    ]
    if not found:
        return None
    return found[-1] if last else found[0]


def _end_of(steps: Sequence[StepRecord], index: int | None) -> datetime | None:
    return steps[index].end if index is not None else None


def _step_event(step: StepRecord) -> Event:
    kind = _STEP_KIND.get(step.phase, str(step.phase))
    return Event(kind, step_label(step), step.start, step.end, step)


def _closing_events(result: HostRecord) -> Iterable[Event]:
    """Escalation and, unless the outcome speaks for itself, the outcome with its reason."""
    if result.escalation:
        escalated = [s for s in result.steps if s.phase is Phase.ESCALATE]
        at = escalated[-1].end if escalated else result.end
        yield Event("escalated", clean(result.escalation), at)
    for note in result.notes:
        yield Event("note", "note", None, message=clean(note))
    if result.status not in (Outcome.HEALTHY, Outcome.FIXED) or result.error:
        message = clean(result.error or "") or None
        yield Event("outcome", str(result.status), result.end, message=message)


def run_title(record: RunRecord) -> str:
    """What the run was about: the runbooks that ran (or were asked for)."""
    return ", ".join(runbook_names(record)) or "no runbook"


def runbook_names(record: RunRecord) -> list[str]:
    """The runbooks of the record's results, in order, else the ones given on the command line."""
    names = [clean(r.runbook) for r in record.results]
    if not names:
        names = [clean(n) for n in record.runbooks or ()]
    return list(dict.fromkeys(names))


def outcome_counts(summary: Mapping[str, int] | None) -> str:
    """``2 fixed, 1 failed``, most serious first; ``nothing run`` when empty."""
    order = (
        "failed",
        "error",
        "unreachable",
        "would_fix",
        "deferred",
        "locked",
        "mitigated",
        "skipped",
        "fixed",
        "healthy",
    )
    counts = dict(summary or {})
    known = [(s, counts.pop(s)) for s in order if counts.get(s)]
    items = known + sorted(counts.items())
    return ", ".join(f"{n} {s}" for s, n in items) or "nothing run"


def result_detail(result: HostRecord) -> str:
    """The one line that says why a host ended as it did."""
    parts = [clean(result.error or ""), clean(result.escalation or "")]
    parts += [clean(n) for n in result.notes]
    return "; ".join(p for p in parts if p)


def hypotheses(diagnosis: HostDiagnosis) -> list[Hypothesis]:
    """A host's hypotheses as the console lists them: root causes first, refuted ones last."""
    order = list(Verdict)
    return sorted(diagnosis.hypotheses, key=lambda h: order.index(h.verdict))


def verdict_text(hypothesis: Hypothesis) -> str:
    """``root cause``, ``consequence of <fault>``, ``refuted`` or ``not judged``, with
    ``(mitigated)`` when the fault's impact is gone but it remains."""
    text = str(hypothesis.verdict)
    if hypothesis.explained_by:
        text += f" of {hypothesis.explained_by}"
    if hypothesis.status is Outcome.MITIGATED:
        text += " (mitigated)"
    return text


def shows_fixes(diagnosis: DiagnosisRecord) -> bool:
    """Whether ``diagnose --fix`` did something worth a section: a fix wave, or it failed to
    converge without one (a fault it could not fix)."""
    return bool(diagnosis.waves or diagnosis.conflicts or diagnosis.explained) or (
        diagnosis.converged is False
    )


def not_converged_because(record: RunRecord) -> str:
    """Why ``diagnose --fix`` did not converge: a conflict, or the faults that remain."""
    diagnosis = record.diagnosis
    if diagnosis is None:
        return ""
    if diagnosis.conflicts:
        return "a conflict"
    left = [f"{d.host} {h.runbook}" for d in diagnosis.after for h in still_open(d)]
    unexplained = [
        d.host for d in diagnosis.after if any(i.root_cause is None for i in d.incidents)
    ]
    # A host no fix changed (deferred, locked, unreachable) keeps what it had.
    rediagnosed = {d.host for d in diagnosis.after}
    left += [
        f"{r.host} {r.runbook}"
        for r in record.results
        if r.host not in rediagnosed and r.status.fault_remains
    ]
    reasons = []
    if left:
        reasons.append("faults remain: " + ", ".join(sorted(set(left))))
    if unexplained:
        reasons.append("symptoms with no confirmed cause on " + ", ".join(unexplained))
    return "; ".join(reasons) or "faults remain"
