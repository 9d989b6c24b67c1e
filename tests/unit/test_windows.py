"""Maintenance windows: weekly and cron forms, time zones, DST, next_open and failing closed.

Every moment is a fixed datetime; nothing reads the real clock. Reference week: Monday
2026-06-01 to Sunday 2026-06-07. DST changes in 2026: Europe/Paris 03-29 and 10-25 (01:00 UTC),
America/New_York 03-08 (07:00 UTC) and 11-01 (06:00 UTC).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from oorfix.runbook import windows
from oorfix.runbook.windows import Window, window_decision
from oorfix.runbook.yamlsource import load_text

WEEK = {
    "mon": "2026-06-01",
    "tue": "2026-06-02",
    "wed": "2026-06-03",
    "thu": "2026-06-04",
    "fri": "2026-06-05",
    "sat": "2026-06-06",
    "sun": "2026-06-07",
}
FAIL_CLOSED = "window check failed (fail closed): "


def at(text: str, zone: str = "UTC") -> datetime:
    """An aware datetime: ``text`` (ISO, without offset) read in ``zone``."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def window(**fields: Any) -> Window:
    """A window validated from data, as the runbook loader will build it."""
    return Window.model_validate(fields)


def is_open(spec: dict[str, Any], moment: str) -> bool:
    """Whether the window ``spec`` is open at ``moment`` (UTC)."""
    return window(**spec).contains(at(moment))


WEEKDAYS = {"days": "mon-fri", "start": "02:00", "end": "04:00"}
FRIDAY_NIGHT = {"days": ["fri"], "start": "22:00", "end": "02:00"}
TO_MIDNIGHT = {"days": "fri", "start": "22:00", "end": "00:00"}
ALL_MONDAY = {"days": "mon", "start": "00:00", "end": "24:00"}


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        (WEEKDAYS, "2026-06-01 02:00", True),
        (WEEKDAYS, "2026-06-01 03:59:59", True),
        (WEEKDAYS, "2026-06-01 04:00", False),
        (WEEKDAYS, "2026-06-01 01:59:59", False),
        (WEEKDAYS, "2026-06-05 03:00", True),
        (WEEKDAYS, "2026-06-06 03:00", False),
        (WEEKDAYS, "2026-06-07 03:00", False),
        # Crossing midnight: days names the day the window starts.
        (FRIDAY_NIGHT, "2026-06-05 21:59", False),
        (FRIDAY_NIGHT, "2026-06-05 22:00", True),
        (FRIDAY_NIGHT, "2026-06-06 00:00", True),
        (FRIDAY_NIGHT, "2026-06-06 01:59:59", True),
        (FRIDAY_NIGHT, "2026-06-06 02:00", False),
        (FRIDAY_NIGHT, "2026-06-06 23:00", False),
        (FRIDAY_NIGHT, "2026-06-05 01:00", False),
        (TO_MIDNIGHT, "2026-06-05 23:59:59", True),
        (TO_MIDNIGHT, "2026-06-06 00:00", False),
        (ALL_MONDAY, "2026-06-01 00:00", True),
        (ALL_MONDAY, "2026-06-01 23:59:59", True),
        (ALL_MONDAY, "2026-06-02 00:00", False),
        (ALL_MONDAY, "2026-05-31 23:59:59", False),
    ],
)
def test_weekly_window(spec: dict[str, Any], moment: str, expected: bool) -> None:
    assert is_open(spec, moment) is expected


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {"mon", "tue", "wed", "thu", "fri"}),
        ("mon,wed", {"mon", "wed"}),
        (["mon", "wed"], {"mon", "wed"}),
        (["mon-wed", "fri"], {"mon", "tue", "wed", "fri"}),
        ("fri-mon", {"fri", "sat", "sun", "mon"}),
        ("sat-sun", {"sat", "sun"}),
        ("sun", {"sun"}),
        ("Monday, FRI", {"mon", "fri"}),
        (None, set(WEEK)),
    ],
)
def test_day_lists_and_ranges(days: str | list[str] | None, expected: set[str]) -> None:
    spec = {"start": "03:00", "end": "04:00"} | ({"days": days} if days is not None else {})
    assert {name for name, date in WEEK.items() if is_open(spec, f"{date} 03:30")} == expected


