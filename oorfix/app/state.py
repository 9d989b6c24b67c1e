"""Where runs keep what outlives them: host locks, budgets, the audit log and the history.

Two backends: the state directory (the default: one machine, zero set-up) and Redis
(``--state redis://…``, ``OORFIX_STATE`` or ``state:`` in the service's config), which every
controller of a team shares: two SREs, a CI pipeline and the service then see the same
locks, budgets, audit chain and runs. Every entry point opens its backend here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from oorfix.errors import InputError
from oorfix.output.history import FileRunStore, RunStore
from oorfix.safety.audit import AuditLog
from oorfix.safety.budget import RemediationBudget
from oorfix.safety.locks import HostLocks
from oorfix.safety.redis_client import RedisState, RedisTarget, is_redis_url
from oorfix.safety.state import StateDir
from oorfix.safety.stores import AuditStore, BudgetStore, LockStore

ENV = "OORFIX_STATE"


class StateBackend(Protocol):
    """The stores of one backend."""

    @property
    def where(self) -> str:
        """Where the state lives, for messages (no secret in it)."""
        ...

    def check(self) -> None:
        """Make sure the state can be used now: InputError for a bad directory, StateUnavailable
        for a server that does not answer."""
        ...

    def locks(self, run_id: str, owner: str, ttl: float) -> LockStore:
        """The host locks of one run."""
        ...

    def budget(self) -> BudgetStore:
        """The remediation budgets."""
        ...

    def audit(self, actor: str) -> AuditStore:
        """The audit log, appended as ``actor``."""
        ...

    def history(self) -> RunStore:
        """The runs."""
        ...


@dataclass(frozen=True)
class DirectoryState:
    """The state directory: files guarded by flock, for the controllers of one machine."""

    directory: StateDir

    @property
    def where(self) -> str:
        """The directory."""
        return str(self.directory.path)

    def check(self) -> None:
        """Create the directory, private; an unusable one is an input error."""
        try:
            self.directory.ensure()
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise InputError(
                f"cannot use the state directory: {why}", self.directory.path
            ) from None

    def locks(self, run_id: str, owner: str, ttl: float) -> LockStore:
        """Lock files in ``locks/``."""
        return HostLocks(self.directory, run_id, owner, ttl)

    def budget(self) -> BudgetStore:
        """Budget files in ``budget/``."""
        return RemediationBudget(self.directory)

    def audit(self, actor: str) -> AuditStore:
        """``audit.log``."""
        return AuditLog(self.directory, actor)

    def history(self) -> RunStore:
        """Run directories in ``runs/``."""
        return FileRunStore(self.directory)


@dataclass(frozen=True)
class RedisBackend:
    """One Redis shared by every controller of a team."""

    state: RedisState

    @property
    def where(self) -> str:
        """The server, password masked."""
        return self.state.shown

    def check(self) -> None:
        """Ping the server; StateUnavailable if it does not answer or let us in."""
        self.state.ping()

    def locks(self, run_id: str, owner: str, ttl: float) -> LockStore:
        """Locks judged by the server's clock."""
        from oorfix.safety.redis_locks import RedisLocks

        return RedisLocks(self.state, run_id, owner, ttl)

    def budget(self) -> BudgetStore:
        """Budgets judged by the server's clock."""
        from oorfix.safety.redis_budget import RedisBudget

        return RedisBudget(self.state)

    def audit(self, actor: str) -> AuditStore:
        """The team's audit chain."""
        from oorfix.safety.redis_audit import RedisAudit

        return RedisAudit(self.state, actor)

    def history(self) -> RunStore:
        """The team's runs."""
        from oorfix.output.redis_history import RedisRunStore

        return RedisRunStore(self.state)


# One client (and connection pool) per URL in a process: the service runs many jobs.
_clients: dict[str, RedisState] = {}
_clients_guard = threading.Lock()


def open_state(state: str | None, state_dir: Path) -> StateBackend:
    """The backend ``state`` names (a Redis URL or a directory), else the state directory."""
    if state and is_redis_url(state):
        target = RedisTarget.parse(state)
        with _clients_guard:
            client = _clients.get(state)
            if client is None:
                client = _clients[state] = RedisState(target)
        return RedisBackend(client)
    if state and "://" in state:
        scheme = state.partition("://")[0]
        raise InputError(f"--state: unknown scheme {scheme!r} (redis://, rediss://, unix://)")
    return DirectoryState(StateDir(Path(state) if state else state_dir))
