"""A job the service runs, and the run it becomes: the same settings and modes as the CLI."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from oorfix.app.execute import RunSpec
from oorfix.app.settings import RunSettings
from oorfix.catalog import Catalog
from oorfix.results import RunMode, utcnow
from oorfix.safety.state import default_state_dir
from oorfix.serve.config import Defaults, Job

MODES = {"diagnose": RunMode.DETECT, "dry-run": RunMode.DRY_RUN, "fix": RunMode.FIX}


def new_job_id(now: datetime | None = None) -> str:
    """``job-<UTC time>-<random>``: sorts in the order jobs were queued."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%S")
    return f"job-{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class QueuedJob:
    """One job waiting or running: where it came from, what it runs, on which hosts."""

    id: str
    source: Literal["schedule", "alert"]
    name: str  # the schedule's or the route's name
    job: Job
    queued: datetime
    host: str | None = None  # an alert's host: narrows the job's limit to it
    trigger: dict[str, str] = field(default_factory=dict)
    attempts: int = 0  # starts so far; a job cut short by a stop or a crash starts again
    notify: tuple[str, ...] | None = None  # target names; None: every target

    def to_json(self) -> dict[str, Any]:
        """The job as stored in the queue."""
        data = asdict(self)
        data["job"] = self.job.model_dump(mode="json")
        data["queued"] = self.queued.isoformat()
        data["notify"] = list(self.notify) if self.notify is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueuedJob:
        """A job read back from the queue; ValueError/KeyError/TypeError if it is not one."""
        notify = data.get("notify")
        return cls(
            id=str(data["id"]),
            source=data["source"],
            name=str(data["name"]),
            job=Job.model_validate(data["job"]),
            queued=datetime.fromisoformat(data["queued"]),
            host=data.get("host"),
            trigger={str(k): str(v) for k, v in dict(data.get("trigger") or {}).items()},
            attempts=int(data.get("attempts", 0)),
            notify=tuple(notify) if notify is not None else None,
        )

    @property
    def limit(self) -> str | None:
        """The job's limit narrowed to the alert's host (an inventory name, never a label)."""
        if self.host is None:
            return self.job.limit
        return f"{self.job.limit}:&{self.host}" if self.job.limit else self.host


def run_spec(defaults: Defaults, queued: QueuedJob, catalog: Catalog) -> RunSpec:
    """The run a job becomes: named runbooks are a ``run``, no runbooks a ``diagnose``."""
    job = queued.job
    diagnose = job.runbooks is None
    settings = RunSettings(
        runbooks=(str(defaults.runbooks),) if diagnose else tuple(job.runbooks or ()),
        runbook_dir=defaults.runbooks,
        inventory_paths=(defaults.inventory,),
        limit=queued.limit,
        forks=defaults.forks,
        known_hosts=defaults.known_hosts,
        connect_timeout=defaults.connect_timeout,
        yes=job.auto_approve,
        state_dir=defaults.state_dir or default_state_dir(),
        state=defaults.state,
        workers=defaults.workers,
        lock_ttl=defaults.lock_ttl,
    )
    trigger = {"source": queued.source, "name": queued.name, "job": queued.id, **queued.trigger}
    return RunSpec("diagnose" if diagnose else "run", settings, MODES[job.mode], catalog, trigger)


def describe(job: Job) -> str:
    """What a job runs, in a few words: ``diagnose`` or its runbooks."""
    return "diagnose" if job.runbooks is None else ", ".join(job.runbooks)
