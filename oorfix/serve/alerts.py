"""Alertmanager's webhook payload (version 4) and what the service does with each alert.

Label values are data from the network: they are matched against routes by equality, and the
host label must name an inventory host (by name, or by its unique address); the job then
runs on that inventory name, never on the label's text. Nothing from a label becomes a path,
a template or a command. An alert with no route or no known host is recorded and counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import ADDRESS_VARS, Host
from oorfix.serve.config import Route
from oorfix.serve.jobs import QueuedJob, new_job_id
from oorfix.serve.model import AlertEntry

_MAX_LABELS = 64
_MAX_VALUE = 1024
_FINGERPRINT = re.compile(r"^[0-9a-f]{1,64}$")
_PORT = re.compile(r"^(?P<host>.+):(?P<port>[0-9]{1,5})$")
# Host names that are safe as a --limit pattern: no pattern operators, no regex.
_LIMITABLE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class AMAlert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    fingerprint: str

    @field_validator("labels")
    @classmethod
    def _bounded(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > _MAX_LABELS:
            raise ValueError(f"more than {_MAX_LABELS} entries")
        for key, text in value.items():
            if len(key) > _MAX_VALUE or len(text) > _MAX_VALUE:
                raise ValueError(f"a key or value longer than {_MAX_VALUE} characters")
        return value

    @field_validator("annotations")
    @classmethod
    def _notes(cls, value: dict[str, str]) -> dict[str, str]:
        # Annotations are prose (description, runbook_url) and never routed on: the body's
        # size limit bounds them; only their number is capped here.
        if len(value) > _MAX_LABELS:
            raise ValueError(f"more than {_MAX_LABELS} entries")
        return value

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str) -> str:
        if not _FINGERPRINT.match(value):
            raise ValueError("a fingerprint is hexadecimal")
        return value

    @property
    def alertname(self) -> str:
        """The alert's name label, or empty."""
        return self.labels.get("alertname", "")


class AMPayload(BaseModel):
    """Alertmanager's webhook notification, version 4."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["4"]
    groupKey: str
    status: Literal["firing", "resolved"]
    receiver: str = ""
    truncatedAlerts: int = 0
    alerts: list[AMAlert]


@dataclass(frozen=True)
class Decision:
    """What to do with one alert: the entry to record, and the job to queue if any."""

    entry: AlertEntry
    job: QueuedJob | None = None


def find_host(inventory: Inventory, value: str | None) -> tuple[str | None, str]:
    """The inventory host a label value names, and why not when none: the name itself,
    the name without ``:port``, or the one host whose address is that."""
    if not value:
        return None, "the host label is missing or empty"
    candidates = [value]
    port = _PORT.fullmatch(value)
    if port:
        candidates.append(port["host"].strip("[]"))
    for candidate in candidates:
        if candidate in inventory.hosts:
            return _limitable(candidate)
    for candidate in candidates:
        named = [h.name for h in inventory.hosts.values() if _address(h) == candidate]
        if len(named) == 1:
            return _limitable(named[0])
        if len(named) > 1:
            return None, f"{len(named)} inventory hosts have the address {candidate!r}"
    return None, f"no inventory host is named {value!r} or has that address"


def _address(host: Host) -> str | None:
    """The address a host is reached at, by the variables the connection reads."""
    for key in ADDRESS_VARS:
        if host.vars.get(key) is not None:
            return str(host.vars[key])
    return None


def _limitable(name: str) -> tuple[str | None, str]:
    if _LIMITABLE.fullmatch(name):
        return name, ""
    return None, f"the inventory host {name!r} cannot be named alone in a limit pattern"


def decide(  # noqa: PLR0913 - an alert, where it may go, and what the service remembers
    alert: AMAlert,
    routes: Sequence[Route],
    inventory: Inventory,
    acted: Callable[[str, str], datetime | None],
    now: datetime,
    group_key: str = "",
) -> Decision:
    """Route one alert (see the module's docstring); cooldowns per fingerprint and route."""

    def entry(action: str, **more: str | None) -> AlertEntry:
        return AlertEntry(now, alert.fingerprint, alert.alertname, alert.status, action, **more)  # type: ignore[arg-type]

    route = next((r for r in routes if r.matches(alert.labels)), None)
    if route is None:
        return Decision(entry("unmatched", detail="no route matches its labels"))
    if alert.status == "resolved":
        return Decision(entry("resolved", route=route.name))
    host, why = find_host(inventory, alert.labels.get(route.host_label))
    if host is None:
        return Decision(entry("unknown_host", route=route.name, detail=why))
    last = acted(alert.fingerprint, route.name)
    if last is not None and now - last < timedelta(seconds=route.cooldown):
        detail = f"acted on at {last.isoformat()}, cooldown {route.cooldown:g}s"
        return Decision(entry("duplicate", route=route.name, host=host, detail=detail))
    job = QueuedJob(
        id=new_job_id(now),
        source="alert",
        name=route.name,
        job=route.job,
        queued=now,
        host=host,
        trigger={
            "alertname": alert.alertname,
            "fingerprint": alert.fingerprint,
            "group": group_key[:200],
        },
        notify=tuple(route.notify) if route.notify is not None else None,
    )
    return Decision(entry("queued", route=route.name, host=host, job_id=job.id), job)
