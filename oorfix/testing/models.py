"""The runbook test file: a runbook, its hosts, and scenarios of what the hosts answer.

    runbook: payment-api-down            # a runbook name, or a path relative to this file
    inventory: {all: {children: {payment_api: {hosts: {api-1: {}}}}}}   # optional
    vars: {port: 9090}                   # optional, as -e
    scenarios:
      - name: a restart brings it back
        replies:                         # the first rule that matches a command answers it
          - step: health endpoint answers
            then: [{rc: 7}, {rc: 0}]     # in turn; the last one repeats
          - command: "^journalctl"       # a regular expression on the rendered command
        expect:
          outcome: fixed
          sent: ["systemctl restart pg-api"]

A command no rule answers is refused: the scenario fails and names it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from oorfix.results import Outcome
from oorfix.runbook.models import check_regex


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reply(_Model):
    """What a host answers to one command."""

    rc: int = Field(0, description="exit status")
    stdout: str = ""
    stderr: str = ""
    timeout: bool = Field(False, description="the command ran into its time limit")
    lost: bool = Field(False, description="the connection drops while it runs")


class Rule(_Model):
    """Which commands a rule answers (step name, command pattern, host), and how."""

    step: str | None = Field(None, description="the step's name (rendered), exactly")
    command: str | None = Field(None, description="a regular expression on the command")
    host: str | None = Field(None, description="only commands sent to this host")
    rc: int | None = None
    stdout: str | None = None
    stderr: str | None = None
    timeout: bool | None = None
    lost: bool | None = None
    then: list[Reply] | None = Field(
        None, description="replies in turn, the last one repeating (instead of rc/stdout/...)"
    )

    _pattern = field_validator("command")(check_regex)

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if self.step is None and self.command is None:
            raise ValueError("a reply rule needs `step` or `command` (or both)")
        inline = [
            k for k in ("rc", "stdout", "stderr", "timeout", "lost") if getattr(self, k) is not None
        ]
        if inline and self.then is not None:
            raise ValueError(f"give either `then` or {', '.join(inline)}, not both")
        if self.then is not None and not self.then:
            raise ValueError("`then` needs at least one reply")
        return self

    def replies(self) -> list[Reply]:
        """The replies this rule gives, in turn."""
        if self.then is not None:
            return list(self.then)
        given = {
            k: v
            for k in ("rc", "stdout", "stderr", "timeout", "lost")
            if (v := getattr(self, k)) is not None
        }
        return [Reply(**given)]


OutcomeName = Literal[
    "healthy",
    "fixed",
    "mitigated",
    "failed",
    "would_fix",
    "unreachable",
    "error",
    "deferred",
    "locked",
    "skipped",
]


class Expect(_Model):
    """What must have happened; every given condition must hold."""

    outcome: OutcomeName | dict[str, OutcomeName] | None = Field(
        None, description="the outcome of every host, or per host name"
    )
    sent: list[str] = Field(
        default_factory=list,
        description="regular expressions that commands sent must match, in this order",
    )
    not_sent: list[str] = Field(
        default_factory=list, description="regular expressions no command sent may match"
    )
    escalation: str | Literal[False] | None = Field(
        None, description="a regular expression on the escalation message; false: none"
    )
    error: str | None = Field(None, description="a regular expression on the result's reason")
    registered: dict[str, str] = Field(
        default_factory=dict,
        description="step name -> a regular expression its recorded stdout must match",
    )

    @field_validator("sent", "not_sent")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_regex(pattern)
        return value

    _single = field_validator("error")(check_regex)

    @field_validator("escalation")
    @classmethod
    def _escalation(cls, value: str | bool | None) -> str | bool | None:
        if isinstance(value, str):
            check_regex(value)
        return value

    def outcomes(self) -> dict[str, Outcome] | Outcome | None:
        """The expected outcome, typed."""
        if isinstance(self.outcome, dict):
            return {host: Outcome(o) for host, o in self.outcome.items()}
        return Outcome(self.outcome) if self.outcome is not None else None


class Scenario(_Model):
    """One situation on the hosts, and what the runbook must do about it."""

    name: str
    mode: Literal["fix", "dry-run", "detect"] = "fix"
    limit: str | None = Field(None, description="an inventory pattern, as --limit")
    replies: list[Rule] = Field(default_factory=list)
    unreachable: list[str] = Field(default_factory=list, description="hosts that refuse SSH")
    force: bool = Field(True, description="ignore maintenance windows (set false with `at`)")
    at: datetime | None = Field(None, description="the time the gate sees, ISO 8601 with a zone")
    expect: Expect

    @field_validator("at")
    @classmethod
    def _zoned(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the time with its zone, e.g. 2026-01-10T02:00:00+00:00")
        return value


class Suite(_Model):
    """A runbook test file: one runbook, its hosts, and its scenarios."""

    runbook: str = Field(description="the runbook's name, or a path relative to this file")
    inventory: dict[str, Any] | None = Field(
        None,
        description="the hosts, as an Ansible YAML inventory; default: one host `test-host` "
        "in every group the runbook's patterns name",
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="extra variables, as -e")
    scenarios: list[Scenario] = Field(min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _unique(cls, value: list[Scenario]) -> list[Scenario]:
        names = [s.name for s in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scenario names must differ: {', '.join(twice)}")
        return value


def suite_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook test file."""
    schema = Suite.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "oorfix runbook test"
    return schema
