"""diagnose on the terminal: the hypothesis table per host, and what --fix did."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from oorfix.diagnosis.converge import Convergence
from oorfix.diagnosis.incidents import HostDiagnosis, Incident, Verdict
from oorfix.results import Outcome

VERDICT_STYLE = {
    Verdict.ROOT_CAUSE: "[bold red]root cause[/]",
    Verdict.CONSEQUENCE: "[yellow]consequence[/]",
    Verdict.REFUTED: "[green]refuted[/]",
    Verdict.UNKNOWN: "[magenta]not judged[/]",
}


def _headline(incident: Incident) -> str:
    if incident.root_cause is None:
        checks = ", ".join(f"{s.check} ({s.runbook})" for s in incident.symptoms)
        return f"[bold red]symptoms with no confirmed cause[/]: {escape(checks)}; escalate"
    text = f"root cause [bold]{escape(incident.root_cause)}[/] ({escape(incident.runbook or '')}"
    text += f", {incident.status})"
    if incident.consequences:
        text += f"; explains {escape(', '.join(incident.consequences))}"
    if incident.symptoms:
        text += f"; symptoms: {escape(', '.join(s.check for s in incident.symptoms))}"
    return text


def hypothesis_table(diagnosis: HostDiagnosis) -> Table:
    """The hypotheses tested on one host: fault, runbook, verdict and the deciding check."""
    table = Table(title=f"{diagnosis.host}: hypotheses", title_justify="left", show_lines=False)
    table.add_column("hypothesis (runbook)", overflow="fold", ratio=2)
    table.add_column("verdict", overflow="fold", ratio=1)
    table.add_column("evidence", overflow="fold", ratio=3, min_width=24)
    order = list(Verdict)
    for h in sorted(diagnosis.hypotheses, key=lambda h: order.index(h.verdict)):
        verdict = VERDICT_STYLE[h.verdict]
        if h.explained_by:
            verdict += f" of {escape(h.explained_by)}"
        if h.status is Outcome.MITIGATED:
            verdict += " [yellow](mitigated)[/]"
        hypothesis = f"{escape(h.fault)} [dim]({escape(h.runbook)})[/]"
        table.add_row(hypothesis, verdict, escape(h.evidence))
    return table


def print_diagnosis(console: Console, diagnoses: Sequence[HostDiagnosis]) -> None:
    """Per host with an incident: its incidents and hypothesis table; the rest in one line."""
    clean = [d.host for d in diagnoses if not d.incidents]
    for diagnosis in diagnoses:
        if not diagnosis.incidents:
            continue
        console.print()
        for incident in diagnosis.incidents:
            console.print(f"[bold]{escape(diagnosis.host)}[/]: {_headline(incident)}")
        console.print(hypothesis_table(diagnosis))
    if clean:
        console.print(f"[green]no incident[/] on {escape(', '.join(clean))}")


def print_convergence(console: Console, done: Convergence) -> None:
    """What the fixes explained, any conflict, and whether the fleet converged."""
    for item in done.explained:
        console.print(
            f"{escape(item.host)}: {escape(item.runbook)} cleared when {escape(item.by)} "
            "was fixed (explained, not fixed itself)"
        )
    for conflict in done.conflicts:
        console.print(
            f"[bold red]conflict[/] on {escape(conflict.host)}: {escape(conflict.by)} undid "
            f"{escape(conflict.undone)} ({escape(conflict.reason)}); stopped fixing this host"
        )
    if done.waves:
        console.print("\n[bold]re-diagnosis of the hosts touched[/]")
        print_diagnosis(console, done.after)
    if done.converged:
        console.print(f"[bold green]converged[/] after {done.waves} fix wave(s)")
    else:
        left = ", ".join(sorted({f"{r.host} {r.runbook}" for r in done.remaining}))
        why = "a conflict" if done.conflicts else f"faults remain: {left}"
        console.print(f"[bold red]not converged[/]: {escape(why)}")
