"""The lab's data plane: network namespaces, two LANs, two gateways and a clearing peer.

Built as ``oorfix.lab.topology`` draws it (the construction is in ``netbuild``): a switch
namespace ``oorfix-sw`` holds the LAN bridges ``br-a`` and ``br-b``; every host namespace
has ``eth0`` on LAN A and, when dual-homed, ``eth1`` on LAN B; ``oorfix-gw-a`` and
``oorfix-gw-b`` route each LAN to ``oorfix-clearing`` over a /30 uplink. Every veth is
created straight inside its two namespaces, so nothing appears in, or links to, the
machine's own namespace; traffic can only go between lab namespaces.

Sessions reach a host's namespace through sshd: the lab sets ``OORFIX_LAB_NETNS`` (the
host's namespace name) with ``SetEnv`` in the host's ``Match`` block, and ``ForceCommand``
with the script ``enter_script`` writes, which runs the session's command in it.

Namespace names are global, so one lab network runs per machine: the directory that built
it is kept as the alias of ``br-a``. ``up`` removes the namespaces of a crashed lab but
refuses to touch a lab whose clearing peer still runs.

The fault functions inject and undo network faults; the observation functions
(``clearing_reachable``, ``route_via`` …) are how the lab checks a fault from its side, and
are never what a runbook uses.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from oorfix.lab import netbuild, services
from oorfix.lab.iproute import (
    NetworkError,
    add_namespace,
    delete_namespace,
    gateway_of,
    has_qdisc,
    in_ns,
    ip,
    ip_json,
    lab_namespaces,
    route_lines,
    run,
    succeeds,
)
from oorfix.lab.netbuild import CLEARING_NS, CLEARING_URL, GW_A, GW_A_NS, UPLINK_DEV
from oorfix.lab.topology import CLEARING_NET, NETNS_PREFIX, LabHost

__all__ = [
    "ENTER_ENV",
    "LATENCY_THRESHOLD",
    "Network",
    "NetworkError",
    "available",
    "blackholed",
    "break_route",
    "clearing_latency",
    "clearing_reachable",
    "enter_script",
    "link_down",
    "link_state",
    "link_up",
    "restore_primary_path",
    "restore_route",
    "route_via",
    "run_in",
    "slow_primary_path",
]

ENTER_ENV = "OORFIX_LAB_NETNS"  # set per host by sshd SetEnv; read by the enter script
LATENCY_THRESHOLD = 0.5  # seconds: a clearing request slower than this is the latency fault
# The slow path: 2 kbit/s both ways, a bucket just above one frame and a 20 ms queue, so
# every exchange waits for tokens and bursts overflow the queue (real drops, real
# retransmits). The MTU drops with it so TCP's MSS keeps each frame under the bucket: a
# frame larger than the bucket would never pass, and the path would be down, not slow.
SLOW_TBF = ("rate", "2kbit", "burst", "230", "latency", "20ms")
SLOW_MTU = "200"
NORMAL_MTU = "1500"
PRIMARY_UPLINK = ((GW_A_NS, UPLINK_DEV), (CLEARING_NS, GW_A.clearing_dev))
PROBE_TIMEOUT = 10.0


@functools.cache
def available() -> bool:
    """Whether this process can build the lab network: root, iproute2, ``ip netns`` works."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    # Creating a namespace is the only proof: containers often deny it even to root.
    probe = f"{NETNS_PREFIX}probe-{os.getpid()}"
    if not succeeds(["ip", "netns", "add", probe]):
        return False
    return succeeds(["ip", "netns", "delete", probe])