PARIS_MONDAY = {"days": "mon", "start": "02:00", "end": "04:00", "timezone": "Europe/Paris"}
PARIS_MIDNIGHT = {"days": "mon", "start": "00:00", "end": "01:00", "timezone": "Europe/Paris"}
KOLKATA = {"days": "mon", "start": "02:00", "end": "02:30", "timezone": "Asia/Kolkata"}


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        (PARIS_MONDAY, "2026-01-05 00:59", False),  # 01:59 CET
        (PARIS_MONDAY, "2026-01-05 01:00", True),  # 02:00 CET
        (PARIS_MONDAY, "2026-01-05 03:00", False),  # 04:00 CET
        (PARIS_MONDAY, "2026-06-01 00:00", True),  # 02:00 CEST
        (PARIS_MONDAY, "2026-06-01 02:00", False),  # 04:00 CEST
        (PARIS_MIDNIGHT, "2026-06-07 22:30", True),  # Sunday in UTC, Monday in Paris
        (PARIS_MIDNIGHT, "2026-06-08 00:30", False),
        (KOLKATA, "2026-05-31 20:30", True),  # Monday 02:00 IST (+05:30)
        (KOLKATA, "2026-05-31 21:00", False),
    ],
)
def test_weekly_window_in_a_time_zone(spec: dict[str, Any], moment: str, expected: bool) -> None:
    assert is_open(spec, moment) is expected


def test_the_moment_may_be_given_in_any_zone() -> None:
    assert window(**KOLKATA).contains(at("2026-05-31 16:30", "America/New_York"))
    assert not window(**KOLKATA).contains(at("2026-05-31 17:00", "America/New_York"))


PARIS_NIGHTLY = {"start": "02:00", "end": "04:00", "timezone": "Europe/Paris"}
PARIS_EARLY = {"start": "01:00", "end": "02:30", "timezone": "Europe/Paris"}


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        # Spring forward: 02:00 CET becomes 03:00 CEST; the window opens at the jump.
        (PARIS_NIGHTLY, "2026-03-29 00:59", False),  # 01:59 CET
        (PARIS_NIGHTLY, "2026-03-29 01:00", True),  # 03:00 CEST
        (PARIS_NIGHTLY, "2026-03-29 01:59", True),  # 03:59 CEST
        (PARIS_NIGHTLY, "2026-03-29 02:00", False),  # 04:00 CEST
        # Fall back: 03:00 CEST becomes 02:00 CET; open through both passes (3 real hours).
        (PARIS_NIGHTLY, "2026-10-24 23:59", False),  # 01:59 CEST
        (PARIS_NIGHTLY, "2026-10-25 00:00", True),  # 02:00 CEST
        (PARIS_NIGHTLY, "2026-10-25 00:59", True),  # 02:59 CEST
        (PARIS_NIGHTLY, "2026-10-25 01:00", True),  # 02:00 CET
        (PARIS_NIGHTLY, "2026-10-25 02:59", True),  # 03:59 CET
        (PARIS_NIGHTLY, "2026-10-25 03:00", False),  # 04:00 CET
        # A window ending inside the repeated hour is open in each pass of it.
        (PARIS_EARLY, "2026-10-25 00:29", True),  # 02:29 CEST
        (PARIS_EARLY, "2026-10-25 00:30", False),  # 02:30 CEST
        (PARIS_EARLY, "2026-10-25 01:00", True),  # 02:00 CET
        (PARIS_EARLY, "2026-10-25 01:30", False),  # 02:30 CET
    ],
)
def test_weekly_window_across_dst_changes(
    spec: dict[str, Any], moment: str, expected: bool
) -> None:
    assert is_open(spec, moment) is expected


