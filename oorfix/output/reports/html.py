"""A self-contained HTML incident report from a run record.

One file, inline CSS, no script and no external resource; a Content-Security-Policy says so
to the browser too, so even a mistake in escaping could not run or load anything. Every
value from the record goes through ``esc`` (``html.escape`` with quotes) before it is
written, in text and in attributes alike.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from oorfix.diagnosis.incidents import HostDiagnosis, Incident
from oorfix.output.record import DiagnosisRecord, RunRecord, StepRecord
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

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2129; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .3rem; }
h2 { border-bottom: 1px solid #d0d4da; padding-bottom: .2rem; margin-top: 2rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e6ea;
         vertical-align: top; }
th { background: #f3f5f7; }
td.host, td.runbook, td.ttr { white-space: nowrap; }
.status { font-weight: 600; padding: .05rem .45rem; border-radius: .3rem;
          white-space: nowrap; }
.status-healthy, .status-fixed { background: #d8f3dc; color: #1b5e20; }
.status-failed, .status-error, .status-unreachable { background: #fde2e1; color: #9b1c1c; }
.status-would_fix, .status-deferred, .status-locked, .status-mitigated { background: #fff3cd;
    color: #7a5600; }
.status-skipped { background: #eceff1; color: #455a64; }
article.timeline { margin: 1.5rem 0; }
ol.events { list-style: none; padding-left: 0; border-left: 3px solid #d0d4da; }
ol.events li { margin: 0 0 .8rem 0; padding-left: .9rem; }
li.event-confirmed, li.event-escalated, li.event-outcome { border-left: 3px solid #c62828;
    margin-left: -3px !important; }
li.event-verified { border-left: 3px solid #2e7d32; margin-left: -3px !important; }
time { font-family: ui-monospace, monospace; color: #57606a; margin-right: .4rem; }
.kind { font-weight: 600; text-transform: uppercase; font-size: .78rem; letter-spacing: .04em;
        margin-right: .4rem; }
pre { background: #f6f8fa; border: 1px solid #e3e6ea; padding: .6rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; margin: .3rem 0 0 0; font-size: .85rem; }
.muted { color: #57606a; }
article.diagnosis { margin: 1.5rem 0; }
td.verdict { white-space: nowrap; }
.verdict-root_cause, .conflict strong, .not-converged strong { color: #9b1c1c; font-weight: 600; }
.verdict-consequence { color: #7a5600; }
.verdict-refuted, .converged strong { color: #1b5e20; }
.verdict-unknown { color: #57606a; }
"""


def esc(value: object) -> str:
    """Any value from the record as HTML text, safe in element content and in attributes."""
    return html.escape(clean(value), quote=True)


def html_report(record: RunRecord) -> str:
    """The whole incident report as one HTML document."""
    timelines = [timeline(r) for r in record.results]
    shown = [t for t in timelines if t.result.status is not Outcome.HEALTHY]
    healthy = [t.result for t in timelines if t.result.status is Outcome.HEALTHY]
    body = [_header(record), _outcome_table(timelines)]
    if record.diagnosis is not None:
        body += _diagnosis(record, record.diagnosis)
    body.append('<section id="timelines">')
    body.append("<h2>Timeline</h2>")
    body += [_timeline(i, t) for i, t in enumerate(shown)]
    if not shown:
        body.append('<p class="muted">No fault was found: every check passed.</p>')
    elif healthy:
        names = ", ".join(f"{esc(r.host)} ({esc(r.runbook)})" for r in healthy)
        body.append(f'<p class="muted">Healthy, every check passed: {names}.</p>')
    body.append("</section>")
    return _page(f"Incident report: {run_title(record)}", "\n".join(body))


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _header(record: RunRecord) -> str:
    start, end = record.start, record.end
    facts = [
        ("Run", f"<code>{esc(record.run_id)}</code>"),
        ("Operator", esc(record.operator)),
        (
            "When",
            f"{_time_tag(start, format_when(start))} to {_time_tag(end, format_time(end))}"
            f" ({format_duration(seconds_between(start, end))})",
        ),
        (
            "Outcome",
            f"{esc(outcome_counts(record.summary))}; exit code {esc(record.exit_code)}",
        ),
    ]
    if record.dry_run:
        facts.append(("Mode", "dry-run: nothing was changed"))
    if record.aborted:
        facts.append(("Interrupted", "by the operator; hosts not started are skipped"))
    if record.inventory:
        facts.append(("Inventory", esc(record.inventory)))
    if record.limit:
        facts.append(("Limit", esc(record.limit)))
    rows = "\n".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return (
        f"<header>\n<h1>Incident report: {esc(run_title(record))}</h1>\n"
        f'<dl class="meta">\n{rows}\n</dl>\n</header>'
    )