class Network:
    """The lab's namespaces and links; ``up`` builds (or repairs) them, ``down`` removes them."""

    def __init__(
        self, directory: Path, hosts: Sequence[LabHost], *, enabled: bool | None = None
    ) -> None:
        self.directory = Path(directory).resolve()
        self.hosts = {h.name: h for h in hosts}
        self.enabled = available() if enabled is None else enabled
        self.clearing = netbuild.clearing_unit(self.directory)
        netbuild.check_hosts(list(hosts))

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this network consists of."""
        return [*netbuild.INFRA_NAMESPACES, *(h.netns for h in self.hosts.values())]

    def host_exec(self, host: LabHost, argv: Sequence[str]) -> list[str]:
        """``argv`` made to run inside the host's namespace (unchanged without namespaces)."""
        return in_ns(host.netns, argv) if self.enabled else list(argv)

    def require(self) -> None:
        """Refuse what needs namespaces when the lab runs without them."""
        if not self.enabled:
            raise NetworkError("the lab network needs root and working `ip netns`")

    def ns(self, host: LabHost | str) -> str:
        """The namespace of ``host`` (or of the host of that name); refused without them."""
        self.require()
        if isinstance(host, str):
            if host not in self.hosts:
                raise NetworkError(f"no lab host named {host!r}")
            host = self.hosts[host]
        return host.netns

    def up(self) -> Network:
        """Build (or repair in place) every namespace, link and route; start the clearing peer."""
        # Repairing means: links up, routes via gw-a, no slow path; the VIP is left wherever
        # a failover put it.
        if not self.enabled:
            return self
        self._claim()
        for ns in self.namespaces:
            add_namespace(ns)
            netbuild.prepare_namespace(ns)
        netbuild.build_switch(self.directory)
        for gateway in (netbuild.GW_A, netbuild.GW_B):
            netbuild.build_gateway(gateway)
        netbuild.build_clearing()
        for index, host in enumerate(self.hosts.values()):
            netbuild.build_host(index, host)
        restore_primary_path(self)
        netbuild.start_clearing(self.clearing)
        return self

    def down(self) -> None:
        """Stop the clearing peer and remove every namespace (and so every link) of ours."""
        services.stop(self.clearing)
        if not self.enabled or self._foreign_owner() is not None:
            return
        for ns in reversed(self.namespaces):
            delete_namespace(ns)

    def __enter__(self) -> Network:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def _claim(self) -> None:
        """Make the namespaces ours: refuse a live foreign lab, clear a crashed one."""
        if netbuild.owner() == str(self.directory):
            return  # ours already: up() repairs it in place
        foreign = self._foreign_owner()
        if foreign is not None:
            raise NetworkError(f"the lab network of {foreign} is up; take that lab down first")
        for ns in lab_namespaces():
            delete_namespace(ns)

    def _foreign_owner(self) -> str | None:
        """The directory of another lab that owns the namespaces and still runs, if any."""
        owner = netbuild.owner()
        if owner is None or owner == str(self.directory):
            return None
        alive = services.running_pid(netbuild.clearing_unit(Path(owner))) is not None
        return owner if alive else None


def run_in(
    net: Network | None, host: LabHost, argv: Sequence[str], timeout: float = PROBE_TIMEOUT
) -> bool:
    """Whether ``argv`` succeeds inside the host's namespace (here, without namespaces)."""
    return succeeds(net.host_exec(host, argv) if net is not None else list(argv), timeout)


def enter_script(path: Path) -> Path:
    """Write the sshd ``ForceCommand`` that runs each session inside ``$OORFIX_LAB_NETNS``."""
    ip_tool = shutil.which("ip") or "/usr/sbin/ip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_ENTER_TEMPLATE.replace("@IP@", ip_tool))
    path.chmod(0o755)
    return path


# Fails closed: a session with no namespace must never run in the machine's own one, where
# a runbook's `ip route del default` would cut the machine off its real network.
_ENTER_TEMPLATE = f"""#!/bin/sh
# oorfix lab: sshd ForceCommand; runs the session's command in the lab host's namespace.
if [ -z "${{{ENTER_ENV}:-}}" ]; then
    echo "oorfix lab: {ENTER_ENV} is not set for this host; refusing to run" >&2
    exit 126
fi
if [ -z "${{SSH_ORIGINAL_COMMAND:-}}" ]; then
    echo "oorfix lab: interactive sessions are not supported; pass a command" >&2
    exit 126
fi
exec @IP@ netns exec "${ENTER_ENV}" /bin/sh -c "$SSH_ORIGINAL_COMMAND"
"""


# Faults and their undoing.


