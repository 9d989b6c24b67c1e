"""Built-in actions: parameters in, the exact shell command out; unsafe values refused."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oorfix.runbook.actions import ActionError, mutates, render_action

SYSTEMCTL = "if command -v systemctl >/dev/null 2>&1; then {systemd}; else {sysv}; fi"
APT = "DEBIAN_FRONTEND=noninteractive apt-get"


def action_error(kind: str, params: dict[str, Any]) -> str:
    with pytest.raises(ActionError) as info:
        render_action(kind, params)
    return str(info.value)


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, timeout=20)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"name": "pg-api", "state": "started", "manager": "systemd"},
            "systemctl start -- pg-api && systemctl is-active --quiet -- pg-api",
        ),
        (
            {"name": "pg-api", "state": "stopped", "manager": "systemd"},
            "systemctl stop -- pg-api && ! systemctl is-active --quiet -- pg-api",
        ),
        (
            {"name": "pg-api", "state": "restarted", "manager": "systemd"},
            "systemctl restart -- pg-api && systemctl is-active --quiet -- pg-api",
        ),
        (
            {"name": "pg-api", "state": "reloaded", "manager": "systemd"},
            "systemctl reload -- pg-api && systemctl is-active --quiet -- pg-api",
        ),
        ({"name": "pg-api", "state": "started", "manager": "sysv"}, "service pg-api start"),
        ({"name": "pg-api", "state": "stopped", "manager": "sysv"}, "service pg-api stop"),
        ({"name": "pg-api", "state": "restarted", "manager": "sysv"}, "service pg-api restart"),
        ({"name": "pg-api", "state": "reloaded", "manager": "sysv"}, "service pg-api reload"),
        (
            {"name": "pg-api", "state": "started"},
            SYSTEMCTL.format(
                systemd="systemctl start -- pg-api && systemctl is-active --quiet -- pg-api",
                sysv="service pg-api start",
            ),
        ),
        (
            {"name": "pg-api", "state": "stopped", "manager": "auto"},
            SYSTEMCTL.format(
                systemd="systemctl stop -- pg-api && ! systemctl is-active --quiet -- pg-api",
                sysv="service pg-api stop",
            ),
        ),
        (
            {"name": "pg-api", "state": "restarted", "manager": "auto"},
            SYSTEMCTL.format(
                systemd="systemctl restart -- pg-api && systemctl is-active --quiet -- pg-api",
                sysv="service pg-api restart",
            ),
        ),
        (
            {"name": "pg-api", "state": "reloaded", "manager": "auto"},
            SYSTEMCTL.format(
                systemd="systemctl reload -- pg-api && systemctl is-active --quiet -- pg-api",
                sysv="service pg-api reload",
            ),
        ),
        (
            {"name": "getty@tty1.service", "state": "restarted", "manager": "systemd"},
            "systemctl restart -- getty@tty1.service && "
            "systemctl is-active --quiet -- getty@tty1.service",
        ),
        (
            {"name": "mnt-a\\x2db.mount", "state": "started", "manager": "sysv"},
            "service 'mnt-a\\x2db.mount' start",
        ),
    ],
)
def test_service(params: dict[str, Any], expected: str) -> None:
    assert render_action("service", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"name": "openssl", "version": "1.1.1n-0+deb11u5", "manager": "apt"},
            f"{APT} install -y -q --allow-downgrades -- openssl=1.1.1n-0+deb11u5 && "
            "[ \"$(dpkg-query -W -f='${Version}' openssl)\" = 1.1.1n-0+deb11u5 ]",
        ),
        (
            {"name": "libfoo", "version": "1:2.3~rc1", "manager": "apt"},
            f"{APT} install -y -q --allow-downgrades -- libfoo='1:2.3~rc1' && "
            "[ \"$(dpkg-query -W -f='${Version}' libfoo)\" = '1:2.3~rc1' ]",
        ),
        (
            {"name": "openssl", "manager": "apt"},
            f"{APT} install -y -q --allow-downgrades -- openssl",
        ),
        (
            {"name": "openssl", "state": "absent", "manager": "apt"},
            f"{APT} remove -y -q -- openssl",
        ),
        (
            {"name": "openssl", "state": "latest", "manager": "apt"},
            f"{APT} install -y -q --only-upgrade -- openssl",
        ),
        (
            {"name": "openssl", "version": "3.0.7-1.el9", "manager": "dnf"},
            "{ dnf install -y -- openssl-3.0.7-1.el9 || dnf downgrade -y -- openssl-3.0.7-1.el9; }",
        ),
        ({"name": "openssl", "manager": "dnf"}, "dnf install -y -- openssl"),
        ({"name": "openssl", "state": "absent", "manager": "dnf"}, "dnf remove -y -- openssl"),
        ({"name": "openssl", "state": "latest", "manager": "dnf"}, "dnf upgrade -y -- openssl"),
        ({"name": "openssl", "state": "latest", "manager": "yum"}, "yum upgrade -y -- openssl"),
        ({"name": "g++", "manager": "yum"}, "yum install -y -- g++"),
        (
            {"name": "openssl", "state": "absent"},
            f"if command -v apt-get >/dev/null 2>&1; then {APT} remove -y -q -- openssl; "
            "elif command -v dnf >/dev/null 2>&1; then dnf remove -y -- openssl; "
            "else yum remove -y -- openssl; fi",
        ),
        (
            {"name": "openssl", "version": "3.0.2"},
            f"if command -v apt-get >/dev/null 2>&1; then {APT} install -y -q --allow-downgrades "
            "-- openssl=3.0.2 && [ \"$(dpkg-query -W -f='${Version}' openssl)\" = 3.0.2 ]; "
            "elif command -v dnf >/dev/null 2>&1; then "
            "{ dnf install -y -- openssl-3.0.2 || dnf downgrade -y -- openssl-3.0.2; }; "
            "else { yum install -y -- openssl-3.0.2 || yum downgrade -y -- openssl-3.0.2; }; fi",
        ),
    ],
)
def test_package(params: dict[str, Any], expected: str) -> None:
    assert render_action("package", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"dest": "default", "via": "10.0.0.1", "dev": "eth0", "metric": 100},
            "ip route replace default via 10.0.0.1 dev eth0 metric 100 && "
            "ip route show default | grep -qF -- 'via 10.0.0.1 '",
        ),
        (
            {"dest": "10.1.0.0/16", "via": "10.0.0.1"},
            "ip route replace 10.1.0.0/16 via 10.0.0.1 && "
            "ip route show 10.1.0.0/16 | grep -qF -- 'via 10.0.0.1 '",
        ),
        (
            {"dest": "10.1.0.0/16", "dev": "eth0"},
            "ip route replace 10.1.0.0/16 dev eth0 && ip route show 10.1.0.0/16 | grep -q .",
        ),
        (
            {"dest": "default", "metric": "200"},
            "ip route replace default metric 200 && ip route show default | grep -q .",
        ),
        (
            {"dest": "10.1.0.0/16", "via": "10.0.0.1", "table": "100"},
            "ip route replace 10.1.0.0/16 via 10.0.0.1 table 100 && "
            "ip route show 10.1.0.0/16 table 100 | grep -qF -- 'via 10.0.0.1 '",
        ),
        (
            {"dest": "fe80::/64", "via": "fe80::1", "dev": "eth0"},
            "ip route replace fe80::/64 via fe80::1 dev eth0 && "
            "ip route show fe80::/64 | grep -qF -- 'via fe80::1 '",
        ),
        (
            {"dest": "10.1.0.0/16", "via": "10.0.0.1", "state": "absent"},
            "ip route del 10.1.0.0/16 via 10.0.0.1",
        ),
        ({"dest": "default", "state": "absent"}, "ip route del default"),
        (
            {"dest": "default", "dev": "bond0.100", "metric": 5, "state": "absent"},
            "ip route del default dev bond0.100 metric 5",
        ),
    ],
)
def test_route(params: dict[str, Any], expected: str) -> None:
    assert render_action("route", params) == expected


WAIT = (
    "end=$(( $(date +%s) + {timeout} )); "
    "until {test}; do [ $(date +%s) -ge $end ] && exit 1; sleep {interval}; done"
)


@pytest.mark.parametrize(
    ("params", "timeout", "test", "interval"),
    [
        (
            {"port": 8080},
            30,
            "bash -c '(exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null'",
            "1",
        ),
        (
            {"port": "8080", "host": "10.0.0.5", "timeout": "20s", "interval": "500ms"},
            20,
            "bash -c '(exec 3<>/dev/tcp/10.0.0.5/8080) 2>/dev/null'",
            "0.5",
        ),
        (
            {"port": 8080, "host": "localhost", "state": "stopped", "timeout": 5},
            5,
            "! bash -c '(exec 3<>/dev/tcp/localhost/8080) 2>/dev/null'",
            "1",
        ),
        (
            {"url": "http://127.0.0.1:8080/health", "timeout": "20s"},
            20,
            "curl -fsS -m 5 -o /dev/null -- http://127.0.0.1:8080/health",
            "1",
        ),
        (
            {"url": "https://h/x?a=1&b=$(id)", "state": "stopped", "timeout": "2m"},
            120,
            "! curl -fsS -m 5 -o /dev/null -- 'https://h/x?a=1&b=$(id)'",
            "1",
        ),
        ({"path": "/run/app.pid"}, 30, "[ -e /run/app.pid ]", "1"),
        (
            {"path": "/run/app.pid", "state": "stopped", "timeout": 1.5, "interval": 0.25},
            2,
            "! [ -e /run/app.pid ]",
            "0.25",
        ),
        ({"path": "/tmp/a b; id"}, 30, "[ -e '/tmp/a b; id' ]", "1"),
    ],
)
def test_wait_for(params: dict[str, Any], timeout: int, test: str, interval: str) -> None:
    expected = WAIT.format(timeout=timeout, test=test, interval=interval)
    assert render_action("wait_for", params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"vip": "10.0.0.100/24", "dev": "eth0"},
            "ip addr replace 10.0.0.100/24 dev eth0 && if command -v arping >/dev/null 2>&1; "
            "then arping -U -c 2 -I eth0 10.0.0.100 >/dev/null 2>&1 || true; fi; "
            "ip -o addr show dev eth0 | grep -qwF -- 10.0.0.100",
        ),
        (
            {"vip": "10.0.0.100/24", "dev": "eth0", "state": "absent"},
            "ip addr del 10.0.0.100/24 dev eth0 2>/dev/null; "
            "! ip -o addr show dev eth0 | grep -qwF -- 10.0.0.100",
        ),
    ],
)
def test_failover(params: dict[str, Any], expected: str) -> None:
    assert render_action("failover", params) == expected


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        # option injection: a leading '-' is refused even though it would be quoted
        (
            "service",
            {"name": "-rf", "state": "started"},
            "service name '-rf' must not be empty or start with '-'",
        ),
        (
            "service",
            {"name": "--foo", "state": "stopped"},
            "service name '--foo' must not be empty or start with '-'",
        ),
        (
            "service",
            {"name": "", "state": "started"},
            "service name '' must not be empty or start with '-'",
        ),
        (
            "package",
            {"name": "-rf", "manager": "apt"},
            "package name '-rf' must not be empty or start with '-'",
        ),
        (
            "package",
            {"name": "--force-yes"},
            "package name '--force-yes' must not be empty or start with '-'",
        ),
        (
            "package",
            {"name": "x", "version": "-1", "manager": "apt"},
            "version '-1' must not be empty or start with '-'",
        ),
        (
            "package",
            {"name": "x", "version": "--foo", "manager": "dnf"},
            "version '--foo' must not be empty or start with '-'",
        ),
        (
            "route",
            {"dest": "default", "dev": "-x"},
            "interface '-x' must not be empty or start with '-'",
        ),
        (
            "route",
            {"dest": "default", "dev": "eth0", "table": "--all"},
            "table '--all' must not be empty or start with '-'",
        ),
        ("wait_for", {"path": "-rf"}, "path '-rf' must not be empty or start with '-'"),
        ("wait_for", {"path": "--help"}, "path '--help' must not be empty or start with '-'"),
        (
            "wait_for",
            {"url": "-K/etc/passwd"},
            "url '-K/etc/passwd' must start with http:// or https://",
        ),
        (
            "failover",
            {"vip": "10.0.0.100/24", "dev": "--x"},
            "interface '--x' must not be empty or start with '-'",
        ),
        # hostile names refused by their pattern
        (
            "service",
            {"name": "x; rm -rf /", "state": "started"},
            "service name 'x; rm -rf /' has characters not allowed here",
        ),
        (
            "service",
            {"name": "pg api", "state": "started"},
            "service name 'pg api' has characters not allowed here",
        ),
        (
            "service",
            {"name": "$(id)", "state": "started"},
            "service name '$(id)' has characters not allowed here",
        ),
        (
            "package",
            {"name": "a b", "manager": "apt"},
            "package name 'a b' has characters not allowed here",
        ),
        (
            "package",
            {"name": "x`id`"},
            "package name 'x`id`' has characters not allowed here",
        ),
        (
            "package",
            {"name": "x", "version": "1.0; id", "manager": "apt"},
            "version '1.0; id' has characters not allowed here",
        ),
        (
            "route",
            {"dest": "default", "dev": "eth0; id"},
            "interface 'eth0; id' has characters not allowed here",
        ),
        (
            "failover",
            {"vip": "10.0.0.100/24", "dev": "averyveryverylongname"},
            "interface 'averyveryverylongname' has characters not allowed here",
        ),
        # addresses must parse
        ("route", {"dest": "-rf"}, "route dest '-rf' is not an IP prefix"),
        ("route", {"dest": "10.0.0.0/33"}, "route dest '10.0.0.0/33' is not an IP prefix"),
        ("route", {"dest": "default", "via": "gw; id"}, "gateway 'gw; id' is not an IP address"),
        (
            "route",
            {"dest": "default", "via": "10.0.0.0/24"},
            "gateway '10.0.0.0/24' is not an IP address",
        ),
        ("route", {"dest": "default", "metric": "abc"}, "metric 'abc' is not a whole number"),
        ("route", {"dest": "default", "metric": "1; id"}, "metric '1; id' is not a whole number"),
        ("failover", {"vip": "bogus", "dev": "eth0"}, "vip 'bogus' is not an IP prefix"),
        (
            "wait_for",
            {"port": 80, "host": "example.com"},
            "host 'example.com' is not an IP address",
        ),
        (
            "wait_for",
            {"port": 80, "host": "1.2.3.4; id"},
            "host '1.2.3.4; id' is not an IP address",
        ),
        ("wait_for", {"port": "80; id"}, "port '80; id' is not a whole number"),
        (
            "wait_for",
            {"url": "file:///etc/passwd"},
            "url 'file:///etc/passwd' must start with http:// or https://",
        ),
        # the model still applies to rendered parameters
        (
            "service",
            {"name": "x", "state": "bogus"},
            "service.state: Input should be 'started', 'stopped', 'restarted' or 'reloaded'",
        ),
        (
            "package",
            {"name": "x", "version": 1.1},
            "package.version: Input should be a valid string",
        ),
        ("failover", {"vip": "10.0.0.100/24"}, "failover.dev: Field required"),
        (
            "route",
            {"dest": "default", "gateway": "10.0.0.1"},
            "route.gateway: Extra inputs are not permitted",
        ),
    ],
)
def test_unsafe_parameters_are_refused(kind: str, params: dict[str, Any], expected: str) -> None:
    assert action_error(kind, params) == expected


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("route", {"dest": "default", "metric": "-1"}),
        ("wait_for", {"port": -1}),
        ("wait_for", {"port": 99999}),
        ("wait_for", {"port": 0}),
    ],
)
def test_out_of_range_numbers_are_refused(kind: str, params: dict[str, Any]) -> None:
    with pytest.raises(ActionError):
        render_action(kind, params)


def test_model_level_error_message_is_clean() -> None:
    assert (
        action_error("wait_for", {"port": 1, "path": "/x"})
        == "wait_for: wait_for needs exactly one of port, url, path"
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("service", True),
        ("package", True),
        ("route", True),
        ("failover", True),
        ("wait_for", False),
    ],
)
def test_mutates(kind: str, expected: bool) -> None:
    assert mutates(kind) is expected


# Running the rendered wait_for commands for real, in a throwaway directory.


@pytest.mark.parametrize(
    ("params", "exists", "rc"),
    [
        pytest.param({"timeout": 5}, True, 0, id="present"),
        pytest.param({"timeout": 1, "interval": "200ms"}, False, 1, id="missing-times-out"),
        pytest.param({"state": "stopped", "timeout": 5}, False, 0, id="gone"),
        pytest.param({"state": "stopped", "timeout": 1, "interval": 0.2}, True, 1, id="stays"),
    ],
)
def test_wait_for_path_runs(tmp_path: Path, params: dict[str, Any], exists: bool, rc: int) -> None:
    target = tmp_path / "ready flag"
    if exists:
        target.touch()
    command = render_action("wait_for", {"path": str(target), **params})
    result = sh(command, tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (rc, b"", b"")


def test_wait_for_hostile_path_is_inert(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = f"{tmp_path}/x ]; touch {marker}; [ -e x"
    command = render_action("wait_for", {"path": path, "state": "stopped", "timeout": 2})
    assert sh(command, tmp_path).returncode == 0
    assert not marker.exists()


@pytest.fixture
def listening_port() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]
    finally:
        server.close()


def test_wait_for_port_runs(tmp_path: Path, listening_port: int) -> None:
    started = render_action("wait_for", {"port": listening_port, "timeout": 5})
    stopped = render_action("wait_for", {"port": listening_port, "state": "stopped", "timeout": 1})
    assert sh(started, tmp_path).returncode == 0
    assert sh(stopped, tmp_path).returncode == 1


def test_wait_for_closed_port_runs(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connections are refused
        stopped = render_action("wait_for", {"port": port, "state": "stopped", "timeout": 5})
        started = render_action("wait_for", {"port": port, "timeout": 1, "interval": 0.2})
        assert sh(stopped, tmp_path).returncode == 0
        assert sh(started, tmp_path).returncode == 1
