"""Fault injection for every catalogue fault id, and the lab's own check that it is gone.

Each injector produces the signals a real occurrence produces (a dead or hung service with
its journal lines, a bad package version that rejects payments, a route gone, a slow and
lossy clearing path, a rogue listener and a burst of failed logins, readings out of range),
and each ``gone`` check looks from the lab's side, not through the runbook: the service
answers, the route is there, the VIP is served by the standby, the reading is in range.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from oorfix.lab import balancer, hardware, network, services
from oorfix.lab.lab import Lab, LabError
from oorfix.lab.topology import API_PORT, CLEARING_NET, GATEWAY_B, LabHost

ROGUE_PORT = 4444
OFFENDER = "10.77.1.66"
FAILED_LOGINS = 40
INJECTED_FILE = "injected.json"


@dataclass(frozen=True)
class Fault:
    """How to inject one fault id into a host, and how the lab sees that it is gone."""

    id: str
    roles: tuple[str, ...]
    needs_netns: bool
    inject: Callable[[Lab, LabHost], None]
    gone: Callable[[Lab, LabHost], bool]
    what: str


def _unit(host: LabHost, name: str = "pg-api") -> services.Unit:
    return services.Unit(host.state, name)


def _http_ok(lab: Lab, host: LabHost, method: str = "GET", path: str = "/health") -> bool:
    url = f"http://{host.data_address(lab.namespaced)}:{API_PORT}{path}"
    argv = ["curl", "-fsS", "-m", "3", "-o", "/dev/null", "-X", method, url]
    return network.run_in(lab.net, host, argv)


# -- software -----------------------------------------------------------------------------


def _crash(lab: Lab, host: LabHost) -> None:
    services.crash(_unit(host))


def _hang(lab: Lab, host: LabHost) -> None:
    pid = services.running_pid(_unit(host))
    if pid is None:
        raise LabError(f"pg-api is not running on {host.name}")
    os.kill(pid, signal.SIGSTOP)  # alive, active to systemctl, deaf to HTTP: a hung service
    services.journal(_unit(host), "Watchdog timeout (limit 3s)!")


def _bad_version(lab: Lab, host: LabHost) -> None:
    hardware.inject_bad_version(host.state, lab.directory)
    unit = _unit(host)
    services.stop(unit)
    services.start(unit)


def _api_ok(lab: Lab, host: LabHost) -> bool:
    return services.running_pid(_unit(host)) is not None and _http_ok(lab, host)


def _payments_ok(lab: Lab, host: LabHost) -> bool:
    return _http_ok(lab, host, "POST", "/pay")


# -- hardware and environment ---------------------------------------------------------------


def _lb(lab: Lab) -> LabHost:
    return next(h for h in lab.hosts.values() if h.role == "lb")


def _drained(lab: Lab, host: LabHost) -> bool:
    pool = balancer.read_pool(_lb(lab).state)
    standby = [h.name for h in lab.hosts.values() if h.role == "standby"]
    return host.name not in pool["enabled"] and any(s in pool["enabled"] for s in standby)


def _psu(lab: Lab, host: LabHost) -> None:
    hardware.inject_psu_failure(lab.directory, host.rack)


def _power_fluctuation(lab: Lab, host: LabHost) -> None:
    hardware.inject_power_fluctuation(lab.directory, rack=host.rack)


def _temperature_ok(lab: Lab, host: LabHost) -> bool:
    return hardware.temperature_c(host.state) <= hardware.TEMPERATURE_MAX_C


# -- network --------------------------------------------------------------------------------


def _net(lab: Lab) -> network.Network:
    if lab.net is None:
        raise LabError("network faults need the lab's network namespaces (run as root)")
    return lab.net


def _route_gone(lab: Lab, host: LabHost) -> None:
    network.break_route(_net(lab), host)


def _slow_path(lab: Lab, host: LabHost) -> None:
    network.slow_primary_path(_net(lab))


def _link_down(lab: Lab, host: LabHost) -> None:
    network.link_down(_net(lab), host, "eth0")


def _clearing_ok(lab: Lab, host: LabHost) -> bool:
    return network.clearing_reachable(_net(lab), host, timeout=3)


def _clearing_fast(lab: Lab, host: LabHost) -> bool:
    net = _net(lab)
    return network.route_via(net, host, CLEARING_NET) == GATEWAY_B or (
        network.clearing_latency(net, host) < network.LATENCY_THRESHOLD
    )


def _intrusion(lab: Lab, host: LabHost) -> None:
    argv = [sys.executable, "-m", "oorfix.lab.rogue", "--port", str(ROGUE_PORT)]
    netns = host.netns if lab.namespaced else None
    unit = services.define(host.state, "backdoor", argv, netns=netns)
    services.start(unit)
    auth = services.Unit(host.state, "ssh")
    for n in range(FAILED_LOGINS):
        port = 40000 + n
        services.journal(auth, f"Failed password for root from {OFFENDER} port {port} ssh2")


def _intrusion_gone(lab: Lab, host: LabHost) -> bool:
    closed = services.running_pid(services.Unit(host.state, "backdoor")) is None
    return closed and network.blackholed(_net(lab), host, OFFENDER)


FAULTS: dict[str, Fault] = {
    f.id: f
    for f in (
        Fault("hardware.power", ("api", "standby"), False, _psu,
              lambda lab, h: hardware.power_ok(lab.directory, h.rack),
              "PSU input lost: the rack's feed A is down"),
        Fault("hardware.component", ("api",), False,
              lambda lab, h: hardware.inject_disk_failure(h.state), _drained,
              "disk sda fails SMART, memory errors counted"),
        Fault("hardware.communication", ("api", "standby"), True, _link_down, _clearing_ok,
              "NIC eth0 is down"),
        Fault("software.crash", ("api", "standby"), False, _crash, _api_ok,
              "pg-api OOM-killed"),
        Fault("software.service_interruption", ("api", "standby"), False, _hang, _api_ok,
              "pg-api hung: alive but not answering"),
        Fault("software.compatibility", ("api", "standby"), False, _bad_version, _payments_ok,
              "pg-api 2.3.0-bad installed: payments rejected"),
        Fault("network.outage", ("api", "standby"), True, _route_gone, _clearing_ok,
              "routes to the clearing network gone"),
        Fault("network.latency", ("api", "standby"), True, _slow_path, _clearing_fast,
              "primary clearing path slow and lossy"),
        Fault("network.security", ("api", "standby"), True, _intrusion, _intrusion_gone,
              f"rogue listener on {ROGUE_PORT}, failed-login burst from {OFFENDER}"),
        Fault("environment.temperature", ("api", "standby"), False,
              lambda lab, h: hardware.inject_overheat(h.state), _temperature_ok,
              "CPU package at 92 C, fans on standard"),
        Fault("environment.power_fluctuation", ("api", "standby"), False, _power_fluctuation,
              lambda lab, h: hardware.power_ok(lab.directory, h.rack),
              "the rack's feed A input voltage sags, with UPS transfers"),
        Fault("environment.humidity_dust", ("api", "standby"), False,
              lambda lab, h: hardware.inject_humidity(h.state), _drained,
              "humidity 82 %RH, a fan slowed by dust"),
    )
}  # fmt: skip


def inject(lab: Lab, host_name: str, fault_id: str) -> Fault:
    """Inject ``fault_id`` into ``host_name`` and remember it; LabError if it cannot be."""
    fault = FAULTS.get(fault_id)
    if fault is None:
        raise LabError(f"unknown fault id {fault_id!r} (known: {', '.join(FAULTS)})")
    host = lab.host(host_name)
    if host.role not in fault.roles:
        roles = " or ".join(fault.roles)
        raise LabError(f"{fault_id} is injected into a host of role {roles}, not {host.role}")
    if fault.needs_netns and not lab.namespaced:
        raise LabError(f"{fault_id} needs the lab's network namespaces (run the lab as root)")
    fault.inject(lab, host)
    _remember(lab, host.name, fault_id)
    return fault


def _remember(lab: Lab, host: str, fault_id: str) -> None:
    path = lab.directory / INJECTED_FILE
    entries = json.loads(path.read_text()) if path.exists() else []
    entries.append({"host": host, "fault": fault_id, "at": datetime.now().astimezone().isoformat()})
    path.write_text(json.dumps(entries, indent=2) + "\n")


def injected(lab: Lab) -> list[dict[str, str]]:
    """Every fault injected into the running lab, with whether the lab sees it gone."""
    path = lab.directory / INJECTED_FILE
    entries: list[dict[str, str]] = json.loads(path.read_text()) if path.exists() else []
    for entry in entries:
        host = lab.hosts.get(entry["host"])
        gone = host is not None and FAULTS[entry["fault"]].gone(lab, host)
        entry["state"] = "gone" if gone else "present"
    return entries
