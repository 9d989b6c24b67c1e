"""One connection per host, opened on first use, shared by threads, closed when done.

A host's connection is released when the host's own jobs are done, so open connections are
bounded by ``--forks`` rather than by the size of the fleet. A host can also be the target of
other hosts' steps (``on: lb``): such a step leases the connection, and a release while it is
leased closes it only when the last lease ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    leases: int = 0
    released: bool = False

    def close(self) -> None:
        """Close the transport (the caller holds ``lock``)."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class ConnectionPool:
    """Opens each host's transport once; remembers a failure so it is not retried per step."""

    def __init__(self, factory: TransportFactory):
        self._factory = factory
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._new_keys: dict[str, str] = {}  # host -> fingerprint trusted by accept-new

    def _entry(self, name: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(name, _Entry())

    def get(self, host: Host) -> Transport:
        """The host's open transport; raises the ConnectError of its (first) failed connect."""
        entry = self._entry(host.name)
        with entry.lock:
            entry.released = False
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
            # Only the SSH transport trusts keys; the others have no such attribute.
            fingerprint = getattr(transport, "new_host_key", None)
            if isinstance(fingerprint, str):
                with self._lock:
                    self._new_keys[host.name] = fingerprint
            return transport

    def take_new_host_key(self, name: str) -> str | None:
        """The fingerprint of the key accept-new trusted for host ``name``, told once."""
        with self._lock:
            return self._new_keys.pop(name, None)

    @contextmanager
    def lease(self, host: Host) -> Iterator[Transport]:
        """The host's transport, kept open until the lease ends even if it is released."""
        transport = self.get(host)
        entry = self._entry(host.name)
        with entry.lock:
            entry.leases += 1
        try:
            yield transport
        finally:
            with entry.lock:
                entry.leases -= 1
                if entry.released and entry.leases == 0:
                    entry.close()

    def release(self, host: Host) -> None:
        """The host's own jobs are done: close its transport once no lease holds it."""
        entry = self._entry(host.name)
        with entry.lock:
            entry.released = True
            if entry.leases == 0:
                entry.close()

    def discard(self, host: Host) -> None:
        """Close and forget a host's transport (after its connection was lost)."""
        entry = self._entry(host.name)
        with entry.lock:
            entry.close()

    def close(self) -> None:
        """Close every open transport."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            with entry.lock:
                entry.close()
