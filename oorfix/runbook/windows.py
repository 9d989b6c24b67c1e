"""Maintenance windows: when a runbook's mutating steps may run.

A window is either a weekly range (``days``, ``start``, ``end``) or a cron start plus a
``duration``, read off the local clock of ``timezone`` (an IANA name, default UTC).

Daylight saving time follows the local clock. A weekly window is open while the clock shows a
time in ``[start, end)`` on an allowed day (for a window that crosses midnight, the day it
started): on a spring-forward day ``02:00-04:00`` opens when the clock jumps to 03:00, and on
a fall-back day it stays open through both passes of 02:00-03:00. A cron window starts each
time the clock reaches a matching minute (a minute skipped by a jump forward counts as reached
at the jump; a repeated hour is reached twice) and then lasts ``duration`` of real time.

Definitions are validated when loaded, and parsed again whenever they are evaluated, so
``window_decision`` fails closed on a definition that somehow skipped validation too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from oorfix.runbook.durations import parse_duration

HORIZON = timedelta(days=8)
MAX_DURATION = 7 * 24 * 3600.0
MINUTE = timedelta(minutes=1)
_DAY = 24 * 60
_T = TypeVar("_T")

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
    ],
    "description": "how long the window stays open after each cron start, e.g. 90m or 2h",
}


def _check_length(seconds: float) -> float:
    """``seconds`` if it is a usable window length: more than 0, at most a week."""
    if not 0 < seconds <= MAX_DURATION:
        raise ValueError("duration must be more than 0 and at most 168h (a week)")
    return seconds


# Range checked by a validator, not Field(gt=...), which would leak "gt" into the JSON Schema.
_Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    AfterValidator(_check_length),
    WithJsonSchema(_DURATION_SCHEMA, mode="validation"),
]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Python's weekday(): Monday is 0.
_DAY_INDEX = {name: i for names in (_WEEKDAYS, _FULL_WEEKDAYS) for i, name in enumerate(names)}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Cron's day of week: Sunday is 0 (and 7).
_CRON_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_CLOCK = re.compile(r"^([01]?[0-9]|2[0-4]):([0-5][0-9])$")
_NUMBER = re.compile(r"^[0-9]+$")


def _parse_days(value: str | Sequence[str]) -> frozenset[int]:
    """Weekday numbers (Monday 0) named by ``mon-fri``, ``mon,wed`` or a list of those."""
    items = value.split(",") if isinstance(value, str) else list(value)
    if not items:
        raise ValueError("days is empty (omit it for every day)")
    found: set[int] = set()
    for item in items:
        first, _, last = item.partition("-")
        low = _day_number(first)
        high = _day_number(last) if last else low
        # A range may wrap past Sunday: fri-mon is fri, sat, sun, mon.
        found.update((low + i) % 7 for i in range((high - low) % 7 + 1))
    return frozenset(found)


def _day_number(name: str) -> int:
    """Monday 0 ... Sunday 6, from a three-letter or full English day name."""
    key = name.strip().lower()
    if key not in _DAY_INDEX:
        raise ValueError(f"unknown day {name.strip()!r} (use mon ... sun, or a range like mon-fri)")
    return _DAY_INDEX[key]


def _parse_clock(text: str, *, allow_24: bool = False) -> int:
    """Minutes after midnight in ``HH:MM``; ``24:00`` only where ``allow_24`` says so."""
    match = _CLOCK.match(text.strip())
    minutes = int(match.group(1)) * 60 + int(match.group(2)) if match else -1
    if not 0 <= minutes <= (_DAY if allow_24 else _DAY - 1):
        latest = "24:00" if allow_24 else "23:59"
        raise ValueError(f"{text!r} is not a time of day (use HH:MM, 00:00 to {latest})")
    return minutes


def _check_zone(name: str) -> str:
    """``name`` if the time zone database knows it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Europe/Paris)") from None
    return name


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: dict[str, int]


