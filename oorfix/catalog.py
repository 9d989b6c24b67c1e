"""The fault catalogue: stable fault ids, what they look like, how they are fixed, and which
faults explain others.

A causal link ``A explains B`` says that fault A, when present, sets off the checks of fault
B: a NIC that is down explains an unreachable clearing network, a crash explains a health
endpoint that does not answer. ``diagnose`` uses the links to tell a root cause from its
consequences, and fixes root causes first. Sites add their own fault ids and links in a
``catalog.yml`` beside their runbooks (``oorfix.runbook.catalogfile``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

# Preventive maintenance runbooks carry a fault id under this prefix (see `oorfix catalog`).
MAINTENANCE_PREFIX = "maintenance."
# Fix order among root causes that no link orders: power first, network last.
CATEGORY_ORDER = ("hardware", "environment", "software", "network", "maintenance")


@dataclass(frozen=True)
class FaultType:
    """One fault id of the catalogue."""

    id: str
    signal: str  # what it looks like: the symptoms it produces
    fix: str
    explains: tuple[str, ...] = ()  # fault ids whose checks this fault sets off
    summary: str = ""
    source: str = "built-in"  # where the entry was declared

    @property
    def category(self) -> str:
        """The part of the id before the first dot."""
        return self.id.split(".", 1)[0]


FAULTS: tuple[FaultType, ...] = (
    FaultType("hardware.power", "PSU or UPS status bad", "fail over to backup power or standby",
              ("software.crash",)),
    FaultType("hardware.component", "SMART, EDAC, I/O errors, read-only fs", "drain, fail over",
              ("software.crash", "software.service_interruption")),
    FaultType("hardware.communication", "NIC link down, peer unreachable",
              "link up, bond, fail over", ("network.outage", "network.latency")),
    FaultType("software.crash", "service dead, OOM kill or core dump", "restart with backoff",
              ("software.service_interruption",)),
    FaultType("software.service_interruption", "health endpoint fails", "restart or reload"),
    FaultType("software.compatibility", "installed version differs, payments rejected",
              "install required version"),
    FaultType("network.outage", "gateway or clearing peer unreachable",
              "route to backup gateway", ("network.latency",)),
    FaultType("network.latency", "RTT above threshold, packet loss",
              "route to lower-latency path"),
    FaultType("network.security", "unexpected port, failed-login burst",
              "close port, block offender"),
    FaultType("environment.temperature", "temperature above threshold", "move load, escalate",
              ("hardware.component", "software.crash")),
    FaultType("environment.power_fluctuation", "UPS input voltage out of range", "backup power",
              ("software.crash",)),
    FaultType("environment.humidity_dust", "humidity out of 40-60 %RH, fan drop",
              "drain, escalate", ("environment.temperature", "hardware.component")),
)  # fmt: skip


def is_maintenance(fault_id: str) -> bool:
    """Whether ``fault_id`` names preventive maintenance, not a fault."""
    name = fault_id.removeprefix(MAINTENANCE_PREFIX)
    return fault_id.startswith(MAINTENANCE_PREFIX) and name.replace("_", "").isalnum()


@dataclass(frozen=True)
class Catalog:
    """Fault ids by id, with the causal links between them."""

    faults: Mapping[str, FaultType] = field(default_factory=dict)

    @classmethod
    def of(cls, faults: Iterable[FaultType]) -> Catalog:
        """A catalogue of ``faults``, in order."""
        return cls({f.id: f for f in faults})

    def extended(self, faults: Iterable[FaultType]) -> Catalog:
        """This catalogue with ``faults`` added (a site's own ids)."""
        return Catalog({**self.faults, **{f.id: f for f in faults}})

    def __iter__(self) -> Iterator[FaultType]:
        return iter(self.faults.values())

    def knows(self, fault_id: str) -> bool:
        """Whether ``fault_id`` is a catalogue id or a maintenance id."""
        return fault_id in self.faults or is_maintenance(fault_id)

    @cached_property
    def _reach(self) -> dict[str, frozenset[str]]:
        """Every fault id each fault explains, directly or through others."""
        reach: dict[str, frozenset[str]] = {}
        for start in self.faults:
            seen: set[str] = set()
            todo = list(self.faults[start].explains)
            while todo:
                current = todo.pop()
                if current not in seen:
                    seen.add(current)
                    todo.extend(self.faults[current].explains if current in self.faults else ())
            reach[start] = frozenset(seen - {start})
        return reach

    def explains(self, cause: str, effect: str) -> bool:
        """Whether fault ``cause`` explains fault ``effect``, directly or through others."""
        return effect in self._reach.get(cause, frozenset())

    def fix_rank(self, fault_id: str) -> tuple[int, int]:
        """Sort key for fixing: faults that explain more first, then by category."""
        category = fault_id.split(".", 1)[0]
        order = (
            CATEGORY_ORDER.index(category) if category in CATEGORY_ORDER else len(CATEGORY_ORDER)
        )
        return -len(self._reach.get(fault_id, ())), order


BUILTIN = Catalog.of(FAULTS)
FAULT_IDS: frozenset[str] = frozenset(BUILTIN.faults)