NY_SKIPPED = {"cron": "30 2 * * *", "duration": "1h", "timezone": "America/New_York"}
NY_REPEATED = {"cron": "30 1 * * *", "duration": "15m", "timezone": "America/New_York"}
PARIS_SKIPPED = {"cron": "0,30 2 * * *", "duration": "10m", "timezone": "Europe/Paris"}


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        (NY_SKIPPED, "2026-03-07 07:30", True),  # 02:30 EST, the day before
        # 02:30 never happens on 03-08: the clock jumps 02:00 EST -> 03:00 EDT, which starts it.
        (NY_SKIPPED, "2026-03-08 06:59", False),
        (NY_SKIPPED, "2026-03-08 07:00", True),  # 03:00 EDT
        (NY_SKIPPED, "2026-03-08 07:59", True),
        (NY_SKIPPED, "2026-03-08 08:00", False),  # a real hour later
        (NY_SKIPPED, "2026-03-09 06:30", True),  # 02:30 EDT
        # 01:30 happens twice on 11-01, and each pass starts the window.
        (NY_REPEATED, "2026-11-01 05:30", True),  # 01:30 EDT
        (NY_REPEATED, "2026-11-01 05:45", False),
        (NY_REPEATED, "2026-11-01 06:29", False),  # 01:29 EST
        (NY_REPEATED, "2026-11-01 06:30", True),  # 01:30 EST
        (NY_REPEATED, "2026-11-01 06:44", True),
        (NY_REPEATED, "2026-11-01 06:45", False),
        # Both skipped starts (02:00, 02:30) count once, at the jump.
        (PARIS_SKIPPED, "2026-03-29 01:00", True),  # 03:00 CEST
        (PARIS_SKIPPED, "2026-03-29 01:09", True),
        (PARIS_SKIPPED, "2026-03-29 01:10", False),
    ],
)
def test_cron_window_across_dst_changes(spec: dict[str, Any], moment: str, expected: bool) -> None:
    assert is_open(spec, moment) is expected


@pytest.mark.parametrize(
    ("cron", "moment", "expected"),
    [
        ("*/15 * * * *", "2026-06-01 10:45", True),
        ("*/15 * * * *", "2026-06-01 10:46", False),
        ("0 2 * * 1-5", "2026-06-05 02:00", True),
        ("0 2 * * 1-5", "2026-06-06 02:00", False),
        ("0 2 * * 1-5", "2026-06-05 02:01", False),
        ("0 2 * * mon-fri", "2026-06-01 02:00", True),
        ("0 2 * * MON-FRI", "2026-06-07 02:00", False),
        ("0 2 * * mon-sun", "2026-06-07 02:00", True),
        ("0 2 * * 0", "2026-06-07 02:00", True),
        ("0 2 * * 7", "2026-06-07 02:00", True),
        ("0 2 * * sun", "2026-06-06 02:00", False),
        ("0 2 * * mon,wed", "2026-06-03 02:00", True),
        ("0 2 * * mon,wed", "2026-06-02 02:00", False),
        ("0,30 9-17/2 * * *", "2026-06-01 11:30", True),
        ("0,30 9-17/2 * * *", "2026-06-01 12:30", False),
        ("0,30 9-17/2 * * *", "2026-06-01 17:00", True),
        ("0,30 9-17/2 * * *", "2026-06-01 19:00", False),
        ("5/20 * * * *", "2026-06-01 10:45", True),  # 5, 25, 45
        ("5/20 * * * *", "2026-06-01 10:20", False),
        ("0 0 * * 1-5/2", "2026-06-03 00:00", True),  # mon, wed, fri
        ("0 0 * * 1-5/2", "2026-06-02 00:00", False),
        ("0 0 1 jan,jul *", "2026-07-01 00:00", True),
        ("0 0 1 jan,jul *", "2026-06-01 00:00", False),
        ("0 0 1 FEB-mar *", "2026-03-01 00:00", True),
        ("59 23 31 12 *", "2026-12-31 23:59", True),
        # Both day fields restricted: either one will do.
        ("0 0 13 * fri", "2026-02-13 00:00", True),  # Friday the 13th
        ("0 0 13 * fri", "2026-05-13 00:00", True),  # a Wednesday, by day of month
        ("0 0 13 * fri", "2026-06-05 00:00", True),  # a Friday, by day of week
        ("0 0 13 * fri", "2026-06-04 00:00", False),
        # Only one restricted: that one decides.
        ("0 0 13 * *", "2026-06-05 00:00", False),
        ("0 0 13 * *", "2026-05-13 00:00", True),
        ("0 0 * * fri", "2026-05-13 00:00", False),
        # As in Vixie cron, a field starting with '*' counts as unrestricted, so both must hold.
        ("0 0 */2 * fri", "2026-06-05 00:00", True),  # the 5th and a Friday
        ("0 0 */2 * fri", "2026-06-12 00:00", False),  # a Friday, but the 12th
        ("0 0 */2 * fri", "2026-06-03 00:00", False),  # the 3rd, but a Wednesday
    ],
)
def test_cron_matcher(cron: str, moment: str, expected: bool) -> None:
    # With a one-minute duration the window is open exactly in the minutes the cron names.
    assert is_open({"cron": cron, "duration": "1m"}, moment) is expected


