"""The lab's shape: which hosts exist, their roles, addresses and state directories.

Two planes. The management plane is SSH: every lab host has a loopback address that an
sshd listens on (127.0.10.x), so oorfix reaches lab hosts exactly as it reaches real ones.
The data plane, when the lab runs as root, is a set of network namespaces, one per host,
joined by veth links to two LAN bridges and two gateways towards a clearing network:

    LAN A 10.77.1.0/24 (primary)            LAN B 10.77.2.0/24 (backup)
      gw-a 10.77.1.1 -- 10.77.11.0/30 --+     gw-b 10.77.2.1 -- 10.77.12.0/30 --+
                                        clearing 10.77.9.9 (card network peer)  |
                                        +---------------------------------------+
      lb-1 .10 (VIP .100)  pg-api-N .2N  pg-db-1 .30  pg-standby-1 .40  pwr-ctl-1 .50

No lab namespace has a link to the machine's own network, so data-plane traffic cannot
leave the machine whatever a runbook does to its routes. Without root there are no
namespaces: each host's data-plane address is its loopback address, and the faults that
need a real network are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MGMT_BASE = "127.0.10."
LAN_A = "10.77.1."
LAN_B = "10.77.2."
GATEWAY_A = "10.77.1.1"
GATEWAY_B = "10.77.2.1"
CLEARING_NET = "10.77.9.0/24"
CLEARING_ADDRESS = "10.77.9.9"
CLEARING_PORT = 8443
VIP = "10.77.1.100"
VIP_PREFIX = 24
API_PORT = 8080
NETNS_PREFIX = "oorfix-"


@dataclass(frozen=True)
class LabHost:
    """One lab host: name, role, management address, data-plane addresses and state."""

    name: str
    role: str  # lb | api | db | standby | power
    address: str  # management (SSH) address on loopback
    groups: tuple[str, ...]
    state: Path
    lan_a: str | None = None  # data-plane address on LAN A (None: same as `address`)
    lan_b: str | None = None  # address on LAN B, for dual-homed hosts
    rack: str = "r0"  # which rack (power circuit) the host sits in
    services: tuple[str, ...] = ()
    vars: dict[str, object] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        """The host's network namespace name (when the lab runs as root)."""
        return NETNS_PREFIX + self.name

    def data_address(self, namespaced: bool) -> str:
        """The address the host's services listen on."""
        return self.lan_a if namespaced and self.lan_a else self.address


def default_topology(directory: Path, api_hosts: int = 3) -> list[LabHost]:
    """A small payment gateway: LB with VIP, API hosts, DB, standby and power controller."""
    hosts = directory / "hosts"

    def host(name: str, role: str, n: int, groups: tuple[str, ...], **extra: object) -> LabHost:
        return LabHost(
            name=name,
            role=role,
            address=f"{MGMT_BASE}{n}",
            groups=groups,
            state=hosts / name,
            lan_a=f"{LAN_A}{n}",
            **extra,  # type: ignore[arg-type]
        )

    api = [
        host(f"pg-api-{i}", "api", 20 + i, ("payment_api",), lan_b=f"{LAN_B}{20 + i}",
             rack=f"r{i}", services=("pg-api",))
        for i in range(1, api_hosts + 1)
    ]  # fmt: skip
    return [
        host("lb-1", "lb", 10, ("lb",), services=("pg-lb",)),
        *api,
        host("pg-db-1", "db", 30, ("db",), services=("pg-db",)),
        host("pg-standby-1", "standby", 40, ("standby",), lan_b=f"{LAN_B}40", services=("pg-api",)),
        host("pwr-ctl-1", "power", 50, ("power",)),
    ]
