"""Test helpers for the state directory, locks, budgets and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.process import BaseProcess

T0 = datetime(2024, 5, 1, 9, 42, 5, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when the test says so."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def run_all(procs: Sequence[BaseProcess], timeout: float = 180) -> None:
    """Start every process, wait for all, assert each exited 0; never leave one running."""
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=timeout)
        assert [proc.exitcode for proc in procs] == [0] * len(procs)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