NIGHTLY_2H = {"cron": "0 23 * * *", "duration": "2h"}


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        (NIGHTLY_2H, "2026-06-01 22:59:59", False),
        (NIGHTLY_2H, "2026-06-01 23:00", True),
        (NIGHTLY_2H, "2026-06-01 23:00:30", True),
        (NIGHTLY_2H, "2026-06-02 00:59:59", True),
        (NIGHTLY_2H, "2026-06-02 01:00", False),
        (
            {"cron": "0 2 * * *", "duration": "1h", "timezone": "Europe/Paris"},
            "2026-06-01 00:30",
            True,
        ),
        ({"cron": "0 2 * * *", "duration": "90s"}, "2026-06-01 02:01:29", True),
        ({"cron": "0 2 * * *", "duration": "90s"}, "2026-06-01 02:01:30", False),
        ({"cron": "0 12 * * sun", "duration": "168h"}, "2026-06-07 11:59", True),
    ],
)
def test_cron_window_lasts_its_duration(spec: dict[str, Any], moment: str, expected: bool) -> None:
    assert is_open(spec, moment) is expected


PARIS_WEEKDAYS = WEEKDAYS | {"timezone": "Europe/Paris"}
MONTHLY = {"cron": "0 0 1 * *", "duration": "1h"}


@pytest.mark.parametrize(
    ("spec", "moment", "expected"),
    [
        (WEEKDAYS, "2026-06-06 12:00", "2026-06-08T02:00:00+00:00"),
        (WEEKDAYS, "2026-06-01 01:59:30", "2026-06-01T02:00:00+00:00"),
        (WEEKDAYS, "2026-06-01 04:00", "2026-06-02T02:00:00+00:00"),
        (WEEKDAYS, "2026-06-01 03:00:30", "2026-06-01T03:00:30+00:00"),  # open now
        (PARIS_WEEKDAYS, "2026-11-27 12:00", "2026-11-30T02:00:00+01:00"),
        (PARIS_NIGHTLY, "2026-03-29 00:00", "2026-03-29T03:00:00+02:00"),
        (PARIS_EARLY, "2026-10-25 00:40", "2026-10-25T02:00:00+01:00"),  # the second pass
        (
            {"cron": "0 2 * * 1-5", "duration": "2h"},
            "2026-06-06 12:00",
            "2026-06-08T02:00:00+00:00",
        ),
        (NY_SKIPPED, "2026-03-08 00:00", "2026-03-08T03:00:00-04:00"),
        (NY_REPEATED, "2026-11-01 05:50", "2026-11-01T01:30:00-05:00"),
        (MONTHLY, "2026-06-23 00:00", "2026-07-01T00:00:00+00:00"),  # 8 days: the horizon
        (MONTHLY, "2026-06-22 23:59", None),
        ({"cron": "0 0 29 2 *", "duration": "1h"}, "2026-06-01 00:00", None),
    ],
)
def test_next_open(spec: dict[str, Any], moment: str, expected: str | None) -> None:
    found = window(**spec).next_open(at(moment))
    assert (found.isoformat() if found else None) == expected


def test_next_open_is_reported_in_the_windows_zone() -> None:
    found = window(**PARIS_WEEKDAYS).next_open(at("2026-11-27 06:00", "Asia/Tokyo"))
    assert found is not None
    assert found.tzinfo == ZoneInfo("Europe/Paris")


PARIS = window(**PARIS_WEEKDAYS)
SATURDAY_EVENING = window(cron="0 22 * * sat", duration="1h")


@pytest.mark.parametrize(
    ("windows_", "moment", "expected"),
    [
        (None, "2026-11-27 12:00", None),
        ([], "2026-11-27 12:00", None),
        ([PARIS], "2026-11-27 01:30", None),
        ([PARIS, SATURDAY_EVENING], "2026-11-28 22:30", None),
        (
            [PARIS],
            "2026-11-27 12:00",
            "outside the maintenance windows; next opens at 2026-11-30 02:00 Europe/Paris",
        ),
        (
            [PARIS, SATURDAY_EVENING],
            "2026-11-27 12:00",
            "outside the maintenance windows; next opens at 2026-11-28 22:00 UTC",
        ),
        (
            [window(cron="0 0 29 2 *", duration="1h")],
            "2026-11-27 12:00",
            "outside the maintenance windows; none opens within 8 days",
        ),
    ],
)
def test_window_decision(windows_: list[Window] | None, moment: str, expected: str | None) -> None:
    assert window_decision(windows_, at(moment)) == expected


