"""Built-in actions: each turns its (rendered) parameters into one shell command.

An action knows whether it mutates the host, and folds a check of its own effect into the
command it renders, so "restarted" means "restarted and now active" in one round trip.
Every value is shell-quoted, and values that could be read as options (a leading ``-``)
are refused, because quoting alone does not stop ``-rf`` from being an option.
"""

from __future__ import annotations

import ipaddress
import math
import re
import shlex
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from oorfix.runbook.models import (
    FailoverParams,
    PackageParams,
    RouteParams,
    ServiceParams,
    WaitForParams,
)

_INTERFACE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+._:@-]*$")
_SERVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:\\-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.~:_-]*$")


class ActionError(ValueError):
    """Parameters that cannot make a safe command."""


def _arg(value: object, what: str, pattern: re.Pattern[str] | None = None) -> str:
    text = str(value)
    if not text or text.startswith("-"):
        raise ActionError(f"{what} {text!r} must not be empty or start with '-'")
    if pattern is not None and not pattern.match(text):
        raise ActionError(f"{what} {text!r} has characters not allowed here")
    return shlex.quote(text)


def _int(value: object, what: str, low: int = 0, high: int = 2**31 - 1) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ActionError(f"{what} {value!r} is not a whole number") from None
    if not low <= number <= high:
        raise ActionError(f"{what} {number} is out of range {low}-{high}")
    return number


def _service(p: ServiceParams) -> str:
    name = _arg(p.name, "service name", _SERVICE)
    verb = {"started": "start", "stopped": "stop", "restarted": "restart", "reloaded": "reload"}
    want_active = p.state != "stopped"
    check = (
        f"systemctl is-active --quiet -- {name}"
        if want_active
        else f"! systemctl is-active --quiet -- {name}"
    )
    systemd = f"systemctl {verb[p.state]} -- {name} && {check}"
    sysv = f"service {name} {verb[p.state]}"
    if p.manager == "systemd":
        return systemd
    if p.manager == "sysv":
        return sysv
    return f"if command -v systemctl >/dev/null 2>&1; then {systemd}; else {sysv}; fi"


def _apt(p: PackageParams, name: str) -> str:
    env = "DEBIAN_FRONTEND=noninteractive"
    if p.state == "absent":
        return f"{env} apt-get remove -y -q -- {name}"
    if p.state == "latest":
        return f"{env} apt-get install -y -q --only-upgrade -- {name}"
    target = f"{name}={_arg(p.version, 'version', _VERSION)}" if p.version else name
    install = f"{env} apt-get install -y -q --allow-downgrades -- {target}"
    if not p.version:
        return install
    version = shlex.quote(str(p.version))
    check = f"[ \"$(dpkg-query -W -f='${{Version}}' {name})\" = {version} ]"
    return f"{install} && {check}"


def _dnf(p: PackageParams, name: str, tool: str) -> str:
    if p.state == "absent":
        return f"{tool} remove -y -- {name}"
    if p.state == "latest":
        return f"{tool} upgrade -y -- {name}"
    if not p.version:
        return f"{tool} install -y -- {name}"
    target = f"{name}-{_arg(p.version, 'version', _VERSION)}"
    return f"{{ {tool} install -y -- {target} || {tool} downgrade -y -- {target}; }}"


def _package(p: PackageParams) -> str:
    name = _arg(p.name, "package name", _PACKAGE)
    if p.manager == "apt":
        return _apt(p, name)
    if p.manager in ("dnf", "yum"):
        return _dnf(p, name, p.manager)
    return (
        f"if command -v apt-get >/dev/null 2>&1; then {_apt(p, name)}; "
        f"elif command -v dnf >/dev/null 2>&1; then {_dnf(p, name, 'dnf')}; "
        f"else {_dnf(p, name, 'yum')}; fi"
    )


def _address(value: object, what: str, network: bool) -> str:
    text = str(value)
    try:
        if network:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        kind = "prefix" if network else "address"
        raise ActionError(f"{what} {text!r} is not an IP {kind}") from None
    return shlex.quote(text)


def _route(p: RouteParams) -> str:
    dest = "default" if p.dest == "default" else _address(p.dest, "route dest", network=True)
    spec = [dest]
    if p.via is not None:
        spec += ["via", _address(p.via, "gateway", network=False)]
    if p.dev is not None:
        spec += ["dev", _arg(p.dev, "interface", _INTERFACE)]
    if p.metric is not None:
        spec += ["metric", str(_int(p.metric, "metric"))]
    if p.table is not None:
        spec += ["table", _arg(p.table, "table", _INTERFACE)]
    route = " ".join(spec)
    if p.state == "absent":
        return f"ip route del {route}"
    show = " ".join(spec[:1] + (spec[-2:] if p.table is not None else []))
    check = (
        f"ip route show {show} | grep -q ."
        if p.via is None
        else (f"ip route show {show} | grep -qF -- {shlex.quote('via ' + str(p.via) + ' ')}")
    )
    return f"ip route replace {route} && {check}"


def _wait_for(p: WaitForParams) -> str:
    if p.port is not None:
        if p.host != "localhost":
            _address(p.host, "host", network=False)
        probe = f"(exec 3<>/dev/tcp/{p.host}/{_int(p.port, 'port', 1, 65535)}) 2>/dev/null"
        probe = f"bash -c {shlex.quote(probe)}"
    elif p.url is not None:
        url = str(p.url)
        if not re.match(r"^https?://", url):
            raise ActionError(f"url {url!r} must start with http:// or https://")
        probe = f"curl -fsS -m 5 -o /dev/null -- {shlex.quote(url)}"
    else:
        probe = f"[ -e {_arg(p.path, 'path')} ]"
    test = probe if p.state == "started" else f"! {probe}"
    # A deadline inside the command, so an expired wait is a plain failure (rc 1).
    return (
        f"end=$(( $(date +%s) + {math.ceil(p.timeout)} )); "
        f"until {test}; do "
        f"[ $(date +%s) -ge $end ] && exit 1; sleep {p.interval:g}; done"
    )


def _failover(p: FailoverParams) -> str:
    vip = _address(p.vip, "vip", network=True)
    dev = _arg(p.dev, "interface", _INTERFACE)
    address = shlex.quote(str(p.vip).split("/")[0])
    if p.state == "absent":
        gone = f"! ip -o addr show dev {dev} | grep -qwF -- {address}"
        return f"ip addr del {vip} dev {dev} 2>/dev/null; {gone}"
    announce = (
        f"if command -v arping >/dev/null 2>&1; then arping -U -c 2 -I {dev} {address} "
        f">/dev/null 2>&1 || true; fi"
    )
    return (
        f"ip addr replace {vip} dev {dev} && {announce}; "
        f"ip -o addr show dev {dev} | grep -qwF -- {address}"
    )


_RENDERERS: dict[str, tuple[type[BaseModel], Callable[[Any], str], bool]] = {
    "service": (ServiceParams, _service, True),
    "package": (PackageParams, _package, True),
    "route": (RouteParams, _route, True),
    "failover": (FailoverParams, _failover, True),
    "wait_for": (WaitForParams, _wait_for, False),
}


def mutates(kind: str) -> bool:
    """Whether the built-in action ``kind`` changes the host."""
    return _RENDERERS[kind][2]


def render_action(kind: str, params: dict[str, Any]) -> str:
    """The shell command for built-in action ``kind`` with rendered ``params``."""
    model, renderer, _ = _RENDERERS[kind]
    try:
        validated = model.model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "".join(f".{p}" for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ActionError(f"{kind}{where}: {message}") from None
    return renderer(validated)