def _outcome_table(timelines: list[Timeline]) -> str:
    head = "".join(
        f"<th>{h}</th>" for h in ("host", "runbook", "fault", "outcome", "time to repair", "detail")
    )
    rows = [_outcome_row(t) for t in timelines]
    return (
        '<section id="outcome">\n<h2>Outcome per host</h2>\n<table class="outcome">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
        "</section>"
    )


def _outcome_row(item: Timeline) -> str:
    r = item.result
    status = esc(r.status)
    cells = [
        ("host", esc(r.host)),
        ("runbook", esc(r.runbook)),
        ("fault", f"<code>{esc(r.fault)}</code>"),
        ("outcome", f'<span class="status status-{status}">{status}</span>'),
        ("ttr", format_duration(item.time_to_repair)),
        ("detail", esc(result_detail(r))),
    ]
    tds = "".join(f'<td class="{name}">{value}</td>' for name, value in cells)
    return f'<tr data-host="{esc(r.host)}" data-status="{status}">{tds}</tr>'


def _timeline(index: int, item: Timeline) -> str:
    r = item.result
    status = esc(r.status)
    facts = (
        f"Fault <code>{esc(r.fault)}</code>. Confirmed at"
        f" {_time_tag(item.confirmed_at, format_time(item.confirmed_at))}, verified at"
        f" {_time_tag(item.verified_at, format_time(item.verified_at))}; time to repair"
        f' <strong class="ttr">{format_duration(item.time_to_repair)}</strong>.'
    )
    events = "\n".join(_event(e, item) for e in item.events)
    return (
        f'<article class="timeline" id="timeline-{index}" data-host="{esc(r.host)}"'
        f' data-runbook="{esc(r.runbook)}">\n'
        f"<h3>{esc(r.host)}: {esc(r.runbook)}"
        f' <span class="status status-{status}">{status}</span></h3>\n'
        f'<p class="facts">{facts}</p>\n<ol class="events">\n{events}\n</ol>\n</article>'
    )


def _event(event: Event, item: Timeline) -> str:
    """One timeline entry: time, kind and title, then the step's command and output."""
    since = seconds_between(item.confirmed_at, event.at) if item.confirmed_at else None
    offset = f'<span class="muted">+{format_duration(since)}</span> ' if since else ""
    kind = esc(event.kind)
    title = esc(event.title)
    if event.kind in MILESTONES:
        title = f"<strong>{title}</strong>"
    head = f'{_time_tag(event.at, format_time(event.at))}{offset}<span class="kind">{kind}</span>'
    parts = [head, title]
    if event.message:
        parts.append(f': <span class="message">{esc(event.message)}</span>')
    step = event.step
    if step is not None and event.kind not in MILESTONES:
        parts.append(f' <span class="muted">({esc(step_status(step))})</span>')
        if shows_span(event):
            parts.append(
                f'<div class="span">started {_time_tag(event.at, format_time(event.at))}'
                f" ended {_time_tag(event.end, format_time(event.end))}</div>"
            )
        parts.append(_step_block(step, event))
    return f'<li class="event event-{kind}" data-kind="{kind}">{"".join(parts)}</li>'


def _step_block(step: StepRecord, event: Event) -> str:
    lines = [f"$ {clean(step.command)}"] if step.command else []
    output = step_output(step)
    if shows_output(event, output):
        lines.append(excerpt(output) if output else "(no output)")
    return f"<pre>{esc(chr(10).join(lines))}</pre>" if lines else ""


