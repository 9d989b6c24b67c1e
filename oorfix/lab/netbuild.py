"""How the lab network is built: its namespaces, links, addresses, routes and clearing peer.

Every step is idempotent (``replace``, or create only what is missing), so building over a
network that is already there repairs it instead of failing. See ``oorfix.lab.network``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from oorfix.lab import services
from oorfix.lab.iproute import (
    NetworkError,
    bridge,
    in_ns,
    ip,
    ip_json,
    link_names,
    namespaces,
    succeeds,
    sysctl,
    veth,
)
from oorfix.lab.topology import (
    CLEARING_ADDRESS,
    CLEARING_NET,
    CLEARING_PORT,
    GATEWAY_A,
    GATEWAY_B,
    NETNS_PREFIX,
    VIP,
    VIP_PREFIX,
    LabHost,
)

SWITCH_NS = NETNS_PREFIX + "sw"
GW_A_NS = NETNS_PREFIX + "gw-a"
GW_B_NS = NETNS_PREFIX + "gw-b"
CLEARING_NS = NETNS_PREFIX + "clearing"
INFRA_NAMESPACES = (SWITCH_NS, GW_A_NS, GW_B_NS, CLEARING_NS)
LAN_PREFIX = 24
UPLINK_PREFIX = 30
UPLINK_DEV = "up0"  # a gateway's uplink, inside the gateway namespace
CLEARING_URL = f"http://{CLEARING_ADDRESS}:{CLEARING_PORT}/health"
OWNER_BRIDGE = "br-a"  # its alias names the directory of the lab that built the network
READY_TIMEOUT = 10.0
# rp_filter off: a host whose route moved to gw-b may still get answers through gw-a.
# IPv6 off: router solicitations and MLD reports would eat the slow path's tokens.
SYSCTLS = (
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
)


@dataclass(frozen=True)
class Gateway:
    """One gateway namespace: its LAN side, its uplink /30 and the clearing end of it."""

    ns: str
    address: str  # on the LAN
    lan: str  # the LAN prefix, routed back to it from the clearing side
    bridge: str
    port: str  # its veth end in the switch namespace
    uplink: str  # its own uplink address
    far_end: str  # the clearing namespace's address on the uplink
    clearing_dev: str  # the uplink's name in the clearing namespace


GW_A = Gateway(
    GW_A_NS, GATEWAY_A, "10.77.1.0/24", "br-a", "gw-a", "10.77.11.1", "10.77.11.2", "up-a"
)
GW_B = Gateway(
    GW_B_NS, GATEWAY_B, "10.77.2.0/24", "br-b", "gw-b", "10.77.12.1", "10.77.12.2", "up-b"
)


def check_hosts(hosts: list[LabHost]) -> None:
    """Host names must not clash with the infrastructure's, and each needs a LAN A address."""
    for host in hosts:
        if host.netns in INFRA_NAMESPACES:
            raise NetworkError(f"host name {host.name!r} is taken by the lab network")
        if not host.lan_a:
            raise NetworkError(f"host {host.name} has no LAN A address")


def owner() -> str | None:
    """The directory of the lab that built the network now present, if there is one."""
    if SWITCH_NS not in namespaces() or OWNER_BRIDGE not in link_names(SWITCH_NS):
        return None
    links = ip_json(SWITCH_NS, "link", "show", "dev", OWNER_BRIDGE)
    alias = links[0].get("ifalias") if links else None
    return str(alias) if alias else None


def clearing_unit(directory: Path) -> services.Unit:
    """The clearing peer's unit of the lab in ``directory``."""
    return services.Unit(directory / "network" / "clearing", "clearing")


def prepare_namespace(ns: str) -> None:
    """Sysctls and loopback of a fresh namespace, set before any link is added to it."""
    sysctl(ns, *SYSCTLS)  # new links copy `default`, so it must come first
    ip(ns, "link", "set", "lo", "up")


def build_switch(directory: Path) -> None:
    """The two LAN bridges, the first one labelled with the owning lab's directory."""
    bridge(SWITCH_NS, "br-a")
    bridge(SWITCH_NS, "br-b")
    ip(SWITCH_NS, "link", "set", OWNER_BRIDGE, "alias", str(directory))


