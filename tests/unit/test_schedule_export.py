"""`oorfix schedule export`: cron expressions as systemd calendars and crontab lines equal to
what the service runs (croniter), job command lines the real CLI parses back to the service's
settings, quoting that survives systemd's and cron's own rules, and files written whole."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner
from croniter import croniter

from oorfix.cli import main
from oorfix.cli.diagnose import diagnose
from oorfix.cli.run import run
from oorfix.errors import InputError
from oorfix.serve.config import ServeConfig
from oorfix.serve.export import (
    cron_command,
    crontab,
    job_argv,
    on_calendar,
    systemd_quote,
    systemd_units,
    write_units,
)

OORFIX = ["/usr/local/bin/oorfix"]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze absent")


def config(tmp_path: Path, *schedules: dict[str, Any], **defaults: Any) -> ServeConfig:
    """A service config with absolute default paths under tmp_path."""
    base = {"inventory": str(tmp_path / "inventory"), "runbooks": str(tmp_path / "runbooks")}
    return ServeConfig.model_validate(
        {"defaults": {**base, **defaults}, "schedules": list(schedules)}
    )


def schedule(name: str = "nightly", cron: str = "0 2 * * *", **job: Any) -> dict[str, Any]:
    return {"name": name, "cron": cron, "job": job}


# --- undoing the quoting the way systemd and cron read it ------------------------------------


def systemd_words(line: str) -> list[str]:
    """An ExecStart= value as systemd reads it: specifiers, then words with C escapes, then
    variables. Anything our quoting should never leave (a lone % or $) fails the test."""
    assert not re.search(r"%[^%]", line.replace("%%", "")), line
    line = line.replace("%%", "%")
    words: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        assert line[i] == '"', f"unquoted word at {i}: {line}"
        i += 1
        word = ""
        while line[i] != '"':
            if line[i] == "\\":
                kind = line[i + 1]
                if kind == "x":
                    word += chr(int(line[i + 2 : i + 4], 16))
                    i += 4
                    continue
                assert kind in '\\"', f"escape \\{kind}"
                word += kind
                i += 2
                continue
            word += line[i]
            i += 1
        i += 1
        assert "$" not in word.replace("$$", ""), word
        words.append(word.replace("$$", "$"))
    return words


def cron_decode(command: str) -> str:
    """The command cron hands to /bin/sh: '\\%' is '%', another backslash stays, a bare '%'
    would end the command (the rest going to stdin), which our quoting must never leave."""
    out = ""
    escaped = False
    for char in command:
        if escaped:
            out = out[:-1] + "%" if char == "%" else out + char
            escaped = False
            continue
        assert char != "%", f"bare % in {command}"
        out += char
        escaped = char == "\\"
    return out


def exec_start(unit: str) -> str:
    (line,) = [x for x in unit.splitlines() if x.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=")


def cron_lines(text: str) -> list[tuple[str, str, str]]:
    """(CRON_TZ, the five fields, the command) per job line."""
    lines = text.splitlines()
    found = []
    for previous, line in itertools.pairwise(lines):
        if previous.startswith("CRON_TZ="):
            fields = line.split(" ", 5)
            found.append((previous.removeprefix("CRON_TZ="), " ".join(fields[:5]), fields[5]))
    return found


# --- cron expressions as systemd calendars ---------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "expected"),
    [
        ("0 2 * * *", "Europe/Paris", ["*-*-* 02:00:00 Europe/Paris"]),
        ("*/15 * * * *", "UTC", ["*-*-* *:00/15:00 UTC"]),
        ("10-50/10 8-18 * * mon-fri", "UTC", ["Mon..Fri *-*-* 08..18:10/10:00 UTC"]),
        ("10-40/10 * * * *", "UTC", ["*-*-* *:10,20,30,40:00 UTC"]),
        ("5/20 * * * *", "UTC", ["*-*-* *:05/20:00 UTC"]),
        ("30 6 1 jan,JUL *", "UTC", ["*-01,07-01 06:30:00 UTC"]),
        ("0 0 1-5 2-11/3 *", "UTC", ["*-02/3-01..05 00:00:00 UTC"]),
        ("0 12 * * 7", "UTC", ["Sun *-*-* 12:00:00 UTC"]),
        ("0 12 * * 0,7", "UTC", ["Sun *-*-* 12:00:00 UTC"]),
        ("0 12 * * 5-7", "UTC", ["Fri..Sun *-*-* 12:00:00 UTC"]),
        ("0 12 * * sat,sun", "UTC", ["Sat,Sun *-*-* 12:00:00 UTC"]),
        ("0 12 * * 1-7", "UTC", ["*-*-* 12:00:00 UTC"]),
        ("0 22-2 * * *", "UTC", ["*-*-* 00..02,22,23:00:00 UTC"]),
        ("0 1,2 * * *", "UTC", ["*-*-* 01,02:00:00 UTC"]),
        # Both day fields restricted: either matches, so one calendar per field.
        ("0 2 1,15 * mon", "UTC", ["*-*-01,15 02:00:00 UTC", "Mon *-*-* 02:00:00 UTC"]),
        ("0 2 */2 * MON", "UTC", ["*-*-01/2 02:00:00 UTC", "Mon *-*-* 02:00:00 UTC"]),
        ("0 0 13 * fri", "UTC", ["*-*-13 00:00:00 UTC", "Fri *-*-* 00:00:00 UTC"]),
        # ... unless one of them is every day: then every day matches.
        ("0 2 1-31 * 1-5", "UTC", ["*-*-* 02:00:00 UTC"]),
        ("0 2 1 * 0-6", "UTC", ["*-*-* 02:00:00 UTC"]),
        # One of them '*': both must match (a plain AND, which systemd does too).
        ("0 2 */2 * *", "UTC", ["*-*-01/2 02:00:00 UTC"]),
        ("0 2 * * */2", "UTC", ["Tue,Thu,Sat,Sun *-*-* 02:00:00 UTC"]),
    ],
)
def test_on_calendar_translates_every_field(cron: str, zone: str, expected: list[str]) -> None:
    assert on_calendar(cron, zone) == expected


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("@reboot", "'@' shortcuts"),
        ("@daily", "'@' shortcuts"),
        ("0 0 L * *", "day-of-month 'L'"),
        ("0 2 * * 5L", "day-of-week '5L'"),
        ("0 2 * * 1#2", "day-of-week '1#2'"),
        ("0 2 ? * *", "day-of-month '\\?'"),
        ("0 2 15W * *", "day-of-month '15W'"),
        ("H 2 * * *", "minute 'H'"),
        ("0 2 * *", "five-field"),
        ("0 0 2 * * *", "five-field"),
        ("0 24 * * *", "out of range"),
        ("0 2 * * xyz", "not acceptable"),
    ],
)
def test_what_cannot_be_expressed_exactly_is_refused(cron: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        on_calendar(cron, "UTC")


def test_a_config_croniter_accepts_but_timers_cannot_express_names_the_schedule(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, schedule("eom", "0 0 L * *"))
    path = tmp_path / "serve.yml"
    for export in (systemd_units, crontab):
        with pytest.raises(InputError, match=r"serve\.yml: schedule eom: .*'L'"):
            export(cfg, OORFIX, path)


def croniter_times(cron: str, zone: str, base: datetime, count: int) -> list[datetime]:
    it = croniter(cron, base.astimezone(ZoneInfo(zone)))
    return [it.get_next(datetime).astimezone(UTC) for _ in range(count)]


EQUIVALENCE = [
    ("0 2 * * *", "Europe/Paris"),
    ("*/15 * * * *", "UTC"),
    ("10-50/10 8-18 * * mon-fri", "America/New_York"),
    ("0 2 1,15 * 7", "UTC"),
    ("0 2 */2 * mon", "Europe/Paris"),
    ("30 6 1 jan,jul *", "Asia/Tokyo"),
    ("0 22-2 * * sat-mon", "UTC"),
    ("5/20 */3 * * 1-5", "UTC"),
    ("0 0 13 * fri", "UTC"),
    ("0 12 * 2-11/3 *", "Australia/Sydney"),
    ("15 4 28-3 * *", "UTC"),
    ("0 9 * * fri-tue/2", "UTC"),
]
BASE = datetime(2026, 6, 10, 12, 34, 56, tzinfo=UTC)  # far from any DST change


def systemd_times(value: str, count: int) -> list[datetime]:
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "calendar",
            f"--iterations={count}",
            f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC",
            value,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "TZ": "UTC", "LC_ALL": "C"},
    )
    assert done.returncode == 0, done.stderr
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", done.stdout)
    return [datetime.fromisoformat(s).replace(tzinfo=UTC) for s in stamps]


@needs_systemd
@pytest.mark.parametrize(("cron", "zone"), EQUIVALENCE)
def test_systemd_starts_when_the_service_would(cron: str, zone: str) -> None:
    count = 8
    starts: set[datetime] = set()
    for value in on_calendar(cron, zone):  # a timer starts at the earliest of its calendars
        starts.update(systemd_times(value, count))
    assert sorted(starts)[:count] == croniter_times(cron, zone, BASE, count)


@pytest.mark.parametrize(("cron", "zone"), EQUIVALENCE)
def test_crontab_fields_mean_what_the_service_runs(tmp_path: Path, cron: str, zone: str) -> None:
    text = crontab(config(tmp_path, {**schedule(cron=cron), "timezone": zone}), OORFIX, tmp_path)
    ((tz, fields, _),) = cron_lines(text)
    assert tz == zone
    assert re.fullmatch(r"[0-9*,/ -]+", fields), "plain numbers every cron reads alike"
    assert croniter_times(fields, zone, BASE, 40) == croniter_times(cron, zone, BASE, 40)
    _, _, dom, _, dow = fields.split()
    for day in (dom, dow):
        # cron ANDs the day fields when either starts with '*' (its well-known bug), where
        # croniter ORs them: a restricted day field never starts with one.
        assert day == "*" or not day.startswith("*")


def test_crontab_keeps_cron_or_of_both_day_fields(tmp_path: Path) -> None:
    text = crontab(config(tmp_path, schedule(cron="0 2 */2 * mon")), OORFIX, tmp_path)
    assert cron_lines(text)[0][1] == "0 2 1-31/2 * 1"


# --- the job's command line --------------------------------------------------------------------


def parsed(argv: list[str]) -> tuple[click.Command, dict[str, Any]]:
    """The command an exported argv names and its options as the real CLI parses them."""
    assert argv[: len(OORFIX)] == OORFIX
    name, *args = argv[len(OORFIX) :]
    command = {"run": run, "diagnose": diagnose}[name]
    emitted = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    known = {o for p in command.params for o in p.opts}
    if "--detect-only" in emitted and "--detect-only" not in known:
        # `oorfix run --detect-only` is being added alongside; until then parse without it.
        emitted.discard("--detect-only")
        args = [a for a in args if a != "--detect-only"]
    assert emitted <= known, emitted - known
    context = command.make_context(name, args)
    return command, context.params


@pytest.mark.parametrize(
    ("mode", "fix", "dry_run"),
    [("diagnose", False, False), ("dry-run", True, True), ("fix", True, False)],
)
def test_a_job_without_runbooks_is_a_diagnosis(
    tmp_path: Path, mode: str, fix: bool, dry_run: bool
) -> None:
    cfg = config(tmp_path, schedule(mode=mode, auto_approve=True))
    command, params = parsed(job_argv(cfg, cfg.schedules[0], OORFIX))
    assert command is diagnose
    assert params["inventory_paths"] == (tmp_path / "inventory",)
    assert params["runbook_dir"] == tmp_path / "runbooks"
    assert (params["fix"], params["dry_run"]) == (fix, dry_run)
    assert params["yes"]
    assert params["quiet"]
    assert params["json_path"] is None


@pytest.mark.parametrize(
    ("mode", "flag"), [("fix", None), ("dry-run", "--dry-run"), ("diagnose", "--detect-only")]
)
def test_a_job_with_runbooks_is_a_run_of_their_names_in_the_runbook_dir(
    tmp_path: Path, mode: str, flag: str | None
) -> None:
    runbooks = tmp_path / "runbooks"
    (runbooks / "nested").mkdir(parents=True)
    (runbooks / "b.yaml").write_text("name: b\n")
    (runbooks / "nested" / "c.yml").write_text("name: c\n")
    cfg = config(tmp_path, schedule(runbooks=["a", "b", "c"], mode=mode, auto_approve=True))
    argv = job_argv(cfg, cfg.schedules[0], OORFIX)
    for other in ("--dry-run", "--detect-only", "--fix"):
        assert (other in argv) == (other == flag)
    command, params = parsed(argv)
    assert command is run
    # Names, found in the runbook directory at run time exactly as the service finds them.
    assert params["runbooks"] == ("a", "b", "c")
    assert params["runbook_dir"] == runbooks
    assert params["dry_run"] == (mode == "dry-run")
    assert params["detect_only"] == (mode == "diagnose")


def test_every_default_reaches_the_command_line(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        schedule(runbooks=["a"], mode="fix", auto_approve=True, limit="-web:&db"),
        forks=7,
        known_hosts=str(tmp_path / "known_hosts"),
        state_dir=str(tmp_path / "state"),
        connect_timeout=2.5,
        lock_ttl="20m",
    )
    _, params = parsed(job_argv(cfg, cfg.schedules[0], OORFIX))
    assert params["limit"] == "-web:&db"
    assert params["forks"] == 7
    assert params["known_hosts"] == tmp_path / "known_hosts"
    assert params["state_dir"] == tmp_path / "state"
    assert params["connect_timeout"] == 2.5
    assert params["lock_ttl"] == 1200.0
    assert params["yes"]
    assert params["quiet"]


def test_unset_options_are_left_to_the_cli(tmp_path: Path) -> None:
    cfg = config(tmp_path, schedule())
    argv = job_argv(cfg, cfg.schedules[0], OORFIX)
    for option in ("--limit", "--yes", "--state-dir", "--known-hosts", "--json"):
        assert not any(a.split("=")[0] == option for a in argv), option
    assert "--forks" in argv
    assert "--quiet" in argv


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = ServeConfig.model_validate(
        {"defaults": {"state_dir": "state"}, "schedules": [schedule()]}
    )
    service = systemd_units(cfg, OORFIX, tmp_path / "etc" / "serve.yml")["oorfix-nightly.service"]
    words = systemd_words(exec_start(service))
    assert words[words.index("--inventory") + 1] == str(tmp_path / "etc" / "inventory")
    assert words[words.index("--runbooks") + 1] == str(tmp_path / "etc" / "runbooks")
    assert words[words.index("--state-dir") + 1] == str(tmp_path / "etc" / "state")


# --- quoting odd paths ----------------------------------------------------------------------------

ODD = "my dir/100% $HOME ${X} \"dq\" 'sq' back\\slash \\% tab\tend"


def odd_config(tmp_path: Path, odd: str = ODD) -> ServeConfig:
    return config(
        tmp_path,
        schedule("odd", "0 2 * * *", runbooks=["a"], mode="fix", auto_approve=True, limit="web*"),
        inventory=str(tmp_path / odd / "inventory.yml"),
        runbooks=str(tmp_path / odd / "runbooks"),
        state_dir=str(tmp_path / odd / "state"),
    )


def test_systemd_command_line_reads_back_as_the_argv(tmp_path: Path) -> None:
    cfg = odd_config(tmp_path)
    exe = [str(tmp_path / "bin 50%" / "oor$fix")]
    service = systemd_units(cfg, exe, tmp_path / ODD / "serve.yml")["oorfix-odd.service"]
    assert systemd_words(exec_start(service)) == job_argv(cfg, cfg.schedules[0], exe)


def test_systemd_quotes_line_breaks_as_escapes() -> None:
    assert systemd_quote("a\nb") == '"a\\x0ab"'
    assert systemd_words(systemd_quote('a\nb%$\\"')) == ['a\nb%$\\"']


def test_cron_command_reads_back_as_the_argv(tmp_path: Path) -> None:
    cfg = odd_config(tmp_path)
    text = crontab(cfg, OORFIX, tmp_path / "serve.yml")
    ((_, _, command),) = cron_lines(text)
    lock = "/run/lock/oorfix-odd.lock"
    expected = ["flock", "-n", lock, *job_argv(cfg, cfg.schedules[0], OORFIX)]
    assert shlex.split(cron_decode(command)) == expected


def test_the_shell_hands_the_job_exactly_its_argv(tmp_path: Path) -> None:
    """The decoded line run by sh: a stand-in for oorfix prints the arguments it got."""
    cfg = odd_config(tmp_path)
    echo = [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))  # 5% $X"]
    ((_, _, command),) = cron_lines(crontab(cfg, echo, tmp_path / "serve.yml"))
    line = cron_decode(command).removeprefix("flock -n /run/lock/oorfix-odd.lock ")
    done = subprocess.run(
        ["/bin/sh", "-c", line], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(done.stdout) == job_argv(cfg, cfg.schedules[0], echo)[len(echo) :]


@pytest.mark.parametrize("arg", ["\\%", "\\\\%", "%\\", "a%%b", "'%'", "\\", "%"])
def test_cron_percent_escapes_survive_backslashes(arg: str) -> None:
    assert shlex.split(cron_decode(cron_command([arg]))) == [arg]


def test_cron_refuses_a_line_break(tmp_path: Path) -> None:
    cfg = odd_config(tmp_path, "line\nbreak")
    with pytest.raises(InputError, match=r"schedule odd: .*line break"):
        crontab(cfg, OORFIX, tmp_path / "serve.yml")
    service = systemd_units(cfg, OORFIX, tmp_path / "serve.yml")["oorfix-odd.service"]
    assert systemd_words(exec_start(service)) == job_argv(cfg, cfg.schedules[0], OORFIX)


@needs_systemd
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    cfg = odd_config(tmp_path)
    # verify wants the executable to exist; the arguments are what is checked.
    units = systemd_units(cfg, [sys.executable, "-m", "oorfix"], tmp_path / ODD / "serve.yml")
    paths = write_units(units, tmp_path / "units")
    assert SYSTEMD_ANALYZE is not None
    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", *(str(p) for p in paths)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path / "units",
    )
    assert done.returncode == 0, done.stderr
    assert "escape" not in done.stderr, done.stderr
    assert "specifier" not in done.stderr, done.stderr


# --- the files ---------------------------------------------------------------------------------


def test_a_service_and_a_timer_per_schedule(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        {**schedule("nightly", "0 2 */2 * mon"), "timezone": "Europe/Paris"},
        {**schedule("hourly", "0 * * * *"), "missed": "skip"},
    )
    units = systemd_units(cfg, OORFIX, tmp_path / "serve.yml")
    assert sorted(units) == [
        "oorfix-hourly.service",
        "oorfix-hourly.timer",
        "oorfix-nightly.service",
        "oorfix-nightly.timer",
    ]
    service, timer = units["oorfix-nightly.service"], units["oorfix-nightly.timer"]
    assert "Type=oneshot" in service.splitlines()
    for unit in (service, timer):
        assert unit.startswith("#")
        assert str(tmp_path / "serve.yml") in unit.splitlines()[0]
        assert "schedule nightly" in unit.splitlines()[0]
    assert [x for x in timer.splitlines() if x.startswith("OnCalendar=")] == [
        "OnCalendar=*-*-01/2 02:00:00 Europe/Paris",
        "OnCalendar=Mon *-*-* 02:00:00 Europe/Paris",
    ]
    assert "Persistent=true" in timer.splitlines()
    assert "Persistent=false" in units["oorfix-hourly.timer"].splitlines()
    for line in ("AccuracySec=1s", "[Install]", "WantedBy=timers.target"):
        assert line in timer.splitlines()


@needs_systemd
@pytest.mark.parametrize(("cron", "zone"), EQUIVALENCE)
def test_systemd_accepts_every_calendar(cron: str, zone: str) -> None:
    assert SYSTEMD_ANALYZE is not None
    for value in on_calendar(cron, zone):
        done = subprocess.run(
            [SYSTEMD_ANALYZE, "calendar", value],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, (value, done.stderr)


def test_crontab_sets_the_zone_before_each_line_and_guards_overlap(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        {**schedule("a", "0 2 * * *"), "timezone": "Europe/Paris"},
        schedule("b", "*/15 * * * *"),
    )
    text = crontab(cfg, OORFIX, tmp_path / "serve.yml")
    assert text.startswith("#")
    assert str(tmp_path / "serve.yml") in text.splitlines()[0]
    assert "overlap" in text
    assert "flock -n" in text
    assert [(tz, fields) for tz, fields, _ in cron_lines(text)] == [
        ("Europe/Paris", "0 2 * * *"),
        ("UTC", "*/15 * * * *"),
    ]
    for name, (_, _, command) in zip("ab", cron_lines(text), strict=True):
        assert command.startswith(f"flock -n /run/lock/oorfix-{name}.lock /usr/local/bin/oorfix ")
    assert text.endswith("\n")


def test_write_units_writes_whole_readable_files(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    (tmp_path / "a").mkdir()
    paths = write_units({"x.service": "one\n", "x.timer": "two\n"}, directory)
    assert paths == [directory / "x.service", directory / "x.timer"]
    assert [p.read_text() for p in paths] == ["one\n", "two\n"]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write_units({"x.service": "new\n"}, directory)
    assert (directory / "x.service").read_text() == "new\n"
    assert sorted(p.name for p in directory.iterdir()) == ["x.service", "x.timer"]


@pytest.mark.parametrize("name", ["../x.service", "a/b.timer", "", ".."])
def test_write_units_refuses_what_is_not_a_file_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a file name"):
        write_units({name: ""}, tmp_path)


# --- through the command line -----------------------------------------------------------------

SERVE_YML = """\
defaults: {inventory: inv, runbooks: rb}
schedules:
  - name: nightly
    cron: "0 2 * * mon-fri"
    timezone: Europe/Paris
    job: {runbooks: [ups], mode: fix, auto_approve: true}
