"""What the safety controls need of a state backend: locks, budgets and an audit log.

Two backends implement these: the state directory (``locks.py``, ``budget.py``, ``audit.py``;
one machine, zero set-up) and Redis (``redis_*.py``; every controller of a team sees the same
locks, budgets and audit chain). A backend that cannot be reached raises
``StateUnavailable``, and the gate fails closed on it.
"""

from __future__ import annotations

from typing import BinaryIO, Protocol

from oorfix.safety.audit import CommandAudit, VerifyResult
from oorfix.safety.locks import LockInfo


class LockStore(Protocol):
    """The host locks of one run, taken for ``ttl`` seconds at a time."""

    @property
    def ttl(self) -> float:
        """Seconds a lock lasts without a refresh."""
        ...

    def acquire(self, host: str) -> LockInfo | None:
        """Take the lock on ``host``: None when it is ours now, else the lock that blocks us."""
        ...

    def refresh(self, host: str) -> LockInfo | None:
        """Extend our lock on ``host``: None when it is still ours, else who holds it now."""
        ...

    def release(self, host: str) -> bool:
        """Give back our lock on ``host``; another run's lock is left alone."""
        ...

    def release_all(self) -> list[str]:
        """Give back every lock this run holds; the hosts released, sorted."""
        ...

    def held(self, host: str) -> LockInfo | None:
        """The current lock on ``host``, whoever holds it."""
        ...


class BudgetStore(Protocol):
    """Remediation budgets: at most ``count`` remediations of a runbook on a host ``per`` s."""

    def try_spend(self, runbook: str, host: str, count: int, per: float) -> str | None:
        """Check and record in one step: None if spent, else why not, for people."""
        ...


class AuditStore(CommandAudit, Protocol):
    """A hash-chained audit log that can be checked and copied out."""

    @property
    def where(self) -> str:
        """Where the log lives, for messages (no secret in it)."""
        ...

    def exists(self) -> bool:
        """Whether anything was ever appended."""
        ...

    def verify(self) -> VerifyResult:
        """Walk the chain up to its current end; the first broken or edited entry if any."""
        ...

    def export(self, out: BinaryIO) -> int:
        """Write the log as an audit file (one canonical entry a line); the entries written."""
        ...
