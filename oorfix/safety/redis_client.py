"""One Redis connection for the shared state of a team: where it is, how it fails.

``redis://[user:password@]host[:port][/db]``, ``rediss://`` (TLS) or ``unix:///path?db=N``,
with an optional ``prefix=NAME`` query (default ``oorfix``) so several fleets can share one
Redis. A password may come from ``OORFIX_STATE_PASSWORD`` instead of the URL, which would
show it in the process list. Every Redis error becomes ``StateUnavailable`` naming the
server (password masked): callers fail closed on it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from oorfix.errors import InputError, StateUnavailable

SCHEMES = ("redis", "rediss", "unix")
PASSWORD_ENV = "OORFIX_STATE_PASSWORD"  # noqa: S105 - a variable name, not a password
SOCKET_TIMEOUT = 5.0  # seconds for any one Redis call: a stalled server must not hang a fix
_PREFIX = re.compile(r"[A-Za-z0-9._-]{1,64}")

T = TypeVar("T")


def is_redis_url(text: str) -> bool:
    """Whether ``text`` names a Redis server rather than a state directory."""
    return text.partition("://")[0].lower() in SCHEMES and "://" in text


def mask_url(url: str) -> str:
    """``url`` with any password (in its user part or a ``password=`` query) as ``***``."""
    base, mark, query = url.partition("?")
    scheme, sep, rest = base.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        base = f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name == "password" for name, _ in pairs):
        query = urlencode([(n, "***" if n == "password" else v) for n, v in pairs], safe="*")
    return f"{base}{mark}{query}"


def without_password(url: str) -> str:
    """``url`` with any password left out (the user name kept), for who must not see it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + parts.netloc.rpartition("@")[2]))


@dataclass(frozen=True)
class RedisTarget:
    """A parsed state URL: what redis-py connects to, the key prefix, the masked name."""

    url: str  # without the prefix query; may hold a password
    prefix: str
    shown: str  # for messages and records: the password masked

    @classmethod
    def parse(cls, text: str) -> RedisTarget:
        """A state URL checked; InputError (exit 2) for what cannot be used."""
        shown = mask_url(text)
        parts = urlsplit(text)
        if parts.scheme.lower() not in SCHEMES:
            raise InputError(f"--state {shown}: the scheme must be one of {', '.join(SCHEMES)}")
        if parts.scheme.lower() != "unix" and not parts.hostname:
            raise InputError(f"--state {shown}: no Redis host in the URL")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        prefix = query.pop("prefix", "oorfix")
        if not _PREFIX.fullmatch(prefix):
            raise InputError(f"--state {shown}: prefix must be 1-64 of [A-Za-z0-9._-]")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError as exc:
            raise InputError(f"--state {shown}: {exc}") from None
        url = urlunsplit(parts._replace(query=urlencode(query)))
        return cls(url=url, prefix=prefix, shown=shown)


class RedisState:
    """A client for one state URL (thread-safe: redis-py keeps a connection pool)."""

    def __init__(self, target: RedisTarget) -> None:
        import redis  # only a run with a Redis state pays for the import

        self.target = target
        kwargs: dict[str, Any] = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "health_check_interval": 30,
        }
        password = os.environ.get(PASSWORD_ENV)
        if password and urlsplit(target.url).password is None:
            kwargs["password"] = password
        try:
            # Any: redis-py types every reply as a union of its sync and async results.
            self.client: Any = redis.Redis.from_url(target.url, **kwargs)
        except ValueError as exc:  # redis-py's word for a URL it cannot use
            raise InputError(f"--state {target.shown}: {exc}") from None
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)

    @property
    def shown(self) -> str:
        """The server, password masked."""
        return self.target.shown

    def key(self, *parts: str) -> str:
        """A key under this state's prefix: ``oorfix:lock:web1``."""
        return ":".join((self.target.prefix, *parts))

    def call(self, what: str, action: Callable[[], T]) -> T:
        """``action()``, with every Redis error turned into StateUnavailable naming ``what``."""
        try:
            return action()
        except self._errors as exc:
            raise StateUnavailable(f"{what}: Redis {self.shown} failed: {_why(exc)}") from None

    def ping(self) -> None:
        """Check the server answers and lets us in; StateUnavailable if not."""
        self.call("state", self.client.ping)

    def close(self) -> None:
        """Close the pool's connections."""
        self.client.close()


def _why(exc: Exception) -> str:
    """A Redis error in a few words, never with a password in it."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
