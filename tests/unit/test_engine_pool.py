"""The engine's host pool: ``--forks`` bounds how many hosts run at once and how many
connections are open, and one host that cannot be reached becomes that host's result without
stopping the others."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from oorfix.errors import ConnectError
from oorfix.inventory.core import Inventory, load_inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import CommandResult, Outcome, RunResult
from oorfix.run.engine import EngineOptions
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import LoadedRunbook
from oorfix.transport.shell import Become

from .fakes import make_engine

HOSTS = [f"api-{n:02d}" for n in range(1, 11)]

RUNBOOK = """
name: api-check
fault: software.service_interruption
hosts: payment_api
detect:
  - name: health
    run: check-health
remediate:
  - run: restart-api
"""


@dataclass
class Meter:
    """Counts the ``run`` calls in progress and the open connections, and the most of each.

    The first ``together`` commands wait for each other at a barrier, so the test proves that
    that many run at once without relying on how threads happen to be scheduled.
    """

    together: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: int = 0
    most: int = 0
    open: int = 0
    most_open: int = 0
    ran: list[str] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    barrier: threading.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self.barrier = threading.Barrier(self.together)

    def enter(self, host: str) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.ran.append(host)
            first = len(self.ran) <= self.together
        if first:
            self.barrier.wait(timeout=60)

    def opened(self, change: int) -> None:
        with self.lock:
            self.open += change
            self.most_open = max(self.most_open, self.open)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


@dataclass
class SlowTransport:
    """A Transport whose every command passes; ``refuse`` fails connect."""

    name: str
    meter: Meter
    refuse: bool = False
    connected: bool = False

    def connect(self) -> None:
        with self.meter.lock:
            self.meter.connects.append(self.name)
        if self.refuse:
            raise ConnectError(self.name, "connection refused by the fake")
        self.connected = True
        self.meter.opened(+1)

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        assert self.connected, "run() before connect()"
        self.meter.enter(self.name)
        self.meter.leave()
        return CommandResult(command=str(command), rc=0)

    def close(self) -> None:
        if self.connected:
            self.meter.opened(-1)
        self.connected = False


@dataclass
class Fleet:
    inventory: Inventory
    loaded: LoadedRunbook


def fleet(write: Callable[[str, str], Path], runbook: Callable[[str], LoadedRunbook]) -> Fleet:
    hosts = "\n".join(f"        {name}: {{ssh_host: 127.0.1.{n}}}" for n, name in enumerate(HOSTS))
    text = f"all:\n  children:\n    payment_api:\n      hosts:\n{hosts}\n"
    return Fleet(load_inventory(write("inventory.yml", text)), runbook(RUNBOOK))


def run(fleet: Fleet, meter: Meter, forks: int, refused: frozenset[str] = frozenset()) -> RunResult:
    def factory(host: Host) -> SlowTransport:
        return SlowTransport(host.name, meter, refuse=host.name in refused)

    jobs = [p.job for p in plan_run([fleet.loaded], fleet.inventory, {})]
    assert sorted(j.host.name for j in jobs) == HOSTS
    engine = make_engine(
        fleet.inventory, ConnectionPool(factory), EngineOptions(forks=forks, sleep=lambda _: None)
    )
    return engine.run(jobs)


def test_forks_bounds_how_many_hosts_run_at_once(
    write: Callable[[str, str], Path], runbook: Callable[[str], LoadedRunbook]
) -> None:
    meter = Meter(together=3)
    result = run(fleet(write, runbook), meter, forks=3)
    assert meter.most == 3
    # A host's connection closes when its jobs are done: open connections stay within forks.
    assert meter.most_open == 3
    assert meter.open == 0
    assert sorted(r.host for r in result.results) == HOSTS
    assert {r.status for r in result.results} == {Outcome.HEALTHY}
    assert sorted(meter.ran) == HOSTS  # one detect command per host, nothing more


def test_an_unreachable_host_does_not_stop_the_others(
    write: Callable[[str, str], Path], runbook: Callable[[str], LoadedRunbook]
) -> None:
    meter = Meter(together=1)
    refused = frozenset({"api-01", "api-05", "api-10"})
    result = run(fleet(write, runbook), meter, forks=3, refused=refused)
    statuses = {r.host: r.status for r in result.results}
    assert sorted(statuses) == HOSTS
    assert statuses == {
        name: Outcome.UNREACHABLE if name in refused else Outcome.HEALTHY for name in HOSTS
    }
    for host in result.results:
        if host.host in refused:
            assert host.error == "connection refused by the fake"
            assert host.steps == ()
    assert sorted(meter.ran) == sorted(set(HOSTS) - refused)
    assert sorted(meter.connects) == HOSTS  # each host is tried exactly once


def test_a_released_connection_stays_open_until_its_last_lease_ends() -> None:
    meter = Meter(together=1)
    pool = ConnectionPool(lambda host: SlowTransport(host.name, meter))
    lb = Host("lb-1")
    with pool.lease(lb) as transport:
        pool.release(lb)  # lb-1's own jobs are done while another host's step runs on it
        assert transport.run(Command("drain"), timeout=5).rc == 0
        assert meter.open == 1
    assert meter.open == 0
    pool.release(lb)  # releasing again is harmless
    assert meter.connects == ["lb-1"]


def test_a_released_connection_reopens_when_needed_again() -> None:
    meter = Meter(together=1)
    pool = ConnectionPool(lambda host: SlowTransport(host.name, meter))
    host = Host("api-01")
    pool.get(host)
    pool.release(host)
    assert meter.open == 0
    pool.get(host)
    assert (meter.open, meter.connects) == (1, ["api-01", "api-01"])
    pool.close()
    assert meter.open == 0