def _port(ns: str, dev: str, switch_port: str, bridge_name: str, address: str) -> bool:
    """Plug ``dev`` of ``ns`` into a LAN bridge with ``address``; True if newly created."""
    created = dev not in link_names(ns)
    veth(ns, dev, SWITCH_NS, switch_port)
    ip(SWITCH_NS, "link", "set", switch_port, "master", bridge_name, "up")
    ip(ns, "addr", "replace", f"{address}/{LAN_PREFIX}", "dev", dev)
    ip(ns, "link", "set", dev, "up")
    return created


def build_gateway(gw: Gateway) -> None:
    """A gateway: forwarding on, its LAN port, its uplink to the clearing namespace, routes."""
    sysctl(gw.ns, "net.ipv4.ip_forward=1")
    _port(gw.ns, "eth0", gw.port, gw.bridge, gw.address)
    veth(gw.ns, UPLINK_DEV, CLEARING_NS, gw.clearing_dev)
    ip(gw.ns, "addr", "replace", f"{gw.uplink}/{UPLINK_PREFIX}", "dev", UPLINK_DEV)
    ip(CLEARING_NS, "addr", "replace", f"{gw.far_end}/{UPLINK_PREFIX}", "dev", gw.clearing_dev)
    ip(gw.ns, "link", "set", UPLINK_DEV, "up")
    ip(CLEARING_NS, "link", "set", gw.clearing_dev, "up")
    ip(gw.ns, "route", "replace", CLEARING_NET, "via", gw.far_end)
    ip(CLEARING_NS, "route", "replace", gw.lan, "via", gw.uplink)


def build_clearing() -> None:
    """The clearing peer's address, on loopback so both uplinks reach it."""
    ip(CLEARING_NS, "addr", "replace", f"{CLEARING_ADDRESS}/32", "dev", "lo")


def build_host(index: int, host: LabHost) -> None:
    """A host's ports on LAN A (and B), the VIP on the load balancer, its routes."""
    # Switch ports are named by index: host names may exceed IFNAMSIZ (15 characters).
    created = _port(host.netns, "eth0", f"h{index}-a", "br-a", str(host.lan_a))
    if created and host.role == "lb":
        # Only on creation: after a failover the VIP lives on the standby, and stays there.
        ip(host.netns, "addr", "add", f"{VIP}/{VIP_PREFIX}", "dev", "eth0")
    if host.lan_b:
        _port(host.netns, "eth1", f"h{index}-b", "br-b", host.lan_b)
    primary_routes(host.netns)


def primary_routes(ns: str) -> None:
    """A host's built routes: default and clearing through gw-a (the primary path)."""
    ip(ns, "route", "replace", "default", "via", GATEWAY_A, "dev", "eth0")
    ip(ns, "route", "replace", CLEARING_NET, "via", GATEWAY_A, "dev", "eth0")


def start_clearing(unit: services.Unit) -> None:
    """Start the clearing peer in its namespace (tracked by pid) and wait until it answers."""
    argv = [sys.executable, "-m", "oorfix.lab.clearing"]
    argv += ["--bind", CLEARING_ADDRESS, "--port", str(CLEARING_PORT)]
    # The service manager starts it through `ip netns exec`, which execs: the pid file
    # holds the server's own pid.
    services.define(unit.state, unit.name, argv, netns=CLEARING_NS)
    if not services.start(unit):
        raise NetworkError(f"the clearing peer did not start; journal:\n{_tail(unit)}")
    probe = in_ns(CLEARING_NS, ["curl", "-sf", "--noproxy", "*", "--max-time", "1", CLEARING_URL])
    deadline = time.monotonic() + READY_TIMEOUT
    while not succeeds(probe):
        if time.monotonic() > deadline:
            raise NetworkError(f"the clearing peer does not answer; journal:\n{_tail(unit)}")
        time.sleep(0.05)  # a poll interval, not a guess at readiness


def _tail(unit: services.Unit, lines: int = 20) -> str:
    try:
        return "\n".join(unit.journal.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