def test_a_missing_time_zone_database_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_database(key: str) -> ZoneInfo:
        raise ZoneInfoNotFoundError(f"No time zone found with key {key}")

    monkeypatch.setattr(windows, "ZoneInfo", no_database)
    reason = window_decision([PARIS], at("2026-11-30 01:30"))  # inside the window
    assert reason is not None
    assert reason.startswith(FAIL_CLOSED)
    assert "No time zone found with key Europe/Paris" in reason
    # No windows declared: nothing to evaluate, so nothing to fail.
    assert window_decision(None, at("2026-11-30 01:30")) is None


@pytest.mark.parametrize(
    ("windows_", "moment", "expected"),
    [
        ([PARIS], datetime(2026, 11, 30, 1, 30), "has no time zone"),  # naive
        ([Window.model_construct(cron="every night", duration=60.0)], at("2026-06-01"), "cron"),
        ([Window.model_construct(days="mon")], at("2026-06-01"), "not a time of day"),
        (
            [Window.model_construct(start="02:00", end="04:00", timezone="Nowhere")],
            at("2026-06-01"),
            "Nowhere",
        ),
    ],
)
def test_an_unreadable_window_fails_closed(
    windows_: list[Window], moment: datetime, expected: str
) -> None:
    reason = window_decision(windows_, moment)
    assert reason is not None
    assert reason.startswith(FAIL_CLOSED)
    assert expected in reason


TIMES = {"start": "02:00", "end": "04:00"}
NIGHTLY = {"cron": "0 2 * * *", "duration": "1h"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            TIMES | {"days": "mon-fxi"},
            "unknown day 'fxi' (use mon ... sun, or a range like mon-fri)",
        ),
        (TIMES | {"days": ["mon", ""]}, "unknown day ''"),
        (TIMES | {"days": []}, "days is empty (omit it for every day)"),
        (TIMES | {"days": 1}, "Input should be a valid"),
        (
            {"start": "25:00", "end": "04:00"},
            "'25:00' is not a time of day (use HH:MM, 00:00 to 23:59)",
        ),
        ({"start": "2pm", "end": "04:00"}, "'2pm' is not a time of day"),
        ({"start": "24:00", "end": "04:00"}, "'24:00' is not a time of day"),
        (
            {"start": "02:00", "end": "24:01"},
            "'24:01' is not a time of day (use HH:MM, 00:00 to 24:00)",
        ),
        ({"start": "02:00", "end": "02:60"}, "'02:60' is not a time of day"),
        ({"start": 200, "end": "04:00"}, "Input should be a valid string"),
        ({"start": "02:00", "end": "02:00"}, "start and end are the same time"),
        ({"start": "00:00", "end": "00:00"}, "for a whole day use 00:00-24:00"),
        (TIMES | {"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus' (an IANA name"),
        (TIMES | {"timezone": "../../etc/passwd"}, "unknown time zone '../../etc/passwd'"),
        (TIMES | {"timezone": ""}, "unknown time zone ''"),
        (NIGHTLY | {"cron": "0 2 * *"}, "invalid cron '0 2 * *': needs 5 fields"),
        (
            NIGHTLY | {"cron": "@daily"},
            "needs 5 fields (minute hour day-of-month month day-of-week)",
        ),
        (
            NIGHTLY | {"cron": "61 * * * *"},
            "invalid cron '61 * * * *': minute '61' is outside 0-59",
        ),
        (NIGHTLY | {"cron": "0 24 * * *"}, "hour '24' is outside 0-23"),
        (NIGHTLY | {"cron": "0 0 0 * *"}, "day-of-month '0' is outside 1-31"),
        (NIGHTLY | {"cron": "0 0 * 13 *"}, "month '13' is outside 1-12"),
        (NIGHTLY | {"cron": "0 0 * * 8"}, "day-of-week '8' is outside 0-7"),
        (NIGHTLY | {"cron": "0 0 5-1 * *"}, "day-of-month '5-1' is outside 1-31 or reversed"),
        (NIGHTLY | {"cron": "0 0 * * fri-tue"}, "day-of-week 'fri-tue' is outside 0-7 or reversed"),
        (NIGHTLY | {"cron": "*/0 * * * *"}, "minute '*/0': the step must be at least 1"),
        (NIGHTLY | {"cron": "0 0 * foo *"}, "month field: 'foo' is not a number or name"),
        (NIGHTLY | {"cron": "mon * * * *"}, "minute field: 'mon' is not a number or name"),
        (NIGHTLY | {"cron": "0 0 1,,2 * *"}, "day-of-month field: '' is not a number or name"),
        (NIGHTLY | {"cron": "0 0 31 2 *"}, "no month in it has those days, it never starts"),
        (NIGHTLY | {"cron": "0 0 30 feb *"}, "it never starts"),
        ({"cron": "0 2 * * *"}, "a cron window needs both cron and duration (e.g. duration: 2h)"),
        ({"duration": "1h"}, "a cron window needs both cron and duration"),
        (NIGHTLY | {"duration": "2x"}, "'2x' is not a duration"),
        (NIGHTLY | {"duration": 0}, "duration must be more than 0 and at most 168h (a week)"),
        (NIGHTLY | {"duration": "169h"}, "duration must be more than 0 and at most 168h"),
        (NIGHTLY | {"duration": -5}, "-5 is negative"),
        (
            NIGHTLY | {"days": "mon"},
            "a window is either weekly (days, start, end) or cron (cron, duration), "
            "not both (found: days, cron, duration)",
        ),
        ({}, "a window needs start and end (days optional), or cron and duration"),
        ({"days": "mon"}, "a window needs start and end"),
        ({"start": "02:00"}, "a window needs start and end"),
        ({"timezone": "UTC"}, "a window needs start and end"),
        (TIMES | {"zone": "UTC"}, "Extra inputs are not permitted"),
    ],
)
def test_validation_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Window.model_validate(data)
    assert message in str(info.value)


