"""The run record: every result and every command of a run, as JSON."""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from oorfix import __version__
from oorfix.results import HostResult, Output, RunResult, StepResult

RECORD_FORMAT = 1


def _time(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _output(prefix: str, output: Output) -> dict[str, Any]:
    return {
        prefix: output.text,
        f"{prefix}_bytes": output.total_bytes,
        f"{prefix}_truncated": output.truncated,
    }


def step_dict(step: StepResult) -> dict[str, Any]:
    """One step as JSON-ready data."""
    return {
        "phase": str(step.phase),
        "name": step.name,
        "status": str(step.status),
        "host": step.host,
        "command": step.command,
        "rc": step.rc,
        **_output("stdout", step.stdout),
        **_output("stderr", step.stderr),
        "timed_out": step.timed_out,
        "reason": step.reason,
        "attempt": step.attempt,
        "start": _time(step.started),
        "end": _time(step.ended),
    }


def host_dict(result: HostResult) -> dict[str, Any]:
    """One host result as JSON-ready data."""
    return {
        "host": result.host,
        "runbook": result.runbook,
        "fault": result.fault,
        "status": str(result.status),
        "error": result.error,
        "escalation": result.escalation,
        "notes": result.notes,
        "start": _time(result.started),
        "end": _time(result.ended),
        "steps": [step_dict(s) for s in result.steps],
    }


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def run_dict(run: RunResult, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A whole run as JSON-ready data, with who ran it and how it ended."""
    return {
        "format": RECORD_FORMAT,
        "oorfix": __version__,
        "run_id": run.run_id,
        "operator": _operator(),
        "dry_run": run.dry_run,
        "aborted": run.aborted,
        "start": _time(run.started),
        "end": _time(run.ended),
        "exit_code": int(run.exit_code()),
        "summary": dict(Counter(str(r.status) for r in run.results)),
        **(meta or {}),
        "results": [host_dict(r) for r in run.results],
    }


def record_json(run: RunResult, meta: dict[str, Any] | None = None) -> str:
    """The run record as JSON text."""
    return json.dumps(run_dict(run, meta), indent=2, ensure_ascii=False) + "\n"


def write_record(path: Path, data: str) -> None:
    """Write the run record atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(data, encoding="utf-8")
    tmp.replace(path)
