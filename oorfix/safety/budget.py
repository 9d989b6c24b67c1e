"""Remediation budgets: at most ``count`` remediations of one runbook on one host ``per`` window.

A runbook's ``max_remediations: {count: 3, per: 1h}`` keeps a flapping fault from making
oorfix restart a service forty times an hour. The times of past remediations live in
``state.budget/<runbook>/<host>.json`` (a JSON list of ISO timestamps), so the budget holds
across runs, restarts and concurrent processes. The engine calls ``try_spend``, which checks
and records in one critical section under ``state.mutex("budget")``.

A budget file that cannot be read refuses every remediation (fail closed) until an operator
repairs or removes it: a lost count could otherwise let the flapping start again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from oorfix.errors import OorfixError
from oorfix.results import utcnow
from oorfix.safety.state import StateDir, safe_name, write_json_atomic

MAX_ENTRIES = 10_000  # bounds a file written by record() without a window to prune by


class BudgetUnreadable(OorfixError):
    """A budget file that exists but cannot be read as a list of timestamps."""


def format_window(seconds: float) -> str:
    """A window as people write it in runbooks: ``1h``, ``90m``, ``45s``, ``1.5s``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def _format_next(at: datetime, now: datetime) -> str:
    """When a remediation is next allowed, in UTC; the date only when it is not today."""
    # Rounded up to the second: the time shown is never one that would still be refused.
    whole = at.replace(microsecond=0)
    if whole < at:
        whole += timedelta(seconds=1)
    shown = whole.astimezone(UTC)
    stamp = "%H:%M:%S" if shown.date() == now.astimezone(UTC).date() else "%Y-%m-%d %H:%M:%S"
    return f"{shown.strftime(stamp)} UTC"


def spent_message(  # noqa: PLR0913 - the message names each of them
    runbook: str, host: str, recent: int, per: float, next_at: datetime, now: datetime
) -> str:
    """Why a remediation is refused: how many there were, and when the next one may start."""
    noun = "remediation" if recent == 1 else "remediations"
    return (
        f"budget spent: {recent} {noun} of {runbook} on {host} in the last "
        f"{format_window(per)} (next allowed at {_format_next(next_at, now)})"
    )


def check_limits(count: int, per: float) -> None:
    """Refuse a budget that makes no sense; the runbook schema should already have."""
    if count < 1:
        raise ValueError(f"max_remediations count must be at least 1, not {count!r}")
    if not math.isfinite(per) or per <= 0:
        raise ValueError(f"max_remediations window must be positive, not {per!r}")


def _parse_entries(text: str) -> list[datetime]:
    """The timestamps in a budget file, sorted; BudgetUnreadable for anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BudgetUnreadable(str(exc)) from exc
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise BudgetUnreadable("not a list of timestamps")
    try:
        entries = [datetime.fromisoformat(item) for item in data]
    except ValueError as exc:
        raise BudgetUnreadable(str(exc)) from exc
    if any(entry.tzinfo is None for entry in entries):
        raise BudgetUnreadable("a timestamp has no time zone")
    return sorted(entries)


class RemediationBudget:
    """Remediation budgets kept in one state directory, judged by ``clock`` (UTC)."""

    def __init__(self, state: StateDir, clock: Callable[[], datetime] = utcnow) -> None:
        self.state = state
        self.clock = clock

    def path(self, runbook: str, host: str) -> Path:
        """The file holding the remediation times of ``runbook`` on ``host``."""
        return self.state.budget / safe_name(runbook) / f"{safe_name(host)}.json"

    def check(self, runbook: str, host: str, count: int, per: float) -> str | None:
        """None if a remediation may start now; else why not, for people."""
        check_limits(count, per)
        return self._refusal(runbook, host, count, per, self.clock())

    def record(self, runbook: str, host: str, per: float | None = None) -> None:
        """Record a remediation of ``runbook`` on ``host`` now; prune entries older than ``per``."""
        with self.state.mutex("budget"):
            self._record(runbook, host, per, self.clock())

    def try_spend(self, runbook: str, host: str, count: int, per: float) -> str | None:
        """Check and record in one step, safe across processes: None if spent, else why not."""
        check_limits(count, per)
        with self.state.mutex("budget"):
            now = self.clock()
            reason = self._refusal(runbook, host, count, per, now)
            if reason is None:
                self._record(runbook, host, per, now)
            return reason

    def entries(self, runbook: str, host: str) -> list[datetime]:
        """Every recorded remediation time, sorted; BudgetUnreadable if the file is bad."""
        try:
            text = self.path(runbook, host).read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeError) as exc:
            raise BudgetUnreadable(str(exc)) from exc
        return _parse_entries(text)

    def _refusal(
        self, runbook: str, host: str, count: int, per: float, now: datetime
    ) -> str | None:
        """Why ``count`` per ``per`` seconds is spent at ``now``, or None if it is not."""
        try:
            recent = _in_window(self.entries(runbook, host), per, now)
        except BudgetUnreadable as exc:
            path = self.path(runbook, host)
            return f"budget file {path} is unreadable ({exc}); remediation refused until fixed"
        if len(recent) < count:
            return None
        # Allowed again once all but count-1 of the recent entries have left the window.
        next_at = recent[len(recent) - count] + timedelta(seconds=per)
        return spent_message(runbook, host, len(recent), per, next_at, now)

    def _record(self, runbook: str, host: str, per: float | None, now: datetime) -> None:
        """Append ``now`` and write the file back; the caller holds the mutex."""
        path = self.path(runbook, host)
        # An unreadable file raises here: never overwrite what an operator must look at.
        entries = self.entries(runbook, host)
        if per is not None:
            entries = _in_window(entries, per, now)
        entries = [*entries, now][-MAX_ENTRIES:]
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_json_atomic(path, [entry.isoformat() for entry in entries])


def _in_window(entries: list[datetime], per: float, now: datetime) -> list[datetime]:
    """The entries less than ``per`` seconds before ``now`` (future ones count too)."""
    start = now - timedelta(seconds=per)
    return [entry for entry in entries if entry > start]
