"""Rolling batches and the circuit breaker that stops remediation fleet-wide.

``serial`` splits the hosts into batches that run one after the other (a number of hosts,
or a percentage of them). The breaker counts failures as hosts finish: failed, error and
unreachable all count, because each may leave a fault behind. It trips once the failed
share of the run's hosts EXCEEDS ``max_fail_percent`` (reaching it is not enough), and from
then on no host starts: the rest are reported as skipped, without a connection.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from oorfix.results import HostResult, Outcome

FAILURES = frozenset({Outcome.FAILED, Outcome.ERROR, Outcome.UNREACHABLE})


def batch_size(serial: int | float | None, hosts: int) -> int:
    """How many hosts a batch holds (a percentage rounds up, never below one host)."""
    if serial is None:
        return max(hosts, 1)
    if isinstance(serial, float):
        return max(1, math.ceil(hosts * serial))
    return serial


def batches(hosts: Sequence[str], serial: int | float | None) -> list[list[str]]:
    """The hosts split into consecutive batches."""
    size = batch_size(serial, len(hosts))
    return [list(hosts[i : i + size]) for i in range(0, len(hosts), size)]


@dataclass
class Breaker:
    """Trips once failed hosts exceed ``max_fail_percent`` of the run's hosts."""

    max_fail_percent: float | None
    total_hosts: int
    failed: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, result: HostResult) -> None:
        """Count a finished job."""
        if result.status in FAILURES:
            with self._lock:
                self.failed.add(result.host)

    def tripped(self) -> str | None:
        """Why no further host may start, or None."""
        if self.max_fail_percent is None or not self.total_hosts:
            return None
        with self._lock:
            count = len(self.failed)
        percent = 100 * count / self.total_hosts
        if percent <= self.max_fail_percent:
            return None
        return (
            f"circuit breaker: {count} of {self.total_hosts} hosts failed ({percent:.0f}%), "
            f"more than max_fail_percent {self.max_fail_percent:g}%"
        )
