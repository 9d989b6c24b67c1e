"""Run commands on this machine, with the same wrapping and limits as over SSH."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field

from oorfix.inventory.hosts import HostConnection
from oorfix.redact import Command
from oorfix.results import CommandResult
from oorfix.transport.base import ConnectOptions
from oorfix.transport.capture import Capture
from oorfix.transport.common import EXIT_DRAIN_IDLE, POLL, READ_SIZE, Attempt, captures
from oorfix.transport.shell import Become, privileged

_LOG = logging.getLogger(__name__)


@dataclass
class _Streams:
    """The pipes of one running command and what was read from them."""

    proc: subprocess.Popen[bytes]
    stdout: Capture
    stderr: Capture
    stdin: memoryview = field(default_factory=lambda: memoryview(b""))


class LocalTransport:
    """Runs commands with /bin/sh on this machine, as the current user."""

    def __init__(self, conn: HostConnection, options: ConnectOptions) -> None:
        self.name = conn.name
        self.conn = conn
        self.options = options

    def connect(self) -> None:
        """Nothing to open; present for the Transport protocol."""

    def close(self) -> None:
        """Nothing to release; every run cleans up after itself."""

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        """Run a shell command; non-zero exit and timeout are data."""
        grace = self.options.kill_grace
        become = privileged(become, getpass.getuser())
        attempt = Attempt(command, timeout, grace)
        streams = self._spawn(attempt.command_line(become), attempt.stdin(become))
        try:
            expired = _pump(streams, attempt.deadline)
            rc = None if expired else _returncode(streams.proc, attempt.deadline)
        finally:
            _reap(streams)
        # No status by the deadline (rc None) means the client gave up waiting: a timeout.
        return attempt.result(rc, streams.stdout, streams.stderr, expired=rc is None)

    def _spawn(self, wrapped: str, stdin: bytes | None) -> _Streams:
        # `exec` so `timeout` is the process we started, and its group is the one we kill.
        proc = subprocess.Popen(
            ["/bin/sh", "-c", "exec " + wrapped],
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        streams = _Streams(proc, *captures(self.options))
        if stdin is not None:
            streams.stdin = memoryview(stdin)
        return streams


def _pump(streams: _Streams, deadline: float) -> bool:
    """Move bytes between the pipes until both outputs end; True if the deadline passed."""
    with selectors.DefaultSelector() as selector:
        _register(selector, streams)
        exited_at: float | None = None
        last_output = 0.0
        while selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return True
            if exited_at is None and streams.proc.poll() is not None:
                exited_at = last_output = now
            if exited_at is not None and now - last_output > EXIT_DRAIN_IDLE:
                _LOG.debug("output still open after the command exited; not waiting for it")
                return False
            events = selector.select(min(deadline - now, POLL))
            if any(_transfer(selector, key, streams) for key, _ in events):
                last_output = time.monotonic()
    return False


def _register(selector: selectors.BaseSelector, streams: _Streams) -> None:
    proc = streams.proc
    assert proc.stdout is not None
    assert proc.stderr is not None
    selector.register(proc.stdout, selectors.EVENT_READ, streams.stdout)
    selector.register(proc.stderr, selectors.EVENT_READ, streams.stderr)
    if proc.stdin is None:
        return
    if streams.stdin:
        os.set_blocking(proc.stdin.fileno(), False)
        selector.register(proc.stdin, selectors.EVENT_WRITE, None)
    else:
        proc.stdin.close()  # empty stdin: the command reads EOF at once


def _transfer(
    selector: selectors.BaseSelector, key: selectors.SelectorKey, streams: _Streams
) -> bool:
    """Serve one ready pipe; True if output arrived."""
    if key.data is None:
        _write_stdin(selector, streams)
        return False
    data = os.read(key.fd, READ_SIZE)
    if not data:
        selector.unregister(key.fileobj)
        return False
    key.data.feed(data)
    return True


def _write_stdin(selector: selectors.BaseSelector, streams: _Streams) -> None:
    pipe = streams.proc.stdin
    assert pipe is not None
    try:
        written = os.write(pipe.fileno(), streams.stdin[:READ_SIZE])
    except BlockingIOError:
        return
    except BrokenPipeError:
        written = len(streams.stdin)  # the command stopped reading: the rest is moot
    streams.stdin = streams.stdin[written:]
    if not streams.stdin:
        selector.unregister(pipe)
        pipe.close()


def _returncode(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """The exit status, in shell terms (128 + N when killed by signal N); None if it hangs."""
    try:
        rc = proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        return None
    return 128 - rc if rc < 0 else rc


def _reap(streams: _Streams) -> None:
    """Kill whatever is left of the command's process group and close its pipes."""
    proc = streams.proc
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None and not pipe.closed:
            pipe.close()
