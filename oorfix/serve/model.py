"""The service's data types: what the dashboard, the API and the metrics read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from oorfix.output.history import RunSummary
from oorfix.output.record import RunRecord

# What the service did with one alert of a webhook notification.
AlertAction = Literal[
    "queued",  # a job was queued for it (run_id set once it starts)
    "duplicate",  # the same fingerprint was acted on within the route's cooldown
    "unmatched",  # no route matches its labels
    "unknown_host",  # its host label names no inventory host (or is missing)
    "resolved",  # a resolved alert, recorded
    "refused",  # matched, but the service is stopping or its queue is full
]


@dataclass(frozen=True)
class AlertEntry:
    """One alert received and what was done with it (kept in ``alerts.jsonl``)."""

    received: datetime
    fingerprint: str
    alertname: str
    status: Literal["firing", "resolved"]
    action: AlertAction
    route: str | None = None
    host: str | None = None
    job_id: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON-ready data."""
        data = asdict(self)
        data["received"] = self.received.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertEntry:
        """An entry read back; ValueError/KeyError/TypeError when it is not one."""
        return cls(**{**data, "received": datetime.fromisoformat(data["received"])})


@dataclass(frozen=True)
class ScheduleStatus:
    """One schedule as the dashboard and ``oorfix schedule list`` show it."""

    name: str
    cron: str
    timezone: str
    what: str  # "diagnose" or the runbook names
    mode: str
    next_start: datetime | None
    last_start: datetime | None = None
    last_run_id: str | None = None
    last_exit: int | None = None
    last_success: datetime | None = None
    running: bool = False
    skipped: int = 0  # starts skipped because the previous run was still going
    missed: int = 0  # starts missed while the service was down and not run


@dataclass(frozen=True)
class DashboardData:
    """Everything the dashboard's front page shows, read at one moment."""

    now: datetime
    diagnosis: RunRecord | None  # the newest diagnose run's record
    runs: Sequence[RunSummary]  # newest first
    schedules: Sequence[ScheduleStatus]
    alerts: Sequence[AlertEntry]  # newest first
    pending: int = 0  # jobs queued, not started
    running: Sequence[str] = field(default_factory=tuple)  # job ids running now