"""


def test_the_cli_prints_a_crontab(tmp_path: Path) -> None:
    path = tmp_path / "serve.yml"
    path.write_text(SERVE_YML)
    result = CliRunner().invoke(main, ["schedule", "export", "--config", str(path), "--cron"])
    assert result.exit_code == 0, result.output
    ((tz, fields, command),) = cron_lines(result.output)
    assert (tz, fields) == ("Europe/Paris", "0 2 * * 1-5")
    argv = shlex.split(cron_decode(command))
    assert argv[argv.index("--inventory") + 1] == str(tmp_path / "inv")
    assert argv[argv.index("--runbooks") + 1] == str(tmp_path / "rb")


def test_the_cli_writes_units(tmp_path: Path) -> None:
    path = tmp_path / "serve.yml"
    path.write_text(SERVE_YML)
    out = tmp_path / "units"
    args = ["schedule", "export", "--config", str(path), "--systemd", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.split() == [
        str(out / "oorfix-nightly.service"),
        str(out / "oorfix-nightly.timer"),
    ]
    assert (
        "OnCalendar=Mon..Fri *-*-* 02:00:00 Europe/Paris"
        in (out / "oorfix-nightly.timer").read_text()
    )


def test_the_cli_reports_what_cannot_be_exported_as_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "serve.yml"
    path.write_text(SERVE_YML.replace("0 2 * * mon-fri", "0 2 L * *"))
    result = CliRunner().invoke(main, ["schedule", "export", "--config", str(path), "--cron"])
    assert result.exit_code == 2
    assert "schedule nightly" in result.output
    assert "'L'" in result.output
