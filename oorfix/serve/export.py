"""`oorfix schedule export`: the service's schedules as systemd timers or crontab lines.

For sites that run their own timers instead of ``oorfix serve``: each schedule becomes the
command line of the job it runs (``oorfix diagnose`` or ``oorfix run`` with the same settings
the service would use) and a calendar equal to its cron expression in its time zone.

What a timer or cron cannot do like the service is said in the files written: no ``grace`` on
missed starts, and local times that a DST change skips or repeats.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from croniter import croniter
from croniter.croniter import CroniterError

from oorfix.errors import InputError
from oorfix.serve.config import Schedule, ServeConfig
from oorfix.serve.jobs import describe

_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MINUTE, _HOUR, _DOM, _MONTH, _DOW = range(5)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # systemd's, Monday first
# What both systemd and every cron can express: '*', numbers or names, ranges, steps, lists.
_VALUE = r"(?:\d+|[a-zA-Z]{3})"
_ITEM = re.compile(rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/\d+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------------------- command line


def job_argv(config: ServeConfig, schedule: Schedule, oorfix: Sequence[str]) -> list[str]:
    """The command line that runs ``schedule``'s job as the service would run it."""
    defaults, job = config.defaults, schedule.job
    argv = list(oorfix)
    if job.runbooks is None:
        argv += ["diagnose", "--inventory", str(defaults.inventory)]
        argv += ["--runbooks", str(defaults.runbooks)]
        if job.mode != "diagnose":
            argv.append("--fix")
        if job.mode == "dry-run":
            argv.append("--dry-run")
    else:
        # Names, looked up in the runbook directory exactly as the service looks them up.
        argv += ["run", *job.runbooks, "--runbooks", str(defaults.runbooks)]
        argv += ["--inventory", str(defaults.inventory)]
        if job.mode == "dry-run":
            argv.append("--dry-run")
        elif job.mode == "diagnose":
            argv.append("--detect-only")
    if job.limit is not None:
        # One word, so a pattern that starts with '-' is never read as an option.
        argv.append(f"--limit={job.limit}")
    argv += ["--forks", str(defaults.forks)]
    # The service passes these two as well; the CLI's own defaults need not be the config's.
    argv += ["--connect-timeout", repr(defaults.connect_timeout)]
    argv += ["--lock-ttl", repr(defaults.lock_ttl)]
    if defaults.known_hosts is not None:
        argv += ["--known-hosts", str(defaults.known_hosts)]
    if defaults.state_dir is not None:
        argv += ["--state-dir", str(defaults.state_dir)]
    if defaults.state is not None:
        argv += ["--state", defaults.state]
    if defaults.workers is not None:
        argv += ["--workers", defaults.workers]
    if job.auto_approve:
        argv.append("--yes")
    argv.append("--quiet")
    return argv


