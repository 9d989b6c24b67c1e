"""Cron times in time zones: which schedules are due, and what a restart missed.

The scheduler is pure bookkeeping over an injected ``now``: the service's loop asks it what
is due and when to wake, and tests drive it with a fake clock. Each schedule's next due
start is persisted, so a service that was down knows which starts it missed. The policy is
the schedule's ``missed``: ``run-once`` starts the job once if the newest missed start is
within ``grace`` (several missed starts are one run), else (or with ``skip``) every missed
start is counted and none runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from oorfix.serve.config import Schedule
from oorfix.serve.state import ServiceState


@dataclass(frozen=True)
class Start:
    """A schedule's start that is due now (``late``: a missed start run after a restart)."""

    schedule: Schedule
    due: datetime
    late: bool = False


class Scheduler:
    """The schedules' next starts, kept in the service state."""

    def __init__(self, schedules: Sequence[Schedule], state: ServiceState) -> None:
        self.schedules = {s.name: s for s in schedules}
        self.state = state
        self.next_due: dict[str, datetime] = {}

    def boot(self, now: datetime) -> list[Start]:
        """After a (re)start: the missed starts the policy runs; every next start set."""
        marks = self.state.marks()
        starts = []
        for name, schedule in self.schedules.items():
            recorded = marks.get(name, {}).get("next_due")
            if isinstance(recorded, str) and datetime.fromisoformat(recorded) <= now:
                start = self._missed(schedule, datetime.fromisoformat(recorded), now)
                if start is not None:
                    starts.append(start)
            self._advance(schedule, now)
        return starts

    def _missed(self, schedule: Schedule, first: datetime, now: datetime) -> Start | None:
        """The starts from ``first`` to ``now`` were missed: the one to run, if any."""
        newest = schedule.previous_before(now)
        if newest < first:
            newest = first
        missed = 1
        moment = first
        while (moment := schedule.next_after(moment)) <= now and missed < 10_000:
            missed += 1
        late = (now - newest).total_seconds()
        if schedule.missed == "run-once" and late <= schedule.grace:
            missed -= 1
            run = Start(schedule, newest, late=True)
        else:
            run = None
        if missed:
            self.state.count(schedule.name, "missed", by=missed)  # one write, however many
        return run

    def due(self, now: datetime) -> list[Start]:
        """The schedules due at ``now``; each moves on to its next start after ``now``
        (starts that came and went while the caller was late count as one)."""
        starts = []
        for name, schedule in self.schedules.items():
            due = self.next_due.get(name)
            if due is not None and due <= now:
                starts.append(Start(schedule, due))
                self._advance(schedule, now)
        return starts

    def wake_at(self) -> datetime | None:
        """When the next schedule is due."""
        return min(self.next_due.values(), default=None)

    def _advance(self, schedule: Schedule, now: datetime) -> None:
        nxt = schedule.next_after(now)
        self.next_due[schedule.name] = nxt
        self.state.mark(schedule.name, next_due=nxt)