_CRON_FIELDS = (
    _CronField("minute", 0, 59, {}),
    _CronField("hour", 0, 23, {}),
    _CronField("day-of-month", 1, 31, {}),
    _CronField("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    _CronField("day-of-week", 0, 7, _CRON_DAYS),
)


@dataclass(frozen=True)
class _Cron:
    """A parsed five-field cron expression, matched against local wall-clock minutes."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def matches(self, wall: datetime) -> bool:
        """Whether the local clock reading ``wall`` (naive) is one of the cron's minutes."""
        if wall.minute not in self.minutes or wall.hour not in self.hours:
            return False
        if wall.month not in self.months:
            return False
        by_day = wall.day in self.days
        by_weekday = (wall.weekday() + 1) % 7 in self.weekdays
        # Cron's rule: when both day fields are restricted, either one will do.
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday


def _parse_cron(text: str) -> _Cron:
    """The cron expression in ``text``; raises ValueError naming the faulty field."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron {text!r}: needs 5 fields (minute hour day-of-month month "
            f"day-of-week), found {len(fields)}"
        )
    try:
        values = [_parse_cron_field(f, spec) for f, spec in zip(fields, _CRON_FIELDS, strict=True)]
    except ValueError as exc:
        raise ValueError(f"invalid cron {text!r}: {exc}") from None
    # As in Vixie cron, a day field counts as unrestricted when it starts with '*'.
    minutes, hours, days, months, weekdays = values
    any_day, any_weekday = fields[2].startswith("*"), fields[4].startswith("*")
    cron = _Cron(minutes, hours, days, months, weekdays, any_day, any_weekday)
    if cron.any_weekday and not any(min(cron.days) <= _MONTH_DAYS[m - 1] for m in cron.months):
        raise ValueError(f"invalid cron {text!r}: no month in it has those days, it never starts")
    return cron


def _parse_cron_field(text: str, spec: _CronField) -> frozenset[int]:
    """The values one cron field allows: ``*``, lists, ranges, steps and names."""
    found: set[int] = set()
    for item in text.split(","):
        body, slash, step_text = item.partition("/")
        step = _cron_number(step_text, spec) if slash else 1
        if step < 1:
            raise ValueError(f"{spec.name} {item!r}: the step must be at least 1")
        if body == "*":
            low, high = spec.low, spec.high
        else:
            first, dash, last = body.partition("-")
            low = _cron_number(first, spec)
            # N/step means N, N+step, ... up to the field's maximum.
            high = _cron_number(last, spec) if dash else spec.high if slash else low
            if spec.name == "day-of-week" and high == 0 < low:
                high = 7  # so that mon-sun reads as 1-7
            if not spec.low <= low <= high <= spec.high:
                raise ValueError(
                    f"{spec.name} {item!r} is outside {spec.low}-{spec.high} or reversed"
                )
        found.update(range(low, high + 1, step))
    # Day of week 7 is Sunday, like 0.
    return frozenset(v % 7 for v in found) if spec.name == "day-of-week" else frozenset(found)


def _cron_number(text: str, spec: _CronField) -> int:
    """A number or (for months and days of week) a three-letter name."""
    if _NUMBER.match(text):
        return int(text)
    if text.lower() in spec.names:
        return spec.names[text.lower()]
    raise ValueError(f"{spec.name} field: {text!r} is not a number or name")


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC, so that adding minutes adds real time, not wall-clock time."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"moment {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)


def _ceil_minute(moment: datetime) -> datetime:
    """The first whole UTC minute at or after ``moment`` (a UTC datetime)."""
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


def _minutes(first: datetime, last: datetime) -> Iterator[datetime]:
    """Whole UTC minutes from ``first`` (rounded up) to ``last``, inclusive."""
    instant = _ceil_minute(first)
    while instant <= last:
        yield instant
        instant += MINUTE


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The local clock reading at ``instant``, naive and to the minute."""
    return instant.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)


def _cron_starts(
    cron: _Cron, zone: ZoneInfo, first: datetime, last: datetime
) -> Iterator[datetime]:
    """The instants in ``[first, last]`` at which the local clock reaches a cron minute."""
    before = _wall(_ceil_minute(first) - MINUTE, zone)
    for instant in _minutes(first, last):
        now = _wall(instant, zone)
        # After a jump forward (DST), the skipped minutes are all reached at the jump.
        reached = before + MINUTE if now - before > MINUTE else now
        while reached <= now:
            if cron.matches(reached):
                yield instant
                break
            reached += MINUTE
        before = now


def _weekly_test(
    days: frozenset[int], start: int, end: int, zone: ZoneInfo
) -> Callable[[datetime], bool]:
    """A test of whether a weekly window is open at an instant."""

    def is_open(instant: datetime) -> bool:
        local = instant.astimezone(zone)
        clock = local.hour * 60 + local.minute
        today = local.weekday()
        if start < end:
            return today in days and start <= clock < end
        # Crosses midnight: the evening is today's window, the small hours yesterday's.
        return (today in days and clock >= start) or ((today - 1) % 7 in days and clock < end)

    return is_open


