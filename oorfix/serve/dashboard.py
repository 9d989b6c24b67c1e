"""The service's read-only dashboard: server-rendered pages, no JavaScript.

The front page shows the fleet's fault matrix from the newest diagnosis (as ``oorfix
diagnose`` prints it: a row per runbook with its fault, a column per host) with the incidents
it found, recent runs, the schedules with their next start, and recent alerts with what was
done with them. Alert labels are attacker-controlled: every value goes through ``esc`` (as in
the HTML incident report), ids in links through ``quote`` as well, values used in class names
are reduced to a safe token, and a Content-Security-Policy forbids scripts and every external
resource, so even a mistake in escaping could not run or load anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from oorfix.catalog import CATEGORY_ORDER
from oorfix.diagnosis.incidents import HostDiagnosis, Incident, Verdict
from oorfix.output.history import RunSummary
from oorfix.output.record import HostRecord, RunRecord
from oorfix.output.reports import format_when, not_converged_because, outcome_counts
from oorfix.output.reports.html import esc
from oorfix.serve.model import AlertEntry, DashboardData, ScheduleStatus

TITLE = "oorfix dashboard"
# base-uri and form-action as well: a meta CSP cannot forbid framing, but it can these two.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 90rem;
       padding: 0 1rem; color: #1d2129; background: #fff; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: .4rem 1.2rem; }
h1 { font-size: 1.5rem; margin: 0; }
h2 { border-bottom: 1px solid #d0d4da; padding-bottom: .2rem; margin-top: 1.8rem; }
h3 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .55rem; border-bottom: 1px solid #e3e6ea;
         vertical-align: top; }
thead th { background: #f3f5f7; white-space: nowrap; }
table.matrix td.cell, table.matrix thead th.host { text-align: center; }
time, code { font-family: ui-monospace, monospace; font-size: .9em; }
time { white-space: nowrap; }
td.free { overflow-wrap: anywhere; }  /* long label values break, not the table */
.muted { color: #57606a; }
.count { font-weight: 600; }
.status, .action, .badge { font-weight: 600; padding: .05rem .4rem; border-radius: .3rem;
                           white-space: nowrap; }
.status-healthy, .status-fixed, .action-resolved { background: #d8f3dc; color: #1b5e20; }
.status-failed, .status-error, .status-unreachable, .action-refused, .exit-bad {
  background: #fde2e1; color: #9b1c1c; }
.status-would_fix, .status-deferred, .status-locked, .status-mitigated, .action-queued,
.badge { background: #fff3cd; color: #7a4d00; }
.status-skipped, .action-duplicate, .action-unmatched, .action-unknown_host {
  background: #eceff3; color: #374151; }
.alert-firing { color: #9b1c1c; font-weight: 600; }
ul.incidents { padding-left: 1.2rem; }
ul.incidents li { margin: .2rem 0; }
.unexplained, .not-converged strong { color: #9b1c1c; font-weight: 600; }
.converged strong { color: #1b5e20; }
.unjudged { color: #7a4d00; }
"""
_TOKEN = re.compile(r"[^a-z0-9_-]+")


def dashboard_page(data: DashboardData, *, base: str = "", refresh: int | None = 30) -> str:
    """The front page: plain server-rendered HTML that works without JavaScript."""
    body = [
        _header(data, base),
        _fleet(data.diagnosis, base),
        _runs(data.runs, base, "Recent runs", more=f"{base}/runs"),
        _schedules(data.schedules, base),
        _alerts(data.alerts),
    ]
    return _page(TITLE, "\n".join(body), refresh)


def runs_page(runs: Sequence[RunSummary], base: str = "") -> str:
    """Every run given, newest first, as a page of its own (no refresh: it is for reading)."""
    header = '<header><h1>oorfix runs</h1><a href="' + esc(_root(base)) + '">dashboard</a></header>'
    return _page("oorfix runs", "\n".join([header, _runs(runs, base, "Runs")]), None)


