"""The lab's data plane for real: namespaces, veths, bridges, gateways and the clearing peer.

One network is built for the whole module (a stale namespace from a "crashed run" is put
there first, to be swept away). Each test undoes the fault it injects; the last test takes
the network down and checks that nothing is left in the machine's own namespace.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oorfix.lab import network as net_mod
from oorfix.lab import services
from oorfix.lab.network import Network, NetworkError
from oorfix.lab.sshd import SSHD, SshdServer
from oorfix.lab.topology import (
    CLEARING_ADDRESS,
    CLEARING_NET,
    CLEARING_PORT,
    GATEWAY_A,
    GATEWAY_B,
    NETNS_PREFIX,
    VIP,
    VIP_PREFIX,
    LabHost,
    default_topology,
)
from tests.support import require

pytestmark = pytest.mark.integration

SLOW = net_mod.LATENCY_THRESHOLD
FAST = 0.2
URL = f"http://{CLEARING_ADDRESS}:{CLEARING_PORT}/health"
STALE_NS = NETNS_PREFIX + "pg-api-99"  # what a crashed lab with more hosts leaves behind
SESSION_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def require_netns() -> None:
    """Skip without root and network namespaces, or fail when CI says they must be there."""
    why = "network namespaces are not available (needs root and `ip netns`)"
    require("NETNS", net_mod.available(), why)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, output captured."""
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def root_links() -> set[str]:
    """The link names of the machine's own namespace."""
    return {line.split(":")[1].strip() for line in sh("ip", "-o", "link").stdout.splitlines()}


def curl_in(ns: str, timeout: float = 3.0) -> subprocess.CompletedProcess[str]:
    """GET the clearing peer's health from inside namespace ``ns``."""
    return sh(
        *("ip", "netns", "exec", ns, "curl", "-s", "--noproxy", "*"),
        *("--max-time", str(timeout), URL),
        check=False,
    )


def ns_ip(ns: str, *args: str) -> str:
    """``ip ARGS`` inside ``ns``, the way a runbook's command runs there."""
    return sh("ip", "netns", "exec", ns, "ip", *args).stdout


@dataclass
class Built:
    """The module's network and what the root namespace looked like before it."""

    net: Network
    links_before: set[str]

    def host(self, name: str) -> LabHost:
        return self.net.hosts[name]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """pg-api-1..2, lb, db, standby and power in namespaces, after a stale one is planted."""
    require_netns()
    directory = tmp_path_factory.mktemp("labnet")
    net = Network(directory, default_topology(directory, api_hosts=2))
    links_before = root_links()
    if STALE_NS not in sh("ip", "netns", "list").stdout:
        sh("ip", "netns", "add", STALE_NS)
    try:
        net.up()
        yield Built(net, links_before)
    finally:
        net.down()


def test_every_host_reaches_clearing_through_gw_a(built: Built) -> None:
    listed = sh("ip", "netns", "list").stdout
    assert STALE_NS not in listed, "the crashed lab's namespace was not removed"
    for host in built.net.hosts.values():
        assert host.netns in listed
        answer = curl_in(host.netns)
        assert answer.returncode == 0, f"{host.name}: curl {answer.returncode} {answer.stderr}"
        assert json.loads(answer.stdout) == {"status": "ok"}
        assert net_mod.route_via(built.net, host, CLEARING_ADDRESS) == GATEWAY_A
        assert f"inet {host.lan_a}/24" in ns_ip(host.netns, "-4", "-o", "addr", "show", "eth0")


def test_vip_is_on_the_load_balancer_only(built: Built) -> None:
    vip = f"inet {VIP}/{VIP_PREFIX}"
    assert vip in ns_ip(built.host("lb-1").netns, "-4", "-o", "addr", "show", "eth0")
    assert vip not in ns_ip(built.host("pg-standby-1").netns, "-4", "-o", "addr", "show")


def test_clearing_answers_posts(built: Built) -> None:
    argv = ["curl", "-s", "--noproxy", "*", "--max-time", "3", "-d", "{}"]
    argv.append(f"http://{CLEARING_ADDRESS}:{CLEARING_PORT}/clear")
    done = sh(*built.net.host_exec(built.host("pg-api-1"), argv))
    assert json.loads(done.stdout) == {"status": "cleared"}


def test_up_twice_is_safe(built: Built) -> None:
    pid = services.running_pid(built.net.clearing)
    namespaces = sh("ip", "netns", "list").stdout
    built.net.up()
    assert services.running_pid(built.net.clearing) == pid
    assert sh("ip", "netns", "list").stdout == namespaces
    lb = ns_ip(built.host("lb-1").netns, "-4", "-o", "addr", "show", "eth0")
    assert lb.count(f"{VIP}/") == 1
    assert net_mod.clearing_reachable(built.net, built.host("pg-api-2"))


def test_another_lab_is_refused_and_left_alone(built: Built, tmp_path: Path) -> None:
    other = Network(tmp_path, default_topology(tmp_path, api_hosts=1))
    with pytest.raises(NetworkError, match="take that lab down first"):
        other.up()
    other.down()  # must not take the running lab's namespaces with it
    assert net_mod.clearing_reachable(built.net, built.host("pg-api-1"))