def test_errors_are_located_inside_an_embedding_model() -> None:
    class Runbook(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        windows: list[Window] | None = None

    data = {"windows": [TIMES, NIGHTLY | {"cron": "61 * * * *"}, {"days": "mon"}]}
    with pytest.raises(ValidationError) as info:
        Runbook.model_validate(data)
    assert [error["loc"] for error in info.value.errors()] == [
        ("windows", 1, "cron"),
        ("windows", 2),
    ]
    assert Runbook.model_validate({"windows": [TIMES]}).windows == [window(**TIMES)]


def test_a_window_is_frozen_and_round_trips() -> None:
    nightly = window(**NIGHTLY | {"timezone": "Europe/Paris"})
    with pytest.raises(ValidationError, match="frozen"):
        nightly.cron = "* * * * *"  # type: ignore[misc]
    assert Window.model_validate(nightly.model_dump()) == nightly
    assert Window.model_validate_json(nightly.model_dump_json()) == nightly


def test_yaml_times_need_no_quotes() -> None:
    # YAML 1.1 would read 22:00 as the number 1320; the project's loader keeps it a string.
    text = """\
windows:
  - {days: fri, start: 22:00, end: 2:00, timezone: Europe/Paris}
  - {days: [sat, sun], start: 00:00, end: 24:00}
  - {cron: "*/30 1-3 * * mon-fri", duration: 20m, timezone: America/New_York}
"""
    data = load_text(text, Path("rb.yml")).data
    parsed = [Window.model_validate(item) for item in data["windows"]]
    assert [w.describe() for w in parsed] == [
        "fri 22:00-2:00 Europe/Paris",
        "sat,sun 00:00-24:00 UTC",
        "cron '*/30 1-3 * * mon-fri' for 20m America/New_York",
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (WEEKDAYS, "mon-fri 02:00-04:00 UTC"),
        (TIMES, "daily 02:00-04:00 UTC"),
        (NIGHTLY | {"duration": "90m"}, "cron '0 2 * * *' for 90m UTC"),
        (NIGHTLY | {"duration": 45}, "cron '0 2 * * *' for 45s UTC"),
    ],
)
def test_describe(spec: dict[str, Any], expected: str) -> None:
    assert window(**spec).describe() == expected


def test_json_schema_accepts_both_forms_and_rejects_unknown_keys() -> None:
    schema = Window.model_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(PARIS_WEEKDAYS)
    assert validator.is_valid({"cron": "0 2 * * 1-5", "duration": "2h", "timezone": "UTC"})
    assert not validator.is_valid(TIMES | {"zone": "UTC"})
    assert not validator.is_valid(NIGHTLY | {"duration": 0})
    assert "gt" not in schema["properties"]["duration"]["anyOf"][0]
