"""What an SSH login rides on and what it offers: a direct socket, a ProxyCommand, the keys.

Shared by the hosts (``oorfix.transport.ssh``) and their jump hosts (``oorfix.transport.jump``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import subprocess
import tempfile
import threading
from typing import IO, Any

import paramiko

from oorfix.transport.base import ConnectOptions
from oorfix.transport.sshconfig import Endpoint

_LOG = logging.getLogger(__name__)
_CLOSE_JOIN = 2.0
_EXIT_WAIT = 1.0  # how long a ProxyCommand that closed its output gets to report its status
_STDERR_SHOWN = 300  # characters of a failed ProxyCommand's stderr put in the message


# Linux only; elsewhere the socket acknowledges as the system does.
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class QuickAckSocket(socket.socket):
    """A TCP socket that acknowledges what it reads at once.

    sshd leaves Nagle's algorithm on for commands run without a terminal, so a small reply
    written while an earlier one is unacknowledged waits for our ACK, which the kernel holds
    back for up to 40 ms (delayed ACK) once the connection looks interactive. Right after
    the login, sshd's unasked ``hostkeys-00`` message and the reply to our first session
    request meet exactly so: each host's first command came 40 ms late. TCP_QUICKACK does
    not last (sending data turns delayed ACKs back on), so it is set again after each read.
    """

    # Only `recv`: paramiko reads with nothing else (recv_into and makefile are not covered).
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Read, then acknowledge at once."""
        data = super().recv(bufsize, flags)
        if _QUICKACK is not None:
            with contextlib.suppress(OSError):  # the read stands; only the ACK comes later
                self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return data


def direct_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to ``address:port``, without Nagle's delay, acknowledging at once."""
    plain = socket.create_connection((address, port), timeout=timeout)
    try:
        # Without it each exec waits on delayed ACKs: ~50 ms instead of ~9 ms per command.
        plain.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = QuickAckSocket(plain.family, plain.type, plain.proto, fileno=plain.fileno())
    except BaseException:
        plain.close()
        raise
    plain.detach()  # the descriptor is the new socket's now
    try:
        sock.settimeout(timeout)  # the descriptor is non-blocking for it: the new object must know
    except BaseException:
        sock.close()
        raise
    return sock


def connect_timeout(endpoint: Endpoint, options: ConnectOptions) -> float:
    """The endpoint's ConnectTimeout, else the run's ``--connect-timeout``."""
    return endpoint.connect_timeout or options.connect_timeout


def login_args(endpoint: Endpoint, options: ConnectOptions) -> dict[str, Any]:
    """SSHClient.connect's user, keys and time limits for ``endpoint`` (not its socket)."""
    timeout = connect_timeout(endpoint, options)
    keys = [str(path) for path in endpoint.identity_files]
    return {
        "username": endpoint.user,
        # Key files first, then the agent's keys unless IdentitiesOnly (paramiko's order);
        # paramiko's default key files only when none is named, as ssh does.
        "key_filename": keys or None,
        "look_for_keys": not keys,
        "allow_agent": not endpoint.identities_only,
        "timeout": timeout,
        "banner_timeout": endpoint.connect_timeout or options.banner_timeout,
        "auth_timeout": options.auth_timeout,
        "channel_timeout": options.connect_timeout,
    }


def keep_alive(client: paramiko.SSHClient, endpoint: Endpoint) -> None:
    """ServerAliveInterval as paramiko's keepalive (paramiko has no ServerAliveCountMax)."""
    transport = client.get_transport()
    if endpoint.server_alive_interval and transport is not None:
        transport.set_keepalive(max(1, int(endpoint.server_alive_interval)))


def close_client(client: paramiko.SSHClient) -> None:
    """Close a client whatever state it is in, and wait for its transport thread."""
    transport = client.get_transport()
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket):
        # paramiko's reader notices a close only at its next 0.1 s socket timeout, which the
        # join below would wait for (50 ms a host on average); a shutdown wakes it at once.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    try:
        client.close()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        _LOG.debug("ignored while closing: %r", exc)
    if transport is not None and transport is not threading.current_thread():
        transport.join(_CLOSE_JOIN)


def describe_failure(
    exc: BaseException, address: str, port: int, timeout: float, banner: float | None = None
) -> str:
    """A one-line account of a failure to reach or log in to ``address:port`` (``timeout``
    for the connection, ``banner`` for the SSH banner: the same when not given)."""
    where = f"{address}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {address}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} within {timeout:g}s"
    if isinstance(exc, paramiko.SSHException) and "protocol banner" in str(exc):
        return f"no SSH banner from {where} within {banner or timeout:g}s"
    if isinstance(exc, EOFError):
        return f"{where} closed the connection"
    return f"{where}: {exc or type(exc).__name__}"


class ProxyCommandExited(paramiko.ProxyCommandFailure):
    """A ProxyCommand ended (or could not be written to); says how, with its stderr."""

    def __str__(self) -> str:
        return f"ProxyCommand {self.command!r} {self.error}"


class ProxySocket(paramiko.ProxyCommand):
    """paramiko's ProxyCommand, run as OpenSSH runs one, and fit for a long run.

    paramiko's runs the command without a shell (shlex-split), pipes its stderr without
    reading it (a chatty command blocks), spins until its deadline when the command ends, and
    never reaps it. This one runs ``/bin/sh -c 'exec COMMAND'``, keeps stderr in a file for
    the error message, reports the end of the command as ProxyCommandExited (with its status
    and stderr), and stops and reaps it on close. Its own session keeps a Ctrl-C meant for
    oorfix (which finishes the running steps) from cutting every proxied connection at once.
    """

    def __init__(self, command: str) -> None:  # paramiko's __init__ would start the process
        self.command = command
        self.cmd = ["/bin/sh", "-c", f"exec {command}"]
        # Lives as long as the command; close() closes it.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._lock = threading.Lock()
        self._closed_once = False
        try:
            self.process = subprocess.Popen(
                self.cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                bufsize=0,
                start_new_session=True,
            )
        except BaseException:
            self._stderr.close()
            raise
        self.timeout: float | None = None

    def send(self, content: Any) -> int:
        """Write to the command's stdin."""
        assert self.process.stdin is not None
        try:
            return self.process.stdin.write(content) or 0
        except OSError as exc:
            raise self._ended(f"cannot be written to ({exc.strerror or exc})") from exc

    def recv(self, size: int) -> bytes:
        """Read what the command wrote; ``socket.timeout`` when nothing came in time."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], self.timeout)
        if not ready:
            raise TimeoutError(errno.ETIMEDOUT, "timed out")
        data = os.read(fd, size)
        if not data:
            raise self._ended("closed its output")
        return data

    def _ended(self, how: str) -> ProxyCommandExited:
        """Why the command cannot carry the connection any more."""
        try:
            status = self.process.wait(_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            return ProxyCommandExited(self.command, how)
        self._stderr.seek(0)
        said = self._stderr.read().decode("utf-8", "replace").strip()
        said = said[-_STDERR_SHOWN:].replace("\n", " / ")
        return ProxyCommandExited(
            self.command, f"exited with status {status}" + (f": {said}" if said else "")
        )

    def close(self) -> None:
        """Stop the command (TERM, then KILL) and release its pipes; once."""
        with self._lock:
            if self._closed_once:
                return
            self._closed_once = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_CLOSE_JOIN)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self._stderr):
            if pipe is not None:
                pipe.close()
