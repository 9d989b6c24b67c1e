"""The service's read-only dashboard: one server-rendered page, no JavaScript.

The fleet's fault matrix from the newest diagnosis (faults by host, as `oorfix diagnose`
prints it) with its incidents, recent runs, the schedules with their next start, and recent
alerts with what was done with them. Alert labels are attacker-controlled: every value goes
through ``esc`` (as in the HTML incident report), ids in links through ``quote`` as well, and
a Content-Security-Policy forbids scripts and every external resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from urllib.parse import quote

from oorfix.output.history import RunSummary
from oorfix.output.record import RunRecord
from oorfix.output.reports import format_time, outcome_counts
from oorfix.output.reports.html import esc
from oorfix.serve.model import AlertEntry, DashboardData, ScheduleStatus

_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 80rem;
       padding: 0 1rem; color: #1d2129; background: #fff; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { border-bottom: 1px solid #d0d4da; padding-bottom: .2rem; margin-top: 1.8rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .55rem; border-bottom: 1px solid #e3e6ea;
         vertical-align: top; }
th { background: #f3f5f7; }
td.cell { text-align: center; }
.muted { color: #6b7280; }
.status, .action, .badge { font-weight: 600; padding: .05rem .4rem; border-radius: .3rem;
                           white-space: nowrap; }
.status-healthy, .status-fixed, .action-resolved { background: #d8f3dc; color: #1b5e20; }
.status-failed, .status-error, .status-unreachable, .action-refused { background: #fde2e1;
                                                                      color: #9b1c1c; }
.status-would_fix, .status-deferred, .status-locked, .status-mitigated, .action-queued,
.badge { background: #fff3cd; color: #7a4d00; }
.status-skipped, .action-duplicate, .action-unmatched, .action-unknown_host {
  background: #eceff3; color: #374151; }
code { font-size: .92em; }
"""
# The worst status wins a cell where several runbooks of one fault ran on a host.
_RANK = ("failed", "error", "unreachable", "would_fix", "deferred", "locked", "mitigated",
         "fixed", "skipped", "healthy")  # fmt: skip


def dashboard_page(data: DashboardData, *, base: str = "", refresh: int | None = 30) -> str:
    """The front page: plain server-rendered HTML that works without JavaScript."""
    running = len(data.running)
    header = (
        "<header><h1>oorfix</h1>"
        f'<p class="muted">{esc(format_time(data.now))}: {running} job(s) running, '
        f"{esc(data.pending)} queued</p></header>"
    )
    body = [
        header,
        _fleet(data.diagnosis, base),
        _runs(data.runs, base),
        _schedules(data.schedules, base),
        _alerts(data.alerts),
    ]
    return _page("oorfix dashboard", "\n".join(body), refresh)


def _page(title: str, body: str, refresh: int | None) -> str:
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">\n' if refresh else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n{meta}'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def _run_link(base: str, run_id: str) -> str:
    return (
        f'<a href="{esc(base)}/runs/{esc(quote(run_id, safe=""))}"><code>{esc(run_id)}</code></a>'
    )


def _status(status: str) -> str:
    return f'<span class="status status-{esc(status)}">{esc(status)}</span>'


