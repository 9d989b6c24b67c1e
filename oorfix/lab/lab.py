"""The lab: real sshd hosts on loopback addresses, each with its own state and services.

The sshds listen on the hosts' loopback addresses; a ``Match LocalAddress`` block per
address sets the host's environment (``OORFIX_LAB_STATE``, ``OORFIX_LAB_DIR``, and PATH with
the lab's tool shims first) and, when the lab runs as root with network namespaces, a
``ForceCommand`` that runs the session's command inside the host's namespace. A runbook that
runs ``systemctl restart pg-api`` or ``ip route replace ...`` over SSH therefore reaches that
host's service and routing table and nothing else. Processes are tracked by pid file and
never found by name. ``lab.json`` in the lab directory describes a running lab, so ``oorfix
lab status|inject|down`` work from another process.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oorfix.inventory.hosts import HostConnection
from oorfix.lab import hardware, network, services
from oorfix.lab.balancer import write_pool
from oorfix.lab.sshd import SshdError, SshdServer
from oorfix.lab.topology import (
    API_PORT,
    CLEARING_ADDRESS,
    CLEARING_NET,
    CLEARING_PORT,
    GATEWAY_A,
    GATEWAY_B,
    MGMT_BASE,
    VIP,
    LabHost,
)

# sshd listens on at most 16 sockets (MAX_LISTEN_SOCKS); larger labs get more sshds.
SSHD_MAX_ADDRESSES = 16
LB_PORT_NAMESPACED = 80
LB_PORT_LOOPBACK = 8088
STATE_FILE = "lab.json"
SHIMS = {
    "systemctl": "oorfix.lab.services systemctl",
    "journalctl": "oorfix.lab.services journalctl",
    "lbctl": "oorfix.lab.balancer lbctl",
    **{tool: f"oorfix.lab.tools {tool}" for tool in hardware.TOOLS},
}


class LabError(RuntimeError):
    """The lab cannot do what was asked (not running, unknown host, needs root)."""


def payment_hosts(directory: Path, count: int = 3, base: str = MGMT_BASE) -> list[LabHost]:
    """``count`` payment API hosts, pg-api-1.., on consecutive loopback addresses."""
    return [
        LabHost(
            name=f"pg-api-{n}",
            role="api",
            address=f"{base}{n + 1}",
            groups=("payment_api",),
            state=directory / "hosts" / f"pg-api-{n}",
            rack=f"r{n}",
            services=("pg-api",),
        )
        for n in range(1, count + 1)
    ]


class Lab:
    """Lab hosts behind real sshds; ``up`` starts everything, ``down`` stops it all."""

    def __init__(self, directory: Path, hosts: Sequence[LabHost], namespaced: bool = False):
        if namespaced and not network.available():
            raise LabError("network namespaces need root and iproute2 (`ip netns`)")
        self.directory = directory.resolve()
        self.hosts = {h.name: h for h in hosts}
        self.namespaced = namespaced
        self.bin = self.directory / "bin"
        self.known_hosts = self.directory / "known_hosts"
        self.net = network.Network(self.directory, hosts) if namespaced else None
        # The lab UPS's monitor password: random per lab, so runbooks treat it as a secret.
        self.ups_password = secrets.token_hex(8)
        self.servers: list[SshdServer] = []
        self._server_of: dict[str, SshdServer] = {}
        self._make_servers(list(hosts))

    def _make_servers(self, hosts: list[LabHost]) -> None:
        enter = str(self.directory / "bin" / "lab-enter")
        for i in range(0, len(hosts), SSHD_MAX_ADDRESSES):
            chunk = hosts[i : i + SSHD_MAX_ADDRESSES]
            server = SshdServer(
                self.directory / f"sshd-{len(self.servers)}",
                [h.address for h in chunk],
                environments={h.address: self._environment(h) for h in chunk},
                force_commands={h.address: enter for h in chunk} if self.namespaced else {},
            )
            self.servers.append(server)
            self._server_of.update({h.name: server for h in chunk})

    def _environment(self, host: LabHost) -> dict[str, str]:
        path = f"{self.bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env = {
            "OORFIX_LAB_DIR": str(self.directory),
            "OORFIX_LAB_STATE": str(host.state.resolve()),
            "OORFIX_LAB_HOST": host.name,
            "PATH": path,
        }
        if self.namespaced:
            env["OORFIX_LAB_NETNS"] = host.netns
        return env

    @property
    def sshd(self) -> SshdServer:
        """The sshd of the first hosts: the only one in a lab of up to 16 hosts."""
        return self.servers[0]

    def server(self, name: str) -> SshdServer:
        """The sshd that plays host ``name``."""
        return self._server_of[name]

    def host(self, name: str) -> LabHost:
        """The lab host called ``name``; LabError for an unknown name."""
        if name not in self.hosts:
            raise LabError(f"no lab host {name!r} (hosts: {', '.join(self.hosts)})")
        return self.hosts[name]

    # -- lifecycle ---------------------------------------------------------------------------

    def up(self) -> Lab:
        """Create shims, state and units, the network, the sshds, and start every service."""
        if self.running():
            return self
        try:
            self._start()
        except (OSError, SshdError, network.NetworkError) as exc:
            self.down()  # a half-started lab leaves nothing behind
            raise LabError(f"the lab did not start: {exc}") from exc
        return self

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_shims()
        racks = sorted({h.rack for h in self.hosts.values()})
        hardware.init_lab(self.directory, racks)
        for host in self.hosts.values():
            self._prepare(host)
        if self.net is not None:
            self.net.up()
        for server in self.servers:
            server.start()
        self.known_hosts.write_text("".join(s.known_hosts.read_text() for s in self.servers))
        for host in self.hosts.values():
            for name in host.services:
                if not services.start(services.Unit(host.state, name)):
                    raise LabError(f"{name} did not start on {host.name}")
        self._save()

    def down(self) -> None:
        """Stop every service (by pid), the sshds and the network; forget the lab."""
        for host in self.hosts.values():
            for unit in _units(host):
                services.stop(unit)
        for server in self.servers:
            server.stop()
        if self.net is not None:
            self.net.down()
        (self.directory / STATE_FILE).unlink(missing_ok=True)

    def running(self) -> bool:
        """Whether this lab's sshds are up."""
        return any(s.running_pid() is not None for s in self.servers)

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- building ----------------------------------------------------------------------------

    def _write_shims(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        python = shlex.quote(sys.executable)
        for tool, module in SHIMS.items():
            shim = self.bin / tool
            shim.write_text(f'#!/bin/sh\nexec {python} -m {module} "$@"\n')
            shim.chmod(0o755)
        if self.namespaced:
            network.enter_script(self.bin / "lab-enter")

    def _prepare(self, host: LabHost) -> None:
        host.state.mkdir(parents=True, exist_ok=True)
        hardware.init_host(host.state, host.role, rack=host.rack)
        netns = host.netns if self.namespaced else None
        env = {"OORFIX_LAB_HOST": host.name, "OORFIX_LAB_DIR": str(self.directory)}
        address = host.data_address(self.namespaced)
        if "pg-api" in host.services:
            argv = [sys.executable, "-m", "oorfix.lab.payment_api", "--bind", address]
            services.define(host.state, "pg-api", [*argv, "--port", str(API_PORT)], env, netns)
        if "pg-lb" in host.services:
            self._prepare_balancer(host, env, netns)
        if "pg-db" in host.services:
            # The database stand-in: a listener with a health answer, like the clearing peer.
            argv = [sys.executable, "-m", "oorfix.lab.clearing", "--bind", address]
            services.define(host.state, "pg-db", [*argv, "--port", "5432"], env, netns)

    def _prepare_balancer(self, host: LabHost, env: dict[str, str], netns: str | None) -> None:
        backends = {
            h.name: f"{h.data_address(self.namespaced)}:{API_PORT}"
            for h in self.hosts.values()
            if "pg-api" in h.services
        }
        enabled = [h.name for h in self.hosts.values() if h.role == "api"]
        write_pool(host.state, backends, enabled)
        bind, port = self.vip()
        argv = [sys.executable, "-m", "oorfix.lab.balancer", "serve", "--bind", bind]
        services.define(host.state, "pg-lb", [*argv, "--port", str(port)], env, netns)

    def vip(self) -> tuple[str, int]:
        """The payment service's address and port as clients see it."""
        lb = next((h for h in self.hosts.values() if h.role == "lb"), None)
        if self.namespaced:
            return VIP, LB_PORT_NAMESPACED
        return (lb.address if lb else "127.0.0.1"), LB_PORT_LOOPBACK

    # -- describing --------------------------------------------------------------------------

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

    def inventory(self) -> dict[str, Any]:
        """An Ansible YAML inventory (as data) for the lab hosts."""
        groups: dict[str, dict[str, Any]] = {}
        for host in self.hosts.values():
            conn = self.connection(host.name)
            entry = {
                "ansible_host": conn.address,
                "ansible_port": conn.port,
                "ansible_user": conn.user,
                "ansible_ssh_private_key_file": str(conn.key_file),
                "rack": host.rack,
                **self._service_vars(host),
                **host.vars,
            }
            for group in host.groups:
                groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = entry
        return {"all": {"vars": self._site_vars(), "children": groups}}

    def _service_vars(self, host: LabHost) -> dict[str, Any]:
        if "pg-api" not in host.services:
            return {}
        return {"api_host": host.data_address(self.namespaced), "port": API_PORT}

    def _site_vars(self) -> dict[str, Any]:
        vip, port = self.vip()
        site: dict[str, Any] = {
            "payment_vip_url": f"http://{vip}:{port}",
            "ups_password": self.ups_password,
        }
        if self.namespaced:
            site |= {
                "clearing_url": f"http://{CLEARING_ADDRESS}:{CLEARING_PORT}/health",
                "clearing_net": CLEARING_NET,
                "primary_gateway": GATEWAY_A,
                "backup_gateway": GATEWAY_B,
            }
        return site

    def write_inventory(self, path: Path) -> Path:
        """Write the lab inventory as YAML (JSON is valid YAML) and return its path."""
        path.write_text(json.dumps(self.inventory(), indent=2) + "\n")
        return path

    def _save(self) -> None:
        data = {
            "namespaced": self.namespaced,
            "hosts": [_host_data(h) for h in self.hosts.values()],
            "ports": [s.port for s in self.servers],
            "ups_password": self.ups_password,
        }
        (self.directory / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Lab:
        """The lab running in ``directory``, as ``up`` described it; LabError if none."""
        try:
            data = json.loads((directory / STATE_FILE).read_text())
        except (OSError, ValueError):
            raise LabError(f"no lab is running in {directory} (start one: oorfix lab up)") from None
        hosts = [_host_from(d) for d in data["hosts"]]
        lab = cls.__new__(cls)
        Lab.__init__(lab, directory, hosts, namespaced=False)
        lab.namespaced = data["namespaced"]
        lab.net = network.Network(lab.directory, hosts) if lab.namespaced else None
        lab.ups_password = data.get("ups_password", lab.ups_password)
        for server, port in zip(lab.servers, data["ports"], strict=True):
            server.port = port
        return lab


def _units(host: LabHost) -> list[services.Unit]:
    units_dir = host.state / "units"
    names = [p.stem for p in units_dir.glob("*.json")] if units_dir.is_dir() else []
    return [services.Unit(host.state, n) for n in names]


def _host_data(host: LabHost) -> dict[str, Any]:
    data = dataclasses.asdict(host)
    data["state"] = str(host.state)
    return data


def _host_from(data: dict[str, Any]) -> LabHost:
    fields = {**data, "state": Path(data["state"])}
    fields["groups"] = tuple(fields["groups"])
    fields["services"] = tuple(fields["services"])
    return LabHost(**fields)
