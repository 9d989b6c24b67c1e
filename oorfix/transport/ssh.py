"""Run commands over SSH with paramiko: one verified connection per host for the whole run.

paramiko's SSHClient is used directly rather than fabric's Connection: fabric accepts any
host key, leaks threads after a failed login and captures output quadratically (docs/pitfalls.md
§1, 7, 12), and none of its extras are needed here. Only this module and the host key modules
(``known_hosts``, ``known_hosts_file``, ``hostcert``) and the route modules (``links``,
``jump``, ``ssh_config_file``) import paramiko; every paramiko and socket
exception is mapped in ``SshTransport._mapped`` (a jump host's, in ``jump``).

Where and how a host is reached (ssh_config, Ansible's ssh arguments, ProxyJump, ProxyCommand)
is resolved by ``sshconfig`` when the transport is made; hosts behind the same jump hosts
share one connection to them (``jump``).

Host keys are checked by oorfix, like OpenSSH, as ``oorfix.transport.known_hosts`` describes:
an unknown, changed or revoked key is refused before any credential is sent.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, ClassVar

import paramiko
from paramiko.common import MSG_CHANNEL_REQUEST

from oorfix.errors import ConnectError, ConnectionLost, InputError
from oorfix.inventory.hosts import HostConnection
from oorfix.redact import Command
from oorfix.results import CommandResult
from oorfix.transport.base import ConnectOptions
from oorfix.transport.capture import Capture
from oorfix.transport.common import (
    EXIT_DRAIN_IDLE,
    POLL,
    READ_SIZE,
    Attempt,
    captures,
    raise_local_shortage,
)
from oorfix.transport.jump import POOL as JUMPS
from oorfix.transport.jump import Route
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
from oorfix.transport.shell import Become, privileged
from oorfix.transport.sshconfig import Endpoint, resolve

_LOG = logging.getLogger(__name__)

# OpenSSH allows 10 sessions per connection (MaxSessions); stay below it when threads share one.
MAX_SESSIONS = 8
_SEND_SIZE = 32 * 1024
_POLL_SENDING = 0.01  # the window opening is not signalled on the channel's fd


class _ParamikoToDebug(logging.Handler):
    """Re-logs paramiko's records, tracebacks included, as our debug messages."""

    def emit(self, record: logging.LogRecord) -> None:
        _LOG.debug("%s: %s", record.name, record.getMessage())


def _route_paramiko_logs() -> None:
    """Keep paramiko's tracebacks off stderr (docs/pitfalls.md §13); debug level shows them."""
    paramiko_log = logging.getLogger("paramiko")
    if not any(isinstance(h, _ParamikoToDebug) for h in paramiko_log.handlers):
        paramiko_log.addHandler(_ParamikoToDebug())
    paramiko_log.propagate = False


_route_paramiko_logs()


def _channel_request(channel: paramiko.Channel, message: paramiko.Message) -> None:
    """paramiko's request handler, plus ``exit-signal``, which paramiko ignores."""
    start = message.packet.tell()
    if message.get_text() == "exit-signal":
        message.get_boolean()  # want_reply: always false for exit-signal (RFC 4254 6.10)
        name = message.get_text()
        number = getattr(signal.Signals, "SIG" + name, None)
        # Reported as a shell would (128 + N), so a remote `kill -9` (137) is told apart from
        # a dropped connection, which paramiko also reports as -1 (docs/pitfalls.md §5).
        channel.exit_status = 128 + int(number) if number is not None else -1
        channel.status_event.set()
        return
    message.packet.seek(start)
    assert _PARAMIKO_REQUEST is not None  # only installed when paramiko's handler exists
    _PARAMIKO_REQUEST(channel, message)


# paramiko's private dispatch table; should a release drop it, plain Transports are used and a
# killed command reads as rc None instead of 128 + N (the contract tests would say so).
_PARAMIKO_TABLE: dict[int, Any] = dict(getattr(paramiko.Transport, "_channel_handler_table", {}))
_PARAMIKO_REQUEST = _PARAMIKO_TABLE.get(MSG_CHANNEL_REQUEST)


class _OrderedTransport(paramiko.Transport):
    """A paramiko Transport that offers host key algorithms in the order oorfix sets."""

    key_order: Sequence[str] | None = None

    @property
    def preferred_keys(self) -> Sequence[str]:
        # paramiko offers certificate algorithms last, so no server would ever pick one.
        return self.key_order if self.key_order is not None else super().preferred_keys


class _SignalAwareTransport(_OrderedTransport):
    """A Transport whose channels also record the signal that ended a remote command."""

    _channel_handler_table: ClassVar[dict[int, Any]] = {
        **_PARAMIKO_TABLE,
        MSG_CHANNEL_REQUEST: _channel_request,
    }


def _make_transport(
    sock: Any, /, *, rank: Callable[[str], int] | None = None, **kwargs: Any
) -> paramiko.Transport:
    """paramiko's ``transport_factory``; ``rank`` (KnownHost.algorithm_rank) orders host keys."""
    cls = _OrderedTransport if _PARAMIKO_REQUEST is None else _SignalAwareTransport
    transport = cls(sock, **kwargs)
    if rank is not None:
        transport.key_order = tuple(sorted(transport.preferred_keys, key=rank))  # stable
    return transport


