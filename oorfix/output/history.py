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
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from oorfix.errors import InputError
from oorfix.output.record import HostRecord, RunRecord, StepRecord, iso_time
from oorfix.output.reports import clean, runbook_names, step_output
from oorfix.results import Phase, RunMode
from oorfix.safety.state import StateDir, safe_name

RECORD = "record.json"
PLAN = "plan.json"
EVIDENCE = "evidence"
_SLUG = re.compile(r"[^a-z0-9]+")
_SLUG_MAX = 48


@dataclass(frozen=True)
class RunSummary:
    """One past run as ``oorfix runs`` lists it."""

    id: str
    path: Path  # the run's directory, or its name (``<start>-<run_id>``) in a Redis state
    started: datetime
    operator: str
    runbooks: tuple[str, ...]
    mode: RunMode
    aborted: bool
    exit_code: int
    summary: dict[str, int] = field(default_factory=dict)
    command: str = "run"  # or "diagnose"

    @property
    def dry_run(self) -> bool:
        """Whether the run was a dry-run."""
        return self.mode is RunMode.DRY_RUN


def run_dir_name(record: RunRecord) -> str:
    """``<start as YYYYmmddTHHMMSSZ>-<run_id>``: names sort in the order runs started."""
    stamp = record.start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{safe_name(record.run_id or 'unknown')}"


def save_run(state: StateDir, record: RunRecord, plan: list[dict[str, Any]] | None) -> Path:
    """Store a run's record, plan and evidence files; return the run's directory."""
    state.ensure()
    target = state.runs / run_dir_name(record)
    tmp = Path(tempfile.mkdtemp(dir=state.runs, prefix=f".tmp-{target.name}-"))
    try:
        (tmp / RECORD).write_text(record.to_json(), encoding="utf-8")
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
    # Compact, for the json module's C encoder (see RunRecord.to_json).
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


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


def evidence_files(record: RunRecord) -> dict[Path, str]:
    """Relative path -> text of one file per evidence step of every host result."""
    files: dict[Path, str] = {}
    counters: dict[Path, int] = {}
    for result in record.results:
        folder = Path(EVIDENCE, safe_name(result.host), safe_name(result.runbook))
        for step in result.steps:
            if step.phase is not Phase.EVIDENCE:
                continue
            counters[folder] = counters.get(folder, 0) + 1
            name = f"{counters[folder]}-{slug(step.name or str(step.command))}.txt"
            files[folder / name] = evidence_text(result, step)
    return files


def slug(text: str) -> str:
    """A short lowercase file-name fragment: ``journalctl -u pg-api`` -> ``journalctl-u-pg-api``."""
    return _SLUG.sub("-", text.lower()).strip("-")[:_SLUG_MAX].rstrip("-") or "step"


def evidence_text(result: HostRecord, step: StepRecord) -> str:
    """A header saying where, when and what ran, then stdout and stderr as recorded."""
    header = [
        f"# host: {clean(result.host)}",
        f"# runbook: {clean(result.runbook)}",
        f"# step: {clean(step.name)}",
    ]
    if step.host:
        header.append(f"# ran on: {clean(step.host)}")
    header += [
        f"# command: {clean(step.command)}",
        f"# status: {clean(step.status)}, rc={step.rc}",
        f"# start: {iso_time(step.start)}  end: {iso_time(step.end)}",
    ]
    if step.reason:
        header.append(f"# reason: {clean(step.reason)}")
    return "\n".join(header) + "\n\n" + step_output(step) + "\n"


# A stored run never changes (saving it again replaces its directory), so its summary is
# kept by directory and record file: a long-running service lists hundreds of runs every
# few seconds, and parsing each record again would cost tens of ms a run.
_summaries: dict[tuple[Path, int, int], RunSummary | None] = {}
_summaries_lock = threading.Lock()


def list_runs(state: StateDir) -> list[RunSummary]:
    """Every stored run, newest first."""
    found: dict[tuple[Path, int, int], RunSummary | None] = {}
    for directory in _run_dirs(state):
        try:
            stat = (directory / RECORD).stat()
            key = (directory, stat.st_mtime_ns, stat.st_ino)  # a new record is a new inode
        except OSError:
            continue  # no record (yet, or ever): not a run to list
        with _summaries_lock:
            known = key in _summaries
            summary = _summaries.get(key)
        if not known:
            record = _read_record(directory)
            summary = _summary(directory, record) if record is not None else None
        found[key] = summary
    with _summaries_lock:
        stale = [key for key in _summaries if key[0].parent == state.runs and key not in found]
        for key in stale:
            del _summaries[key]
        _summaries.update(found)
    summaries = [summary for summary in found.values() if summary is not None]
    summaries.sort(key=lambda s: (s.started, s.path.name), reverse=True)
    return summaries


