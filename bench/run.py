"""Benchmarks, each reported as a ratio against a named baseline measured in the same run.

1. fleet detect: N lab hosts x 10 read-only checks. oorfix (one connection per host, bounded
   pool) against the baseline a fabric user writes first: ThreadingGroup.run per check.
2. output capture: one command printing 8 MiB over SSH. oorfix's bounded linear capture
   against fabric's Connection.run(hide=True), whose capture is quadratic (docs/pitfalls.md §7).

The hosts are lab addresses behind one real sshd on loopback. Run with `make bench`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from oorfix.inventory.core import load_inventory
from oorfix.lab.lab import Lab
from oorfix.lab.topology import LabHost
from oorfix.redact import Command
from oorfix.results import Outcome
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import load_runbook
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import OpenGate
from oorfix.transport import ConnectOptions, open_transport

HOSTS = 20
CHECKS = 10
REPEAT = 3
OUTPUT_MIB = 8
CHECK_COMMANDS = [
    "test -d /tmp",
    "cat /proc/loadavg",
    "uptime",
    "df -P /",
    "test -r /etc/hostname",
    "id -u",
    "uname -r",
    "cat /proc/meminfo | head -3",
    "date +%s",
    "true",
][:CHECKS]


def _runbook(directory: Path) -> Path:
    lines = ["name: bench-checks", "fault: maintenance.health_sweep", "hosts: all", "detect:"]
    lines += [f"  - run: {json.dumps(command)}" for command in CHECK_COMMANDS]
    path = directory / "bench.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _best(func: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _oorfix_fleet(lab: Lab, inventory: Path, runbook: Path, batch: bool = True) -> None:
    inv = load_inventory(inventory)
    planned = plan_run([load_runbook(runbook)], inv, {})
    options = ConnectOptions(known_hosts=lab.known_hosts)
    pool = ConnectionPool(lambda host: open_transport(host.connection(), options))
    parts = EngineParts(inv, pool, OpenGate(), NoAudit())
    engine = Engine(parts, EngineOptions(forks=10, batch_detect=batch))
    result = engine.run([p.job for p in planned])
    assert all(r.status is Outcome.HEALTHY for r in result.results), result.results


def _fabric_fleet(lab: Lab) -> None:
    from fabric import ThreadingGroup  # the baseline; oorfix itself talks to paramiko

    conns = [lab.connection(name) for name in lab.hosts]
    hosts = [f"{c.user}@{c.address}:{c.port}" for c in conns]
    keys = sorted({str(c.key_file) for c in conns})
    group = ThreadingGroup(*hosts, connect_kwargs={"key_filename": keys})
    try:
        for command in CHECK_COMMANDS:
            group.run(command, hide=True)
    finally:
        group.close()


def _oorfix_capture(lab: Lab) -> int:
    conn = lab.connection(next(iter(lab.hosts)))
    transport = open_transport(conn, ConnectOptions(known_hosts=lab.known_hosts))
    transport.connect()
    try:
        command = Command(f"head -c {OUTPUT_MIB * 1024 * 1024} /dev/zero | tr '\\0' x")
        return transport.run(command, timeout=120).stdout.total_bytes
    finally:
        transport.close()


def _fabric_capture(lab: Lab) -> int:
    from fabric import Connection

    host = next(iter(lab.hosts.values()))
    kwargs = {"key_filename": str(lab.sshd.client_key)}
    with Connection(
        host.address, user=lab.sshd.user, port=lab.sshd.port, connect_kwargs=kwargs
    ) as c:
        result = c.run(f"head -c {OUTPUT_MIB * 1024 * 1024} /dev/zero | tr '\\0' x", hide=True)
        return len(result.stdout)


def _report(name: str, ours: float, baseline_name: str, baseline: float) -> None:
    ratio = baseline / ours if ours else float("inf")
    print(f"{name}: oorfix {ours:.2f}s, {baseline_name} {baseline:.2f}s -> {ratio:.1f}x")


def main() -> None:
    """Start the lab, run both benchmarks, print the ratios."""
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="oorfix-bench-") as tmp:
        directory = Path(tmp)
        hosts = [
            LabHost(f"bench-{n}", "api", f"127.0.50.{n + 1}", ("bench",), directory / f"h{n}")
            for n in range(1, HOSTS + 1)
        ]
        with Lab(directory, hosts) as lab:
            inventory = lab.write_inventory(directory / "inventory.yml")
            runbook = _runbook(directory)
            print(f"{HOSTS} hosts x {CHECKS} checks, best of {REPEAT}; sshd on loopback")
            ours = _best(lambda: _oorfix_fleet(lab, inventory, runbook))
            theirs = _best(lambda: _fabric_fleet(lab))
            _report("fleet detect", ours, "fabric ThreadingGroup", theirs)
            unbatched = _best(lambda: _oorfix_fleet(lab, inventory, runbook, batch=False))
            _report("fleet detect", ours, "oorfix with one exec per check", unbatched)
            ours = _best(lambda: _oorfix_capture(lab))
            theirs = _best(lambda: _fabric_capture(lab))
            _report(f"{OUTPUT_MIB} MiB output capture", ours, "fabric Connection.run", theirs)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
