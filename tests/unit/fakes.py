"""A scripted fake transport that refuses any command it was not told about."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from oorfix.errors import ConnectError, ConnectionLost, ControllerError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import CommandResult, Output
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.pool import ConnectionPool
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import Gate, OpenGate
from oorfix.transport.shell import Become


@dataclass
class Reply:
    """What the fake host answers to one command."""

    rc: int | None = 0
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    lost: bool = False
    delay: float = 0.0  # seconds the command takes
    arrived: threading.Event | None = None  # set when the command arrives
    wait_for: threading.Event | None = None  # the reply waits for this (orders threads)


@dataclass
class Script:
    """Per host: ordered (regex, replies) rules; replies are used in turn, the last repeats."""

    rules: list[tuple[re.Pattern[str], list[Reply]]] = field(default_factory=list)
    unreachable: str | None = None
    shortage: str | None = None  # connect fails for want of a local resource (this machine)

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
    sent: list[tuple[str, str, bool]]  # (host, raw command text, privileged)
    connected: bool = False
    becomes: list[Become | None] = field(default_factory=list)

    def connect(self) -> None:
        if self.script.unreachable:
            raise ConnectError(self.name, self.script.unreachable)
        if self.script.shortage:
            raise ControllerError(f"{self.name}: {self.script.shortage}")
        self.connected = True

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        assert self.connected, "run() before connect()"
        self.sent.append((self.name, command.text, become is not None))
        self.becomes.append(become)
        for pattern, replies in self.script.rules:
            if pattern.search(command.text):
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if reply.arrived is not None:
                    reply.arrived.set()
                if reply.wait_for is not None:
                    assert reply.wait_for.wait(timeout=60), "the awaited event never came"
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


def make_engine(
    inventory: Inventory,
    pool: ConnectionPool,
    options: EngineOptions | None = None,
    gate: Gate | None = None,
) -> Engine:
    """An engine with no audit and, unless given, a gate that admits every fix."""
    parts = EngineParts(inventory, pool, gate or OpenGate(), NoAudit())
    return Engine(parts, options or EngineOptions())
