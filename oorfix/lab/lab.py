"""The lab: real sshd hosts on loopback addresses, each with its own state and services.

One sshd serves every lab address; a ``Match LocalAddress`` block per address sets the
host's ``OORFIX_LAB_STATE`` and puts the lab's ``systemctl``/``journalctl`` shims first on
PATH, so a runbook that runs ``systemctl restart pg-api`` over SSH reaches that host's
service and nothing else. Processes are tracked by pid file, never found by name.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from oorfix.hosts import HostConnection
from oorfix.lab import services
from oorfix.lab.sshd import SshdServer

API_PORT = 8080
# sshd listens on at most 16 sockets (MAX_LISTEN_SOCKS); larger labs get more sshds.
SSHD_MAX_ADDRESSES = 16
SHIMS = ("systemctl", "journalctl")


@dataclass(frozen=True)
class LabHost:
    """One lab host: its name, address, inventory groups and state directory."""

    name: str
    address: str
    groups: tuple[str, ...]
    state: Path
    services: tuple[str, ...] = ()
    vars: dict[str, object] = field(default_factory=dict)


def payment_hosts(directory: Path, count: int = 3, base: str = "127.0.10.") -> list[LabHost]:
    """``count`` payment API hosts, pg-api-1.., on consecutive loopback addresses."""
    return [
        LabHost(
            name=f"pg-api-{n}",
            address=f"{base}{n + 1}",
            groups=("payment_api",),
            state=directory / "hosts" / f"pg-api-{n}",
            services=("pg-api",),
            vars={"api_host": f"{base}{n + 1}", "port": API_PORT},
        )
        for n in range(1, count + 1)
    ]


class Lab:
    """Lab hosts behind real sshds; ``up`` starts everything, ``down`` stops it all."""

    def __init__(self, directory: Path, hosts: Sequence[LabHost]):
        self.directory = directory.resolve()
        self.hosts = {h.name: h for h in hosts}
        self.bin = self.directory / "bin"
        self.known_hosts = self.directory / "known_hosts"
        self.servers: list[SshdServer] = []
        self._server_of: dict[str, SshdServer] = {}
        ordered = list(hosts)
        for i in range(0, len(ordered), SSHD_MAX_ADDRESSES):
            chunk = ordered[i : i + SSHD_MAX_ADDRESSES]
            server = SshdServer(
                self.directory / f"sshd-{len(self.servers)}",
                [h.address for h in chunk],
                environments={h.address: self._environment(h) for h in chunk},
            )
            self.servers.append(server)
            self._server_of.update({h.name: server for h in chunk})

    @property
    def sshd(self) -> SshdServer:
        """The sshd of the first hosts: the only one in a lab of up to 16 hosts."""
        return self.servers[0]

    def server(self, name: str) -> SshdServer:
        """The sshd that plays host ``name``."""
        return self._server_of[name]

    def _environment(self, host: LabHost) -> dict[str, str]:
        path = f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        return {"OORFIX_LAB_STATE": str(host.state.resolve()), "PATH": path}

    def up(self) -> Lab:
        """Create shims, state and units, start sshd and every host's services."""
        self._write_shims()
        for host in self.hosts.values():
            self._prepare(host)
        for server in self.servers:
            server.start()
        self.known_hosts.write_text("".join(s.known_hosts.read_text() for s in self.servers))
        for host in self.hosts.values():
            for name in host.services:
                services.start(services.Unit(host.state, name))
        return self

    def down(self) -> None:
        """Stop every service (by pid) and sshd."""
        for host in self.hosts.values():
            for name in host.services:
                services.stop(services.Unit(host.state, name))
        for server in self.servers:
            server.stop()

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def _write_shims(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        python = shlex.quote(sys.executable)
        for tool in SHIMS:
            shim = self.bin / tool
            shim.write_text(f'#!/bin/sh\nexec {python} -m oorfix.lab.services {tool} "$@"\n')
            shim.chmod(0o755)

    def _prepare(self, host: LabHost) -> None:
        host.state.mkdir(parents=True, exist_ok=True)
        if "pg-api" in host.services:
            argv = [sys.executable, "-m", "oorfix.lab.payment_api"]
            argv += ["--bind", host.address, "--port", str(API_PORT)]
            services.define(host.state, "pg-api", argv)

    def connection(self, name: str) -> HostConnection:
        """How to reach lab host ``name`` over SSH."""
        server = self._server_of[name]
        return HostConnection(
            name=name,
            address=self.hosts[name].address,
            port=server.port,
            user=server.user,
            key_file=server.client_key,
        )

    def inventory(self) -> dict[str, object]:
        """An Ansible YAML inventory (as data) for the lab hosts."""
        groups: dict[str, dict[str, object]] = {}
        for host in self.hosts.values():
            conn = self.connection(host.name)
            entry = {
                "ansible_host": conn.address,
                "ansible_port": conn.port,
                "ansible_user": conn.user,
                "ansible_ssh_private_key_file": str(conn.key_file),
                **host.vars,
            }
            for group in host.groups:
                groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = entry  # type: ignore[index]
        return {"all": {"children": groups}}

    def write_inventory(self, path: Path) -> Path:
        """Write the lab inventory as YAML (JSON is valid YAML) and return its path."""
        path.write_text(json.dumps(self.inventory(), indent=2) + "\n")
        return path
