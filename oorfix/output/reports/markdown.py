"""A Markdown incident report from a run record: outcome per host and a timeline of each fault.

Anything from the record is text, never markup: inline text has Markdown's and HTML's
special characters backslash-escaped (renderers pass raw HTML through), and output goes in
fenced blocks whose fence is longer than any backtick run inside.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from oorfix.diagnosis.incidents import HostDiagnosis, Incident, Verdict
from oorfix.output.record import DiagnosisRecord, HostRecord, RunRecord
from oorfix.output.reports import (
    MILESTONES,
    Event,
    Timeline,
    clean,
    excerpt,
    format_duration,
    format_time,
    format_when,
    hypotheses,
    not_converged_because,
    outcome_counts,
    result_detail,
    run_title,
    seconds_between,
    shows_fixes,
    shows_output,
    shows_span,
    step_output,
    step_status,
    timeline,
    verdict_text,
)
from oorfix.results import Outcome

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones that can start
# markup inline, in a table cell (|) or as an entity or tag (&, <, >).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#&!~])")
_BACKTICKS = re.compile(r"`+")


def md_text(text: object) -> str:
    """Inline text with every markup character escaped and newlines folded to spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(clean(text).split()))


def md_code(text: object) -> str:
    """Inline code: never escaped inside, so delimited by more backticks than it holds."""
    body = " ".join(clean(text).split())
    ticks = "`" * (max((len(m) for m in _BACKTICKS.findall(body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{ticks}{pad}{body}{pad}{ticks}"


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a code fence that no backtick run inside can close."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def markdown_report(record: RunRecord) -> str:
    """The whole incident report as Markdown."""
    timelines = [timeline(r) for r in record.results]
    parts = [_header(record), _outcome_table(timelines)]
    if record.diagnosis is not None:
        parts += _diagnosis(record, record.diagnosis)
    shown = [t for t in timelines if _worth_a_timeline(t.result)]
    parts.append("## Timeline")
    parts += [_timeline(t) for t in shown] or ["No fault was found: every check passed."]
    healthy = [t.result for t in timelines if not _worth_a_timeline(t.result)]
    if healthy and shown:
        names = ", ".join(f"{md_text(r.host)} ({md_text(r.runbook)})" for r in healthy)
        parts.append(f"Healthy, every check passed: {names}.")
    return "\n\n".join(parts) + "\n"


def _worth_a_timeline(result: HostRecord) -> bool:
    """Healthy results are listed in the table only; everything else gets its story."""
    return result.status is not Outcome.HEALTHY


def _header(record: RunRecord) -> str:
    start, end = record.start, record.end
    mode = " (dry-run: nothing was changed)" if record.dry_run else ""
    aborted = " Interrupted by the operator." if record.aborted else ""
    lines = [
        f"# Incident report: {md_text(run_title(record))}",
        "",
        f"- **Run** {md_code(record.run_id)}{mode}",
        f"- **Operator** {md_text(record.operator)}",
        f"- **When** {format_when(start)} to {format_time(end)}"
        f" ({format_duration(seconds_between(start, end))})",
        f"- **Outcome** {md_text(outcome_counts(record.summary))};"
        f" exit code {md_text(record.exit_code)}.{aborted}",
    ]
    if record.inventory:
        lines.append(f"- **Inventory** {md_text(record.inventory)}")
    if record.limit:
        lines.append(f"- **Limit** {md_text(record.limit)}")
    return "\n".join(lines)


def _outcome_table(timelines: list[Timeline]) -> str:
    rows = [
        "## Outcome per host",
        "",
        "| host | runbook | fault | outcome | time to repair | detail |",
        "|---|---|---|---|---|---|",
    ]
    for item in timelines:
        r = item.result
        cells = (
            md_text(r.host),
            md_text(r.runbook),
            md_text(r.fault),
            f"**{md_text(r.status)}**",
            format_duration(item.time_to_repair),
            md_text(result_detail(r)),
        )
        rows.append("| " + " | ".join(c or " " for c in cells) + " |")
    return "\n".join(rows)


def _timeline(item: Timeline) -> str:
    r = item.result
    title = f"### {md_text(r.host)}: {md_text(r.runbook)} ({md_text(r.status)})"
    facts = (
        f"Fault {md_code(r.fault)}. Confirmed at {format_time(item.confirmed_at)},"
        f" verified at {format_time(item.verified_at)};"
        f" time to repair **{format_duration(item.time_to_repair)}**."
    )
    return "\n\n".join([title, facts, *(_event(e, item) for e in item.events)])


def _event(event: Event, item: Timeline) -> str:
    """One timeline entry: a list item with time and title, then the step's command and output."""
    since = seconds_between(item.confirmed_at, event.at) if item.confirmed_at else None
    head = f"- **{format_time(event.at)}**" + (f" (+{format_duration(since)})" if since else "")
    if event.kind in MILESTONES:
        return f"{head} ✱ **{md_text(event.title)}**"
    head += f" {md_text(event.kind)}: {md_text(event.title)}"
    if event.message:
        head += f": {md_text(event.message)}"
    step = event.step
    if step is None:
        return head
    lines = [f"{head} ({md_text(step_status(step))})"]
    if shows_span(event):
        lines.append(f"  started {format_time(event.at)}, ended {format_time(event.end)}")
    block = [f"$ {clean(step.command)}"] if step.command else []
    output = step_output(step)
    if shows_output(event, output):
        block.append(excerpt(output) if output else "(no output)")
    if block:
        lines.append(_indent(fenced("\n".join(block))))
    return "\n".join(lines)


def _indent(text: str) -> str:
    """Indent a block under its list item."""
    return "\n".join("  " + line if line else "" for line in text.splitlines())


def _diagnosis(record: RunRecord, diagnosis: DiagnosisRecord) -> list[str]:
    """diagnose: incidents and hypotheses per host; with --fix, what the fixes did."""
    parts = ["## Diagnosis", *_hosts(diagnosis.hosts)]
    if not shows_fixes(diagnosis):
        return parts
    lines = [
        f"- {md_text(e.host)}: {md_text(e.runbook)} cleared when {md_text(e.by)} was fixed"
        " (explained, not fixed itself)"
        for e in diagnosis.explained
    ]
    lines += [
        f"- **conflict** on {md_text(c.host)}: {md_text(c.by)} undid {md_text(c.undone)}"
        f" ({md_text(c.reason)}); stopped fixing this host"
        for c in diagnosis.conflicts
    ]
    if diagnosis.converged:
        lines.append(f"- **converged** after {diagnosis.waves} fix wave(s)")
    elif diagnosis.converged is False:
        lines.append(f"- **not converged**: {md_text(not_converged_because(record))}")
    parts += ["## Fixes", "\n".join(lines) or "No fix was made."]
    if diagnosis.after:
        suffix = " (after the fixes)"
        parts += ["## Re-diagnosis of the hosts touched", *_hosts(diagnosis.after, suffix)]
    return parts


def _hosts(diagnoses: Sequence[HostDiagnosis], suffix: str = "") -> list[str]:
    """Per host with an incident: its incidents and hypothesis table; the rest in one line."""
    parts = []
    for diagnosis in diagnoses:
        if diagnosis.incidents:
            parts.append(f"### {md_text(diagnosis.host)}{suffix}")
            parts.append("\n".join(_headline(i) for i in diagnosis.incidents))
            parts.append(_hypothesis_table(diagnosis))
    clean_hosts = [md_text(d.host) for d in diagnoses if not d.incidents]
    if clean_hosts:
        parts.append(f"No incident on {', '.join(clean_hosts)}.")
    return parts


def _headline(incident: Incident) -> str:
    if incident.root_cause is None:
        checks = ", ".join(f"{s.check} ({s.runbook})" for s in incident.symptoms)
        return f"- **symptoms with no confirmed cause**: {md_text(checks)}; escalate"
    text = (
        f"- root cause {md_code(incident.root_cause)} ({md_text(incident.runbook)},"
        f" **{md_text(incident.status)}**)"
    )
    if incident.consequences:
        text += f"; explains {md_text(', '.join(incident.consequences))}"
    if incident.symptoms:
        text += f"; symptoms: {md_text(', '.join(s.check for s in incident.symptoms))}"
    return text


def _hypothesis_table(diagnosis: HostDiagnosis) -> str:
    rows = [
        "| hypothesis | runbook | verdict | evidence |",
        "|---|---|---|---|",
    ]
    for h in hypotheses(diagnosis):
        verdict = md_text(verdict_text(h))
        if h.verdict is Verdict.ROOT_CAUSE:
            verdict = f"**{verdict}**"
        cells = (md_text(h.fault), md_text(h.runbook), verdict, md_text(h.evidence))
        rows.append("| " + " | ".join(c or " " for c in cells) + " |")
    return "\n".join(rows)
