"""The fault catalogue: stable fault ids, what they mean, and their fix order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultType:
    """One fault id of the catalogue."""

    id: str
    signal: str
    fix: str


FAULTS: tuple[FaultType, ...] = (
    FaultType("hardware.power", "PSU or UPS status bad", "fail over to backup power or standby"),
    FaultType("hardware.component", "SMART, EDAC, I/O errors, read-only fs", "drain, fail over"),
    FaultType(
        "hardware.communication", "NIC link down, peer unreachable", "link up, bond, fail over"
    ),
    FaultType("software.crash", "service dead, OOM kill or core dump", "restart with backoff"),
    FaultType("software.service_interruption", "health endpoint fails", "restart or reload"),
    FaultType("software.compatibility", "installed version differs", "install required version"),
    FaultType("network.outage", "gateway or clearing peer unreachable", "route to backup gateway"),
    FaultType("network.latency", "RTT above threshold, packet loss", "route to lower-latency path"),
    FaultType(
        "network.security", "unexpected port, failed-login burst", "close port, block offender"
    ),
    FaultType("environment.temperature", "temperature above threshold", "move load, escalate"),
    FaultType("environment.power_fluctuation", "UPS input voltage out of range", "backup power"),
    FaultType(
        "environment.humidity_dust", "humidity out of 40-60 %RH, fan drop", "drain, escalate"
    ),
)

FAULT_IDS: frozenset[str] = frozenset(f.id for f in FAULTS)
# Preventive maintenance runbooks carry a fault id under this prefix (see `oorfix catalog`).
MAINTENANCE_PREFIX = "maintenance."
# Remediation order when several faults are confirmed on one host: power first, network last.
CATEGORY_ORDER = ("hardware", "environment", "software", "network", "maintenance")


def is_known_fault(fault_id: str) -> bool:
    """Whether ``fault_id`` is a catalogue id or a maintenance id."""
    if fault_id in FAULT_IDS:
        return True
    name = fault_id.removeprefix(MAINTENANCE_PREFIX)
    return fault_id.startswith(MAINTENANCE_PREFIX) and name.replace("_", "").isalnum()
