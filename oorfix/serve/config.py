"""The service's configuration file (``oorfix serve --config serve.yml``), validated whole.

    listen: {host: 127.0.0.1, port: 9095}
    defaults: {inventory: inventory/, runbooks: runbooks/, forks: 10}
    schedules:
      - name: nightly-ups-selftest
        cron: "0 2 * * *"
        timezone: Europe/Paris
        job: {runbooks: [maintenance-ups-selftest], mode: fix, auto_approve: true}
    alertmanager:
      token: {env: OORFIX_ALERT_TOKEN}
      routes:
        - name: payment-api-down
          match: {alertname: PaymentApiDown}
          job: {runbooks: [payment-api-down], mode: fix, auto_approve: true}
          notify: [oncall]
    notify:
      - {name: oncall, kind: slack, url: {env: SLACK_WEBHOOK_URL}}

Secrets are never written in the file: each is read from an environment variable or a file
when the service starts. Errors name the file, the line and the key, and exit 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from oorfix.errors import InputError, InputErrors, RunbookError
from oorfix.runbook.durations import parse_duration
from oorfix.runbook.validation import format_loc, validation_errors
from oorfix.runbook.yamlsource import load_file
from oorfix.safety.redis_client import RedisTarget, is_redis_url

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus label names
Mode = Literal["diagnose", "dry-run", "fix"]
Event = Literal["escalated", "mitigated", "fixed"]
EVENTS: tuple[Event, ...] = ("escalated", "mitigated", "fixed")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{value!r}: a name is lower case letters, digits, '_', '.', '-'")
    return value


def _seconds(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be longer than 0s")
    return seconds


class Secret(_Model):
    """Where a secret is read from when the service starts: an environment variable or a
    file (its first line). Never the value itself."""

    env: str | None = Field(None, description="the environment variable that holds it")
    file: Path | None = Field(None, description="a file whose first line holds it")

    @field_validator("file")
    @classmethod
    def _beside_config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        base = (info.context or {}).get("base")
        if value is None or value.is_absolute() or base is None:
            return value
        return Path(os.path.abspath(Path(base) / value))

    @model_validator(mode="after")
    def _one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def where(self) -> str:
        """Where the secret comes from, for messages (never the value)."""
        return f"${self.env}" if self.env else str(self.file)

    def read(self) -> str:
        """The secret's value; InputError when it is missing or empty."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
        else:
            assert self.file is not None
            try:
                value = self.file.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or "empty or unreadable"
                raise InputError(f"cannot read the secret: {why}", self.file) from None
        if not value.strip():
            raise InputError(f"the secret {self.where()} is not set or empty")
        return value.strip()


