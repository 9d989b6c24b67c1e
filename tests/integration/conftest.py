"""Fixtures for end-to-end runs: a lab of real sshd-backed payment hosts on 127.0.30.x.

The lab (one sshd, a real payment API process per host, the lab's systemctl/journalctl shims)
lives for the whole session; ``fleet`` puts every host back in shape before each test, so a
test that breaks a host breaks it on purpose and never for the next test. The CLI is always
run as a subprocess, exactly as an operator runs it, and the run record it writes is parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oorfix.lab import services
from oorfix.lab.lab import API_PORT, Lab, payment_hosts
from oorfix.lab.redisserver import REDIS_SERVER, RedisServer, start_redis
from oorfix.lab.sshd import SSHD
from tests.support import require

REPO = Path(__file__).resolve().parents[2]
LAB_BASE = "127.0.30."
LAB_SIZE = 3
# What the lab itself keeps in a host's state directory; anything else a test put there.
LAB_STATE_ENTRIES = frozenset({"units", "run", "journal"})
CLI_TIMEOUT = 120.0  # a bound against a hung CLI, far above any run here


def require_sshd() -> None:
    """Skip without sshd, or fail when the suite is told sshd must be there (CI)."""
    require("SSHD", SSHD.exists(), f"{SSHD} is not installed")


def start_service(unit: services.Unit) -> bool:
    """Start a lab service (the lab keeps and reaps its children itself)."""
    return services.start(unit)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """pg-api-1..3 on 127.0.30.2-4 behind one real sshd, each running the payment API."""
    require_sshd()
    directory = tmp_path_factory.mktemp("lab30")
    running = Lab(directory, payment_hosts(directory, LAB_SIZE, LAB_BASE))
    try:
        running.up()
        yield running
    finally:
        running.down()


@dataclass(frozen=True)
class CliRun:
    """One finished ``python -m oorfix`` process and the run record it wrote, if any."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    seconds: float
    record: dict[str, Any] | None

    def result(self, host: str) -> dict[str, Any]:
        """The record's one result for ``host``."""
        assert self.record is not None, f"no run record; stderr:\n{self.stderr}"
        found = [r for r in self.record["results"] if r["host"] == host]
        assert len(found) == 1, f"{len(found)} results for {host}: {self.record['results']}"
        return found[0]

    def statuses(self) -> dict[str, str]:
        """Host name to status, for every result of the record."""
        assert self.record is not None, f"no run record; stderr:\n{self.stderr}"
        return {r["host"]: r["status"] for r in self.record["results"]}


