"""One connection per host for the whole run, opened on first use and shared by threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from oorfix.errors import ConnectError
from oorfix.inventory.hosts import Host
from oorfix.transport.base import Transport

TransportFactory = Callable[[Host], Transport]


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    transport: Transport | None = None
    error: ConnectError | None = None


class ConnectionPool:
    """Opens each host's transport once; remembers a failure so it is not retried per step."""

    def __init__(self, factory: TransportFactory):
        self._factory = factory
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _entry(self, name: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(name, _Entry())

    def get(self, host: Host) -> Transport:
        """The host's open transport; raises the ConnectError of its (first) failed connect."""
        entry = self._entry(host.name)
        with entry.lock:
            if entry.transport is not None:
                return entry.transport
            if entry.error is not None:
                raise entry.error
            transport = self._factory(host)
            try:
                transport.connect()
            except ConnectError as exc:
                entry.error = exc
                transport.close()
                raise
            entry.transport = transport
            return transport

    def discard(self, host: Host) -> None:
        """Close and forget a host's transport (after its connection was lost)."""
        entry = self._entry(host.name)
        with entry.lock:
            if entry.transport is not None:
                entry.transport.close()
            entry.transport = None

    def close(self) -> None:
        """Close every open transport."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            with entry.lock:
                if entry.transport is not None:
                    entry.transport.close()
                    entry.transport = None
