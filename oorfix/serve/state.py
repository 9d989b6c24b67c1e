"""What the service keeps between restarts, in ``<state dir>/serve/``:

    queue/<job id>.json   a job accepted and not finished (a restart starts it again)
    schedules.json        per schedule: next due start, last start, run, exit, success, counts
    cooldowns.json        per alert fingerprint and route: when it was last acted on
    notices.json          per host and fault: the last notice sent, so repeats wait
    alerts.jsonl          every alert received and what was done with it
    jobs.jsonl            every job's start and end (its run id, exit code or error)
    notifications.jsonl   every notification delivery, delivered or not

Runs themselves go to the run history like any CLI run. Writes are atomic (rename) or
whole JSON lines, under the state directory's mutex, so a crash leaves the old or the new
state and never half of it; an unreadable queue entry is set aside, never dropped silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from oorfix.safety.state import StateDir, append_json_line, safe_name, write_json_atomic
from oorfix.serve.jobs import QueuedJob
from oorfix.serve.model import AlertEntry

log = logging.getLogger("oorfix.serve")
_MAX_LOG = 16 << 20  # a log past this size is rotated to <name>.1 (one generation kept)
_TAIL = 256 << 10  # how much of a log's end is read for "recent" entries
COOLDOWN_KEEP = 7 * 24 * 3600.0  # by default, how long an acted-on alert is remembered


class ServiceState:
    """The service's files in one state directory (see the module's docstring)."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.path = state.path / "serve"
        self.queue = self.path / "queue"

    def ensure(self) -> None:
        """Create the directories, private to the user."""
        self.state.ensure()
        for directory in (self.path, self.queue):
            directory.mkdir(mode=0o700, exist_ok=True)

    # --- the queue ---------------------------------------------------------------------

    def enqueue(self, job: QueuedJob) -> None:
        """Keep a job until it finishes: a restart finds it and starts it again."""
        self.ensure()
        write_json_atomic(self.queue / f"{safe_name(job.id)}.json", job.to_json())

    def done(self, job_id: str) -> None:
        """The job finished: it leaves the queue."""
        (self.queue / f"{safe_name(job_id)}.json").unlink(missing_ok=True)

    def pending(self) -> list[QueuedJob]:
        """Every job in the queue, oldest first; unreadable entries are set aside (logged)."""
        if not self.queue.is_dir():
            return []
        jobs = []
        for path in sorted(self.queue.glob("*.json")):
            if path.name.startswith("."):
                continue  # a job being written (write_json_atomic's temporary file)
            try:
                jobs.append(QueuedJob.from_json(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                aside = path.with_suffix(".unreadable")
                path.replace(aside)
                log.error("queue entry %s cannot be read (%s): kept as %s", path, exc, aside)
        return sorted(jobs, key=lambda j: (j.queued, j.id))

    # --- schedules and cooldowns -------------------------------------------------------

    def marks(self) -> dict[str, dict[str, Any]]:
        """Per schedule name, what the service remembers of it."""
        return self._read_json("schedules.json")

    def mark(self, schedule: str, **fields: Any) -> dict[str, Any]:
        """Update one schedule's marks (datetimes stored as ISO text); the new marks."""
        values = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in fields.items()}
        with self.state.mutex("serve-schedules"):
            marks = self.marks()
            marks[schedule] = {**marks.get(schedule, {}), **values}
            self._write_json("schedules.json", marks)
        return marks[schedule]

    def count(self, schedule: str, key: str, by: int = 1) -> None:
        """Add ``by`` to a schedule's counter (skipped, missed)."""
        with self.state.mutex("serve-schedules"):
            marks = self.marks()
            entry = marks.setdefault(schedule, {})
            entry[key] = int(entry.get(key, 0)) + by
            self._write_json("schedules.json", marks)

    def acted(self, fingerprint: str, route: str) -> datetime | None:
        """When this alert was last acted on through this route, if ever."""
        value = self._read_json("cooldowns.json").get(f"{route}/{fingerprint}")
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    def mark_acted(
        self, fingerprint: str, route: str, when: datetime, keep: float = COOLDOWN_KEEP
    ) -> None:
        """Remember that an alert was acted on, for the route's cooldown; entries older than
        ``keep`` seconds (longer than any cooldown) are dropped, so the file stays small."""
        with self.state.mutex("serve-cooldowns"):
            data = {
                key: value
                for key, value in self._read_json("cooldowns.json").items()
                if isinstance(value, str)
                and (when - datetime.fromisoformat(value)).total_seconds() < keep
            }
            data[f"{route}/{fingerprint}"] = when.isoformat()
            self._write_json("cooldowns.json", data)

    def first_notice(self, key: str, event: str, now: datetime, repeat: float) -> bool:
        """Whether to send ``event`` for ``key`` now: not when the last notice for it was the
        same event less than ``repeat`` seconds ago (a read-only schedule finds the same
        fault every 15 minutes; the on-call hears of it once, then again after ``repeat``)."""
        with self.state.mutex("serve-notices"):
            data = self._read_json("notices.json")
            last = data.get(key)
            if isinstance(last, dict) and last.get("event") == event:
                when = datetime.fromisoformat(str(last.get("time")))
                if (now - when).total_seconds() < repeat:
                    return False
            data[key] = {"event": event, "time": now.isoformat()}
            self._write_json("notices.json", data)
        return True

    def forget_notices(self, keys: set[str]) -> None:
        """Forget the last notices of these keys (the fault was found gone): a return of the
        fault is news again, whenever it comes."""
        with self.state.mutex("serve-notices"):
            data = self._read_json("notices.json")
            kept = {k: v for k, v in data.items() if k.split(" -> ", 1)[0] not in keys}
            if len(kept) != len(data):
                self._write_json("notices.json", kept)

    # --- logs --------------------------------------------------------------------------

    def record_alert(self, entry: AlertEntry) -> None:
        """Append one alert and what was done with it."""
        self._append("alerts.jsonl", entry.to_json())

    def recent_alerts(self, limit: int = 50) -> list[AlertEntry]:
        """The newest alerts first."""
        found = []
        for data in self._tail("alerts.jsonl", limit):
            try:
                found.append(AlertEntry.from_json(data))
            except (ValueError, KeyError, TypeError):
                continue  # a line from a newer or broken writer: the log is not the state
        return found

    def record_job(self, event: dict[str, Any]) -> None:
        """Append a job's start or end."""
        self._append("jobs.jsonl", event)

    def recent_jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest job events first."""
        return list(self._tail("jobs.jsonl", limit))

    def record_delivery(self, delivery: dict[str, Any]) -> None:
        """Append one notification delivery."""
        self._append("notifications.jsonl", delivery)

    def recent_deliveries(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest deliveries first."""
        return list(self._tail("notifications.jsonl", limit))

    # --- files -------------------------------------------------------------------------

    def _read_json(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self.path / name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("%s cannot be read (%s): starting it afresh", self.path / name, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        self.ensure()
        write_json_atomic(self.path / name, data)

    def _append(self, name: str, data: dict[str, Any]) -> None:
        self.ensure()
        path = self.path / name
        with self.state.mutex(f"serve-{name}"):
            if path.exists() and path.stat().st_size > _MAX_LOG:
                path.replace(path.with_name(name + ".1"))
            append_json_line(path, data)

    def _tail(self, name: str, limit: int) -> Iterator[dict[str, Any]]:
        path = self.path / name
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - _TAIL))
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return
        if size > _TAIL:
            lines = lines[1:]  # the first line read may be cut
        shown = 0
        for line in reversed(lines):
            if shown >= limit:
                return
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                shown += 1
                yield data
