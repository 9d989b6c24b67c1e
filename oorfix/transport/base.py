"""The Transport seam: what the engine needs from a connection to one host."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from oorfix.redact import Command
from oorfix.results import CommandResult
from oorfix.transport.shell import Become

DEFAULT_COMMAND_TIMEOUT = 60.0
# Bytes kept from the start and from the end of each output stream; the rest is counted.
DEFAULT_HEAD_BYTES = 64 * 1024
DEFAULT_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class ConnectOptions:
    """Run-wide connection settings shared by every host."""

    known_hosts: Path | None = None  # None: the user's ~/.ssh/known_hosts
    # Read too (never written), as OpenSSH's GlobalKnownHostsFile; None: not read.
    global_known_hosts: Path | None = Path("/etc/ssh/ssh_known_hosts")
    accept_new_host_keys: bool = False
    ssh_config: Path | None = None  # like ssh -F; None: ~/.ssh/config when it exists
    connect_timeout: float = 10.0
    banner_timeout: float = 10.0
    auth_timeout: float = 10.0
    kill_grace: float = 5.0  # seconds between TERM and KILL for a timed-out command
    head_bytes: int = DEFAULT_HEAD_BYTES
    tail_bytes: int = DEFAULT_TAIL_BYTES


class Transport(Protocol):
    """One open connection to one host, used for every command of a run."""

    name: str

    def connect(self) -> None:
        """Open the connection; raises ConnectError (HostKeyError for a refused key)."""
        ...

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        """Run a shell command; non-zero exit and timeout are data; a lost link raises."""
        ...

    def close(self) -> None:
        """Close the connection and release every thread and socket it holds."""
        ...
