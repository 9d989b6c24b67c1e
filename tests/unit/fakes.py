"""A scripted fake transport that refuses any command it was not told about."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from oorfix.errors import ConnectError, ConnectionLost
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import CommandResult, Output


@dataclass
class Reply:
    """What the fake host answers to one command."""

    rc: int | None = 0
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    lost: bool = False
    delay: float = 0.0  # seconds the command takes


@dataclass
class Script:
    """Per host: ordered (regex, replies) rules; replies are used in turn, the last repeats."""

    rules: list[tuple[re.Pattern[str], list[Reply]]] = field(default_factory=list)
    unreachable: str | None = None

    def on(self, pattern: str, *replies: Reply) -> Script:
        """Answer commands matching ``pattern`` with ``replies`` in turn."""
        self.rules.append((re.compile(pattern), list(replies) or [Reply()]))
        return self


class UnscriptedCommand(AssertionError):
    """The code under test sent a command the test did not expect."""


@dataclass
class FakeTransport:
    """Implements the Transport protocol from a Script; records every command."""

    name: str
    script: Script
    sent: list[tuple[str, str, bool]]  # (host, raw command text, sudo)
    connected: bool = False

    def connect(self) -> None:
        if self.script.unreachable:
            raise ConnectError(self.name, self.script.unreachable)
        self.connected = True

    def run(self, command: Command, *, timeout: float, sudo: bool = False) -> CommandResult:
        assert self.connected, "run() before connect()"
        self.sent.append((self.name, command.text, sudo))
        for pattern, replies in self.script.rules:
            if pattern.search(command.text):
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                time.sleep(reply.delay)
                if reply.lost:
                    raise ConnectionLost(self.name, "connection reset")
                return CommandResult(
                    command=str(command),
                    rc=reply.rc,
                    stdout=Output(reply.stdout, len(reply.stdout.encode())),
                    stderr=Output(reply.stderr, len(reply.stderr.encode())),
                    timed_out=reply.timed_out,
                )
        raise UnscriptedCommand(f"{self.name}: unscripted command {command.text!r}")

    def close(self) -> None:
        self.connected = False


def fake_factory(
    scripts: dict[str, Script], sent: list[tuple[str, str, bool]]
) -> Callable[[Host], FakeTransport]:
    """A transport factory for ConnectionPool serving the given scripts by host name."""

    def factory(host: Host) -> FakeTransport:
        return FakeTransport(host.name, scripts.setdefault(host.name, Script()), sent)

    return factory