def break_route(net: Network, host: LabHost | str) -> None:
    """Route gone: delete the host's route(s) to the clearing network and its default."""
    ns = net.ns(host)
    for prefix in (CLEARING_NET, "default"):
        for _ in range(16):  # one `del` removes one route; there may be several (metrics)
            if not route_lines(ns, "exact", prefix):
                break
            ip(ns, "route", "del", prefix)


def restore_route(net: Network, host: LabHost | str) -> None:
    """The host's built routes back: default and clearing through gw-a."""
    netbuild.primary_routes(net.ns(host))


def slow_primary_path(net: Network) -> None:
    """Latency and loss on gw-a's uplink, shaped in both directions; gw-b stays fast."""
    net.require()
    for ns, dev in PRIMARY_UPLINK:
        ip(ns, "link", "set", dev, "mtu", SLOW_MTU)
        run(["tc", "-n", ns, "qdisc", "replace", "dev", dev, "root", "tbf", *SLOW_TBF])


def restore_primary_path(net: Network) -> None:
    """gw-a's uplink back to full speed."""
    net.require()
    for ns, dev in PRIMARY_UPLINK:
        if has_qdisc(ns, dev, "tbf"):
            run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"])
        ip(ns, "link", "set", dev, "mtu", NORMAL_MTU)


def link_down(net: Network, host: LabHost | str, dev: str = "eth0") -> None:
    """Take a host's link down (admin down): its routes through the link go with it."""
    ip(net.ns(host), "link", "set", dev, "down")


def link_up(net: Network, host: LabHost | str, dev: str = "eth0") -> None:
    """Bring a host's link up again, with the built routes the kernel dropped with it."""
    ns = net.ns(host)
    ip(ns, "link", "set", dev, "up")
    if dev == "eth0":
        netbuild.primary_routes(ns)


# The lab's own observations (never used by runbooks).


def blackholed(net: Network, host: LabHost | str, address: str) -> bool:
    """Whether a blackhole route of the host's main table covers ``address``."""
    target = ipaddress.ip_address(address)
    for line in route_lines(net.ns(host), "type", "blackhole"):
        words = line.split()
        prefix = words[1] if words[0] == "blackhole" and len(words) > 1 else words[0]
        if target in ipaddress.ip_network(prefix, strict=False):
            return True
    return False


def _probe(net: Network, host: LabHost | str, timeout: float) -> tuple[str, float]:
    """curl the clearing peer's health from inside the host: (HTTP code, seconds)."""
    argv = ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "--max-time", f"{timeout:g}"]
    argv += ["-w", "%{http_code} %{time_total}", CLEARING_URL]
    words = run(in_ns(net.ns(host), argv), check=False, timeout=timeout + 10).split()
    if len(words) != 2:
        return "000", math.inf
    return words[0], float(words[1])


def clearing_reachable(net: Network, host: LabHost | str, timeout: float = 3.0) -> bool:
    """Whether the host gets an answer from the clearing peer within ``timeout`` seconds."""
    return _probe(net, host, timeout)[0] == "200"


def clearing_latency(net: Network, host: LabHost | str, timeout: float = PROBE_TIMEOUT) -> float:
    """Seconds one health request from the host to the clearing peer takes, end to end."""
    code, seconds = _probe(net, host, timeout)
    if code != "200":
        raise NetworkError(f"the clearing peer did not answer within {timeout:g}s (HTTP {code})")
    return seconds


def route_via(net: Network, host: LabHost | str, target: str) -> str | None:
    """The gateway of the host's route to a prefix (exact) or address (as routed), or None."""
    ns = net.ns(host)
    if "/" in target or target == "default":
        lines = route_lines(ns, "exact", target)
    else:
        lines = ip(ns, "route", "get", target, check=False).splitlines()
    return gateway_of(lines[0]) if lines else None


def link_state(net: Network, host: LabHost | str, dev: str = "eth0") -> str:
    """The link's operational state as ``ip link`` reports it (``UP``, ``DOWN`` …)."""
    links = ip_json(net.ns(host), "link", "show", "dev", dev)
    if not links:
        raise NetworkError(f"no link {dev}")
    return str(links[0].get("operstate", "UNKNOWN"))
