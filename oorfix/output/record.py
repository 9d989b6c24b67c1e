"""The run record: every result and every command of a run, as typed data and as JSON.

``RunRecord`` both writes the record (``RunRecord.of(run, meta).to_json()``) and reads it
back (``RunRecord.read(path)``), so ``--json``, the run history and the reports share one
shape. Its JSON keys are the ones format 1 had, plus ``mode`` (format 2); a format-1 record
still reads, its mode taken from ``dry_run``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from oorfix import __version__
from oorfix.diagnosis.converge import Conflict, Explained
from oorfix.diagnosis.incidents import HostDiagnosis
from oorfix.errors import InputError
from oorfix.results import (
    HostResult,
    Outcome,
    Output,
    Phase,
    RunMode,
    RunResult,
    StepResult,
    StepStatus,
)

RECORD_FORMAT: Final = 2
_SHOWN_PROBLEMS = 3  # a damaged record can fail in thousands of places; the first few say enough


def iso_time(value: datetime) -> str:
    """A time as the record writes it: ISO 8601 with milliseconds and its UTC offset."""
    return value.isoformat(timespec="milliseconds")


def _to_record_precision(value: datetime) -> datetime:
    """Milliseconds, as written, so a record read back equals the one that was written."""
    # A time without an offset can only come from a record edited by hand; oorfix writes UTC.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


def _one_or_many(value: object) -> object:
    """Format-1 records of ``oorfix diagnose`` hold one runbook directory as a string."""
    return [value] if isinstance(value, str) else value


Time = Annotated[
    datetime,
    AfterValidator(_to_record_precision),
    PlainSerializer(iso_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Names = Annotated[tuple[str, ...] | None, BeforeValidator(_one_or_many)]
Stream = Literal["stdout", "stderr"]


class _Record(BaseModel):
    # Every key is always written, so the schema of the written record requires them all.
    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_serialization_defaults_required=True
    )


class StepRecord(_Record):
    """One step of one phase on one host, with its command and captured output."""

    phase: Phase
    name: str
    status: StepStatus
    host: str | None = Field(description="set when the step ran on another host (`on:`)")
    command: str | None = Field(description="as shown to people: secrets masked")
    rc: int | None = Field(description="exit status; null when the command did not finish")
    stdout: str
    stdout_bytes: int = Field(ge=0)
    stdout_truncated: bool
    stderr: str
    stderr_bytes: int = Field(ge=0)
    stderr_truncated: bool
    timed_out: bool
    reason: str | None = Field(description="why it failed, errored or was skipped")
    attempt: int = Field(ge=1)
    start: Time
    end: Time

    @classmethod
    def of(cls, step: StepResult) -> StepRecord:
        """The record of one step result."""
        return cls(
            phase=step.phase,
            name=step.name,
            status=step.status,
            host=step.host,
            command=step.command,
            rc=step.rc,
            stdout=step.stdout.text,
            stdout_bytes=step.stdout.total_bytes,
            stdout_truncated=step.stdout.truncated,
            stderr=step.stderr.text,
            stderr_bytes=step.stderr.total_bytes,
            stderr_truncated=step.stderr.truncated,
            timed_out=step.timed_out,
            reason=step.reason,
            attempt=step.attempt,
            start=step.started,
            end=step.ended,
        )

    def result(self) -> StepResult:
        """The step result this record was made of (times at the record's precision)."""
        return StepResult(
            phase=self.phase,
            name=self.name,
            status=self.status,
            command=self.command,
            host=self.host,
            rc=self.rc,
            stdout=self.stream("stdout"),
            stderr=self.stream("stderr"),
            started=self.start,
            ended=self.end,
            reason=self.reason,
            attempt=self.attempt,
            timed_out=self.timed_out,
        )

    def stream(self, name: Stream) -> Output:
        """One captured stream as the results hold it: text, total size, whether cut."""
        if name == "stdout":
            return Output(self.stdout, self.stdout_bytes, self.stdout_truncated)
        return Output(self.stderr, self.stderr_bytes, self.stderr_truncated)


class HostRecord(_Record):
    """One runbook on one host: its outcome and every step taken, in run order."""

    host: str
    runbook: str
    fault: str
    status: Outcome
    error: str | None
    escalation: str | None
    notes: tuple[str, ...]
    start: Time
    end: Time
    steps: tuple[StepRecord, ...]
    explained_by: str | None = Field(
        None, description="diagnose --fix: the runbook whose fix cleared this fault"
    )

    @classmethod
    def of(cls, result: HostResult) -> HostRecord:
        """The record of one host result."""
        return cls(
            host=result.host,
            runbook=result.runbook,
            fault=result.fault,
            status=result.status,
            error=result.error,
            escalation=result.escalation,
            notes=result.notes,
            explained_by=result.explained_by,
            start=result.started,
            end=result.ended,
            steps=tuple(StepRecord.of(s) for s in result.steps),
        )

    def result(self) -> HostResult:
        """The host result this record was made of (e.g. one sent back by a worker)."""
        return HostResult(
            host=self.host,
            runbook=self.runbook,
            fault=self.fault,
            status=self.status,
            steps=tuple(step.result() for step in self.steps),
            error=self.error,
            escalation=self.escalation,
            notes=self.notes,
            started=self.start,
            ended=self.end,
            explained_by=self.explained_by,
        )


class DiagnosisRecord(_Record):
    """What `diagnose` concluded: per host the hypotheses and incidents; with --fix, what the
    fixes explained, any conflict between them, and the re-diagnosis of the hosts touched."""

    hosts: tuple[HostDiagnosis, ...]
    waves: int = Field(0, description="fix waves run (one root cause per host per wave)")
    explained: tuple[Explained, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    converged: bool | None = Field(None, description="--fix: no conflict, nothing left to fix")
    after: tuple[HostDiagnosis, ...] = Field((), description="--fix: the re-diagnosis")


class RunRecord(_Record):
    """A whole run: who ran it, how, how it ended, and every host result."""

    format: Literal[2] = Field(description="the record format; 1 had no `mode`")
    oorfix: str = Field(description="the oorfix version that wrote the record")
    run_id: str
    operator: str = Field(description="user@host that ran oorfix")
    mode: RunMode
    dry_run: bool = Field(description="mode is dry-run (kept for readers of format 1)")
    aborted: bool
    start: Time
    end: Time
    exit_code: int
    summary: dict[str, int] = Field(description="how many host results ended with each status")
    command: str | None = Field(None, description="the oorfix command, e.g. diagnose")
    runbooks: Names = Field(None, description="the runbooks asked for on the command line")
    inventory: str | None = None
    limit: str | None = None
    results: tuple[HostRecord, ...]
    diagnosis: DiagnosisRecord | None = Field(None, description="diagnose: incidents and fixes")
    trigger: dict[str, str] | None = Field(
        None, description="what started the run when no person did: a schedule or an alert"
    )

    @classmethod
    def of(cls, run: RunResult, meta: Mapping[str, Any] | None = None) -> RunRecord:
        """The record of a run; ``meta`` may give command, runbooks, inventory, limit,
        diagnosis and an exit code that differs from the results' (diagnose's)."""
        fields: dict[str, Any] = {
            "format": RECORD_FORMAT,
            "oorfix": __version__,
            "run_id": run.run_id,
            "operator": _operator(),
            "mode": run.mode,
            "dry_run": run.dry_run,
            "aborted": run.aborted,
            "start": run.started,
            "end": run.ended,
            "exit_code": int(run.exit_code()),
            "summary": dict(Counter(str(r.status) for r in run.results)),
            "results": tuple(HostRecord.of(r) for r in run.results),
        }
        return cls(**{**fields, **(meta or {})})

    @classmethod
    def parse(cls, text: str | bytes, source: Path | str | None = None) -> RunRecord:
        """A record from its JSON text; an InputError naming ``source`` if it is not one."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise InputError(f"cannot read the run record: {_problems(exc)}", source) from None

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        """The record stored in the file ``path``; an InputError naming it if it is not one."""
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the run record: {exc.strerror or exc}", path) from None
        return cls.parse(text, path)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """The record as JSON text, as ``--json`` and the run history write it."""
        # Compact: with ``indent`` the json module falls back to its pure-Python encoder, about
        # 10x slower, which at fleet scale costs more than the run's own bookkeeping.
        # `jq .` shows it indented.
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Read format 1 as format 2: it had no ``mode``, and a run fixed or was a dry-run."""
        if isinstance(data, dict) and data.get("format") == 1 and "mode" not in data:
            mode = RunMode.DRY_RUN if data.get("dry_run") is True else RunMode.FIX
            return {**data, "format": RECORD_FORMAT, "mode": mode}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> RunRecord:
        if self.dry_run != (self.mode is RunMode.DRY_RUN):
            raise ValueError(f"dry_run is {self.dry_run} but mode is {self.mode}")
        return self


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _problems(exc: ValidationError) -> str:
    """The first few problems of a record, each as ``where: what``."""
    errors = exc.errors(include_url=False)
    shown = [_problem(e["loc"], e["msg"]) for e in errors[:_SHOWN_PROBLEMS]]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more else "")


def _problem(loc: Iterable[int | str], message: str) -> str:
    """``results[0].steps[2].start: message``; keys from the file are shown quoted if odd."""
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        else:
            # An unknown key is text from the file: repr() shows control characters escaped.
            name = part if part.isidentifier() else repr(part)
            where += f".{name}" if where else name
    return f"{where}: {message}" if where else message


def record_json_schema() -> dict[str, Any]:
    """The JSON Schema of the run record as oorfix writes it, for its readers and CI."""
    schema = RunRecord.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "oorfix run record"
    return schema


def run_dict(run: RunResult, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A whole run as JSON-ready data, with who ran it and how it ended."""
    return RunRecord.of(run, meta).to_dict()


def record_json(run: RunResult, meta: Mapping[str, Any] | None = None) -> str:
    """The run record as JSON text."""
    return RunRecord.of(run, meta).to_json()


def write_record(path: Path, data: str) -> None:
    """Write the run record atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(data, encoding="utf-8")
    tmp.replace(path)
