"""The audit log in Redis: one hash chain appended by every controller of a team.

Entries are the same canonical JSON lines as the file log (``audit.py``), kept in the list
``<prefix>:audit``; ``<prefix>:audit:tail`` holds the last entry's ``seq`` and ``hash``. An
append builds its entry on the tail it read, then a Lua script pushes it only if the tail is
still the same (compare and set); a writer that lost the race builds again on the new tail.
So many processes on many machines append to one chain that never forks, and ``export``
writes a file that ``oorfix audit verify --file`` checks like any local log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, BinaryIO

from oorfix.errors import StateUnavailable
from oorfix.results import utcnow
from oorfix.safety.audit import GENESIS, ChainedAudit, Entry, VerifyResult, canonical, verify_lines
from oorfix.safety.redis_client import RedisState

MAX_TRIES = 1000  # compare-and-set rounds before an append gives up (fails closed)
_CHUNK = 1000  # entries read a round trip when verifying or exporting

# KEYS: the list, the tail; ARGV: the tail the entry was built on, the line, the new tail
_APPEND = """
local tail = redis.call('GET', KEYS[2]) or ''
if tail ~= ARGV[1] then return {0, tail} end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return {1, ARGV[3]}
"""


def _tail(seq: int, digest: str) -> str:
    return f"{seq} {digest}"


def _parse_tail(raw: bytes | str) -> tuple[int, str]:
    """The seq and hash a tail value names; ``(0, GENESIS)`` for an empty log."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    if not text:
        return 0, GENESIS
    seq, _, digest = text.partition(" ")
    return int(seq), digest


class RedisAudit(ChainedAudit):
    """Appends intent and result entries for one actor to the audit chain in Redis."""

    def __init__(
        self, state: RedisState, actor: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        super().__init__(actor, clock)
        self.state = state
        self._list = state.key("audit")
        self._tail_key = state.key("audit", "tail")
        self._push = state.client.register_script(_APPEND)

    @property
    def where(self) -> str:
        """The server and key, password masked."""
        return f"{self.state.shown} key {self._list}"

    def exists(self) -> bool:
        """Whether any entry was ever appended."""
        found = self.state.call("read the audit log", lambda: self.state.client.exists(self._list))
        return bool(found)

    def _append(self, body: Entry) -> str:
        """Build on the tail and push if it is still the tail; returns the entry's hash."""
        raw = self.state.call("read the audit tail", lambda: self.state.client.get(self._tail_key))
        seen = (raw or b"").decode()
        for _ in range(MAX_TRIES):
            seq, prev = _parse_tail(seen)
            entry = self._entry(body, prev, seq + 1)
            new = _tail(seq + 1, str(entry["hash"]))
            pushed, now = self.state.call(
                "append to the audit log", self._pusher([seen, canonical(entry), new])
            )
            if int(pushed) == 1:
                return str(entry["hash"])
            seen = now.decode() if isinstance(now, bytes) else str(now)
        raise StateUnavailable(f"append to the audit log in {self.where}: {MAX_TRIES} tries lost")

    def _pusher(self, args: list[str | bytes]) -> Callable[[], Any]:
        """A call of the compare-and-set script with ``args``."""
        return lambda: self._push(keys=[self._list, self._tail_key], args=args)

    def _reader(self, start: int, length: int) -> Callable[[], list[bytes]]:
        """A call that reads one chunk of the list from ``start``."""
        end = min(start + _CHUNK, length) - 1
        return lambda: list(self.state.client.lrange(self._list, start, end))

    def lines(self) -> Iterator[bytes]:
        """The log's lines, each with its newline, up to its length when asked."""
        client = self.state.client
        length = int(self.state.call("read the audit log", lambda: client.llen(self._list)))
        for start in range(0, length, _CHUNK):
            chunk = self.state.call("read the audit log", self._reader(start, length))
            for raw in chunk:
                yield bytes(raw) + b"\n"

    def verify(self) -> VerifyResult:
        """Walk the chain once; the first broken or edited entry, if any."""
        return verify_lines(self.lines())

    def export(self, out: BinaryIO) -> int:
        """Write the chain as an audit file; the entries written."""
        count = 0
        for raw in self.lines():
            out.write(raw)
            count += 1
        return count
