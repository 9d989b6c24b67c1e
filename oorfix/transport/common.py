"""What the local and SSH transports share: the client-side deadline and the result of a run.

Both transports run ``shell.wrap``-ped commands, so the host's own ``timeout`` ends a command
at ``timeout + kill_grace``; ``CLIENT_MARGIN`` later the client stops waiting whatever the host
does (docs/pitfalls.md §4, 6). Both turn what they read into a ``CommandResult`` the same way here.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field
from datetime import datetime

from oorfix.errors import ControllerError
from oorfix.redact import Command
from oorfix.results import CommandResult, utcnow
from oorfix.transport.base import ConnectOptions
from oorfix.transport.capture import Capture
from oorfix.transport.shell import Become, is_timeout_status, wrap

# Errors that say this machine ran short, not that the host is unreachable.
LOCAL_SHORTAGES = {
    errno.EMFILE: "the controller has too many open files (raise `ulimit -n` or lower --forks)",
    errno.ENFILE: "the controller's system has too many open files",
    errno.ENOMEM: "the controller is out of memory",
    errno.ENOBUFS: "the controller is out of network buffers",
}


def raise_local_shortage(host: str, exc: OSError) -> None:
    """Raise ControllerError when ``exc`` says this machine ran short; else return."""
    if exc.errno in LOCAL_SHORTAGES:
        raise ControllerError(f"{host}: {LOCAL_SHORTAGES[exc.errno]}") from exc


# Seconds past timeout + kill_grace before the client stops waiting for the host's `timeout`.
CLIENT_MARGIN = 2.0
# After the command exits, how long to wait for output that never ends (a background child
# holding stdout open) before returning the result anyway.
EXIT_DRAIN_IDLE = 1.0
READ_SIZE = 64 * 1024
POLL = 0.1


def captures(options: ConnectOptions) -> tuple[Capture, Capture]:
    """Empty stdout and stderr captures bounded as ``options`` says."""
    head, tail = options.head_bytes, options.tail_bytes
    return Capture(head, tail), Capture(head, tail)


@dataclass(frozen=True)
class Attempt:
    """One run of one command, from the moment it starts: its deadline and its result."""

    command: Command
    timeout: float
    kill_grace: float
    started: datetime = field(default_factory=utcnow)
    start: float = field(default_factory=time.monotonic)

    def command_line(self, become: Become | None) -> str:
        """What the host's login shell runs: the command wrapped as ``shell.wrap`` says."""
        return wrap(
            self.command.text,
            timeout=self.timeout,
            kill_grace=self.kill_grace,
            become=become,
            limits_itself=self.command.limits_itself,
        )

    def stdin(self, become: Become | None) -> bytes | None:
        """The bytes the command reads, after the become password if there is one."""
        return self.command.stdin if become is None else become.stdin(self.command.stdin)

    @property
    def deadline(self) -> float:
        """The monotonic time when the client stops waiting for the command."""
        return self.start + self.timeout + self.kill_grace + CLIENT_MARGIN

    def result(
        self, rc: int | None, stdout: Capture, stderr: Capture, *, expired: bool
    ) -> CommandResult:
        """The CommandResult; timed out when the client gave up (``expired``) or the host's
        ``timeout`` stopped the command."""
        elapsed = time.monotonic() - self.start
        return CommandResult(
            command=str(self.command),
            rc=rc,
            stdout=stdout.output(),
            stderr=stderr.output(),
            started=self.started,
            ended=utcnow(),
            timed_out=expired or is_timeout_status(rc, elapsed=elapsed, timeout=self.timeout),
        )
