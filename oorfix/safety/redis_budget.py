"""Remediation budgets in Redis, counted across every controller of a team.

The times of past remediations of a runbook on a host are a sorted set
``<prefix>:budget:<runbook>:<host>`` (score: ms since the epoch). One Lua script drops the
entries that left the window, counts the rest and, if the budget allows, adds now: check and
spend are one atomic step on the server, whichever controller asks. Times are the server's
(``TIME``) unless a clock is given (tests). The key expires with its window.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from oorfix.safety.budget import check_limits, spent_message
from oorfix.safety.redis_client import RedisState
from oorfix.safety.state import safe_name

# KEYS: the budget's sorted set; ARGV: count, per_ms, now_ms or "", a unique member suffix
_SPEND = """
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local per = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
local n = redis.call('ZCARD', KEYS[1])
local count = tonumber(ARGV[1])
if n < count then
  redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], per + 60000)
  return {0, now}
end
local nth = redis.call('ZRANGE', KEYS[1], n - count, n - count, 'WITHSCORES')
return {n, now, nth[2]}
"""


def _when(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class RedisBudget:
    """Remediation budgets kept in one Redis, judged by the server's clock or ``clock``."""

    def __init__(self, state: RedisState, clock: Callable[[], datetime] | None = None) -> None:
        self.state = state
        self.clock = clock
        self._spend = state.client.register_script(_SPEND)

    def key(self, runbook: str, host: str) -> str:
        """The sorted set of ``runbook`` on ``host``."""
        # safe_name keeps ':' out of the runbook part, so the host (which may hold one) is last.
        return self.state.key("budget", safe_name(runbook), host)

    def try_spend(self, runbook: str, host: str, count: int, per: float) -> str | None:
        """Check and record in one step, safe across controllers: None if spent, else why not."""
        check_limits(count, per)
        now = "" if self.clock is None else str(int(self.clock().timestamp() * 1000))
        args = [count, int(per * 1000), now, uuid.uuid4().hex]
        reply = self.state.call(
            f"spend the budget of {runbook} on {host}",
            lambda: self._spend(keys=[self.key(runbook, host)], args=args),
        )
        recent = int(reply[0])
        if recent == 0:
            return None
        moment = _when(float(reply[1]))
        next_at = _when(float(reply[2]) + per * 1000)
        return spent_message(runbook, host, recent, per, next_at, moment)

    def entries(self, runbook: str, host: str) -> list[datetime]:
        """Every remediation time still in the set, sorted."""
        key = self.key(runbook, host)
        pairs = self.state.call(
            f"read the budget of {runbook} on {host}",
            lambda: self.state.client.zrange(key, 0, -1, withscores=True),
        )
        return [_when(score) for _, score in pairs]
