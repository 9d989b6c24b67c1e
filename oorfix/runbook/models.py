"""The runbook schema: frozen pydantic models that reject unknown keys.

String fields that may hold Jinja templates are plain ``str`` here; they are rendered per
host by the planner. Action parameters that must end up numbers accept a template string
too, and are checked again after rendering.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from oorfix.catalog import BUILTIN
from oorfix.runbook.durations import parse_duration
from oorfix.runbook.serial import parse_serial
from oorfix.runbook.windows import Window

DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
    ],
    "description": "seconds, or a duration such as 500ms, 30s, 2m, 1h",
}
Seconds = Annotated[
    float, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA, mode="validation")
]
Severity = Literal["critical", "major", "minor"]
# Integers that may also be written as a template, e.g. "{{ port }}".
IntOrTemplate = int | str

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ACTION_KEYS = ("service", "package", "route", "wait_for", "failover")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def check_regex(value: str | None) -> str | None:
    """``value`` unchanged if it compiles as a regular expression (ValueError if not)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
    return value


class Expect(_Model):
    """How a check judges its command's result; every given condition must hold."""

    rc: int | list[int] = Field(0, description="accepted exit status(es)")
    stdout: str | None = Field(None, description="regex that stdout must match (search)")
    stdout_not: str | None = Field(None, description="regex that stdout must not match")
    stderr_not: str | None = Field(None, description="regex that stderr must not match")
    min: float | None = Field(None, description="stdout, read as a number, is at least this")
    max: float | None = Field(None, description="stdout, read as a number, is at most this")
    that: str | None = Field(None, description="jinja expression over `result` that must be true")

    _regexes = field_validator("stdout", "stdout_not", "stderr_not")(check_regex)

    @property
    def accepted_rcs(self) -> tuple[int, ...]:
        """The exit statuses that count as success."""
        return tuple(self.rc) if isinstance(self.rc, list) else (self.rc,)


class ServiceParams(_Model):
    """Start, stop, restart or reload a service (systemctl, else service)."""

    name: str
    state: Literal["started", "stopped", "restarted", "reloaded"]
    manager: Literal["auto", "systemd", "sysv"] = "auto"

    def describe(self) -> str:
        """A short label for people."""
        return f"service {self.name} {self.state}"


class PackageParams(_Model):
    """Install a package (optionally an exact version), upgrade or remove it."""

    name: str
    version: str | None = None
    state: Literal["present", "absent", "latest"] = "present"
    manager: Literal["auto", "apt", "dnf", "yum"] = "auto"

    def describe(self) -> str:
        """A short label for people."""
        version = f" {self.version}" if self.version else ""
        return f"package {self.name}{version} {self.state}"


class RouteParams(_Model):
    """Add, replace or delete a route with ``ip route``."""

    dest: str = Field(description="'default' or a CIDR prefix")
    via: str | None = None
    dev: str | None = None
    metric: IntOrTemplate | None = None
    table: str | None = None
    state: Literal["present", "absent"] = "present"

    def describe(self) -> str:
        """A short label for people."""
        via = f" via {self.via}" if self.via else ""
        dev = f" dev {self.dev}" if self.dev else ""
        return f"route {self.dest}{via}{dev} {self.state}"