def _time_tag(value: datetime | None, text: str) -> str:
    """A ``<time>`` element with its machine-readable value."""
    if value is None:
        return f"<time>{esc(text)}</time>"
    return f'<time datetime="{esc(value.isoformat())}">{esc(text)}</time>'


def _diagnosis(record: RunRecord, diagnosis: DiagnosisRecord) -> list[str]:
    """diagnose: incidents and hypotheses per host; with --fix, what the fixes did."""
    parts = ['<section id="diagnosis">\n<h2>Diagnosis</h2>', *_hosts(diagnosis.hosts), "</section>"]
    if not shows_fixes(diagnosis):
        return parts
    lines = [
        f'<p class="explained">{esc(e.host)}: {esc(e.runbook)} cleared when {esc(e.by)}'
        " was fixed (explained, not fixed itself)</p>"
        for e in diagnosis.explained
    ]
    lines += [
        f'<p class="conflict"><strong>conflict</strong> on {esc(c.host)}: {esc(c.by)} undid'
        f" {esc(c.undone)} ({esc(c.reason)}); stopped fixing this host</p>"
        for c in diagnosis.conflicts
    ]
    if diagnosis.converged:
        lines.append(
            f'<p class="converged"><strong>converged</strong> after {diagnosis.waves}'
            " fix wave(s)</p>"
        )
    elif diagnosis.converged is False:
        lines.append(
            '<p class="not-converged"><strong>not converged</strong>:'
            f" {esc(not_converged_because(record))}</p>"
        )
    lines = lines or ['<p class="muted">No fix was made.</p>']
    parts += ['<section id="fixes">\n<h2>Fixes</h2>', *lines, "</section>"]
    if diagnosis.after:
        parts += [
            '<section id="after">\n<h2>Re-diagnosis of the hosts touched</h2>',
            *_hosts(diagnosis.after, "after"),
            "</section>",
        ]
    return parts


def _hosts(diagnoses: Sequence[HostDiagnosis], stage: str = "before") -> list[str]:
    """Per host with an incident: its incidents and hypothesis table; the rest in one line."""
    parts = [
        f'<article class="diagnosis" data-host="{esc(d.host)}" data-stage="{stage}">\n'
        f"<h3>{esc(d.host)}</h3>\n" + "\n".join(_headline(i) for i in d.incidents) + "\n"
        f"{_hypothesis_table(d)}\n</article>"
        for d in diagnoses
        if d.incidents
    ]
    clean_hosts = [esc(d.host) for d in diagnoses if not d.incidents]
    if clean_hosts:
        parts.append(f'<p class="muted">No incident on {", ".join(clean_hosts)}.</p>')
    return parts


def _headline(incident: Incident) -> str:
    if incident.root_cause is None:
        checks = ", ".join(f"{s.check} ({s.runbook})" for s in incident.symptoms)
        return (
            '<p class="incident unexplained"><strong>symptoms with no confirmed cause</strong>:'
            f" {esc(checks)}; escalate</p>"
        )
    status = esc(incident.status)
    text = (
        f"root cause <code>{esc(incident.root_cause)}</code> ({esc(incident.runbook)},"
        f' <span class="status status-{status}">{status}</span>)'
    )
    if incident.consequences:
        text += f"; explains {esc(', '.join(incident.consequences))}"
    if incident.symptoms:
        text += f"; symptoms: {esc(', '.join(s.check for s in incident.symptoms))}"
    return f'<p class="incident">{text}</p>'


def _hypothesis_table(diagnosis: HostDiagnosis) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("hypothesis", "runbook", "verdict", "evidence"))
    rows = []
    for h in hypotheses(diagnosis):
        verdict = esc(h.verdict.name.lower())
        cells = [
            ("fault", f"<code>{esc(h.fault)}</code>"),
            ("runbook", esc(h.runbook)),
            ("verdict", f'<span class="verdict-{verdict}">{esc(verdict_text(h))}</span>'),
            ("evidence", esc(h.evidence)),
        ]
        tds = "".join(f'<td class="{name}">{value}</td>' for name, value in cells)
        rows.append(f'<tr data-verdict="{verdict}">{tds}</tr>')
    return (
        f'<table class="hypotheses">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )
