"""Jump hosts (ProxyJump): one verified connection per hop chain, shared by every host behind it.

A host behind ``bastion`` is reached through a ``direct-tcpip`` channel opened on bastion's
paramiko Transport; the channel is the ``sock`` of the host's own SSHClient, so the host's
key is checked and its login done end to end, as with ``ssh -J``. A jump host is verified
against known_hosts like any host (``KnownHost``), and logged in to with its own endpoint.

Connections to jump hosts live in ``POOL``, keyed by the run's connect options and the hop
chain (``a``, then ``a,b``: ``b`` is reached through ``a``): opened by the first host that
needs them, counted per host using them, closed when the last one closes (closing the
channel releases it; the host's Transport closes it when its connection ends). Threads
connecting at once wait for one login per hop. A hop that failed stays failed while hosts
still hold it, so fifty hosts behind a dead bastion wait for one timeout, not fifty. Each
failure is reported on the host as ``cannot reach bastion (jump host for web1): ...`` (a
ConnectError, so the host is unreachable; HostKeyError for a refused jump host key).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paramiko

from oorfix.errors import ConnectError, HostKeyError
from oorfix.inventory.hosts import HostConnection
from oorfix.transport.base import ConnectOptions
from oorfix.transport.common import raise_local_shortage
from oorfix.transport.known_hosts import KnownHost
from oorfix.transport.links import (
    ProxySocket,
    close_client,
    connect_timeout,
    describe_failure,
    direct_socket,
    keep_alive,
    login_args,
)
from oorfix.transport.sshconfig import Endpoint

TransportFactory = Callable[[KnownHost], Callable[..., paramiko.Transport]]
# Why a jump host may refuse a direct-tcpip channel (RFC 4254 5.1).
_OPEN_FAILURES = {
    1: "forwarding is not allowed there (AllowTcpForwarding?)",
    2: "connect failed",
    3: "unknown channel type",
    4: "resource shortage",
}
_ORIGIN = ("127.0.0.1", 0)  # the originator a direct-tcpip request names, as ssh -W does


@dataclass(frozen=True)
class Route:
    """What opening jump hosts needs from the run: its options and how Transports are made
    (the host key algorithms offered follow known_hosts, as for every host)."""

    options: ConnectOptions
    factory: TransportFactory


class _Failure(Exception):
    """Why one hop cannot be used; told to each host behind it in its own words."""

    def __init__(self, hop: str, why: str, *, host_key: bool = False) -> None:
        super().__init__(f"{hop}: {why}")
        self.hop = hop
        self.why = why
        self.host_key = host_key

    def on(self, host: str) -> ConnectError:
        """The error of ``host``, which this hop was to lead to."""
        kind = HostKeyError if self.host_key else ConnectError
        return kind(host, f"cannot reach {self.hop} (jump host for {host}): {self.why}")


class _Hop:
    """One hop chain's connection and the users it has (hosts, and hops reached through it)."""

    def __init__(self, key: tuple[Any, ...], endpoint: Endpoint, parent: _Hop | None) -> None:
        self.key = key
        self.endpoint = endpoint
        self.parent = parent
        self.users = 0  # guarded by the pool's lock
        self.lock = threading.Lock()  # guards the fields below while connecting
        self.client: paramiko.SSHClient | None = None
        self.failure: _Failure | None = None

    def transport(self) -> paramiko.Transport | None:
        """The hop's Transport while it is alive."""
        transport = self.client.get_transport() if self.client is not None else None
        return transport if transport is not None and transport.is_active() else None


class LeasedChannel:
    """A direct-tcpip channel used as a host's socket; closing it releases its jump hosts."""

    def __init__(self, channel: paramiko.Channel, release: Callable[[], None]) -> None:
        self._channel = channel
        self._release = release
        self._lock = threading.Lock()
        self._released = False

    def send(self, data: bytes) -> int:
        """Send through the jump host."""
        return self._channel.send(data)

    def recv(self, size: int) -> bytes:
        """Receive through the jump host."""
        return self._channel.recv(size)

    def settimeout(self, timeout: float | None) -> None:
        """As ``socket.settimeout``."""
        self._channel.settimeout(timeout)

    def getpeername(self) -> Any:
        """The jump host's address (what paramiko's Transport.getpeername reports)."""
        return self._channel.getpeername()

    @property
    def _closed(self) -> bool:  # read by paramiko's Transport, like socket's
        return bool(self._channel.closed)

    def close(self) -> None:
        """Close the channel, and release the jump hosts once."""
        self._channel.close()
        with self._lock:
            first, self._released = not self._released, True
        if first:
            self._release()


