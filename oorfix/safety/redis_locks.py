"""Host locks in Redis: one lock per host for every controller of a team.

A lock is a JSON value under ``<prefix>:lock:<host>`` naming its owner, run id, expiry and a
fencing token (a counter bumped at every new acquisition, so holders are strictly ordered).
Taking, refreshing and releasing are Lua scripts, atomic on the server, judged by the
server's clock (``TIME``): controllers whose clocks disagree still agree on expiry. Tests
pass a clock instead. Semantics are those of the state directory (``locks.py``): our own
lock is re-entrant, an expired lock of another run is reclaimed and the reclaim recorded
(``<prefix>:locks:reclaimed``, newest first), a value that cannot be read is held for ever.
The key itself outlives its expiry by a day, so a reclaim is seen and recorded rather than
lost to Redis' own expiry, and an abandoned key still goes away.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from oorfix.safety.locks import NEVER, LockInfo
from oorfix.safety.redis_client import RedisState

KEEP_MS = 24 * 3600 * 1000  # how long a key outlives its lock's expiry
RECLAIMED_MAX = 1000  # reclaims remembered

# KEYS: lock, fence counter, reclaim log, this run's set of locked hosts
# ARGV: mode (acquire|refresh), host, run_id, owner, ttl_ms, now_ms or "", keep_ms, max
_TAKE = """
local now = tonumber(ARGV[6])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local raw = redis.call('GET', KEYS[1])
local acquired, fence = now, nil
if raw then
  local ok, held = pcall(cjson.decode, raw)
  if not ok or type(held) ~= 'table' or type(held.expires_ms) ~= 'number'
     or type(held.run_id) ~= 'string' or held.host ~= ARGV[2] then
    return {'unreadable', raw}
  end
  if held.run_id == ARGV[3] then
    acquired, fence = held.acquired_ms, held.fence
  elseif ARGV[1] == 'refresh' or now <= held.expires_ms then
    return {'held', raw}
  else
    local entry = {host = ARGV[2], stale = held, run_id = ARGV[3], owner = ARGV[4], at_ms = now}
    redis.call('LPUSH', KEYS[3], cjson.encode(entry))
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
  end
end
if not fence then fence = redis.call('INCR', KEYS[2]) end
local ttl = tonumber(ARGV[5])
local info = cjson.encode({host = ARGV[2], owner = ARGV[4], run_id = ARGV[3],
  acquired_ms = acquired, expires_ms = now + ttl, fence = fence})
redis.call('SET', KEYS[1], info, 'PX', ttl + tonumber(ARGV[7]))
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PEXPIRE', KEYS[4], ttl + tonumber(ARGV[7]))
return {'ok', info}
"""

# KEYS: lock, this run's set; ARGV: host, run_id
_RELEASE = """
redis.call('SREM', KEYS[2], ARGV[1])
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, held = pcall(cjson.decode, raw)
if not ok or type(held) ~= 'table' or held.run_id ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def _time(value: Any) -> datetime:
    """A time stored in ms; ValueError for anything else."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    return datetime.fromtimestamp(value / 1000, UTC)


def parse_lock(raw: bytes | str, host: str, shown: str) -> LockInfo:
    """A stored lock; one held for ever (by nobody known) when it cannot be read."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("host") != host:
            raise ValueError("not a lock of this host")
        fence = data.get("fence")
        return LockInfo(
            host=host,
            owner=str(data["owner"]),
            run_id=str(data["run_id"]),
            acquired=_time(data.get("acquired_ms")),
            expires=_time(data.get("expires_ms")),
            fence=fence if isinstance(fence, int) else None,
        )
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        return LockInfo(host, f"unreadable lock in {shown}: {exc}", "", NEVER, NEVER)


class RedisLocks:
    """The host locks of one run (``run_id``) in Redis, taken for ``ttl`` seconds at a time."""

    def __init__(
        self,
        state: RedisState,
        run_id: str,
        owner: str,
        ttl: float = 900.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lock ttl must be positive, not {ttl!r}")
        if not run_id:
            raise ValueError("a run id is required")
        self.state = state
        self.run_id = run_id
        self.owner = owner
        self._ttl = ttl
        self.clock = clock  # None: the Redis server's clock
        client = state.client
        self._take = client.register_script(_TAKE)
        self._release = client.register_script(_RELEASE)

    @property
    def ttl(self) -> float:
        """Seconds a lock lasts without a refresh."""
        return self._ttl

    def _key(self, host: str) -> str:
        return self.state.key("lock", host)

    @property
    def _mine(self) -> str:
        return self.state.key("run-locks", self.run_id)

    def acquire(self, host: str) -> LockInfo | None:
        """Take the lock on ``host``: None when it is ours now, else the lock that blocks us."""
        return self._run("acquire", host)

    def refresh(self, host: str) -> LockInfo | None:
        """Extend our lock on ``host``: None when it is still ours, else who holds it now."""
        return self._run("refresh", host)

    def _run(self, mode: str, host: str) -> LockInfo | None:
        keys = [
            self._key(host),
            self.state.key("locks", "fence"),
            self.state.key("locks", "reclaimed"),
            self._mine,
        ]
        now = "" if self.clock is None else str(_ms(self.clock()))
        args = [mode, host, self.run_id, self.owner, int(self._ttl * 1000), now, KEEP_MS]
        args.append(RECLAIMED_MAX)
        verdict, raw = self.state.call(
            f"{mode} the lock on {host}", lambda: self._take(keys=keys, args=args)
        )
        if verdict == b"ok":
            return None
        return parse_lock(raw, host, self.state.shown)

    def release(self, host: str) -> bool:
        """Delete our lock on ``host``; another run's lock is left alone. True if deleted."""
        keys = [self._key(host), self._mine]
        done = self.state.call(
            f"release the lock on {host}",
            lambda: self._release(keys=keys, args=[host, self.run_id]),
        )
        return bool(done)

    def release_all(self) -> list[str]:
        """Delete every lock this run holds; the hosts released, sorted."""
        client = self.state.client
        members = self.state.call("list this run's locks", lambda: client.smembers(self._mine))
        hosts = sorted(m.decode("utf-8", "surrogateescape") for m in members)
        return [host for host in hosts if self.release(host)]

    def held(self, host: str) -> LockInfo | None:
        """The current lock on ``host``, whoever holds it."""
        key = self._key(host)
        raw = self.state.call(f"read the lock on {host}", lambda: self.state.client.get(key))
        return None if raw is None else parse_lock(raw, host, self.state.shown)

    def reclaims(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest reclaims of expired locks, newest first."""
        key = self.state.key("locks", "reclaimed")
        raws = self.state.call("read reclaims", lambda: self.state.client.lrange(key, 0, limit - 1))
        return [json.loads(raw) for raw in raws]
