"""Run history: every run's record, rendered plan and evidence, kept in the state directory.

    runs/<start>-<run_id>/record.json
                          plan.json                                (when a plan was given)
                          evidence/<host>/<runbook>/<n>-<slug>.txt (one per evidence step)

A run is written into a hidden temporary directory and renamed into place, so a reader (or
``oorfix runs`` while a run ends) sees a whole run or none of it.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from oorfix.errors import InputError
from oorfix.output.reports import clean, parse_time, runbook_names, step_output
from oorfix.safety.state import StateDir, safe_name

RECORD = "record.json"
PLAN = "plan.json"
EVIDENCE = "evidence"
_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG_MAX = 48
_EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class RunSummary:
    """One past run as ``oorfix runs`` lists it."""

    id: str
    path: Path
    started: datetime | None
    operator: str
    runbooks: tuple[str, ...]
    dry_run: bool
    aborted: bool
    exit_code: int | None
    summary: dict[str, int] = field(default_factory=dict)


def run_dir_name(record: dict[str, Any]) -> str:
    """``<start as YYYYmmddTHHMMSSZ>-<run_id>``: names sort in the order runs started."""
    started = parse_time(record.get("start")) or datetime.now(UTC)
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{safe_name(str(record.get('run_id') or 'unknown'))}"


def save_run(state: StateDir, record: dict[str, Any], plan: list[dict[str, Any]] | None) -> Path:
    """Store a run's record, plan and evidence files; return the run's directory."""
    state.ensure()
    target = state.runs / run_dir_name(record)
    tmp = Path(tempfile.mkdtemp(dir=state.runs, prefix=f".tmp-{target.name}-"))
    try:
        _write_json(tmp / RECORD, record)
        if plan is not None:
            _write_json(tmp / PLAN, plan)
        for relative, text in evidence_files(record).items():
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        _replace_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _replace_dir(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; a run saved again replaces its earlier copy."""
    if target.exists():
        old = target.with_name(f".old-{target.name}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


def evidence_files(record: dict[str, Any]) -> dict[Path, str]:
    """Relative path -> text of one file per evidence step of every host result."""
    files: dict[Path, str] = {}
    counters: dict[Path, int] = {}
    for result in record.get("results") or []:
        folder = Path(
            EVIDENCE, safe_name(str(result.get("host"))), safe_name(str(result.get("runbook")))
        )
        for step in result.get("steps") or []:
            if step.get("phase") != "evidence":
                continue
            counters[folder] = counters.get(folder, 0) + 1
            name = f"{counters[folder]}-{slug(str(step.get('name') or step.get('command')))}.txt"
            files[folder / name] = evidence_text(result, step)
    return files


def slug(text: str) -> str:
    """A short lowercase file-name fragment: ``journalctl -u pg-api`` -> ``journalctl-u-pg-api``."""
    return _SLUG.sub("-", text.lower()).strip("-")[:_SLUG_MAX].rstrip("-") or "step"


def evidence_text(result: dict[str, Any], step: dict[str, Any]) -> str:
    """A header saying where, when and what ran, then stdout and stderr as recorded."""
    header = [
        f"# host: {clean(result.get('host'))}",
        f"# runbook: {clean(result.get('runbook'))}",
        f"# step: {clean(step.get('name'))}",
    ]
    if step.get("host"):
        header.append(f"# ran on: {clean(step['host'])}")
    header += [
        f"# command: {clean(step.get('command'))}",
        f"# status: {clean(step.get('status'))}, rc={step.get('rc')}",
        f"# start: {clean(step.get('start'))}  end: {clean(step.get('end'))}",
    ]
    if step.get("reason"):
        header.append(f"# reason: {clean(step['reason'])}")
    return "\n".join(header) + "\n\n" + step_output(step) + "\n"


def list_runs(state: StateDir) -> list[RunSummary]:
    """Every stored run, newest first."""
    summaries = []
    for directory in _run_dirs(state):
        record = _read_record(directory)
        if record is not None:
            summaries.append(_summary(directory, record))
    summaries.sort(key=lambda s: (s.started or _EPOCH, s.path.name), reverse=True)
    return summaries


def _run_dirs(state: StateDir) -> list[Path]:
    """The run directories, skipping hidden ones: runs being written or leftovers of them."""
    if not state.runs.is_dir():
        return []
    return [p for p in state.runs.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _read_record(directory: Path) -> dict[str, Any] | None:
    """The record of one run directory; None for a directory that holds no readable record."""
    # A directory someone put there by hand must not break the listing of every other run.
    try:
        data = json.loads((directory / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _summary(directory: Path, record: dict[str, Any]) -> RunSummary:
    exit_code = record.get("exit_code")
    counts = record.get("summary")
    return RunSummary(
        id=str(record.get("run_id") or directory.name),
        path=directory,
        started=parse_time(record.get("start")),
        operator=str(record.get("operator") or "?"),
        runbooks=tuple(runbook_names(record)),
        dry_run=bool(record.get("dry_run")),
        aborted=bool(record.get("aborted")),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        summary={str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {},
    )


def find_run_dir(state: StateDir, run_id_or_prefix: str) -> Path:
    """The one run directory whose run id (or whole name) starts with the given text."""
    wanted = run_id_or_prefix.strip()
    if not wanted:
        raise InputError("no run id given")
    dirs = _run_dirs(state)
    # By directory name alone, so finding one run never reads every stored record.
    exact = [d for d in dirs if wanted in (_run_id_of(d), d.name)]
    matches = exact or [
        d for d in dirs if _run_id_of(d).startswith(wanted) or d.name.startswith(wanted)
    ]
    if not matches:
        known = f"{len(dirs)} run(s) stored" if dirs else "no run is stored"
        raise InputError(f"no run matches {wanted!r} ({known}; see `oorfix runs`)", state.runs)
    if len(matches) > 1:
        ids = sorted(_run_id_of(d) for d in matches)
        shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise InputError(f"{wanted!r} matches {len(ids)} runs: {shown}; give more of the id")
    return matches[0]


def _run_id_of(directory: Path) -> str:
    """The run id part of ``<start>-<run_id>`` (the start stamp holds no dash)."""
    return directory.name.partition("-")[2]


def load_run(state: StateDir, run_id_or_prefix: str) -> dict[str, Any]:
    """The record of the one stored run whose id starts with ``run_id_or_prefix``."""
    directory = find_run_dir(state, run_id_or_prefix)
    record = _read_record(directory)
    if record is None:
        raise InputError("cannot read the run record", directory / RECORD)
    return record
