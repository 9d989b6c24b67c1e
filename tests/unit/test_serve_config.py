"""serve.yml: what `load_config` refuses (as InputErrors naming file, line and key), what it
accepts (paths beside the file, durations, secrets read at start), and cron times in zones."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from oorfix.errors import InputError, InputErrors
from oorfix.serve.config import Job, Schedule, Secret, load_config

PARIS = ZoneInfo("Europe/Paris")

# Every bad file starts with these two lines, so no error can be found on line 1 by luck.
HEAD = "public_url: https://oorfix.example\ndefaults: {forks: 4}\n"

# The smallest authenticated alertmanager section, for the route cases.
AM = "alertmanager:\n  token: {env: OORFIX_TEST_TOKEN}\n  routes:\n"


def write(tmp_path: Path, text: str, name: str = "serve.yml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def refused(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_config(path)
    return caught.value


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        pytest.param(
            "schedules:\n"
            "  - name: nightly\n"
            '    cron: "0 2 * * *"\n'
            "    job:\n"
            "      runbooks: [ups-selftest]\n"
            "      mode: fix\n",
            6,
            "schedules[0].job: mode fix runs unattended: set auto_approve: true",
            id="schedule fix without auto_approve",
        ),
        pytest.param(
            "schedules:\n"
            "  - name: nightly\n"
            '    cron: "0 2 * * *"\n'
            "    job: {mode: fix, auto_approve: false}\n",
            6,
            "schedules[0].job: mode fix runs unattended",
            id="schedule fix with auto_approve false",
        ),
        pytest.param(
            AM + "    - name: api-down\n"
            "      match: {alertname: ApiDown}\n"
            "      job: {runbooks: [api-down], mode: fix}\n",
            8,
            "alertmanager.routes[0].job: mode fix runs unattended: set auto_approve: true",
            id="route fix without auto_approve",
        ),
        pytest.param(
            'schedules:\n  - name: a\n    cron: "61 * * * *"\n    job: {}\n',
            5,
            "schedules[0].cron: '61 * * * *' is not a five-field cron expression",
            id="cron minute 61",
        ),
        pytest.param(
            'schedules:\n  - name: a\n    cron: "0 0 2 * * *"\n    job: {}\n',
            5,
            "schedules[0].cron: '0 0 2 * * *' is not a five-field cron expression",
            id="cron with six fields",
        ),
        pytest.param(
            'schedules:\n  - name: a\n    cron: "@reboot"\n    job: {}\n',
            5,
            "schedules[0].cron: '@reboot' is not a five-field cron expression",
            id="cron @reboot",
        ),
        pytest.param(
            'schedules:\n  - name: a\n    cron: "0 2 * * *"\n'
            "    timezone: Europe/Atlantis\n    job: {}\n",
            6,
            "schedules[0].timezone: unknown time zone 'Europe/Atlantis'",
            id="unknown time zone",
        ),
        pytest.param(
            "schedules: []\nalertmanager:\n  max_alerts: 10\n",
            4,
            "alertmanager: the webhook needs a token or an hmac secret (never open)",
            id="alertmanager without token or hmac",
        ),
        pytest.param(
            AM + "    - name: everything\n      match: {}\n      job: {}\n",
            7,
            "alertmanager.routes[0].match: match at least one label",
            id="route with empty match",
        ),
        pytest.param(
            AM + "    - name: r\n      match: {alertname: X}\n      job: {}\n"
            "    - name: r\n      match: {alertname: Y}\n      job: {}\n",
            3,
            "alertmanager: route names must be unique: r",
            id="duplicate route names",
        ),
        pytest.param(
            "dashboard:\n  token:\n    env: OORFIX_DASH\n    file: token.txt\n",
            4,
            "dashboard.token: give exactly one of env or file",
            id="secret with env and file",
        ),
        pytest.param(
            "dashboard:\n  token: {}\n",
            4,
            "dashboard.token: give exactly one of env or file",
            id="secret with neither",
        ),
        pytest.param(
            "schedules:\n  - name: a\n    cron: '0 2 * * *'\n    job: {}\n    grace: soon\n",
            7,
            "schedules[0].grace: 'soon' is not a duration",
            id="bad duration",
        ),
        pytest.param(
            "notify:\n  - {name: pd, kind: pagerduty}\n",
            4,
            "notify[0]: a pagerduty target needs routing_key",
            id="pagerduty without routing_key",
        ),
        pytest.param(
            "schedules:\n  - name: a\n    cron: '0 2 * * *'\n    job: {}\n    timzone: UTC\n",
            7,
            "schedules[0].timzone: unknown key (check its spelling; see `oorfix schema`)",
            id="unknown key",
        ),
    ],
)
def test_a_bad_config_is_an_input_error_naming_file_line_and_key(
    tmp_path: Path, body: str, line: int, expected: str
) -> None:
    path = write(tmp_path, HEAD + body)
    error = refused(path)
    assert not isinstance(error, InputErrors)
    assert (error.path, error.line) == (str(path), line)
    message = error.location_message()
    assert message.startswith(f"{path}:{line}: {expected}"), message


def test_every_error_of_a_config_is_reported_with_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + "schedules:\n"
        "  - name: a\n"
        '    cron: "61 * * * *"\n'
        "    job: {}\n"
        "  - name: b\n"
        '    cron: "0 2 * * *"\n'
        "    timezone: Nowhere/Town\n"
        "    job: {}\n",
    )
    with pytest.raises(InputErrors) as caught:
        load_config(path)
    assert [e.location_message() for e in caught.value.errors] == [
        f"{path}:5: schedules[0].cron: '61 * * * *' is not a five-field cron expression",
        f"{path}:9: schedules[1].timezone: unknown time zone 'Nowhere/Town'",
    ]


# Checks made across sections (the listen address and the dashboard token, notify target
# names, unique schedule names) are refused, naming the file and what is wrong...
CROSS = {
    "open listen": (
        "listen:\n  host: 0.0.0.0\n",
        "listen.host: 0.0.0.0 is not loopback: set dashboard.token",
    ),
    "unknown notify target": (
        "notify:\n"
        "  - {name: oncall, kind: slack, url: {env: SLACK_URL}}\n" + AM + "    - name: api-down\n"
        "      match: {alertname: ApiDown}\n"
        "      job: {}\n"
        "      notify: [pager]\n",
        "alertmanager.routes[0].notify[0]: unknown notify target 'pager'",
    ),
    "unknown notify target of a schedule": (
        "schedules:\n  - name: a\n    cron: '0 2 * * *'\n    job: {}\n    notify: [pager]\n",
        "schedules[0].notify[0]: unknown notify target 'pager'",
    ),
    "duplicate schedule names": (
        "schedules:\n"
        "  - name: nightly\n    cron: '0 2 * * *'\n    job: {}\n"
        "  - name: nightly\n    cron: '0 3 * * *'\n    job: {}\n",
        "schedules[1].name: 'nightly' is used twice",
    ),
}
# ...and each should point at the line of the key at fault (its own line or its parent's).
CROSS_LINES = {
    "open listen": {3, 4},  # listen: / host:
    "unknown notify target": {8, 11},  # - name: api-down / notify: [pager]
    "unknown notify target of a schedule": {4, 7},  # - name: a / notify: [pager]
    "duplicate schedule names": {7},  # the second - name: nightly
}


@pytest.mark.parametrize("case", list(CROSS))
def test_a_cross_section_error_names_the_file_and_the_fault(tmp_path: Path, case: str) -> None:
    body, expected = CROSS[case]
    path = write(tmp_path, HEAD + body)
    error = refused(path)
    assert error.path == str(path)
    assert expected in error.location_message()


@pytest.mark.parametrize("case", list(CROSS))
def test_a_cross_section_error_names_the_line_of_the_key(tmp_path: Path, case: str) -> None:
    body, _ = CROSS[case]
    path = write(tmp_path, HEAD + body)
    assert refused(path).line in CROSS_LINES[case]


def test_an_open_listen_address_is_accepted_with_a_dashboard_token(tmp_path: Path) -> None:
    path = write(tmp_path, "listen: {host: 0.0.0.0}\ndashboard: {token: {env: DASH}}\n")
    config = load_config(path)
    assert config.listen.host == "0.0.0.0"
    assert not config.listen.loopback
    assert config.dashboard.token == Secret(env="DASH")


def test_a_config_that_is_not_a_mapping_is_refused_at_line_1(tmp_path: Path) -> None:
    path = write(tmp_path, "- listen\n")
    assert refused(path).location_message() == (f"{path}:1: the service configuration is a mapping")


def test_a_cron_that_never_fires_is_refused_when_loading(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "schedules:\n  - name: a\n    cron: '0 2 30 2 *'\n    job: {}\n")
    error = refused(path)
    assert error.line == 5


# --- valid configurations ---------------------------------------------------------------

FULL = """\
listen: {host: 127.0.0.1, port: 9095}
defaults:
  inventory: inventory/
  runbooks: runbooks
  state_dir: ../state
  known_hosts: /etc/oorfix/known_hosts
  lock_ttl: 15m
  renotify: 2h
