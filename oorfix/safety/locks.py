"""Per-host remediation locks: two oorfix runs never remediate the same host at once.

A lock is a JSON file ``state.locks/<host>.json`` naming its owner, run id and expiry.
Every change happens inside ``state.mutex("locks")`` and replaces the file atomically.
A run that holds a lock refreshes it at each step, so only a run that stopped (killed,
crashed, cut off) lets its lock expire; the next run reclaims it and records the reclaim
in ``state.locks/reclaimed.jsonl``. A lock file that cannot be read is treated as held
for ever (fail closed): an operator removes it after checking nobody is remediating.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from oorfix.results import utcnow
from oorfix.safety.state import StateDir, append_json_line, safe_name, write_json_atomic

RECLAIMED_LOG = "reclaimed.jsonl"
NEVER = datetime.max.replace(tzinfo=UTC)  # the expiry reported for an unreadable lock


def default_owner() -> str:
    """Who holds a lock, for the people who find it: ``user@machine pid N``."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


def _parse_time(value: object) -> datetime:
    """A timezone-aware datetime from ISO text; ValueError for anything else."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a timestamp")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")  # cannot be compared: fail closed
    return parsed


@dataclass(frozen=True)
class LockInfo:
    """One host lock: who holds it, for which run, and until when."""

    host: str
    owner: str
    run_id: str
    acquired: datetime
    expires: datetime
    fence: int | None = None  # Redis: a token that grows with every new acquisition

    def to_json(self) -> dict[str, str]:
        """The lock as stored in its file."""
        return {
            "host": self.host,
            "owner": self.owner,
            "run_id": self.run_id,
            "acquired": self.acquired.isoformat(),
            "expires": self.expires.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Any) -> LockInfo:
        """A lock read from its file; ValueError when any field is missing or malformed."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        texts = {key: data.get(key) for key in ("host", "owner", "run_id")}
        bad = [key for key, value in texts.items() if not isinstance(value, str)]
        if bad:
            raise ValueError(f"missing or non-text {', '.join(bad)}")
        return cls(
            host=str(texts["host"]),
            owner=str(texts["owner"]),
            run_id=str(texts["run_id"]),
            acquired=_parse_time(data.get("acquired")),
            expires=_parse_time(data.get("expires")),
        )


class HostLocks:
    """The host locks of one run (``run_id``), taken for ``ttl`` seconds at a time."""

    def __init__(
        self,
        state: StateDir,
        run_id: str,
        owner: str,
        ttl: float = 900.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lock ttl must be positive, not {ttl!r}")
        if not run_id:
            raise ValueError("a run id is required")  # "" marks an unreadable lock
        self.state = state
        self.run_id = run_id
        self.owner = owner
        self.ttl = ttl
        self.clock = clock

    def path(self, host: str) -> Path:
        """The lock file of ``host``."""
        return self.state.locks / f"{safe_name(host)}.json"

    def acquire(self, host: str) -> LockInfo | None:
        """Take the lock on ``host``: None when it is ours now, else the lock that blocks us.

        Our own run's lock is re-entrant (and its expiry is extended); an expired lock of
        another run is reclaimed and the reclaim recorded.
        """
        with self.state.mutex("locks"):
            now = self.clock()
            held = self._read(host)
            if held is None or held.run_id == self.run_id:
                self._write(host, now, held)
                return None
            if now > held.expires:  # never true for an unreadable lock (NEVER)
                self._record_reclaim(held, now)
                self._write(host, now, None)
                return None
            return held

    def refresh(self, host: str) -> LockInfo | None:
        """Extend our lock on ``host``: None when it is still ours, else who holds it now.

        A lock that vanished is taken again. A lock another run reclaimed is not fought
        over: the caller must stop remediating that host.
        """
        with self.state.mutex("locks"):
            held = self._read(host)
            if held is not None and held.run_id != self.run_id:
                return held
            self._write(host, self.clock(), held)
            return None

    def release(self, host: str) -> bool:
        """Delete our lock on ``host``; another run's lock is left alone. True if deleted."""
        with self.state.mutex("locks"):
            return self._release_locked(host)

    def release_all(self) -> list[str]:
        """Delete every lock this run holds (found by run id); the hosts released, sorted."""
        released: list[str] = []
        with self.state.mutex("locks"):
            for path in sorted(self.state.locks.glob("*.json")):
                if path.name.startswith("."):
                    continue  # a temporary file of an atomic write
                held = self._read_path(path, path.stem)
                if held is None or held.run_id != self.run_id:
                    continue
                if self._release_locked(held.host):
                    released.append(held.host)
        return sorted(released)

    def held(self, host: str) -> LockInfo | None:
        """The current lock on ``host``, whoever holds it (read-only, for reporting)."""
        return self._read(host)

    def _release_locked(self, host: str) -> bool:
        """Delete our lock on ``host``; the caller holds the mutex."""
        held = self._read(host)
        if held is None or held.run_id != self.run_id:
            return False
        self.path(host).unlink(missing_ok=True)
        return True

    def _read(self, host: str) -> LockInfo | None:
        """The lock on ``host``, None if there is none; an unreadable file fails closed."""
        path = self.path(host)
        held = self._read_path(path, host)
        if held is not None and held.host != host:
            # Two names mapped to one file: refuse rather than remediate the wrong host.
            return self._unreadable(path, host, f"it belongs to host {held.host!r}")
        return held

    def _read_path(self, path: Path, host: str) -> LockInfo | None:
        """The lock stored in ``path`` (None if none); a blocking placeholder if unreadable."""
        try:
            return LockInfo.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            return self._unreadable(path, host, str(exc))

    def _unreadable(self, path: Path, host: str, why: str) -> LockInfo:
        """The lock reported for a file we cannot trust: held for ever, by nobody known."""
        try:
            acquired = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            acquired = self.clock()
        return LockInfo(
            host=host,
            owner=f"unreadable lock file {path}: {why}",
            run_id="",
            acquired=acquired,
            expires=NEVER,
        )

    def _write(self, host: str, now: datetime, ours: LockInfo | None) -> None:
        """Write our lock on ``host`` expiring ``ttl`` from ``now``; keep when we first took it."""
        acquired = ours.acquired if ours is not None else now
        info = LockInfo(host, self.owner, self.run_id, acquired, now + timedelta(seconds=self.ttl))
        write_json_atomic(self.path(host), info.to_json())

    def _record_reclaim(self, stale: LockInfo, now: datetime) -> None:
        """Append the reclaim of an expired lock to ``reclaimed.jsonl``."""
        entry = {
            "host": stale.host,
            "stale": stale.to_json(),
            "run_id": self.run_id,
            "owner": self.owner,
            "at": now.isoformat(),
        }
        append_json_line(self.state.locks / RECLAIMED_LOG, entry)
