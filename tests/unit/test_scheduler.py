"""The scheduler over a fake clock: what is due, the next start kept in the service state, and
what a restart does with the starts missed while the service was down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from oorfix.safety.state import StateDir
from oorfix.serve.config import Schedule
from oorfix.serve.scheduler import Scheduler, Start
from oorfix.serve.state import ServiceState

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 1, 10, 0, 30, tzinfo=UTC)  # a Saturday, winter (Paris is UTC+1)


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC)


def schedule(name: str = "hourly", cron: str = "0 * * * *", **more: Any) -> Schedule:
    return Schedule.model_validate({"name": name, "cron": cron, "job": {}, **more})


def state(tmp_path: Path) -> ServiceState:
    return ServiceState(StateDir(tmp_path / "state"))


def recorded(service: ServiceState, name: str) -> datetime:
    return datetime.fromisoformat(service.marks()[name]["next_due"])


def booted(tmp_path: Path, *schedules: Schedule, now: datetime = T0) -> Scheduler:
    """A scheduler started on a fresh state at ``now``."""
    scheduler = Scheduler(schedules, state(tmp_path))
    assert scheduler.boot(now) == []
    return scheduler


def restarted(tmp_path: Path, *schedules: Schedule, down_at: datetime, up_at: datetime) -> Any:
    """A service that booted at ``down_at`` (then stopped) and boots again at ``up_at``."""
    booted(tmp_path, *schedules, now=down_at)
    again = Scheduler(schedules, state(tmp_path))
    return again, again.boot(up_at)


def test_boot_on_a_fresh_state_starts_nothing_and_sets_the_next_starts(tmp_path: Path) -> None:
    hourly = schedule()
    nightly = schedule("nightly", "0 2 * * *", timezone="Europe/Paris")
    scheduler = Scheduler([hourly, nightly], state(tmp_path))
    assert scheduler.boot(T0) == []
    assert scheduler.next_due == {"hourly": at(1), "nightly": at(1)}  # 02:00 Paris
    assert scheduler.wake_at() == at(1)
    assert recorded(scheduler.state, "hourly") == at(1)
    assert "missed" not in scheduler.state.marks()["hourly"]


def test_wake_at_is_the_soonest_start(tmp_path: Path) -> None:
    scheduler = booted(
        tmp_path, schedule("daily", "0 6 * * *"), schedule("quarter", "*/15 * * * *")
    )
    assert scheduler.next_due == {"daily": at(6), "quarter": at(0, 45)}
    assert scheduler.wake_at() == at(0, 45)
    assert Scheduler([], state(tmp_path)).wake_at() is None


def test_due_before_at_and_after_the_start(tmp_path: Path) -> None:
    hourly = schedule()
    scheduler = booted(tmp_path, hourly)
    assert scheduler.due(at(0, 59)) == []
    assert scheduler.next_due["hourly"] == at(1)

    assert scheduler.due(at(1)) == [Start(hourly, at(1))]
    assert scheduler.next_due["hourly"] == at(2)
    assert recorded(scheduler.state, "hourly") == at(2)
    assert scheduler.due(at(1)) == []  # the same moment again starts nothing
    assert scheduler.due(at(1, 30)) == []

    started = scheduler.due(at(2, 0) + timedelta(seconds=5))
    assert started == [Start(hourly, at(2), late=False)]
    assert scheduler.next_due["hourly"] == at(3)


def test_starts_passed_while_the_caller_was_late_are_one_start(tmp_path: Path) -> None:
    hourly = schedule()
    scheduler = booted(tmp_path, hourly)
    now = at(4, 20)  # 01:00, 02:00, 03:00 and 04:00 have come and gone
    assert scheduler.due(now) == [Start(hourly, at(1))]
    assert scheduler.next_due["hourly"] == at(5)
    assert scheduler.next_due["hourly"] > now
    assert scheduler.due(now) == []
    assert "missed" not in scheduler.state.marks()["hourly"]


def test_only_the_schedules_due_start(tmp_path: Path) -> None:
    hourly, daily = schedule(), schedule("daily", "0 6 * * *")
    scheduler = booted(tmp_path, hourly, daily)
    assert scheduler.due(at(1)) == [Start(hourly, at(1))]
    assert scheduler.next_due["daily"] == at(6)
    assert scheduler.due(at(6)) == [Start(hourly, at(2)), Start(daily, at(6))]
    assert scheduler.next_due == {"hourly": at(7), "daily": at(6, day=11)}


def test_the_next_start_is_kept_in_the_state(tmp_path: Path) -> None:
    hourly = schedule()
    booted(tmp_path, hourly)
    again = state(tmp_path)  # another process reading the same directory
    assert again.marks() == {"hourly": {"next_due": at(1).isoformat()}}
    # A new scheduler on the same state, started after that time, knows it was missed.
    scheduler = Scheduler([hourly], again)
    assert scheduler.boot(at(1, 10)) == [Start(hourly, at(1), late=True)]
    assert scheduler.next_due["hourly"] == at(2)
    assert recorded(again, "hourly") == at(2)


def test_a_restart_before_the_next_start_missed_nothing(tmp_path: Path) -> None:
    hourly = schedule()
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(0, 50))
    assert starts == []
    assert scheduler.next_due["hourly"] == at(1)
    assert "missed" not in scheduler.state.marks()["hourly"]


def test_a_restart_exactly_at_the_next_start_runs_it_once(tmp_path: Path) -> None:
    hourly = schedule()
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(1))
    assert starts == [Start(hourly, at(1), late=True)]
    assert scheduler.due(at(1)) == []
    assert scheduler.next_due["hourly"] == at(2)
    assert "missed" not in scheduler.state.marks()["hourly"]


def test_run_once_within_grace_runs_the_newest_missed_start(tmp_path: Path) -> None:
    hourly = schedule(grace="30m")
    # Down from 00:30 to 04:20: the starts at 01:00, 02:00, 03:00 and 04:00 were missed.
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(4, 20))
    assert starts == [Start(hourly, at(4), late=True)]
    assert scheduler.state.marks()["hourly"]["missed"] == 3
    assert scheduler.next_due["hourly"] == at(5)
    assert recorded(scheduler.state, "hourly") == at(5)
    assert scheduler.due(at(4, 20)) == []  # not run a second time by the loop


def test_run_once_grace_is_inclusive(tmp_path: Path) -> None:
    hourly = schedule(grace="20m")
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(2, 20))
    assert starts == [Start(hourly, at(2), late=True)]
    assert scheduler.state.marks()["hourly"]["missed"] == 1


def test_run_once_beyond_grace_runs_nothing_and_counts_every_start(tmp_path: Path) -> None:
    hourly = schedule(grace="15m")
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(4, 20))
    assert starts == []
    assert scheduler.state.marks()["hourly"]["missed"] == 4
    assert scheduler.next_due["hourly"] == at(5)


def test_skip_runs_nothing_and_counts_every_start(tmp_path: Path) -> None:
    hourly = schedule(missed="skip", grace="2h")
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(4, 20))
    assert starts == []
    assert scheduler.state.marks()["hourly"]["missed"] == 4
    assert scheduler.next_due["hourly"] == at(5)


def test_missed_counts_add_up_over_restarts(tmp_path: Path) -> None:
    hourly = schedule(missed="skip")
    restarted(tmp_path, hourly, down_at=T0, up_at=at(2, 30))  # 01:00, 02:00
    again = Scheduler([hourly], state(tmp_path))
    assert again.boot(at(3, 5)) == []  # 03:00
    assert again.state.marks()["hourly"]["missed"] == 3


def test_a_schedule_new_to_the_state_is_not_missed(tmp_path: Path) -> None:
    hourly, daily = schedule(), schedule("daily", "0 6 * * *")
    booted(tmp_path, hourly)
    scheduler = Scheduler([hourly, daily], state(tmp_path))
    assert scheduler.boot(at(7, 10)) == [Start(hourly, at(7), late=True)]
    assert scheduler.state.marks()["hourly"]["missed"] == 6  # 01:00 .. 06:00
    assert "missed" not in scheduler.state.marks()["daily"]
    assert scheduler.next_due["daily"] == at(6, day=11)


def test_a_missed_start_is_in_the_schedules_zone(tmp_path: Path) -> None:
    nightly = schedule("nightly", "0 2 * * *", timezone="Europe/Paris", grace="1h")
    # Down from Saturday 00:30 UTC to Monday 01:45 UTC (02:45 in Paris): the starts at 02:00
    # Paris time on Saturday, Sunday and Monday were missed; Monday's runs, 45 minutes late.
    down_at, up_at = T0, datetime(2026, 1, 12, 1, 45, tzinfo=UTC)
    scheduler, starts = restarted(tmp_path, nightly, down_at=down_at, up_at=up_at)
    monday_2am = datetime(2026, 1, 12, 2, 0, tzinfo=PARIS)
    assert [(s.due, s.late) for s in starts] == [(monday_2am, True)]
    assert starts[0].due.astimezone(UTC) == datetime(2026, 1, 12, 1, 0, tzinfo=UTC)
    assert scheduler.state.marks()["nightly"]["missed"] == 2
    assert scheduler.next_due["nightly"] == datetime(2026, 1, 13, 2, 0, tzinfo=PARIS)


def test_due_follows_the_schedules_zone_across_the_spring_dst_change(tmp_path: Path) -> None:
    nightly = schedule("nightly", "0 2 * * *", timezone="Europe/Paris")
    saturday = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    scheduler = booted(tmp_path, nightly, now=saturday)
    # 02:00 does not exist on Sunday 29 March in Paris: the job starts at 01:00 UTC.
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert scheduler.wake_at() == jump
    assert scheduler.due(jump - timedelta(seconds=1)) == []
    assert [s.due for s in scheduler.due(jump)] == [jump]
    # From Monday, 02:00 Paris is 00:00 UTC.
    assert scheduler.wake_at() == datetime(2026, 3, 30, 0, 0, tzinfo=UTC)


def test_a_restart_exactly_on_a_later_start_runs_that_start(tmp_path: Path) -> None:
    hourly = schedule(grace="30m")
    # Down from 00:30 to exactly 03:00: 01:00 and 02:00 were missed, 03:00 is due now.
    scheduler, starts = restarted(tmp_path, hourly, down_at=T0, up_at=at(3))
    assert starts == [Start(hourly, at(3), late=True)]
    assert scheduler.state.marks()["hourly"]["missed"] == 2


def test_a_nightly_job_starts_once_on_the_autumn_dst_change(tmp_path: Path) -> None:
    nightly = schedule("nightly", "0 2 * * *", timezone="Europe/Paris")
    scheduler = booted(tmp_path, nightly, now=datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    first = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 02:00 CEST
    wake = scheduler.wake_at()
    # (astimezone: an ambiguous wall time never equals a time in another zone)
    assert wake is not None
    assert wake.astimezone(UTC) == first
    assert len(scheduler.due(first + timedelta(minutes=1))) == 1
    assert scheduler.due(first + timedelta(hours=1, minutes=1)) == []  # 02:01 CET
    assert scheduler.wake_at() == datetime(2026, 10, 26, 1, 0, tzinfo=UTC)