schedules:
  - name: nightly-ups-selftest
    cron: "0 2 * * *"
    timezone: Europe/Paris
    grace: 90s
    missed: skip
    job: {runbooks: [maintenance-ups-selftest], mode: fix, auto_approve: true}
alertmanager:
  hmac: {file: secrets/hmac.key}
  routes:
    - name: payment-api-down
      match: {alertname: PaymentApiDown, severity: critical}
      cooldown: 15m
      job: {runbooks: [payment-api-down], mode: dry-run, limit: payment_api}
      notify: [oncall]
notify:
  - {name: oncall, kind: slack, url: {env: SLACK_WEBHOOK_URL}}
"""


def test_paths_in_the_file_are_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, FULL, "site/conf/serve.yml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../site/conf/serve.yml"))
    conf = tmp_path / "site" / "conf"
    assert config.defaults.inventory == conf / "inventory"
    assert config.defaults.runbooks == conf / "runbooks"
    assert config.defaults.state_dir == tmp_path / "site" / "state"
    assert config.defaults.known_hosts == Path("/etc/oorfix/known_hosts")
    assert config.alertmanager is not None
    assert config.alertmanager.hmac == Secret(file=conf / "secrets" / "hmac.key")


def test_default_paths_are_beside_the_file_and_state_dir_stays_unset(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "listen: {port: 9100}\n", "a/serve.yml"))
    assert config.defaults.inventory == tmp_path / "a" / "inventory"
    assert config.defaults.runbooks == tmp_path / "a" / "runbooks"
    assert config.defaults.state_dir is None
    assert config.defaults.known_hosts is None
    assert config.listen.port == 9100
    assert config.listen.loopback
    assert (config.schedules, config.routes, config.alertmanager) == ([], [], None)


def test_durations_and_the_rest_of_a_full_config_parse(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert (config.defaults.lock_ttl, config.defaults.renotify) == (900.0, 7200.0)
    (schedule,) = config.schedules
    assert (schedule.grace, schedule.missed, schedule.zone) == (90.0, "skip", PARIS)
    assert schedule.job == Job(runbooks=["maintenance-ups-selftest"], mode="fix", auto_approve=True)
    (route,) = config.routes
    assert route.cooldown == 900.0
    assert route.notify == ["oncall"]
    assert route.job.limit == "payment_api"
    assert route.matches({"alertname": "PaymentApiDown", "severity": "critical", "x": "y"})
    assert not route.matches({"alertname": "PaymentApiDown", "severity": "warning"})
    assert not route.matches({"alertname": "PaymentApiDown"})


def test_numbers_are_seconds_and_defaults_hold(tmp_path: Path) -> None:
    text = (
        "defaults: {lock_ttl: 60}\n"
        "schedules:\n  - {name: a, cron: '*/5 * * * *', job: {}, grace: 30}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.defaults.lock_ttl == 60.0
    assert config.defaults.renotify == 14400.0
    (schedule,) = config.schedules
    assert (schedule.grace, schedule.timezone, schedule.missed) == (30.0, "UTC", "run-once")
    assert schedule.job == Job(runbooks=None, mode="diagnose", auto_approve=False)


def test_a_zero_duration_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "schedules:\n  - {name: a, cron: '0 2 * * *', job: {}}\n")
    assert load_config(path).schedules[0].grace == 3600.0
    path = write(tmp_path, HEAD.replace("{forks: 4}", "{forks: 4, lock_ttl: 0s}"))
    error = refused(path)
    assert error.location_message().startswith(
        f"{path}:2: defaults.lock_ttl: must be longer than 0s"
    )


# --- secrets ----------------------------------------------------------------------------


def test_a_secret_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OORFIX_TEST_SECRET", "  s3cret-value \n")
    secret = Secret(env="OORFIX_TEST_SECRET")
    assert secret.read() == "s3cret-value"
    assert secret.where() == "$OORFIX_TEST_SECRET"


def test_a_secret_file_beside_the_config_gives_its_first_line(tmp_path: Path) -> None:
    write(tmp_path, "hunter2\nsecond line\n", "conf/secrets/token")
    path = write(tmp_path, "dashboard: {token: {file: secrets/token}}\n", "conf/serve.yml")
    secret = load_config(path).dashboard.token
    assert secret is not None
    assert secret.file == tmp_path / "conf" / "secrets" / "token"
    assert secret.read() == "hunter2"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_or_empty_env_secret_names_the_variable_only(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("OORFIX_TEST_SECRET", raising=False)
    else:
        monkeypatch.setenv("OORFIX_TEST_SECRET", value)
    with pytest.raises(InputError) as caught:
        Secret(env="OORFIX_TEST_SECRET").read()
    assert caught.value.location_message() == "the secret $OORFIX_TEST_SECRET is not set or empty"


def test_a_secret_file_that_cannot_be_read_names_the_file(tmp_path: Path) -> None:
    missing = Secret(file=tmp_path / "nope")
    with pytest.raises(InputError) as caught:
        missing.read()
    assert caught.value.path == str(tmp_path / "nope")
    assert "cannot read the secret" in caught.value.message

    empty = write(tmp_path, "", "empty")
    with pytest.raises(InputError) as caught:
        Secret(file=empty).read()
    assert (
        caught.value.location_message() == f"{empty}: cannot read the secret: empty or unreadable"
    )

    blank = write(tmp_path, "   \nsecond-line-is-not-the-secret\n", "blank")
    with pytest.raises(InputError) as caught:
        Secret(file=blank).read()
    assert "second-line" not in caught.value.location_message()
    assert caught.value.location_message() == f"the secret {blank} is not set or empty"


def test_a_secret_value_never_appears_in_the_config_or_its_description(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.example/T0/B0/XXXX")
    config = load_config(write(tmp_path, FULL))
    (target,) = config.notify
    assert target.url is not None
    assert target.url.read() == "https://hooks.slack.example/T0/B0/XXXX"
    assert target.url.where() == "$SLACK_WEBHOOK_URL"
    assert "hooks.slack.example" not in repr(config)
    assert "hooks.slack.example" not in config.model_dump_json()


# --- cron times in time zones -----------------------------------------------------------


def schedule(cron: str, timezone: str = "UTC") -> Schedule:
    return Schedule.model_validate({"name": "s", "cron": cron, "timezone": timezone, "job": {}})


def utc(moment: datetime) -> datetime:
    """Compare instants: two datetimes with the same tzinfo compare by wall time, fold ignored."""
    return moment.astimezone(UTC)


def test_next_after_is_in_the_schedules_zone() -> None:
    nightly = schedule("0 2 * * *", "Europe/Paris")
    start = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    after = nightly.next_after(start)
    assert utc(after) == datetime(2026, 1, 11, 1, 0, tzinfo=UTC)  # 02:00 CET
    assert after.utcoffset() is not None
    assert after.astimezone(PARIS).hour == 2
    summer = nightly.next_after(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert utc(summer) == datetime(2026, 7, 2, 0, 0, tzinfo=UTC)  # 02:00 CEST
    assert utc(schedule("0 2 * * *").next_after(start)) == datetime(2026, 1, 11, 2, tzinfo=UTC)
    new_york = schedule("0 2 * * *", "America/New_York").next_after(start)
    assert utc(new_york) == datetime(2026, 1, 11, 7, 0, tzinfo=UTC)


def test_next_after_is_strictly_after() -> None:
    nightly = schedule("0 2 * * *", "Europe/Paris")
    tick = datetime(2026, 1, 11, 2, 0, tzinfo=PARIS)
    assert utc(nightly.next_after(tick)) == utc(datetime(2026, 1, 12, 2, 0, tzinfo=PARIS))
    assert utc(nightly.previous_before(tick.replace(minute=1))) == utc(tick)


def test_next_after_on_the_spring_dst_change() -> None:
    # 2026-03-29 02:00 does not exist in Paris (02:00 CET -> 03:00 CEST): cron runs the job
    # when the clock jumps, which is what zoneinfo makes of 02:00 that day (fold=0).
    nightly = schedule("0 2 * * *", "Europe/Paris")
    expected = datetime(2026, 3, 29, 2, 0, tzinfo=PARIS)
    assert utc(expected) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    first = nightly.next_after(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert utc(first) == utc(expected)
    second = nightly.next_after(first)
    assert utc(second) == utc(datetime(2026, 3, 30, 2, 0, tzinfo=PARIS))
    assert utc(second) == datetime(2026, 3, 30, 0, 0, tzinfo=UTC)


def test_next_after_on_the_autumn_dst_change_starts_at_the_first_2am() -> None:
    nightly = schedule("0 2 * * *", "Europe/Paris")
    first = nightly.next_after(datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    expected = datetime(2026, 10, 25, 2, 0, tzinfo=PARIS)  # fold=0: 02:00 CEST
    assert utc(first) == utc(expected) == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)


def test_a_daily_schedule_starts_once_on_the_autumn_dst_change() -> None:
    nightly = schedule("0 2 * * *", "Europe/Paris")
    first = nightly.next_after(datetime(2026, 10, 24, 12, 0, tzinfo=UTC))
    second = nightly.next_after(first)
    assert utc(second) == utc(datetime(2026, 10, 26, 2, 0, tzinfo=PARIS))


def test_previous_before_includes_a_start_at_that_moment() -> None:
    hourly = schedule("0 * * * *")
    tick = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    assert utc(hourly.previous_before(tick)) == tick