class JumpPool:
    """Jump host connections shared by the hosts behind them; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hops: dict[tuple[Any, ...], _Hop] = {}

    def open(self, target: Endpoint, host: str, route: Route) -> LeasedChannel:
        """A channel to ``target`` through its jumps, for inventory host ``host``; raises
        ConnectError (HostKeyError for a refused jump host key)."""
        with self._lock:
            last = self._reference(route.options, target.jumps)
        try:
            transport = self._ready(last, route)
            channel = self._channel(transport, last.endpoint, target, route.options)
        except _Failure as failure:
            self._release(last)
            raise failure.on(host) from failure.__cause__
        except BaseException:
            self._release(last)
            raise
        return LeasedChannel(channel, lambda: self._release(last))

    def open_hops(self) -> int:
        """How many jump host connections are held (for tests)."""
        with self._lock:
            return len(self._hops)

    def _reference(self, options: ConnectOptions, chain: tuple[Endpoint, ...]) -> _Hop:
        """Count one more user of ``chain``'s last hop (a new hop uses its parent); under
        the pool's lock."""
        key = (options, chain)
        hop = self._hops.get(key)
        if hop is None:
            parent = self._reference(options, chain[:-1]) if len(chain) > 1 else None
            hop = self._hops[key] = _Hop(key, chain[-1], parent)
        hop.users += 1
        return hop

    def _release(self, hop: _Hop | None) -> None:
        """One user fewer; a hop nobody uses is closed, then its parent released."""
        closing = []
        with self._lock:
            while hop is not None:
                hop.users -= 1
                if hop.users > 0:
                    break
                del self._hops[hop.key]
                closing.append(hop)
                hop = hop.parent
        for done in closing:  # children before the hops they go through
            if done.client is not None:
                close_client(done.client)

    def _ready(self, hop: _Hop, route: Route) -> paramiko.Transport:
        """The hop's live Transport, logging in (through its parent) when it has none."""
        with hop.lock:  # a child waits on its parent's lock, never the other way round
            transport = hop.transport()
            if transport is not None:
                return transport
            if hop.failure is not None:
                raise hop.failure
            through = self._ready(hop.parent, route) if hop.parent is not None else None
            if hop.client is not None:  # it was lost since: log in again
                close_client(hop.client)
                hop.client = None
            try:
                hop.client = self._login(hop, through, route)
            except _Failure as failure:
                hop.failure = failure
                raise
            transport = hop.transport()
            if transport is None:
                hop.failure = _Failure(hop.endpoint.name, "the connection closed after login")
                raise hop.failure
            return transport

    def _login(
        self, hop: _Hop, through: paramiko.Transport | None, route: Route
    ) -> paramiko.SSHClient:
        """Connect and authenticate to the hop, verifying its host key; raises _Failure."""
        endpoint, options = hop.endpoint, route.options
        conn = HostConnection(endpoint.name, endpoint.address, endpoint.port, endpoint.user)
        known = KnownHost.of(conn, options.known_hosts, global_path=options.global_known_hosts)
        client = paramiko.SSHClient()
        try:
            known.trust(client, accept_new=options.accept_new_host_keys)
            if through is not None:
                parent = hop.parent.endpoint if hop.parent is not None else endpoint
                sock: Any = self._channel(through, parent, endpoint, options)
            elif endpoint.proxy_command is not None:
                sock = ProxySocket(endpoint.proxy_command)
            else:
                sock = direct_socket(
                    endpoint.address, endpoint.port, connect_timeout(endpoint, options)
                )
            client.connect(
                hostname=endpoint.address,
                port=endpoint.port,
                sock=sock,
                transport_factory=route.factory(known),
                **login_args(endpoint, options),
            )
            keep_alive(client, endpoint)
        except BaseException as exc:
            close_client(client)
            failure = _failure(exc, endpoint, options)
            if failure is exc:
                raise
            raise failure from exc
        return client

    def _channel(
        self,
        transport: paramiko.Transport,
        hop: Endpoint,
        target: Endpoint,
        options: ConnectOptions,
    ) -> paramiko.Channel:
        """A direct-tcpip channel from ``hop`` (whose Transport this is) to ``target``."""
        where = (target.address, target.port)
        timeout = connect_timeout(target, options)
        try:
            return transport.open_channel("direct-tcpip", where, _ORIGIN, timeout=timeout)
        except paramiko.ChannelException as exc:
            reason = _OPEN_FAILURES.get(exc.code, f"code {exc.code}")
            # paramiko puts its own wording of the code in text when the server gave none.
            said = f" ({exc.text})" if exc.text and exc.text.lower() not in reason else ""
            why = f"it could not connect to {target.address}:{target.port}: {reason}{said}"
            raise _Failure(hop.name, why) from exc
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if isinstance(exc, OSError):
                raise_local_shortage(hop.name, exc)
            if "Timeout" in str(exc):
                why = f"no answer about {target.address}:{target.port} within {timeout:g}s"
            else:
                why = f"the connection was lost ({exc or type(exc).__name__})"
            raise _Failure(hop.name, why) from exc


def _failure(exc: BaseException, endpoint: Endpoint, options: ConnectOptions) -> BaseException:
    """What a failed hop login becomes: _Failure, or what must go on as it is."""
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, HostKeyError):
        return _Failure(endpoint.name, exc.message, host_key=True)
    if isinstance(exc, paramiko.AuthenticationException):
        return _Failure(endpoint.name, f"authentication failed for {endpoint.user}: {exc}")
    if isinstance(exc, OSError):
        raise_local_shortage(endpoint.name, exc)  # this machine's shortage: not the hop's
    if isinstance(exc, OSError | paramiko.SSHException | EOFError):
        timeout = connect_timeout(endpoint, options)
        return _Failure(
            endpoint.name, describe_failure(exc, endpoint.address, endpoint.port, timeout)
        )
    return exc  # KeyboardInterrupt, a ControllerError, a bug: not a hop's failure


POOL = JumpPool()