def _table(headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def _fleet(record: RunRecord | None, base: str) -> str:
    parts = ['<section id="fleet">', "<h2>Fleet</h2>"]
    if record is None:
        parts.append('<p class="muted">No diagnosis yet.</p></section>')
        return "\n".join(parts)
    parts.append(
        f'<p class="muted">diagnosed {esc(format_time(record.start))} '
        f"(run {_run_link(base, record.run_id)}; {esc(outcome_counts(record.summary))})</p>"
    )
    hosts = list(dict.fromkeys(r.host for r in record.results))
    cells: dict[tuple[str, str], str] = {}
    for result in record.results:
        key, status = (result.fault, result.host), str(result.status)
        rank = _RANK.index(status) if status in _RANK else 0
        if key not in cells or rank < _RANK.index(cells[key]):
            cells[key] = status
    rows = []
    for fault in sorted({r.fault for r in record.results}):
        row = [f"<th>{esc(fault)}</th>"]
        for host in hosts:
            found = cells.get((fault, host))
            cell = _status(found) if found else '<span class="muted">·</span>'
            row.append(f'<td class="cell" data-host="{esc(host)}">{cell}</td>')
        rows.append(f'<tr data-fault="{esc(fault)}">' + "".join(row) + "</tr>")
    parts.append(_table(["fault", *hosts], rows, "The diagnosis covered no host."))
    parts += _incidents(record)
    parts.append("</section>")
    return "\n".join(parts)


def _incidents(record: RunRecord) -> list[str]:
    diagnosis = record.diagnosis
    if diagnosis is None:
        return []
    items = []
    for host in diagnosis.hosts:
        for incident in host.incidents:
            cause = incident.root_cause or "no known cause"
            explained = ", ".join(incident.consequences) if incident.consequences else ""
            more = f" explains {esc(explained)}" if explained else ""
            symptoms = ", ".join(s.check for s in incident.symptoms)
            seen = f"; symptoms: {esc(symptoms)}" if symptoms else ""
            items.append(f"<li><strong>{esc(host.host)}</strong>: {esc(cause)}{more}{seen}</li>")
    if not items:
        return ['<p class="muted">No incident: every hypothesis was refuted.</p>']
    return ["<h3>Incidents</h3>", "<ul>", *items, "</ul>"]


def _runs(runs: Sequence[RunSummary], base: str) -> str:
    rows = [
        "<tr>"
        f"<td>{_run_link(base, r.id)}</td>"
        f"<td>{esc(format_time(r.started))}</td>"
        f"<td>{esc(r.operator)}</td>"
        f"<td>{esc(', '.join(r.runbooks))}</td>"
        f"<td>{esc(r.mode)}{' (aborted)' if r.aborted else ''}</td>"
        f"<td>{esc(outcome_counts(r.summary))}</td>"
        f"<td>{esc(r.exit_code)}</td>"
        "</tr>"
        for r in runs
    ]
    headers = ["run", "started", "operator", "runbooks", "mode", "outcomes", "exit"]
    return (
        '<section id="runs">\n<h2>Recent runs</h2>\n'
        + _table(headers, rows, "No run yet.")
        + "\n</section>"
    )


def _when(value: datetime | None) -> str:
    return esc(format_time(value)) if value is not None else '<span class="muted">never</span>'


def _schedules(schedules: Sequence[ScheduleStatus], base: str) -> str:
    rows = []
    for s in schedules:
        last = _run_link(base, s.last_run_id) if s.last_run_id else ""
        badge = ' <span class="badge">running</span>' if s.running else ""
        rows.append(
            "<tr>"
            f"<td>{esc(s.name)}{badge}</td>"
            f"<td>{esc(s.what)}</td>"
            f"<td>{esc(s.mode)}</td>"
            f"<td><code>{esc(s.cron)}</code> {esc(s.timezone)}</td>"
            f"<td>{_when(s.next_start)}</td>"
            f"<td>{_when(s.last_start)}</td>"
            f"<td>{last}</td>"
            f"<td>{esc('' if s.last_exit is None else s.last_exit)}</td>"
            f"<td>{_when(s.last_success)}</td>"
            f"<td>{esc(s.skipped)} / {esc(s.missed)}</td>"
            "</tr>"
        )
    headers = ["schedule", "runs", "mode", "cron", "next start", "last start", "last run",
               "exit", "last success", "skipped / missed"]  # fmt: skip
    return (
        '<section id="schedules">\n<h2>Schedules</h2>\n'
        + _table(headers, rows, "No schedule is configured.")
        + "\n</section>"
    )


def _alerts(alerts: Sequence[AlertEntry]) -> str:
    rows = [
        "<tr>"
        f"<td>{esc(format_time(a.received))}</td>"
        f"<td>{esc(a.alertname)}</td>"
        f"<td>{esc(a.status)}</td>"
        f"<td>{esc(a.route or '')}</td>"
        f"<td>{esc(a.host or '')}</td>"
        f'<td><span class="action action-{esc(a.action)}">{esc(a.action)}</span></td>'
        f"<td>{esc(a.job_id or '')}</td>"
        f"<td>{esc(a.detail)}</td>"
        "</tr>"
        for a in alerts
    ]
    headers = ["received", "alert", "status", "route", "host", "action", "job", "detail"]
    return (
        '<section id="alerts">\n<h2>Recent alerts</h2>\n'
        + _table(headers, rows, "No alert received yet.")
        + "\n</section>"
    )