def _human(seconds: float) -> str:
    """``2h``, ``90m`` or ``45s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _keeping(parse: Callable[[_T], object]) -> Callable[[_T | None], _T | None]:
    """A field validator: ``parse`` checks the value, which is kept as written."""

    def check(value: _T | None) -> _T | None:
        if value is not None:
            parse(value)
        return value

    return check


class Window(BaseModel):
    """A time when mutating steps may run: a weekly range or a cron start plus a duration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: str | list[str] | None = Field(
        None, description="weekly: 'mon-fri', 'mon,wed' or a list; the day a window starts"
    )
    start: str | None = Field(None, description="weekly: local opening time, HH:MM")
    end: str | None = Field(
        None, description="weekly: local closing time, HH:MM (before start: crosses midnight)"
    )
    cron: str | None = Field(None, description="five-field cron expression of opening times")
    duration: _Duration | None = None
    timezone: str = Field("UTC", description="IANA time zone of the times, e.g. Europe/Paris")

    _valid_days = field_validator("days")(_keeping(_parse_days))
    _valid_start = field_validator("start")(_keeping(_parse_clock))
    _valid_end = field_validator("end")(_keeping(partial(_parse_clock, allow_24=True)))
    _valid_cron = field_validator("cron")(_keeping(_parse_cron))
    _valid_zone = field_validator("timezone")(_check_zone)

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        weekly = [k for k in ("days", "start", "end") if getattr(self, k) is not None]
        cron = [k for k in ("cron", "duration") if getattr(self, k) is not None]
        if weekly and cron:
            raise ValueError(
                "a window is either weekly (days, start, end) or cron (cron, duration), "
                f"not both (found: {', '.join(weekly + cron)})"
            )
        if cron and (self.cron is None or self.duration is None):
            raise ValueError("a cron window needs both cron and duration (e.g. duration: 2h)")
        if not cron and (self.start is None or self.end is None):
            raise ValueError("a window needs start and end (days optional), or cron and duration")
        if self.start and self.end:
            start, end = _parse_clock(self.start), _parse_clock(self.end, allow_24=True)
            if start == end:  # empty or a whole day? Too easy to mistype: say 00:00-24:00
                raise ValueError("start and end are the same time; for a whole day use 00:00-24:00")
        return self

    def contains(self, moment: datetime) -> bool:
        """Whether the window is open at ``moment`` (timezone-aware)."""
        instant = _utc(moment)
        zone = ZoneInfo(self.timezone)
        if self.cron is not None and self.duration is not None:
            length = timedelta(seconds=self.duration)
            starts = _cron_starts(_parse_cron(self.cron), zone, instant - length, instant)
            return any(start + length > instant for start in starts)
        return self._open_test(zone)(instant)

    def next_open(self, moment: datetime) -> datetime | None:
        """When the window is next open at or after ``moment``, within 8 days (local time)."""
        instant = _utc(moment)
        zone = ZoneInfo(self.timezone)
        if self.contains(instant):
            return instant.astimezone(zone)
        last = instant + HORIZON
        if self.cron is not None:
            found = next(_cron_starts(_parse_cron(self.cron), zone, instant, last), None)
        else:
            found = next(filter(self._open_test(zone), _minutes(instant, last)), None)
        return None if found is None else found.astimezone(zone)

    def describe(self) -> str:
        """A short label for people: ``mon-fri 02:00-04:00 Europe/Paris``."""
        if self.cron is not None:
            return f"cron '{self.cron}' for {_human(self.duration or 0)} {self.timezone}"
        days = self.days if isinstance(self.days, str) else ",".join(self.days or ["daily"])
        return f"{days} {self.start}-{self.end} {self.timezone}"

    def _open_test(self, zone: ZoneInfo) -> Callable[[datetime], bool]:
        """This weekly window's open test, parsed from its fields."""
        days = _parse_days(self.days) if self.days is not None else frozenset(range(7))
        # Without validation a missing start or end fails here as "'' is not a time of day".
        start, end = _parse_clock(self.start or ""), _parse_clock(self.end or "", allow_24=True)
        return _weekly_test(days, start, end, zone)


def window_decision(windows: Sequence[Window] | None, moment: datetime) -> str | None:
    """None when mutating steps may run at ``moment``, else the reason they may not."""
    if not windows:
        return None
    try:
        if any(window.contains(moment) for window in windows):
            return None
        return _closed_reason(windows, moment)
    except Exception as exc:  # an error must never open a window: fail closed
        return f"window check failed (fail closed): {type(exc).__name__}: {exc}"


def _closed_reason(windows: Sequence[Window], moment: datetime) -> str:
    """Why mutating steps wait, and when the first window opens."""
    opens = [(found, w.timezone) for w in windows if (found := w.next_open(moment)) is not None]
    if not opens:
        return f"outside the maintenance windows; none opens within {HORIZON.days} days"
    first, zone_name = min(opens, key=lambda pair: pair[0])
    return f"outside the maintenance windows; next opens at {first:%Y-%m-%d %H:%M} {zone_name}"