def _page(title: str, body: str, refresh: int | None) -> str:
    # A refresh of 0 or less would reload without pause; it means "no refresh" here.
    meta = (
        f'<meta http-equiv="refresh" content="{int(refresh)}">\n' if refresh and refresh > 0 else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n{meta}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _header(data: DashboardData, base: str) -> str:
    running = len(data.running)
    ids = ", ".join(esc(j) for j in data.running)
    jobs = (
        f'<span class="count" id="running">{running}</span> job(s) running'
        + (f' <span class="muted">({ids})</span>' if ids else "")
        + f', <span class="count" id="pending">{esc(data.pending)}</span> queued'
    )
    return (
        f'<header><h1><a href="{esc(_root(base))}">oorfix</a></h1>'
        f'<p class="jobs">{jobs}</p>'
        f'<p class="muted">as of {_time(data.now)}</p></header>'
    )


def _root(base: str) -> str:
    return base.rstrip("/") + "/"


def _token(value: object) -> str:
    """A value as a class-name suffix: lower case, ``[a-z0-9_-]`` only.

    Statuses and actions are known words, but entries are read back from files (an alert
    entry is not validated), so a class never carries a space or a quote from the data.
    """
    return _TOKEN.sub("_", str(value).lower()) or "none"


def _run_link(base: str, run_id: str) -> str:
    href = f"{base.rstrip('/')}/runs/{quote(run_id, safe='')}"
    return f'<a href="{esc(href)}"><code>{esc(run_id)}</code></a>'


def _status(status: object) -> str:
    return f'<span class="status status-{_token(status)}">{esc(status)}</span>'


def _time(value: datetime | None, never: str = "—") -> str:
    """A ``<time>`` in UTC with its machine-readable value, or ``never`` greyed out."""
    if value is None:
        return f'<span class="muted">{esc(never)}</span>'
    return f'<time datetime="{esc(value.isoformat())}">{esc(format_when(value))}</time>'


def _section(name: str, title: str, parts: Sequence[str]) -> str:
    return "\n".join([f'<section id="{name}">', f"<h2>{esc(title)}</h2>", *parts, "</section>"])


def _table(
    headers: Sequence[str], rows: Sequence[str], empty: str, css: str, head: str = ""
) -> str:
    """A table with ``headers`` (or the ready ``head`` row), or ``empty`` when no row."""
    if not rows:
        return f'<p class="muted empty">{esc(empty)}</p>'
    head = head or "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (
        f'<div class="scroll"><table class="{css}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


# --- the fleet --------------------------------------------------------------------------------


def _fleet(record: RunRecord | None, base: str) -> str:
    if record is None:
        return _section("fleet", "Fleet", ['<p class="muted empty">No diagnosis yet.</p>'])
    mode = f", {esc(record.mode)}" + (", interrupted" if record.aborted else "")
    parts = [
        f'<p class="diagnosed">diagnosed {_time(record.start)} (run'
        f" {_run_link(base, record.run_id)}{mode}): {esc(outcome_counts(record.summary))};"
        f" exit code {esc(record.exit_code)}</p>",
        _matrix(record.results),
    ]
    if record.diagnosis is not None:
        parts += _incidents(record.diagnosis.hosts)
        parts += _convergence(record)
    return _section("fleet", "Fleet", parts)


def _matrix(results: Sequence[HostRecord]) -> str:
    """Runbooks (with their fault) by host, in the CLI's fault order; ``·`` where none ran."""
    hosts = list(dict.fromkeys(r.host for r in results))
    # One result per host and runbook in a run; should one repeat, the last one stands.
    cells = {(r.runbook, r.host): r for r in results}
    runbooks = {r.runbook: r.fault for r in results}
    rows = []
    for runbook, fault in sorted(runbooks.items(), key=lambda item: _fault_key(item[1], item[0])):
        row = [
            f'<th scope="row" class="runbook">{esc(runbook)}</th>',
            f"<td><code>{esc(fault)}</code></td>",
        ]
        for host in hosts:
            found = cells.get((runbook, host))
            where = f'data-host="{esc(host)}" data-runbook="{esc(runbook)}"'
            if found is None:
                row.append(f'<td class="cell none" {where}><span class="muted">·</span></td>')
            else:
                row.append(f'<td class="cell" {where}>{_status(found.status)}</td>')
        rows.append(
            f'<tr data-runbook="{esc(runbook)}" data-fault="{esc(fault)}">' + "".join(row) + "</tr>"
        )
    head = "<th>runbook</th><th>fault</th>" + "".join(
        f'<th class="host" scope="col" data-host="{esc(h)}">{esc(h)}</th>' for h in hosts
    )
    return _table((), rows, "The diagnosis covered no host.", "matrix", head)


def _fault_key(fault: str, runbook: str) -> tuple[int, str, str]:
    # The order `oorfix diagnose` prints: hardware first, network last, maintenance after.
    category = fault.split(".", 1)[0]
    rank = CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER)
    return rank, fault, runbook


def _incidents(hosts: Sequence[HostDiagnosis]) -> list[str]:
    """Per host, its incidents in short: root cause → consequences; unexplained symptoms."""
    items = [
        f'<li data-host="{esc(d.host)}"><strong>{esc(d.host)}</strong>: '
        + "; ".join(_incident(i) for i in d.incidents)
        + "</li>"
        for d in hosts
        if d.incidents
    ]
    # A host no runbook could judge (unreachable, check errors) is not a host without incident.
    quiet = [d for d in hosts if not d.incidents]
    unjudged = [esc(d.host) for d in quiet if _unjudged(d)]
    calm = [esc(d.host) for d in quiet if not _unjudged(d)]
    parts = ["<h3>Incidents</h3>"]
    if items:
        parts += ['<ul class="incidents">', *items, "</ul>"]
    if calm:
        parts.append(f'<p class="muted calm">No incident on {", ".join(calm)}.</p>')
    if unjudged:
        parts.append(f'<p class="unjudged">Not judged: {", ".join(unjudged)}.</p>')
    return parts


