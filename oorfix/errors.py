"""The oorfix exception tree.

    OorfixError                      anything oorfix raises on purpose
    ├── InputError                   bad user input; CLI exit code 2, never a traceback
    │   ├── YamlError                unreadable YAML: syntax, duplicate keys, tags, size, aliases
    │   ├── RunbookError             a runbook that does not fit the schema
    │   ├── InventoryError           an inventory that cannot be read or resolved
    │   ├── SshConfigError           an ssh_config file (or a value in it) that cannot be used
    │   └── TemplateError            a template that does not parse or renders an undefined name
    ├── ControllerError              this machine ran out of something (file descriptors,
    │                                memory); never blamed on a host
    └── TransportError               trouble talking to one host; becomes that host's result
        ├── ConnectError             the host could not be reached or refused us (unreachable)
        │   └── HostKeyError         unknown or changed host key; refused before any command
        └── ConnectionLost           an open connection dropped while a command ran

A remote command that exits non-zero is not an error: it is data in a CommandResult. A
remote command that times out is also data (``CommandResult.timed_out``), because the
engine, not the transport, decides what an unknown outcome means.
"""

from __future__ import annotations

from pathlib import Path


class OorfixError(Exception):
    """Base class of every error oorfix raises on purpose."""


class InputError(OorfixError):
    """Bad input, located as ``path:line: message`` when the location is known."""

    def __init__(self, message: str, path: Path | str | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.location_message())

    def location_message(self) -> str:
        """The message prefixed with ``path:line:`` as far as they are known."""
        if self.path is None:
            return self.message
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}: {self.message}"


class YamlError(InputError):
    """A YAML file that cannot be loaded safely."""


class RunbookError(InputError):
    """A runbook that does not fit the runbook schema."""


class InventoryError(InputError):
    """An inventory that cannot be read or resolved."""


class SshConfigError(InputError):
    """An ssh_config file that cannot be read, or a value in it that cannot be used."""


class TemplateError(InputError):
    """A template with a syntax error or an undefined variable."""


class InputErrors(InputError):
    """Several input errors found in one pass, reported together."""

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__("\n".join(e.location_message() for e in errors))


class ControllerError(OorfixError):
    """The controller (this machine) ran out of a local resource; the host is not at fault."""


class StateUnavailable(ControllerError):
    """The shared state (locks, budgets, audit, history) cannot be reached or used right now.

    Fails closed: no fix starts without its lock, budget and audit; detection goes on.
    """


class TransportError(OorfixError):
    """Trouble talking to one host."""

    def __init__(self, host: str, message: str):
        self.host = host
        self.message = message
        super().__init__(f"{host}: {message}")


class ConnectError(TransportError):
    """The host could not be reached, or refused the connection or our credentials."""


class HostKeyError(ConnectError):
    """The host's key is unknown or has changed; nothing was sent to the host."""


class ConnectionLost(TransportError):
    """An open connection dropped while a command ran; its effect is unknown."""
