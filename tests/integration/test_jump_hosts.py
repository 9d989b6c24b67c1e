"""Hosts behind a jump host, for real: network namespaces, two sshds, the CLI as SREs run it.

The module builds two namespaces. J (the jump host) is joined to this machine's namespace by
a veth pair on one /24; T (the targets) is joined only to J, on another /24, and J forwards
nothing: T's sshd is reachable only through an SSH channel opened on J. This namespace gets
an ``unreachable`` route for T's /24, so a mistaken direct connection fails here at once and
never follows the default route off the machine. One sshd runs inside J (forwarding
allowed), one inside T on three addresses (three target hosts). Everything is torn down
after the module, also when a test or the setup fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oorfix.lab import network as net_mod
from oorfix.lab.sshd import SSHD, SshdServer
from tests.integration.conftest import CliRun, run_cli
from tests.support import require

pytestmark = pytest.mark.integration

J_PORT, T_PORT = 2201, 2202
TARGETS = ("t1", "t2", "t3")
RUNBOOK = """
name: marker
fault: software.service_interruption
hosts: all
detect:
  - name: marker present
    run: test -f {{ marker }}
remediate:
  - name: write the marker, naming the namespace the command ran in
    run: ip netns identify > {{ marker }}
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, output captured."""
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def routed(prefix: str) -> bool:
    """Whether this namespace already has a route for ``prefix`` (then it is not ours)."""
    return bool(sh("ip", "route", "show", "exact", prefix).stdout.strip())


@dataclass(frozen=True)
class Net:
    """The two namespaces, their sshds and the files a run needs."""

    j_ns: str
    t_ns: str
    j_address: str
    t_addresses: tuple[str, ...]
    jump: SshdServer
    target: SshdServer
    known_hosts: Path  # trusts J and every T address

    def logins(self, server: SshdServer) -> int:
        """How many logins ``server`` has accepted so far."""
        return server.log.read_text(errors="replace").count("Accepted publickey for ")

    def bastion_entry(self) -> str:
        """An ssh_config entry for J under the alias ``bastion``."""
        return textwrap.dedent(
            f"""
            Host bastion
                HostName {self.j_address}
                Port {J_PORT}
                User {self.jump.user}
                IdentityFile {self.jump.client_key}
            """
        )


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    """J and T with their sshds; everything removed afterwards."""
    require("SSHD", SSHD.exists(), f"{SSHD} is not installed")
    require("NETNS", net_mod.available(), "network namespaces need root and `ip netns`")
    tag = os.getpid() % 200 + 20
    outer, inner = f"10.213.{tag}.0/24", f"10.214.{tag}.0/24"
    if routed(outer) or routed(inner):
        pytest.skip(f"{outer} or {inner} is already routed on this machine")
    j_ns, t_ns = f"jumptest-{os.getpid()}-j", f"jumptest-{os.getpid()}-t"
    root_dev = f"jt{os.getpid()}"[:15]
    directory = tmp_path_factory.mktemp("jump-hosts")
    servers: list[SshdServer] = []
    try:
        for ns in (j_ns, t_ns):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        # J forwards nothing: T is reached only through SSH forwarding on J.
        sh("ip", "netns", "exec", j_ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=0")
        sh("ip", "link", "add", root_dev, "type", "veth", "peer", "name", "eth0", "netns", j_ns)
        sh("ip", "addr", "add", f"10.213.{tag}.1/24", "dev", root_dev)
        sh("ip", "link", "set", root_dev, "up")
        sh("ip", "-n", j_ns, "addr", "add", f"10.213.{tag}.2/24", "dev", "eth0")
        sh("ip", "-n", j_ns, "link", "set", "eth0", "up")
        sh("ip", "-n", j_ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0",
           "netns", t_ns)  # fmt: skip
        sh("ip", "-n", j_ns, "addr", "add", f"10.214.{tag}.1/24", "dev", "eth1")
        sh("ip", "-n", j_ns, "link", "set", "eth1", "up")
        t_addresses = tuple(f"10.214.{tag}.{n}" for n in (2, 3, 4))
        for address in t_addresses:
            sh("ip", "-n", t_ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", t_ns, "link", "set", "eth0", "up")
        # A mistaken direct connection fails here, instead of taking the default route.
        sh("ip", "route", "add", "unreachable", inner)
        jump = SshdServer(
            directory / "j",
            [f"10.213.{tag}.2"],
            extra_config=["AllowTcpForwarding yes"],
            command_prefix=["ip", "netns", "exec", j_ns],
            port=J_PORT,
        )
        servers.append(jump)
        jump.start()
        target = SshdServer(
            directory / "t",
            t_addresses,
            command_prefix=["ip", "netns", "exec", t_ns],
            port=T_PORT,
        )
        servers.append(target)
        target.start()
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(jump.known_hosts.read_text() + target.known_hosts.read_text())
        yield Net(j_ns, t_ns, f"10.213.{tag}.2", t_addresses, jump, target, known_hosts)
    finally:
        for server in servers:
            server.stop()
        sh("ip", "route", "del", "unreachable", inner, check=False)
        for ns in (t_ns, j_ns):  # the veths go with their namespaces
            sh("ip", "netns", "delete", ns, check=False)
        sh("ip", "link", "del", root_dev, check=False)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def inventory(path: Path, hosts: dict[str, dict[str, object]]) -> Path:
    """A YAML (JSON) inventory of ``hosts`` with their variables."""
    path.write_text(json.dumps({"all": {"hosts": hosts}}, indent=2) + "\n")
    return path


def oorfix_run(tmp_path: Path, *args: str | Path, known_hosts: Path) -> CliRun:
    """``oorfix run`` of the marker runbook with ``args``, and its record."""
    runbook = write(tmp_path / "runbook.yml", RUNBOOK)
    record = tmp_path / f"record-{time.monotonic_ns()}.json"
    argv = ["run", str(runbook), *map(str, args), "--known-hosts", str(known_hosts)]
    return run_cli([*argv, "--json", str(record)], record)


def marker_ns(path: Path) -> str:
    """The namespace the remediation ran in, as it wrote it."""
    return path.read_text().strip()


def test_an_alias_from_an_ssh_config_is_reached_through_its_jump_host(
    net: Net, tmp_path: Path
) -> None:
    config = write(
        tmp_path / "ssh_config",
        f"""
        Host t1
            HostName {net.t_addresses[0]}
            Port {T_PORT}
            User {net.target.user}
            IdentityFile {net.target.client_key}
            ProxyJump bastion
        {net.bastion_entry()}
        """,
    )
    marker = tmp_path / "t1.marker"
    hosts = inventory(tmp_path / "inventory.yml", {"t1": {"marker": str(marker)}})

    run = oorfix_run(tmp_path, "-i", hosts, "-F", config, known_hosts=net.known_hosts)

    assert run.rc == 0, run.stderr
    assert run.statuses() == {"t1": "fixed"}
    assert marker_ns(marker) == net.t_ns


def test_ansible_ssh_common_args_proxyjump_reaches_the_target(net: Net, tmp_path: Path) -> None:
    config = write(tmp_path / "ssh_config", net.bastion_entry())  # only the jump host
    marker = tmp_path / "t1.marker"
    entry = {
        "ansible_host": net.t_addresses[0],
        "ansible_port": T_PORT,
        "ansible_user": net.target.user,
        "ansible_ssh_private_key_file": str(net.target.client_key),
        "ansible_ssh_common_args": "-o ProxyJump=bastion",
        "marker": str(marker),
    }
    hosts = inventory(tmp_path / "inventory.yml", {"t1": entry})

    run = oorfix_run(tmp_path, "-i", hosts, "-F", config, known_hosts=net.known_hosts)

    assert run.rc == 0, run.stderr
    assert run.statuses() == {"t1": "fixed"}
    assert marker_ns(marker) == net.t_ns


def test_targets_behind_one_jump_host_share_one_jump_connection(net: Net, tmp_path: Path) -> None:
    config = write(tmp_path / "ssh_config", net.bastion_entry())
    hosts = inventory(
        tmp_path / "inventory.yml",
        {
            name: {
                "ansible_host": address,
                "ansible_port": T_PORT,
                "ansible_user": net.target.user,
                "ansible_ssh_private_key_file": str(net.target.client_key),
                "ansible_ssh_common_args": "-J bastion",
                "marker": str(tmp_path / f"{name}.marker"),
            }
            for name, address in zip(TARGETS, net.t_addresses, strict=True)
        },
    )
    jump_logins, target_logins = net.logins(net.jump), net.logins(net.target)

    run = oorfix_run(
        tmp_path, "-i", hosts, "-F", config, "--forks", "3", known_hosts=net.known_hosts
    )

    assert run.rc == 0, run.stderr
    assert run.statuses() == dict.fromkeys(TARGETS, "fixed")
    assert {marker_ns(tmp_path / f"{name}.marker") for name in TARGETS} == {net.t_ns}
    assert net.logins(net.jump) - jump_logins == 1
    assert net.logins(net.target) - target_logins == len(TARGETS)


def test_a_proxycommand_with_ssh_w_reaches_the_target(net: Net, tmp_path: Path) -> None:
    ssh = shutil.which("ssh")
    if ssh is None:
        pytest.skip("no ssh client for the ProxyCommand")
    proxy = (
        f"{ssh} -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={net.known_hosts} -i {net.jump.client_key} -p {J_PORT} "
        f"-W %h:%p {net.jump.user}@{net.j_address}"
    )
    config = write(
        tmp_path / "ssh_config",
        f"""
        Host t2
            HostName {net.t_addresses[1]}
            Port {T_PORT}
            User {net.target.user}
            IdentityFile {net.target.client_key}
            ProxyCommand {proxy}
        """,
    )
    marker = tmp_path / "t2.marker"
    hosts = inventory(tmp_path / "inventory.yml", {"t2": {"marker": str(marker)}})

    run = oorfix_run(tmp_path, "-i", hosts, "-F", config, known_hosts=net.known_hosts)

    assert run.rc == 0, run.stderr
    assert run.statuses() == {"t2": "fixed"}
    assert marker_ns(marker) == net.t_ns


def test_an_unknown_jump_host_key_refuses_the_target(net: Net, tmp_path: Path) -> None:
    config = write(
        tmp_path / "ssh_config",
        f"""
        Host t1
            HostName {net.t_addresses[0]}
            Port {T_PORT}
            IdentityFile {net.target.client_key}
            ProxyJump bastion
        {net.bastion_entry()}
        """,
    )
    marker = tmp_path / "t1.marker"
    hosts = inventory(tmp_path / "inventory.yml", {"t1": {"marker": str(marker)}})
    only_targets = tmp_path / "known_hosts"
    shutil.copyfile(net.target.known_hosts, only_targets)
    jump_logins, target_logins = net.logins(net.jump), net.logins(net.target)

    run = oorfix_run(tmp_path, "-i", hosts, "-F", config, known_hosts=only_targets)

    assert run.rc == 3, run.stderr
    assert run.statuses() == {"t1": "unreachable"}
    error = run.result("t1")["error"]
    assert error.startswith(
        f"cannot reach bastion (jump host for t1): host key for [{net.j_address}]:{J_PORT} "
        "is not known"
    ), error
    assert (net.logins(net.jump), net.logins(net.target)) == (jump_logins, target_logins)
    assert not marker.exists()


def test_a_target_the_jump_host_cannot_reach_is_unreachable(net: Net, tmp_path: Path) -> None:
    config = write(tmp_path / "ssh_config", net.bastion_entry())
    closed_port = T_PORT + 1  # nothing listens there in T
    entry = {
        "ansible_host": net.t_addresses[0],
        "ansible_port": closed_port,
        "ansible_ssh_common_args": "-J bastion",
        "marker": str(tmp_path / "never"),
    }
    hosts = inventory(tmp_path / "inventory.yml", {"t1": entry})

    run = oorfix_run(tmp_path, "-i", hosts, "-F", config, known_hosts=net.known_hosts)

    assert run.rc == 3, run.stderr
    assert run.statuses() == {"t1": "unreachable"}
    assert run.result("t1")["error"] == (
        f"cannot reach bastion (jump host for t1): it could not connect to "
        f"{net.t_addresses[0]}:{closed_port}: connect failed"
    )


def test_the_direct_route_fails_at_once_as_unreachable(net: Net, tmp_path: Path) -> None:
    entry = {
        "ansible_host": net.t_addresses[0],
        "ansible_port": T_PORT,
        "ansible_ssh_private_key_file": str(net.target.client_key),
        "marker": str(tmp_path / "never"),
    }
    hosts = inventory(tmp_path / "inventory.yml", {"t1": entry})
    target_logins = net.logins(net.target)

    # A connect timeout far above anything a local refusal takes: a timeout would show.
    run = oorfix_run(
        tmp_path, "-i", hosts, "-F", "/dev/null", "--connect-timeout", "120",
        known_hosts=net.known_hosts,
    )  # fmt: skip

    assert run.rc == 3, run.stderr
    assert run.statuses() == {"t1": "unreachable"}
    error = run.result("t1")["error"]
    # EHOSTUNREACH from the `unreachable` route: refused here, not waited for.
    assert "No route to host" in error, error
    assert "within" not in error
    assert net.logins(net.target) == target_logins