def transport_factory(known: KnownHost) -> Callable[..., paramiko.Transport]:
    """A ``transport_factory`` offering ``known``'s host key algorithms first (certificates
    when known_hosts trusts a CA for the host); reads known_hosts now, before any socket."""
    return functools.partial(_make_transport, rank=known.algorithm_rank())


class SshTransport:
    """One SSH connection to one host; several threads may run commands on it at once."""

    def __init__(self, conn: HostConnection, options: ConnectOptions) -> None:
        self.name = conn.name
        self.endpoint, self._unresolved = _resolve(conn, options)
        # The resolved address, port and user stand for the host from here on: in
        # known_hosts, in messages, and in deciding whether become is needed.
        endpoint = self.endpoint
        conn = replace(conn, address=endpoint.address, port=endpoint.port, user=endpoint.user)
        self.conn = conn
        self.options = options
        self.known_host = KnownHost.of(
            conn, options.known_hosts, global_path=options.global_known_hosts
        )
        self._client: paramiko.SSHClient | None = None
        self._stream: Any = None  # what the login rides on; closed with the client
        self._lock = threading.Lock()
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)

    def connect(self) -> None:
        """Open and authenticate the connection; raises ConnectError or HostKeyError."""
        with self._lock:
            if self._client is not None:
                return
            client = paramiko.SSHClient()
            try:
                with self._mapped(lost=False):
                    self.known_host.trust(client, accept_new=self.options.accept_new_host_keys)
                    factory = transport_factory(self.known_host)
                    args = self._connect_args(self._socket())
                    client.connect(**args | {"transport_factory": factory})
                    keep_alive(client, self.endpoint)
            except BaseException:
                close_client(client)  # docs/pitfalls.md §12: a failed login leaves threads behind
                raise
            self._client = client

    @property
    def new_host_key(self) -> str | None:
        """The fingerprint of a host key accept-new added to known_hosts while connecting."""
        return self.known_host.new_host_key

    def close(self) -> None:
        """Close the connection and wait for paramiko's thread to end."""
        with self._lock:
            client, self._client = self._client, None
            stream, self._stream = self._stream, None
        if client is not None:
            close_client(client)
        if stream is not None:
            stream.close()  # mostly closed with the client already; this one is idempotent

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        """Run a shell command; non-zero exit and timeout are data; a lost link raises."""
        grace = self.options.kill_grace
        become = privileged(become, self.conn.user or getpass.getuser())
        attempt = Attempt(command, timeout, grace)
        wrapped, stdin = attempt.command_line(become), attempt.stdin(become)
        out, err = captures(self.options)
        # Mid-session: whatever goes wrong now, a refused session included, is a lost
        # connection (the host was reachable), never ConnectError (unreachable).
        with self._sessions, self._mapped(lost=True):
            transport = self._transport()
            channel = transport.open_session(timeout=self.options.connect_timeout)
            try:
                # `exec`: the login shell becomes the command rather than fork and wait for it.
                self._exec(channel, f"exec {wrapped}")
                expired = _pump(channel, stdin, out, err, attempt.deadline)
                rc = None if expired else self._exit_status(channel, transport)
            finally:
                channel.close()
        # rc None without `expired`: the channel closed with no status; not a timeout.
        return attempt.result(rc, out, err, expired=expired)

    def _transport(self) -> paramiko.Transport:
        client = self._client
        transport = client.get_transport() if client is not None else None
        if transport is None:
            raise ConnectionLost(self.name, "not connected")
        if not transport.is_active():
            raise ConnectionLost(self.name, "the connection was lost earlier")
        return transport

    def _exec(self, channel: paramiko.Channel, wrapped: str) -> None:
        """Start the command; a host that never answers is treated as gone (docs/pitfalls.md §6)."""
        # exec_command waits for the reply without a timeout; closing the channel ends the wait.
        watchdog = threading.Timer(self.options.connect_timeout, channel.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            channel.exec_command(wrapped)
        finally:
            watchdog.cancel()

    def _exit_status(self, channel: paramiko.Channel, transport: paramiko.Transport) -> int | None:
        """The exit status; raises ConnectionLost if the connection dropped instead."""
        if channel.status_event.is_set() and channel.exit_status != -1:
            return channel.exit_status
        # paramiko closes the channels of a dead transport before marking it inactive.
        if transport.is_active():
            transport.join(0.5)
        if not transport.is_active():
            raise ConnectionLost(
                self.name, "connection lost while the command ran; its effect is unknown"
            )
        _LOG.debug("%s: channel closed without an exit status", self.name)
        return None

    def _socket(self) -> Any:
        """What the login rides on: a channel through the jump hosts, a ProxyCommand, or a
        direct TCP connection (kept, so that close() releases it even after a failed login)."""
        if self._unresolved is not None:
            raise self._unresolved
        if self._stream is not None:
            self._stream.close()
        endpoint = self.endpoint
        if endpoint.jumps:
            route = Route(self.options, transport_factory)
            self._stream = JUMPS.open(endpoint, self.name, route)
        elif endpoint.proxy_command is not None:
            self._stream = ProxySocket(endpoint.proxy_command)
        else:
            timeout = connect_timeout(endpoint, self.options)
            self._stream = direct_socket(endpoint.address, endpoint.port, timeout)
        return self._stream

    def _connect_args(self, sock: Any) -> dict[str, Any]:
        return {
            "hostname": self.conn.address,  # the name known_hosts is looked up by
            "port": self.conn.port,
            "sock": sock,
            # The key files, then the agent's keys unless IdentitiesOnly (links.login_args).
            **login_args(self.endpoint, self.options),
            "transport_factory": _make_transport,
        }

    @contextlib.contextmanager
    def _mapped(self, *, lost: bool) -> Iterator[None]:
        """Turn every paramiko and socket exception into an oorfix TransportError.

        ``lost=False`` while connecting: failures mean the host is unreachable (ConnectError).
        ``lost=True`` on a connected transport: any failure, a refused session
        (ChannelException) included, is ConnectionLost, because the host was reached and the
        effect of what was under way is unknown.
        """
        failure = ConnectionLost if lost else ConnectError
        try:
            yield
        except paramiko.AuthenticationException as exc:
            user = self.conn.user or getpass.getuser()
            raise ConnectError(self.name, f"authentication failed for {user}: {exc}") from exc
        except paramiko.ChannelException as exc:
            reason = exc.text or f"code {exc.code}"
            raise failure(self.name, f"the host refused a session: {reason}") from exc
        except OSError as exc:
            raise_local_shortage(self.name, exc)
            raise failure(self.name, self._describe(exc)) from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise failure(self.name, self._describe(exc)) from exc

    def _describe(self, exc: BaseException) -> str:
        """A one-line account of a connection failure."""
        timeout = connect_timeout(self.endpoint, self.options)  # ssh_config may set its own
        address, port = self.conn.address, self.conn.port
        return describe_failure(exc, address, port, timeout, self.options.banner_timeout)


def _resolve(conn: HostConnection, options: ConnectOptions) -> tuple[Endpoint, ConnectError | None]:
    """The host's endpoint (ssh_config, Ansible's ssh arguments), or why it has none: bad
    settings are input errors when a run is planned, so here they only make the host
    unreachable (a file changed since)."""
    try:
        resolution = resolve(conn, options.ssh_config)
    except InputError as exc:
        return Endpoint.direct(conn), ConnectError(conn.name, exc.location_message())
    for note in resolution.notes:  # told when the run was planned
        _LOG.debug("%s", note)
    return resolution.endpoint, None


def _pump(
    channel: paramiko.Channel, stdin: bytes | None, out: Capture, err: Capture, deadline: float
) -> bool:
    """Feed stdin and read both outputs until the command ends; True if the deadline passed."""
    pending: memoryview | None = memoryview(stdin or b"")
    fd = channel.fileno()  # readable while either output has data, and after EOF or close
    exited_at: float | None = None
    last_output = 0.0
    while True:
        if _drain(channel, out, err):
            last_output = time.monotonic()
        pending = _send(channel, pending)
        now = time.monotonic()
        if channel.closed or (channel.eof_received and not _readable(channel)):
            while _drain(channel, out, err):
                pass  # a closed channel may still hold buffered output
            return not channel.status_event.wait(max(deadline - now, 0.0))
        if now >= deadline:
            return True
        if exited_at is None and channel.status_event.is_set():
            exited_at = last_output = now
        if exited_at is not None and now - last_output > EXIT_DRAIN_IDLE:
            _LOG.debug("output still open after the command exited; not waiting for it")
            return False
        wait = _POLL_SENDING if pending else POLL
        select.select([fd], [], [], min(wait, deadline - now))


def _readable(channel: paramiko.Channel) -> bool:
    return channel.recv_ready() or channel.recv_stderr_ready()


def _drain(channel: paramiko.Channel, out: Capture, err: Capture) -> bool:
    """Read what is buffered on both outputs (one chunk each, so neither starves)."""
    got = False
    if channel.recv_ready():
        out.feed(channel.recv(READ_SIZE))
        got = True
    if channel.recv_stderr_ready():
        err.feed(channel.recv_stderr(READ_SIZE))
        got = True
    return got


def _send(channel: paramiko.Channel, pending: memoryview | None) -> memoryview | None:
    """Send as much stdin as the window allows; close stdin (EOF) once all is sent."""
    if pending is None:
        return None
    try:
        while pending and channel.send_ready() and not channel.closed:
            sent = channel.send(bytes(pending[:_SEND_SIZE]))
            if sent == 0:
                return None  # the channel is closing: nobody reads the rest
            pending = pending[sent:]
        if channel.closed:
            return None
        if not pending:
            channel.shutdown_write()
            return None
    except OSError:
        return None  # the command exited without reading all of its input
    return pending
