"""Run history in Redis: every controller's runs, listed and reported from any of them.

    <prefix>:runs              sorted set: run name (<start>-<run_id>) scored by its start
    <prefix>:run:<name>        hash: record (the run's JSON), plan (JSON), summary (JSON)

A run is written in one MULTI transaction, so a reader sees all of it or none. The summary
is what ``oorfix runs`` lists, so listing never parses whole records. Evidence is in the
record (``oorfix report`` shows it); the per-step files of the state directory are not kept.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from oorfix.errors import InputError
from oorfix.output.history import RunSummary, pick_run, run_dir_name, summary_of
from oorfix.output.record import RunRecord
from oorfix.results import RunMode
from oorfix.safety.redis_client import RedisState

MAX_RECORD = 256 << 20  # a record larger than this is refused on read (not a run oorfix wrote)


def _summary_json(summary: RunSummary) -> str:
    return json.dumps(
        {
            "id": summary.id,
            "started": summary.started.isoformat(),
            "operator": summary.operator,
            "runbooks": list(summary.runbooks),
            "mode": str(summary.mode),
            "aborted": summary.aborted,
            "exit_code": summary.exit_code,
            "summary": summary.summary,
            "command": summary.command,
        },
        separators=(",", ":"),
    )


def _summary_from(name: str, raw: bytes) -> RunSummary | None:
    """A stored summary; None for one that cannot be read (it is left out of the list)."""
    try:
        data = json.loads(raw)
        return RunSummary(
            id=str(data["id"]),
            path=Path(name),
            started=datetime.fromisoformat(data["started"]),
            operator=str(data["operator"]),
            runbooks=tuple(str(r) for r in data["runbooks"]),
            mode=RunMode(data["mode"]),
            aborted=bool(data["aborted"]),
            exit_code=int(data["exit_code"]),
            summary={str(k): int(v) for k, v in data["summary"].items()},
            command=str(data["command"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class RedisRunStore:
    """The runs kept in one Redis."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self._index = state.key("runs")

    @property
    def where(self) -> str:
        """The server, password masked."""
        return self.state.shown

    def _key(self, name: str) -> str:
        return self.state.key("run", name)

    def save(self, record: RunRecord, plan: list[dict[str, Any]] | None) -> str:
        """Keep the run's record, plan and summary in one transaction; the run's name."""
        name = run_dir_name(record)
        fields = {
            "record": record.to_json(),
            "summary": _summary_json(summary_of(Path(name), record)),
        }
        if plan is not None:
            fields["plan"] = json.dumps(plan, ensure_ascii=False, separators=(",", ":"))

        def write() -> None:
            pipe = self.state.client.pipeline(transaction=True)
            pipe.delete(self._key(name))  # a run saved again replaces its earlier copy
            pipe.hset(self._key(name), mapping=fields)
            pipe.zadd(self._index, {name: record.start.timestamp()})
            pipe.execute()

        self.state.call(f"keep run {record.run_id}", write)
        return f"{self.where} {self._key(name)}"

    def _names(self) -> list[str]:
        raw = self.state.call("list runs", lambda: self.state.client.zrevrange(self._index, 0, -1))
        return [n.decode("utf-8", "replace") for n in raw]

    def runs(self) -> list[RunSummary]:
        """Every stored run, newest first."""
        names = self._names()

        def read() -> list[Any]:
            pipe = self.state.client.pipeline(transaction=False)
            for name in names:
                pipe.hget(self._key(name), "summary")
            return list(pipe.execute())

        raws = self.state.call("list runs", read) if names else []
        found = [_summary_from(n, r) for n, r in zip(names, raws, strict=True) if r is not None]
        summaries = [s for s in found if s is not None]
        summaries.sort(key=lambda s: (s.started, s.path.name), reverse=True)
        return summaries

    def load(self, run_id_or_prefix: str) -> RunRecord:
        """The record of the one stored run whose id starts with ``run_id_or_prefix``."""
        name = pick_run(self._names(), run_id_or_prefix, self.where)
        key = self._key(name)
        size = self.state.call(f"read run {name}", lambda: self.state.client.hstrlen(key, "record"))
        if int(size) > MAX_RECORD:
            why = f"run {name}: the stored record is over {MAX_RECORD >> 20} MiB"
            raise InputError(why, self.where)
        raw = self.state.call(f"read run {name}", lambda: self.state.client.hget(key, "record"))
        if raw is None:
            raise InputError(f"run {name} has no record (removed meanwhile?)", self.where)
        return RunRecord.parse(raw, f"{self.where} {key}")
