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

from oorfix.lab import services
from oorfix.lab.sshd import SshdServer

API_PORT = 8080
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
    """Lab hosts behind one real sshd; ``up`` starts everything, ``down`` stops it all."""

    def __init__(self, directory: Path, hosts: Sequence[LabHost]):
        self.directory = directory.resolve()
        self.hosts = {h.name: h for h in hosts}
        self.bin = self.directory / "bin"
        self.sshd = SshdServer(
            self.directory / "sshd",
            [h.address for h in hosts],
            environments={h.address: self._environment(h) for h in hosts},
        )

    def _environment(self, host: LabHost) -> dict[str, str]:
        path = f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        return {"OORFIX_LAB_STATE": str(host.state.resolve()), "PATH": path}

    def up(self) -> Lab:
        """Create shims, state and units, start sshd and every host's services."""
        self._write_shims()
        for host in self.hosts.values():
            self._prepare(host)
        self.sshd.start()
        for host in self.hosts.values():
            for name in host.services:
                services.start(services.Unit(host.state, name))
        return self

    def down(self) -> None:
        """Stop every service (by pid) and sshd."""
        for host in self.hosts.values():
            for name in host.services:
                services.stop(services.Unit(host.state, name))
        self.sshd.stop()

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

    def inventory(self) -> dict[str, object]:
        """An Ansible YAML inventory (as data) for the lab hosts."""
        groups: dict[str, dict[str, object]] = {}
        for host in self.hosts.values():
            entry = {
                "ansible_host": host.address,
                "ansible_port": self.sshd.port,
                "ansible_user": self.sshd.user,
                "ansible_ssh_private_key_file": str(self.sshd.client_key),
                **host.vars,
            }
            for group in host.groups:
                groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = entry  # type: ignore[index]
        return {"all": {"children": groups}}

    def write_inventory(self, path: Path) -> Path:
        """Write the lab inventory as YAML (JSON is valid YAML) and return its path."""
        path.write_text(json.dumps(self.inventory(), indent=2) + "\n")
        return path