class Listen(_Model):
    """Where the service listens: loopback unless configured."""

    host: str = "127.0.0.1"
    port: int = Field(9095, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach the service."""
        return ipaddress.ip_address(self.host).is_loopback


class Defaults(_Model):
    """What every job starts from (a job may narrow it with ``limit``)."""

    inventory: Path = Path("inventory")
    runbooks: Path = Field(Path("runbooks"), description="the runbook directory")
    forks: int = Field(10, ge=1, le=1000)
    known_hosts: Path | None = None
    connect_timeout: float = Field(10.0, gt=0)
    lock_ttl: float = Field(900.0, description="host lock expiry, e.g. 15m")
    state_dir: Path | None = Field(None, description="default: $XDG_STATE_HOME/oorfix")
    state: str | None = Field(
        None,
        description=(
            "redis://host:port/db shared with the team's other controllers (locks, budgets, "
            "audit, history); the password from OORFIX_STATE_PASSWORD, never in this file"
        ),
    )
    workers: str | None = Field(
        None,
        description=(
            "redis://host:port/db of `oorfix worker`s that run the jobs' hosts (password from "
            "OORFIX_WORKERS_PASSWORD, tasks signed with OORFIX_WORKER_KEY)"
        ),
    )
    max_parallel_runs: int = Field(2, ge=1, le=64, description="jobs running at once")
    renotify: float = Field(
        14400.0, description="the same notice for the same host and fault is repeated after"
    )

    _durations = field_validator("lock_ttl", "renotify", mode="before")(
        classmethod(lambda c, v: _seconds(v))
    )

    @field_validator("state", "workers")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not is_redis_url(value):
            raise ValueError("a redis://, rediss:// or unix:// URL")
        try:
            RedisTarget.parse(value)
        except InputError as exc:
            raise ValueError(exc.message) from None
        if urlsplit(value).password is not None:
            raise ValueError("no password here: it would be copied to exported units and logs")
        return value


class Job(_Model):
    """What a schedule or an alert runs: named runbooks, or a whole diagnosis."""

    runbooks: list[str] | None = Field(
        None, description="runbook names in the runbook directory; none: diagnose them all"
    )
    mode: Mode = Field("diagnose", description="diagnose (read-only), dry-run or fix")
    limit: str | None = Field(None, description="a host pattern, as --limit")
    auto_approve: bool = Field(
        False, description="fix unattended, approving runbooks that require approval"
    )

    @field_validator("runbooks")
    @classmethod
    def _runbooks(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("name at least one runbook, or leave the key out to diagnose")
            for name in value:
                if not _NAME.match(name):
                    raise ValueError(f"{name!r} is not a runbook name")
        return value

    @model_validator(mode="after")
    def _approval(self) -> Job:
        if self.mode == "fix" and not self.auto_approve:
            raise ValueError("mode fix runs unattended: set auto_approve: true to allow it")
        return self


class Schedule(_Model):
    """A named job started by a cron expression in a time zone."""

    name: str
    cron: str = Field(description="five fields: minute hour day-of-month month day-of-week")
    timezone: str = "UTC"
    job: Job
    missed: Literal["skip", "run-once"] = Field(
        "run-once",
        description="starts missed while the service was down: run once (if within grace)",
    )
    grace: float = Field(3600.0, description="how late a missed start may still run, e.g. 1h")
    notify: list[str] | None = Field(None, description="notification targets; none: all")

    _name = field_validator("name")(classmethod(lambda c, v: _name(v)))
    _grace = field_validator("grace", mode="before")(classmethod(lambda c, v: _seconds(v)))

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a five-field cron expression")
        try:  # valid syntax may still never fire (February 30)
            croniter(value, datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError(f"{value!r} never fires") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    def next_after(self, moment: datetime) -> datetime:
        """The first start strictly after ``moment`` (aware), in the schedule's zone.

        A local time the clock shows twice (the autumn change) starts the job once, as cron
        does: a start whose wall time is not later than ``moment``'s is skipped.
        """
        local = moment.astimezone(self.zone)
        starts = croniter(self.cron, local)
        start: datetime = starts.get_next(datetime)
        while start.replace(tzinfo=None) <= local.replace(tzinfo=None):
            start = starts.get_next(datetime)
        return start

    def previous_before(self, moment: datetime) -> datetime:
        """The last start at or before ``moment``."""
        # croniter's get_prev is strictly before: start from just after the moment.
        after = moment.astimezone(self.zone) + timedelta(seconds=1)
        start: datetime = croniter(self.cron, after).get_prev(datetime)
        return start


class Route(_Model):
    """Alerts whose labels match run a job on the host their ``host_label`` names."""

    name: str
    match: dict[str, str] = Field(description="labels that must all be equal, e.g. alertname")
    host_label: str = Field("instance", description="the label that names the inventory host")
    job: Job
    cooldown: float = Field(900.0, description="a fingerprint acted on is not acted on again")
    notify: list[str] | None = Field(None, description="notification targets; none: all")

    _name = field_validator("name")(classmethod(lambda c, v: _name(v)))
    _cooldown = field_validator("cooldown", mode="before")(classmethod(lambda c, v: _seconds(v)))

    @field_validator("match")
    @classmethod
    def _match(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("match at least one label (a route for every alert is a mistake)")
        for key in value:
            if not _LABEL.match(key):
                raise ValueError(f"{key!r} is not a label name")
        return value

    @field_validator("host_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _LABEL.match(value):
            raise ValueError(f"{value!r} is not a label name")
        return value

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether every ``match`` label is present with that exact value."""
        return all(labels.get(key) == value for key, value in self.match.items())


class Alertmanager(_Model):
    """The Alertmanager webhook receiver (payload version 4) and its routes."""

    token: Secret | None = Field(None, description="bearer token Alertmanager sends")
    hmac: Secret | None = Field(None, description="key of an X-Oorfix-Signature: sha256=HEX")
    max_body: int = Field(1 << 20, ge=1024, le=64 << 20, description="bytes")
    max_alerts: int = Field(1000, ge=1, description="alerts per notification")
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _authenticated(self) -> Alertmanager:
        if self.token is None and self.hmac is None:
            raise ValueError("the webhook needs a token or an hmac secret (never open)")
        names = [r.name for r in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique: {', '.join(duplicates)}")
        return self


class Target(_Model):
    """Where notifications go: a JSON webhook, a Slack-compatible webhook or PagerDuty."""

    name: str
    kind: Literal["webhook", "slack", "pagerduty"]
    url: Secret | None = Field(
        None, description="the URL (a secret: Slack's carries its key); PagerDuty has one"
    )
    routing_key: Secret | None = Field(None, description="PagerDuty Events v2 routing key")
    events_url: str = Field(
        "https://events.pagerduty.com/v2/enqueue", description="PagerDuty only: where to send"
    )
    on: list[Event] = Field(default_factory=lambda: list(EVENTS))
    attempts: int = Field(5, ge=1, le=20, description="deliveries tried before giving up")
    timeout: float = Field(10.0, gt=0, le=120)

    _name = field_validator("name")(classmethod(lambda c, v: _name(v)))

    @model_validator(mode="after")
    def _parts(self) -> Target:
        if self.kind == "pagerduty" and self.routing_key is None:
            raise ValueError("a pagerduty target needs routing_key")
        if self.kind != "pagerduty" and self.url is None:
            raise ValueError(f"a {self.kind} target needs url")
        return self


class Dashboard(_Model):
    """Who may read the dashboard and the API: anyone on loopback, else a token."""

    token: Secret | None = Field(None, description="required when listen is not loopback")


class ServeConfig(_Model):
    """The schema of ``serve.yml``."""

    listen: Listen = Field(default_factory=Listen)
    public_url: str | None = Field(None, description="the dashboard's URL, for notifications")
    defaults: Defaults = Field(default_factory=Defaults)
    schedules: list[Schedule] = Field(default_factory=list)
    alertmanager: Alertmanager | None = None
    notify: list[Target] = Field(default_factory=list)
    dashboard: Dashboard = Field(default_factory=Dashboard)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ServeConfig:
        # load_config reports these itself, each at its own line and key.
        if not (info.context or {}).get("located") and (found := self.problems()):
            raise ValueError(found[0][1])
        return self

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """What is wrong across sections, each with where it is (a key path in the file)."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        if not self.listen.loopback and self.dashboard.token is None:
            why = f"{self.listen.host} is not loopback: set dashboard.token"
            found.append((("listen", "host"), why))
        for section, names in (
            ("schedules", [s.name for s in self.schedules]),
            ("notify", [t.name for t in self.notify]),
        ):
            for i, name in enumerate(names):
                if name in names[:i]:
                    found.append(((section, i, "name"), f"{name!r} is used twice"))
        known = {t.name for t in self.notify}
        users: list[tuple[tuple[str | int, ...], list[str] | None]] = [
            (("schedules", i, "notify"), s.notify) for i, s in enumerate(self.schedules)
        ]
        users += [
            (("alertmanager", "routes", i, "notify"), r.notify) for i, r in enumerate(self.routes)
        ]
        for where, targets in users:
            for j, name in enumerate(targets or []):
                if name not in known:
                    found.append(((*where, j), f"unknown notify target {name!r}"))
        return found

    @property
    def routes(self) -> list[Route]:
        """The alert routes (none without an alertmanager section)."""
        return list(self.alertmanager.routes) if self.alertmanager else []


def load_config(path: Path) -> ServeConfig:
    """The configuration in ``path``; InputError(s) naming file, line and key."""
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise RunbookError("the service configuration is a mapping", path, 1)
    try:
        # Secret files, like every path in the file, are relative to the file.
        context = {"base": path.parent, "located": True}
        config = ServeConfig.model_validate(doc.data, context=context)
    except ValidationError as exc:
        errors = validation_errors(doc, exc)
        raise errors[0] if len(errors) == 1 else InputErrors(errors) from None
    located: list[InputError] = [
        RunbookError(f"{format_loc(loc)}: {message}", path, doc.line_of(loc))
        for loc, message in config.problems()
    ]
    if located:
        raise located[0] if len(located) == 1 else InputErrors(located)
    return _relative_to(config, path.parent)


def _relative_to(config: ServeConfig, base: Path) -> ServeConfig:
    """Paths in the file are relative to the file, not to where the service starts."""
    d = config.defaults

    def at(p: Path | None) -> Path | None:
        # Absolute, so a unit or crontab exported from this config works from any directory.
        return None if p is None else Path(os.path.abspath(base / p))

    defaults = d.model_copy(
        update={
            "inventory": at(d.inventory),
            "runbooks": at(d.runbooks),
            "known_hosts": at(d.known_hosts),
            "state_dir": at(d.state_dir),
        }
    )
    return config.model_copy(update={"defaults": defaults})


def schema() -> dict[str, Any]:
    """The JSON Schema of ``serve.yml``."""
    return ServeConfig.model_json_schema()