def run_cli(argv: list[str], json_path: Path, timeout: float = CLI_TIMEOUT) -> CliRun:
    """``python -m oorfix ARGV`` from the repo, without colour, and the record it wrote."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "oorfix", *argv],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.monotonic() - started
    data = json.loads(json_path.read_text()) if json_path.exists() else None
    return CliRun(tuple(argv), proc.returncode, proc.stdout, proc.stderr, seconds, data)


class Fleet:
    """The lab seen from a test: hosts to break and inspect, inventories, the CLI."""

    def __init__(self, lab: Lab, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.port = lab.sshd.port

    @property
    def names(self) -> list[str]:
        """Every lab host name, in order."""
        return sorted(self.lab.hosts)

    def address(self, name: str) -> str:
        """The loopback address that plays host ``name``."""
        return self.lab.hosts[name].address

    def state(self, name: str) -> Path:
        """The host's state directory (its services, journal and any test markers)."""
        return self.lab.hosts[name].state

    def unit(self, name: str) -> services.Unit:
        """The host's payment API unit."""
        return services.Unit(self.state(name), "pg-api")

    def pid(self, name: str) -> int | None:
        """The payment API's pid on ``name``, if it runs."""
        return services.running_pid(self.unit(name))

    def break_api(self, name: str) -> None:
        """Stop the payment API on ``name``, the way a crash leaves it."""
        services.stop(self.unit(name))
        assert self.pid(name) is None

    def health(self, name: str) -> dict[str, Any] | None:
        """What ``GET /health`` on the host's API answers, or None when nothing answers."""
        url = f"http://{self.address(name)}:{API_PORT}/health"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return dict(json.loads(response.read()))
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def restore(self) -> None:
        """Every host back in shape: test markers gone, the payment API running."""
        for name in self.names:
            state = self.state(name)
            for entry in state.iterdir():
                if entry.name in LAB_STATE_ENTRIES:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            assert start_service(self.unit(name)), f"pg-api does not start on {name}"

    def snapshot(self, name: str) -> dict[str, tuple[int, str]]:
        """Every entry under the host's state dir: relative path -> (mode, content sha256)."""
        root = self.state(name)
        found: dict[str, tuple[int, str]] = {}
        for path in sorted(root.rglob("*")):
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            found[str(path.relative_to(root))] = (info.st_mode, digest)
        return found

    def logins(self) -> int:
        """How many logins the lab sshd has accepted so far (each logged when it happens)."""
        text = self.lab.sshd.log.read_text(errors="replace")
        return text.count("Accepted publickey for ")

    def host_entry(self, name: str, **extra: object) -> dict[str, object]:
        """A lab host's inventory entry, with its state dir and ``extra`` vars."""
        written: Any = self.lab.inventory()
        base = written["all"]["children"]["payment_api"]["hosts"][name]
        return {**base, "state_dir": str(self.state(name)), **extra}

    def inventory(
        self,
        host_vars: Mapping[str, Mapping[str, object]] | None = None,
        *,
        hosts: list[str] | None = None,
        extra_hosts: Mapping[str, Mapping[str, object]] | None = None,
        filename: str = "inventory.yml",
    ) -> Path:
        """The lab inventory (group payment_api) with ``state_dir`` per host, plus overrides.

        ``host_vars`` adds variables to lab hosts; ``extra_hosts`` adds hosts that are not in
        the lab (full entries, e.g. an address where no sshd listens).
        """
        host_vars = host_vars or {}
        entries: dict[str, object] = {
            name: self.host_entry(name, **host_vars.get(name, {}))
            for name in (hosts if hosts is not None else self.names)
        }
        entries.update(extra_hosts or {})
        data = {"all": {"children": {"payment_api": {"hosts": entries}}}}
        path = self.tmp / filename
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def runbook(self, text: str, filename: str = "runbook.yml") -> Path:
        """Write a runbook (dedented) under the test's tmp dir."""
        path = self.tmp / filename
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def known_hosts_copy(self) -> Path:
        """A copy of the lab's known_hosts, which trusts every lab address."""
        path = self.tmp / "known_hosts"
        shutil.copyfile(self.lab.sshd.known_hosts, path)
        return path

    def oorfix(self, *args: str | Path, record: bool = True) -> CliRun:
        """Run the real CLI (cwd: the repo, so runbooks are found by name) and read its record."""
        argv = [str(a) for a in args]
        json_path = self.tmp / f"record-{time.monotonic_ns()}.json"
        if record:
            argv += ["--json", str(json_path)]
        return run_cli(argv, json_path)

    def run(self, *args: str | Path, known_hosts: Path | None = None, **kw: bool) -> CliRun:
        """``oorfix run ARGS`` trusting the lab's host keys (or ``known_hosts``)."""
        trusted = known_hosts if known_hosts is not None else self.lab.sshd.known_hosts
        return self.oorfix("run", *args, "--known-hosts", trusted, **kw)


@pytest.fixture
def fleet(lab: Lab, tmp_path: Path) -> Fleet:
    """The lab with every host restored: markers removed and the payment API running."""
    fleet = Fleet(lab, tmp_path)
    fleet.restore()
    return fleet


# --- a real Redis for the team state ---------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server on 127.0.0.1 for the session, with a password, no persistence."""
    require("REDIS", REDIS_SERVER.exists(), f"{REDIS_SERVER} is not installed")
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server emptied for this test; its URL, the password in OORFIX_STATE_PASSWORD."""
    import redis

    client = redis.Redis.from_url(redis_server.url_with_password)
    client.flushall()
    client.close()
    monkeypatch.setenv("OORFIX_STATE_PASSWORD", redis_server.password)
    return redis_server.url