def _unjudged(diagnosis: HostDiagnosis) -> bool:
    return all(h.verdict is Verdict.UNKNOWN for h in diagnosis.hypotheses)


def _incident(incident: Incident) -> str:
    symptoms = ", ".join(f"{s.check} ({s.runbook})" for s in incident.symptoms)
    if incident.root_cause is None:
        return f'<span class="unexplained">symptoms with no confirmed cause</span>: {esc(symptoms)}'
    text = f'<code class="root-cause">{esc(incident.root_cause)}</code>'
    if incident.status is not None:
        text += f" {_status(incident.status)}"
    if incident.consequences:
        text += " → " + ", ".join(f"<code>{esc(c)}</code>" for c in incident.consequences)
    if symptoms:
        text += f' <span class="muted">(symptoms: {esc(symptoms)})</span>'
    return text


def _convergence(record: RunRecord) -> list[str]:
    """``diagnose --fix``: whether the fixes converged, and why not."""
    diagnosis = record.diagnosis
    if diagnosis is None or diagnosis.converged is None:
        return []
    if diagnosis.converged:
        waves = f"{diagnosis.waves} fix wave(s)"
        return [f'<p class="converged"><strong>converged</strong> after {waves}</p>']
    why = esc(not_converged_because(record))
    return [f'<p class="not-converged"><strong>not converged</strong>: {why}</p>']


# --- runs, schedules, alerts ------------------------------------------------------------------


def _runs(runs: Sequence[RunSummary], base: str, title: str, more: str | None = None) -> str:
    rows = [
        f'<tr data-run="{esc(r.id)}">'
        f"<td>{_run_link(base, r.id)}</td>"
        f"<td>{_time(r.started)}</td>"
        f"<td>{esc(r.operator)}</td>"
        f"<td>{esc(', '.join(r.runbooks) or '—')}</td>"
        f"<td>{esc(r.mode)}{' (interrupted)' if r.aborted else ''}</td>"
        f"<td>{esc(outcome_counts(r.summary))}</td>"
        f"<td>{_exit(r.exit_code)}</td>"
        "</tr>"
        for r in runs
    ]
    headers = ("run", "started", "operator", "runbooks", "mode", "outcomes", "exit")
    parts = [_table(headers, rows, "No run yet.", "runs")]
    if more is not None and runs:
        parts.append(f'<p><a href="{esc(more)}">every run</a></p>')
    return _section("runs", title, parts)


def _exit(code: int | None) -> str:
    if code is None:
        return '<span class="muted">—</span>'
    return f'<span class="exit{" exit-bad" if code else ""}">{esc(code)}</span>'


def _schedules(schedules: Sequence[ScheduleStatus], base: str) -> str:
    rows = []
    for s in schedules:
        last = _run_link(base, s.last_run_id) if s.last_run_id else '<span class="muted">—</span>'
        badge = ' <span class="badge">running</span>' if s.running else ""
        rows.append(
            f'<tr data-schedule="{esc(s.name)}">'
            f"<td>{esc(s.name)}{badge}</td>"
            f"<td>{esc(s.what)}</td>"
            f"<td>{esc(s.mode)}</td>"
            f"<td><code>{esc(s.cron)}</code> {esc(s.timezone)}</td>"
            f"<td>{_time(s.next_start, 'none')}</td>"
            f"<td>{_time(s.last_start, 'never')}</td>"
            f"<td>{last}</td>"
            f"<td>{_exit(s.last_exit)}</td>"
            f"<td>{_time(s.last_success, 'never')}</td>"
            f"<td>{esc(s.skipped)} / {esc(s.missed)}</td>"
            "</tr>"
        )
    headers = ("schedule", "runs", "mode", "cron", "next start", "last start", "last run",
               "exit", "last success", "skipped / missed")  # fmt: skip
    table = _table(headers, rows, "No schedule is configured.", "schedules")
    return _section("schedules", "Schedules", [table])


def _alerts(alerts: Sequence[AlertEntry]) -> str:
    rows = []
    for a in alerts:
        action = _token(a.action)
        rows.append(
            f'<tr data-action="{action}">'
            f"<td>{_time(a.received)}</td>"
            f'<td class="alertname free">{esc(a.alertname)}</td>'
            f'<td><span class="alert-{_token(a.status)}">{esc(a.status)}</span></td>'
            f"<td>{esc(a.route or '—')}</td>"
            f'<td class="free">{esc(a.host or "—")}</td>'
            f'<td><span class="action action-{action}">{esc(a.action)}</span></td>'
            f"<td>{esc(a.job_id or '—')}</td>"
            f'<td class="free">{esc(a.detail)}</td>'
            "</tr>"
        )
    headers = ("received", "alert", "status", "route", "host", "action", "job", "detail")
    table = _table(headers, rows, "No alert received yet.", "alerts")
    return _section("alerts", "Recent alerts", [table])
