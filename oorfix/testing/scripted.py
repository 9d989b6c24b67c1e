"""The scripted transport: hosts that answer as a scenario says, and refuse anything else.

It implements the Transport protocol, so a scenario runs through the real engine, planner,
judging and gates. A command no rule answers is refused (recorded, and the step ends in an
error naming it), so a runbook change that sends something new cannot pass unnoticed.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

from oorfix.errors import ConnectError, ConnectionLost, ControllerError
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import CommandResult, Output
from oorfix.testing.models import Reply, Rule
from oorfix.transport.shell import Become

TIMED_OUT_RC = 124  # what `timeout` exits with


@dataclass(frozen=True)
class Sent:
    """One command a host received."""

    host: str
    label: str | None
    text: str  # as shown: secrets masked
    sudo: bool  # whether it ran privileged (sudo or su)


@dataclass
class Script:
    """A scenario's rules and what they have answered so far, on each host."""

    rules: list[Rule]
    unreachable: frozenset[str] = frozenset()
    sent: list[Sent] = field(default_factory=list)
    refused: list[Sent] = field(default_factory=list)
    # Replies in turn are counted per rule and host: hosts run in parallel, and each host's
    # sequence must not depend on which of them asked first.
    _used: dict[tuple[int, str], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, host: str, command: Command, sudo: bool) -> Reply | None:
        """The reply of the first rule that matches, or None (and the command is refused)."""
        sent = Sent(host, command.label, str(command), sudo)
        with self._lock:
            self.sent.append(sent)
            for index, rule in enumerate(self.rules):
                if _matches(rule, host, command):
                    replies = rule.replies()
                    used = self._used.get((index, host), 0)
                    self._used[(index, host)] = used + 1
                    return replies[min(used, len(replies) - 1)]
            self.refused.append(sent)
            return None

    def transport(self, host: Host) -> ScriptedTransport:
        """The transport for one host."""
        return ScriptedTransport(host.name, self)


def _matches(rule: Rule, host: str, command: Command) -> bool:
    if rule.host is not None and rule.host != host:
        return False
    if rule.step is not None and rule.step != command.label:
        return False
    return rule.command is None or re.search(rule.command, command.text) is not None


@dataclass
class ScriptedTransport:
    """One host of a scenario."""

    name: str
    script: Script
    connected: bool = False

    def connect(self) -> None:
        """Connect, unless the scenario says the host is unreachable."""
        if self.name in self.script.unreachable:
            raise ConnectError(self.name, "connection refused (scenario: unreachable)")
        self.connected = True

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        """Answer as scripted; an unscripted command is refused."""
        reply = self.script.answer(self.name, command, become is not None)
        if reply is None:
            label = f" (step {command.label!r})" if command.label else ""
            raise ControllerError(f"{self.name}: unscripted command{label}: {command}")
        if reply.lost:
            raise ConnectionLost(self.name, "connection lost (scenario)")
        return CommandResult(
            command=str(command),
            rc=TIMED_OUT_RC if reply.timeout else reply.rc,
            stdout=Output(reply.stdout, len(reply.stdout.encode())),
            stderr=Output(reply.stderr, len(reply.stderr.encode())),
            timed_out=reply.timeout,
        )

    def close(self) -> None:
        """Close (nothing to release)."""
        self.connected = False