class WaitForParams(_Model):
    """Wait until a TCP port, URL or path is (or is no longer) there."""

    host: str = "127.0.0.1"
    port: IntOrTemplate | None = None
    url: str | None = None
    path: str | None = None
    state: Literal["started", "stopped"] = "started"
    timeout: Seconds = Field(30.0, gt=0)
    interval: Seconds = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _one_target(self) -> WaitForParams:
        given = [k for k in ("port", "url", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("wait_for needs exactly one of port, url, path")
        return self

    def describe(self) -> str:
        """A short label for people."""
        target = self.url or self.path or f"{self.host}:{self.port}"
        return f"wait for {target} {self.state}"


class FailoverParams(_Model):
    """Move a virtual IP from the host that holds it to this one (``ip addr`` + ARP)."""

    vip: str = Field(description="address with prefix length, e.g. 10.0.0.100/24")
    dev: str
    state: Literal["present", "absent"] = "present"

    def describe(self) -> str:
        """A short label for people."""
        return f"failover {self.vip} on {self.dev} {self.state}"


class Step(_Model):
    """One command or built-in action, with where, when and how it runs and is judged."""

    name: str | None = None
    run: str | None = Field(None, description="shell command (values are shell-quoted)")
    service: ServiceParams | None = None
    package: PackageParams | None = None
    route: RouteParams | None = None
    wait_for: WaitForParams | None = None
    failover: FailoverParams | None = None
    sudo: StrictBool = Field(
        False, description="run privileged, as the host's become user (default root)"
    )
    become_user: str | None = Field(
        None, min_length=1, description="run privileged as this user (implies sudo)"
    )
    timeout: Seconds | None = Field(None, gt=0, description="default: the runbook's step_timeout")
    on: str | None = Field(None, description="run on this inventory host pattern instead")
    when: str | None = Field(None, description="jinja expression; false skips the step")
    # BaseModel already has a `register` attribute, so the field takes the key as an alias.
    register_as: str | None = Field(
        None, alias="register", description="keep the result under this variable name"
    )
    expect: Expect | None = None
    stdin: str | None = Field(
        None, description="text fed to the command's standard input (keeps secrets off argv)"
    )

    @field_validator("register_as")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a valid variable name")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [k for k in ("run", *ACTION_KEYS) if getattr(self, k) is not None]
        if len(given) != 1:
            names = ", ".join(("run", *ACTION_KEYS))
            found = ", ".join(given) or "none"
            raise ValueError(f"a step needs exactly one of {names} (found: {found})")
        return self

    @property
    def privileged(self) -> bool:
        """Whether the step runs as another user (sudo, or su from a root login)."""
        return self.sudo or self.become_user is not None

    @property
    def kind(self) -> str:
        """``run`` or the name of the built-in action."""
        return next(k for k in ("run", *ACTION_KEYS) if getattr(self, k) is not None)

    @property
    def params(self) -> Any:
        """The command string or the action's parameters."""
        return getattr(self, self.kind)

    @property
    def label(self) -> str:
        """The step's name, or a short description of what it does."""
        if self.name:
            return self.name
        if self.run is not None:
            return self.run
        return self.params.describe()  # type: ignore[no-any-return]


class Verify(_Model):
    """How a fix is verified: checks (default: detect's) retried with a delay.

    With symptoms, a fix is verified when the checks and the symptoms both pass; a fix after
    which only the symptoms pass has mitigated the fault, not repaired it.
    """

    retries: int = Field(3, ge=0, le=1000, description="attempts after the first")
    delay: Seconds = 2.0
    checks: list[Step] | None = Field(None, description="default: the detect checks")


class Budget(_Model):
    """At most ``count`` remediations of this runbook per host within ``per``."""

    count: int = Field(ge=1, le=10_000)
    per: Seconds = Field(gt=0)


class Escalate(_Model):
    """What to tell people when a fault remains, and optional steps that notify them."""

    message: str
    steps: list[Step] = Field(default_factory=list)
    always: StrictBool = Field(
        False, description="escalate after a verified fix too (facilities must still act)"
    )


class Runbook(_Model):
    """A fault type's detect, evidence, remediate, verify, rollback and escalate."""

    name: str
    fault: str
    severity: Severity = "major"
    summary: str = ""
    hosts: str = "all"
    vars: dict[str, Any] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list, description="variables masked in all output")
    step_timeout: Seconds = Field(60.0, gt=0)
    serial: int | str | None = Field(
        None, description="remediate in batches: a number of hosts or a percentage (25%)"
    )
    max_fail_percent: float | None = Field(
        None, ge=0, le=100, description="stop remediation once failed hosts exceed this share"
    )
    max_remediations: Budget | None = Field(
        None, description="a remediation budget per host, kept across runs"
    )
    approval: Literal["required", "none"] = Field(
        "none", description="required: show the plan and ask before any change (or --yes)"
    )
    windows: list[Window] | None = Field(
        None, description="maintenance windows: fixes run only inside one (or with --force)"
    )
    symptoms: list[Step] = Field(
        default_factory=list,
        description="impact checks: a failing one shows an incident, but never confirms this "
        "runbook's fault; with the cause there and no impact, the fault is mitigated",
    )
    detect: list[Step] = Field(
        min_length=1, description="cause checks: any failing one confirms this runbook's fault"
    )
    evidence: list[Step] = Field(default_factory=list)
    remediate: list[Step] = Field(default_factory=list)
    verify: Verify = Verify()
    rollback: list[Step] = Field(default_factory=list)
    escalate: Escalate | None = None

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, value: str, info: ValidationInfo) -> str:
        catalog = (info.context or {}).get("catalog", BUILTIN)
        if not catalog.knows(value):
            raise ValueError(
                f"unknown fault id {value!r} (see `oorfix catalog`; a site declares its own "
                "in catalog.yml beside its runbooks)"
            )
        return value

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            parse_serial(value)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", value):
            raise ValueError(f"{value!r}: use letters, digits, '.', '_' and '-'")
        return value

    @field_validator("vars")
    @classmethod
    def _var_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not isinstance(key, str) or not _IDENTIFIER.match(key):
                raise ValueError(f"{key!r} is not a valid variable name")
        return value


def runbook_json_schema() -> dict[str, Any]:
    """The JSON Schema of a runbook file, for editors and CI."""
    schema = Runbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "oorfix runbook"
    return schema
