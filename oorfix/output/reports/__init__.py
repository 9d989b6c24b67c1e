"""What every report of a run record shares: its timeline, times, excerpts and safe text.

A record is the JSON-ready dict of ``oorfix.output.record.run_dict`` (or one read back from the run
history), so reports work on past runs as well as on the run that just ended. Output from
hosts is data: each renderer escapes it for its own format; ``clean`` only removes what no
format can carry (control characters, lone surrogates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Record = dict[str, Any]

# Everything XML 1.0 cannot carry at all, plus the C1 controls and DEL that a terminal would
# act on; tab, newline and carriage return stay.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
EXCERPT_LINES = 40
EXCERPT_CHARS = 4000


def clean(text: object) -> str:
    """``text`` as a string with unsafe characters shown as ``\\xNN``/``\\uNNNN`` escapes."""
    return _UNSAFE.sub(_escape_char, "" if text is None else str(text))


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def parse_time(value: object) -> datetime | None:
    """A recorded ISO 8601 time, or None when it is missing or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


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


def step_output(step: Record) -> str:
    """A step's stdout and stderr as recorded, each marked, with truncation noted."""
    parts = []
    for stream in ("stdout", "stderr"):
        text = clean(step.get(stream) or "")
        if step.get(f"{stream}_truncated"):
            total = step.get(f"{stream}_bytes", "?")
            text += f"\n[{stream} truncated when captured: {total} bytes in all]"
        if text.strip():
            parts.append(text if stream == "stdout" else f"[stderr]\n{text}")
    return "\n".join(p.rstrip("\n") for p in parts)


def step_label(step: Record) -> str:
    """``name`` plus where it ran when that was another host, plus the attempt number."""
    label = clean(step.get("name") or step.get("command") or "step")
    if step.get("host"):
        label += f" (on {clean(step['host'])})"
    if step.get("phase") == "verify":
        label = f"attempt {step.get('attempt', 1)}: {label}"
    return label


def step_status(step: Record) -> str:
    """Status, exit status and reason of a step in one short line."""
    text = clean(step.get("status", "?"))
    if step.get("rc") is not None:
        text += f", rc={step['rc']}"
    if step.get("timed_out"):
        text += ", timed out"
    if step.get("reason"):
        text += f": {clean(step['reason'])}"
    return text


@dataclass(frozen=True)
class Event:
    """One entry of a timeline: a step, or a milestone such as "fault confirmed"."""

    kind: str  # check, confirmed, evidence, fix, verify, verified, rollback, escalate, outcome
    title: str
    at: datetime | None
    end: datetime | None = None
    step: Record | None = None
    message: str | None = None


_STEP_KIND = {"detect": "check", "remediate": "fix"}
MILESTONES = frozenset({"confirmed", "verified"})
# Kinds whose output belongs in a report even when the step passed.
_SHOW_OUTPUT = frozenset({"evidence", "fix", "rollback", "escalate"})


def shows_span(event: Event) -> bool:
    """Whether an entry shows start and end: a fix step that ran (not planned or skipped)."""
    ran = event.step is not None and event.step.get("status") not in ("planned", "skipped")
    return event.kind == "fix" and ran


def shows_output(event: Event, output: str) -> bool:
    """Whether a report shows a step's output: evidence and changes always, checks on failure."""
    failed = event.step is not None and event.step.get("status") in ("failed", "error")
    return bool(output and event.kind in _SHOW_OUTPUT) or failed


@dataclass(frozen=True)
class Timeline:
    """The story of one runbook on one host, in the order it happened."""

    result: Record
    events: tuple[Event, ...]
    confirmed_at: datetime | None
    verified_at: datetime | None

    @property
    def time_to_repair(self) -> float | None:
        """Seconds from the fault being confirmed to the fix being verified."""
        return seconds_between(self.confirmed_at, self.verified_at)


def timeline(result: Record) -> Timeline:
    """Build the timeline of one host result from its steps, in record (= run) order."""
    steps: list[Record] = list(result.get("steps") or [])
    first_fault = _index(steps, "detect", "failed")
    # Verified: the end of the last verification attempt of a host that ended fixed.
    last_verify = _index(steps, "verify", last=True) if result.get("status") == "fixed" else None
    confirmed, verified = _end_of(steps, first_fault), _end_of(steps, last_verify)
    events: list[Event] = []
    for index, step in enumerate(steps):
        events.append(_step_event(step))
        if index == first_fault:
            events.append(Event("confirmed", "fault confirmed", confirmed, step=step))
        if index == last_verify:
            events.append(Event("verified", "fix verified", verified))
    events.extend(_closing_events(result, steps))
    return Timeline(result, tuple(events), confirmed, verified)


def _index(
    steps: list[Record], phase: str, status: str | None = None, last: bool = False
) -> int | None:
    """The first (or last) step of ``phase`` (with ``status``), or None."""
    found = [
        i
        for i, s in enumerate(steps)
        if s.get("phase") == phase and (status is None or s.get("status") == status)
    ]
    if not found:
        return None
    return found[-1] if last else found[0]


def _end_of(steps: list[Record], index: int | None) -> datetime | None:
    return parse_time(steps[index].get("end")) if index is not None else None


def _step_event(step: Record) -> Event:
    phase = str(step.get("phase", "step"))
    return Event(
        _STEP_KIND.get(phase, phase),
        step_label(step),
        parse_time(step.get("start")),
        parse_time(step.get("end")),
        step,
    )


def _closing_events(result: Record, steps: list[Record]) -> Iterable[Event]:
    """Escalation and, unless the outcome speaks for itself, the outcome with its reason."""
    end = parse_time(result.get("end"))
    if result.get("escalation"):
        escalated = [s for s in steps if s.get("phase") == "escalate"]
        at = parse_time(escalated[-1].get("end")) if escalated else end
        yield Event("escalated", clean(result["escalation"]), at)
    for note in result.get("notes") or []:
        yield Event("note", "note", None, message=clean(note))
    status = str(result.get("status", "?"))
    if status not in ("healthy", "fixed") or result.get("error"):
        yield Event("outcome", status, end, message=clean(result.get("error") or "") or None)


def run_title(record: Record) -> str:
    """What the run was about: the runbooks that ran (or were asked for)."""
    return ", ".join(runbook_names(record)) or "no runbook"


def runbook_names(record: Record) -> list[str]:
    """The runbooks of the record's results, in order, else the ones given on the command line."""
    names = [clean(r.get("runbook", "?")) for r in record.get("results") or []]
    if not names:
        names = [clean(n) for n in record.get("runbooks") or []]
    return list(dict.fromkeys(names))


def outcome_counts(summary: dict[str, int] | None) -> str:
    """``2 fixed, 1 failed``, most serious first; ``nothing run`` when empty."""
    order = (
        "failed",
        "error",
        "unreachable",
        "would_fix",
        "deferred",
        "locked",
        "skipped",
        "fixed",
        "healthy",
    )
    counts = dict(summary or {})
    known = [(s, counts.pop(s)) for s in order if counts.get(s)]
    items = known + sorted(counts.items())
    return ", ".join(f"{n} {s}" for s, n in items) or "nothing run"


def result_detail(result: Record) -> str:
    """The one line that says why a host ended as it did."""
    parts = [clean(result.get("error") or ""), clean(result.get("escalation") or "")]
    parts += [clean(n) for n in result.get("notes") or []]
    return "; ".join(p for p in parts if p)