def _absolute(config: ServeConfig, config_path: Path) -> ServeConfig:
    """Paths relative to the config file made absolute, as ``load_config`` does: a timer
    starts in ``/`` and cron in ``$HOME``, not beside the file."""
    base = config_path.absolute().parent
    d = config.defaults

    def at(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else base / path

    update = {
        key: value
        for key, value in (
            ("inventory", at(d.inventory)),
            ("runbooks", at(d.runbooks)),
            ("known_hosts", at(d.known_hosts)),
            ("state_dir", at(d.state_dir)),
        )
        if value is not None
    }
    return config.model_copy(update={"defaults": d.model_copy(update=update)})


# ---------------------------------------------------------------------------- calendar


@dataclass(frozen=True)
class _Field:
    """The values of one cron field, sorted, within its bounds."""

    values: tuple[int, ...]
    lo: int
    hi: int

    @property
    def full(self) -> bool:
        return len(self.values) == self.hi - self.lo + 1

    def step(self) -> int | None:
        """The step of a progression that runs to the field's end ('*/15', '10-59/10'):
        what systemd's ``A/B`` repetition means."""
        v = self.values
        if len(v) < 3:
            return None
        step = v[1] - v[0]
        if step < 2 or any(b - a != step for a, b in itertools.pairwise(v)):
            return None
        return step if v[-1] + step > self.hi else None

    def runs(self, order: Sequence[int] | None = None) -> list[tuple[int, int]]:
        """Consecutive values as (first, last) pairs, in ``order`` when given."""
        keys = sorted(order if order is not None else self.values)
        runs: list[tuple[int, int]] = []
        for value in keys:
            if runs and value == runs[-1][1] + 1:
                runs[-1] = (runs[-1][0], value)
            else:
                runs.append((value, value))
        return runs


@dataclass(frozen=True)
class _Cron:
    """A five-field expression read the way the service's croniter reads it. ``days`` are
    alternatives (day-of-month, day-of-week), each matching when both of its fields do."""

    minute: _Field
    hour: _Field
    month: _Field
    days: tuple[tuple[_Field, _Field], ...]


def _parse(cron: str) -> _Cron:
    """``cron`` checked for syntax both targets share, then expanded by croniter."""
    if cron.strip().startswith("@"):
        raise ValueError(f"{cron!r}: '@' shortcuts are not supported; write the five fields")
    fields = cron.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(f"{cron!r} is not a five-field cron expression")
    for name, text in zip(_FIELDS, fields, strict=True):
        for item in text.split(","):
            if not _ITEM.fullmatch(item):
                raise ValueError(
                    f"{cron!r}: {name} {item!r} cannot be exported: only '*', numbers, names,"
                    " lists, ranges and steps (not L, W, #, ? or H)"
                )
    try:
        # croniter is what the service runs, so its reading is the one to reproduce:
        # names, 7 = Sunday, ranges that wrap ('22-2'), 'N/S' meaning 'N-max/S'.
        expanded, nth = croniter.expand(cron)
    except CroniterError as exc:
        raise ValueError(f"{cron!r}: {exc}") from None
    if nth:  # unreachable past the syntax check; kept so '#' can never slip through
        raise ValueError(f"{cron!r}: 'N#M' weekdays cannot be exported")
    parsed = [_field(values, index) for index, values in enumerate(expanded)]
    dom, dow = parsed[_DOM], parsed[_DOW]
    # Cron's rule as croniter applies it: both day fields restricted -> either may match.
    either = expanded[_DOM][0] != "*" and expanded[_DOW][0] != "*"
    days: tuple[tuple[_Field, _Field], ...]
    if either and not (dom.full or dow.full):
        days = ((dom, _all(_DOW)), (_all(_DOM), dow))
    elif either:
        days = ((_all(_DOM), _all(_DOW)),)  # one side matches every day
    else:
        days = ((dom, dow),)
    return _Cron(parsed[_MINUTE], parsed[_HOUR], parsed[_MONTH], days)


def _field(values: Sequence[int | str], index: int) -> _Field:
    if "*" in values:
        return _all(index)
    lo, hi = _BOUNDS[index]
    numbers = {int(v) for v in values}
    if index == _DOW:
        numbers = {0 if n == 7 else n for n in numbers}
    return _Field(tuple(sorted(numbers)), lo, hi)


def _all(index: int) -> _Field:
    lo, hi = _BOUNDS[index]
    return _Field(tuple(range(lo, hi + 1)), lo, hi)


def on_calendar(cron: str, timezone: str) -> list[str]:
    """The systemd ``OnCalendar=`` values whose union is ``cron`` in ``timezone``."""
    parsed = _parse(cron)
    clock = f"{_systemd(parsed.hour)}:{_systemd(parsed.minute)}:00"
    values = []
    for dom, dow in parsed.days:
        weekdays = "" if dow.full else _systemd_weekdays(dow) + " "
        values.append(f"{weekdays}*-{_systemd(parsed.month)}-{_systemd(dom)} {clock} {timezone}")
    return values


def _systemd(field: _Field) -> str:
    if field.full:
        return "*"
    step = field.step()
    if step is not None:
        return f"{field.values[0]:02d}/{step}"
    return _join(field.runs(), "{:02d}".format, "..")


def _systemd_weekdays(field: _Field) -> str:
    monday_first = [7 if d == 0 else d for d in field.values]
    return _join(field.runs(monday_first), lambda d: _WEEKDAYS[d - 1], "..")


def _join(runs: Sequence[tuple[int, int]], show: Callable[[int], str], through: str) -> str:
    """Runs as a list: three or more values as a range, fewer one by one."""
    parts: list[str] = []
    for first, last in runs:
        if last - first > 1:
            parts.append(f"{show(first)}{through}{show(last)}")
        else:
            parts += [show(value) for value in range(first, last + 1)]
    return ",".join(parts)


def _cron_fields(parsed: _Cron) -> str:
    """The expression in plain numbers that every cron reads the same way (no names, no
    wrapping ranges, no '*'-prefixed day field that would turn cron's OR into AND)."""
    if len(parsed.days) == 2:
        dom, dow = parsed.days[0][0], parsed.days[1][1]
    else:
        dom, dow = parsed.days[0]
    return " ".join(
        (
            _cron(parsed.minute, star_step=True),
            _cron(parsed.hour, star_step=True),
            _cron(dom, star_step=False),
            _cron(parsed.month, star_step=True),
            _cron(dow, star_step=False),
        )
    )


def _cron(field: _Field, *, star_step: bool) -> str:
    if field.full:
        return "*"
    step = field.step()
    first = field.values[0]
    if step is not None:
        return (
            f"*/{step}" if star_step and first == field.lo else f"{first}-{field.values[-1]}/{step}"
        )
    return _join(field.runs(), str, "-")


# ---------------------------------------------------------------------------- systemd


def systemd_units(config: ServeConfig, oorfix: Sequence[str], config_path: Path) -> dict[str, str]:
    """A ``.service`` and a ``.timer`` per schedule, by file name; InputError if one cannot
    be expressed exactly."""
    config = _absolute(config, config_path)
    units: dict[str, str] = {}
    for schedule in config.schedules:
        try:
            calendar = on_calendar(schedule.cron, schedule.timezone)
        except ValueError as exc:
            raise InputError(f"schedule {schedule.name}: {exc}", config_path) from None
        argv = job_argv(config, schedule, oorfix)
        unit = f"oorfix-{schedule.name}"
        origin = _comment(
            f"Exported by `oorfix schedule export --systemd` from {config_path}, "
            f"schedule {schedule.name}"
        )
        units[f"{unit}.service"] = "\n".join(
            [
                origin,
                _comment(f"Runs {describe(schedule.job)} ({schedule.job.mode})."),
                "[Unit]",
                f"Description=oorfix schedule {schedule.name}",
                "Wants=network-online.target",
                "After=network-online.target",
                "",
                "[Service]",
                "Type=oneshot",
                "# A timer does not start this unit again while it still runs: the service's",
                "# no-overlap rule. A non-zero exit (a fault remains) leaves the unit failed.",
                "ExecStart=" + " ".join(systemd_quote(arg) for arg in argv),
                "",
            ]
        )
        units[f"{unit}.timer"] = "\n".join(
            [
                origin,
                _comment(f"cron {' '.join(schedule.cron.split())} in {schedule.timezone}."),
                *_dst_note(schedule.timezone),
                "[Unit]",
                f"Description=oorfix schedule {schedule.name} (timer)",
                "",
                "[Timer]",
                *(f"OnCalendar={value}" for value in calendar),
                "# missed: run-once -> a start missed while the machine was off runs once at",
                "# boot, however late (systemd has no grace); missed: skip -> it does not.",
                f"Persistent={'true' if schedule.missed == 'run-once' else 'false'}",
                "AccuracySec=1s",
                "",
                "[Install]",
                "WantedBy=timers.target",
                "",
            ]
        )
    return units


def systemd_quote(arg: str) -> str:
    """``arg`` as one word of a systemd command line: double quotes, C escapes, and the
    specifier and variable characters doubled."""
    out = []
    for char in arg:
        if char in '\\"':
            out.append("\\" + char)
        elif char in "%$":
            out.append(char * 2)
        elif _CONTROL.match(char):
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _comment(text: str) -> str:
    """A comment line, whatever characters a path holds."""
    return "# " + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _dst_note(timezone: str) -> list[str]:
    if timezone in ("UTC", "Etc/UTC"):
        return []
    return [
        "# Local times a DST change skips or repeats: systemd skips them or runs once; the",
        "# service runs a skipped time at the next valid one and a repeated time once (so a",
        "# wildcard schedule such as */15 pauses for the repeated hour, where cron runs on).",
    ]


# ---------------------------------------------------------------------------- cron


def crontab(config: ServeConfig, oorfix: Sequence[str], config_path: Path) -> str:
    """A crontab with one line per schedule, each under its ``CRON_TZ``; InputError if one
    cannot be expressed exactly."""
    config = _absolute(config, config_path)
    lines = [
        _comment(f"oorfix schedules from {config_path}, exported by `oorfix schedule export`."),
        "# Install as a user crontab (crontab FILE); /etc/cron.d wants a user after the times.",
        "# CRON_TZ needs a cron that honours it (cronie does); else times are the system's zone.",
        "# cron has no overlap protection: flock -n (util-linux) skips a start while the last",
        "# one still runs, as the service does. cron does not run starts missed while it was",
        "# down (the service's missed: run-once), and keeps its own rules for DST changes.",
    ]
    for schedule in config.schedules:
        try:
            fields = _cron_fields(_parse(schedule.cron))
            lock = f"/run/lock/oorfix-{schedule.name}.lock"
            command = cron_command(["flock", "-n", lock, *job_argv(config, schedule, oorfix)])
        except ValueError as exc:
            raise InputError(f"schedule {schedule.name}: {exc}", config_path) from None
        lines += [
            "",
            _comment(
                f"{schedule.name}: {' '.join(schedule.cron.split())} in {schedule.timezone};"
                f" runs {describe(schedule.job)} ({schedule.job.mode})"
            ),
            f"CRON_TZ={schedule.timezone}",
            f"{fields} {command}",
        ]
    return "\n".join(lines) + "\n"


def cron_command(argv: Sequence[str]) -> str:
    """``argv`` as the command of a crontab line: shell-quoted, with '%' escaped."""
    words = []
    for arg in argv:
        if "\n" in arg or "\r" in arg:
            raise ValueError(f"{arg!r}: a crontab line cannot hold a line break")
        # shlex.quote puts a backslash only inside single quotes; closing and reopening them
        # between a backslash and '%' keeps cron from reading the pair as its '\%' escape.
        quoted = shlex.quote(arg).replace("\\%", "\\''%")
        words.append(quoted.replace("%", "\\%"))  # cron reads a bare '%' as a line break
    return " ".join(words)


# ---------------------------------------------------------------------------- files


def write_units(units: Mapping[str, str], directory: Path) -> list[Path]:
    """Write each file into ``directory`` (created) by rename, mode 0644; the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        if name in ("", ".", "..") or Path(name).name != name:
            raise ValueError(f"{name!r} is not a file name")
        target = directory / name
        # In the target's directory, so the rename cannot cross file systems.
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, 0o644)  # mkstemp's 0600 would hide the unit from other readers
            os.replace(temp, target)
        finally:
            Path(temp).unlink(missing_ok=True)
        written.append(target)
    return written