def test_route_gone_and_fixed_by_a_real_route_change(built: Built) -> None:
    host = built.host("pg-api-1")
    try:
        net_mod.break_route(built.net, host)
        assert net_mod.route_via(built.net, host, CLEARING_NET) is None
        assert net_mod.route_via(built.net, host, "default") is None
        assert curl_in(host.netns, timeout=1).returncode != 0
        ns_ip(host.netns, "route", "replace", CLEARING_NET, "via", GATEWAY_B)
        assert net_mod.route_via(built.net, host, CLEARING_ADDRESS) == GATEWAY_B
        # Sourced from LAN B, so the answer comes back through gw-b too.
        assert f"src {host.lan_b}" in ns_ip(host.netns, "route", "get", CLEARING_ADDRESS)
        assert curl_in(host.netns).returncode == 0
    finally:
        net_mod.restore_route(built.net, host)
    assert net_mod.route_via(built.net, host, CLEARING_ADDRESS) == GATEWAY_A


def qdisc_stats(ns: str, dev: str) -> tuple[int, int]:
    """(dropped, overlimits) of the root qdisc of ``dev`` in ``ns``."""
    stats = json.loads(sh("tc", "-n", ns, "-s", "-j", "qdisc", "show", "dev", dev).stdout)
    return int(stats[0].get("drops", 0)), int(stats[0].get("overlimits", 0))


def test_slow_primary_path_and_the_faster_route(built: Built) -> None:
    host = built.host("pg-api-2")
    try:
        net_mod.slow_primary_path(built.net)
        slow = [net_mod.clearing_latency(built.net, host) for _ in range(2)]
        assert min(slow) > SLOW, f"via gw-a: {slow}"
        shaped = [qdisc_stats(ns, dev) for ns, dev in net_mod.PRIMARY_UPLINK]
        assert sum(d for d, _ in shaped) > 0, f"no packet dropped: {shaped}"
        ns_ip(host.netns, "route", "replace", CLEARING_NET, "via", GATEWAY_B)
        fast = [net_mod.clearing_latency(built.net, host) for _ in range(3)]
        assert max(fast) < FAST, f"via gw-b: {fast}"
    finally:
        net_mod.restore_primary_path(built.net)
        net_mod.restore_route(built.net, host)
    assert net_mod.clearing_latency(built.net, host) < FAST


def test_link_down_breaks_reachability(built: Built) -> None:
    host = built.host("pg-db-1")
    try:
        net_mod.link_down(built.net, host)
        assert net_mod.link_state(built.net, host) == "DOWN"
        assert not net_mod.clearing_reachable(built.net, host, timeout=1)
    finally:
        net_mod.link_up(built.net, host)
    assert net_mod.link_state(built.net, host) == "UP"
    assert net_mod.clearing_reachable(built.net, host)


def test_blackholed(built: Built) -> None:
    host = built.host("lb-1")
    ns_ip(host.netns, "route", "add", "blackhole", "203.0.113.0/28")
    try:
        assert net_mod.blackholed(built.net, host, "203.0.113.7")
        assert not net_mod.blackholed(built.net, host, "203.0.113.77")
    finally:
        ns_ip(host.netns, "route", "del", "blackhole", "203.0.113.0/28")
    assert not net_mod.blackholed(built.net, host, "203.0.113.7")


def ssh(server: SshdServer, address: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` over a real SSH session to ``address``."""
    return sh(
        *("ssh", "-F", "/dev/null", "-i", str(server.client_key), "-o", "IdentitiesOnly=yes"),
        *("-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "BatchMode=yes"),
        *("-p", str(server.port), f"{server.user}@{address}", command),
        check=False,
    )


def test_ssh_sessions_run_inside_the_host_namespace(built: Built, tmp_path: Path) -> None:
    require("SSHD", SSHD.exists(), f"{SSHD} is not installed")
    api, lb = built.host("pg-api-1"), built.host("lb-1")
    environments = {
        "127.0.71.2": {net_mod.ENTER_ENV: api.netns, "PATH": SESSION_PATH},
        "127.0.71.3": {net_mod.ENTER_ENV: lb.netns, "PATH": SESSION_PATH},
        "127.0.71.4": {"PATH": SESSION_PATH},  # no namespace: must be refused
    }
    enter = str(net_mod.enter_script(tmp_path / "bin" / "enter-netns"))
    server = SshdServer(
        tmp_path / "sshd",
        list(environments),
        environments=environments,
        force_commands=dict.fromkeys(environments, enter),
    )
    with server:
        on_api = ssh(server, "127.0.71.2", "ip -4 -o addr show dev eth1; curl -s " + URL)
        on_lb = ssh(server, "127.0.71.3", "ip -4 -o addr show dev eth0")
        refused = ssh(server, "127.0.71.4", "ip -o link")
    assert on_api.returncode == 0, on_api.stderr
    assert f"inet {api.lan_b}/24" in on_api.stdout
    assert '{"status": "ok"}' in on_api.stdout
    assert f"inet {VIP}/{VIP_PREFIX}" in on_lb.stdout
    assert refused.returncode == 126
    assert net_mod.ENTER_ENV in refused.stderr


def test_down_leaves_nothing_behind(built: Built) -> None:
    """Runs last: takes the module's network down (the fixture's down() then does nothing)."""
    pid = services.running_pid(built.net.clearing)
    assert pid is not None
    built.net.down()
    built.net.down()  # twice is harmless
    listed = sh("ip", "netns", "list").stdout.split()
    assert not [ns for ns in listed if ns.startswith(NETNS_PREFIX)], listed
    assert root_links() <= built.links_before, root_links() - built.links_before
    assert services.running_pid(built.net.clearing) is None
    assert not Path(f"/proc/{pid}").exists()