def _run_dirs(state: StateDir) -> list[Path]:
    """The run directories, skipping hidden ones: runs being written or leftovers of them."""
    if not state.runs.is_dir():
        return []
    return [p for p in state.runs.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _read_record(directory: Path) -> RunRecord | None:
    """The record of one run directory; None for a directory that holds no readable record."""
    # A directory someone put there by hand must not break the listing of every other run.
    try:
        return RunRecord.read(directory / RECORD)
    except InputError:
        return None


def _summary(directory: Path, record: RunRecord) -> RunSummary:
    return RunSummary(
        id=record.run_id or directory.name,
        path=directory,
        started=record.start,
        operator=record.operator or "?",
        runbooks=tuple(runbook_names(record)),
        mode=record.mode,
        aborted=record.aborted,
        exit_code=record.exit_code,
        summary=dict(record.summary),
        command=record.command or "run",
    )


def find_run_dir(state: StateDir, run_id_or_prefix: str) -> Path:
    """The one run directory whose run id (or whole name) starts with the given text."""
    dirs = {d.name: d for d in _run_dirs(state)}
    # By directory name alone, so finding one run never reads every stored record.
    return dirs[pick_run(list(dirs), run_id_or_prefix, state.runs)]


def load_run(state: StateDir, run_id_or_prefix: str) -> RunRecord:
    """The record of the one stored run whose id starts with ``run_id_or_prefix``."""
    return RunRecord.read(find_run_dir(state, run_id_or_prefix) / RECORD)


class RunStore(Protocol):
    """Where runs are kept: ``oorfix runs``, ``oorfix report`` and the dashboard read it."""

    @property
    def where(self) -> str:
        """Where the runs are kept, for messages (no secret in it)."""
        ...

    def save(self, record: RunRecord, plan: list[dict[str, Any]] | None) -> str:
        """Keep a run's record and plan; where it went."""
        ...

    def runs(self) -> list[RunSummary]:
        """Every stored run, newest first."""
        ...

    def load(self, run_id_or_prefix: str) -> RunRecord:
        """The record of the one stored run whose id starts with ``run_id_or_prefix``."""
        ...


class FileRunStore:
    """The runs of a state directory (``runs/``), with their evidence files."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    @property
    def where(self) -> str:
        """The state directory."""
        return str(self.state.path)

    def save(self, record: RunRecord, plan: list[dict[str, Any]] | None) -> str:
        """``save_run``; the run's directory."""
        return str(save_run(self.state, record, plan))

    def runs(self) -> list[RunSummary]:
        """``list_runs``."""
        return list_runs(self.state)

    def load(self, run_id_or_prefix: str) -> RunRecord:
        """``load_run``."""
        return load_run(self.state, run_id_or_prefix)


def summary_of(path: Path, record: RunRecord) -> RunSummary:
    """The summary ``oorfix runs`` shows of one record."""
    return _summary(path, record)


def pick_run(names: list[str], wanted: str, source: Path | str) -> str:
    """The one name (``<start>-<run_id>``) whose run id or name starts with ``wanted``."""
    wanted = wanted.strip()
    if not wanted:
        raise InputError("no run id given")
    exact = [n for n in names if wanted in (_id_part(n), n)]
    matches = exact or [n for n in names if _id_part(n).startswith(wanted) or n.startswith(wanted)]
    if not matches:
        known = f"{len(names)} run(s) stored" if names else "no run is stored"
        raise InputError(f"no run matches {wanted!r} ({known}; see `oorfix runs`)", source)
    if len(matches) > 1:
        ids = sorted(_id_part(n) for n in matches)
        shown = ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise InputError(f"{wanted!r} matches {len(ids)} runs: {shown}; give more of the id")
    return matches[0]


def _id_part(name: str) -> str:
    """The run id part of ``<start>-<run_id>`` (the start stamp holds no dash)."""
    return name.partition("-")[2]
