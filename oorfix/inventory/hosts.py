"""Inventory hosts and the connection settings read from their variables."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Ansible's connection variables and oorfix's short names for them, in order of preference.
# The short names carry an ``ssh_`` prefix because runbooks use plain ``port`` and ``user``
# for the application's own port and user; a clash would send SSH to the API's port.
ADDRESS_VARS = ("ansible_host", "ansible_ssh_host", "ssh_host")
PORT_VARS = ("ansible_port", "ansible_ssh_port", "ssh_port")
USER_VARS = ("ansible_user", "ansible_ssh_user", "ssh_user")
KEY_VARS = ("ansible_ssh_private_key_file", "ansible_private_key_file", "ssh_key_file")
CONNECTION_VARS = ("ansible_connection", "oorfix_connection")
CONNECTION_KINDS = ("ssh", "local")
# Ansible's extra ssh command-line arguments, in the order Ansible passes them to ssh.
SSH_ARGS_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")
SSH_CONFIG_VAR = "oorfix_ssh_config"  # this host's ssh_config file (like ssh -F)


def _ssh_args(variables: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The (variable, text) pairs of Ansible's extra ssh arguments; ValueError if unsplittable."""
    found = []
    for name in SSH_ARGS_VARS:
        value = variables.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string of ssh arguments")
        try:
            shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        found.append((name, str(value)))
    return tuple(found)


def _first(variables: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if variables.get(name) is not None:
            return variables[name]
    return None


@dataclass(frozen=True)
class HostConnection:
    """How to reach one host. ``kind`` is "ssh" or "local", or what the inventory says: a host
    with a connection oorfix does not speak (winrm, network_cli) loads like any other and is
    refused, as that host's result, only when a run opens it."""

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: Path | None = None
    kind: str = "ssh"
    # False when no variable set the port, so an ssh_config Port may apply (oorfix.transport.
    # sshconfig); True for a port given in code, as the lab and tests give theirs.
    port_given: bool = True
    ssh_args: tuple[tuple[str, str], ...] = ()  # (variable, text): ansible_ssh_*_args
    ssh_config: Path | None = None  # oorfix_ssh_config

    @classmethod
    def from_vars(cls, name: str, variables: Mapping[str, Any]) -> HostConnection:
        """Read the connection settings of host ``name`` from its merged variables."""
        kind = str(_first(variables, CONNECTION_VARS) or "ssh")
        if kind == "paramiko":
            kind = "ssh"
        port = _first(variables, PORT_VARS)
        try:
            port_number = int(port) if port is not None else 22
        except (TypeError, ValueError):
            raise ValueError(f"port {port!r} is not a number") from None
        if not 0 < port_number < 65536:
            raise ValueError(f"port {port_number} is out of range")
        key = _first(variables, KEY_VARS)
        user = _first(variables, USER_VARS)
        config = variables.get(SSH_CONFIG_VAR)
        return cls(
            name=name,
            address=str(_first(variables, ADDRESS_VARS) or name),
            port=port_number,
            user=str(user) if user is not None else None,
            key_file=Path(str(key)).expanduser() if key else None,
            kind=kind,
            port_given=port is not None,
            ssh_args=_ssh_args(variables),
            ssh_config=Path(str(config)).expanduser() if config else None,
        )


@dataclass(frozen=True)
class Host:
    """One inventory host with its groups and merged variables (group < host)."""

    name: str
    vars: Mapping[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()

    def connection(self) -> HostConnection:
        """The host's connection settings; raises ValueError on a bad setting."""
        return HostConnection.from_vars(self.name, self.vars)
