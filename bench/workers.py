"""The distributed case of `make bench`: oorfix diagnose on Celery workers, and a projection.

``Workers`` starts a real redis-server on loopback and WORKERS `oorfix worker` processes
(threads pool, WORKER_CONCURRENCY each), all sharing a signing key; the tool
``oorfix-workers`` is then the same `oorfix diagnose` as ``oorfix`` with ``--workers``. Its
CPU is reported on both sides: the controller process, and the workers (read from
/proc/PID/stat before and after, since workers outlive the run).

``projection`` turns the figures of the largest N into the time of a 20,000-host diagnose
with W workers, and names what limits it: the workers' CPU (hosts per worker core), the
controller's CPU (one Python process dispatching and collecting), or the broker.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from oorfix.lab.redisserver import RedisServer, start_redis

WORKERS = 2
WORKER_CONCURRENCY = 25  # two workers x 25 threads: the 50 forks of the local case
TICKS = os.sysconf("SC_CLK_TCK")
FLEET = 20_000
REDIS_OPS_PER_SECOND = 50_000.0  # a conservative single-core Redis figure (redis-benchmark)


def process_cpu(pid: int) -> float:
    """User+system CPU seconds of a running process (every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class Workers:
    """A redis-server and WORKERS `oorfix worker` processes, for the length of the bench."""

    def __init__(self, directory: Path, python: Path, repo: Path) -> None:
        self.directory, self.python, self.repo = directory, python, repo
        self.key = secrets.token_hex(24)
        self.redis: RedisServer | None = None
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        """What a controller or a worker needs in its environment."""
        assert self.redis is not None
        return {
            **os.environ,
            "OORFIX_WORKERS": self.redis.url,
            "OORFIX_WORKERS_PASSWORD": self.redis.password,
            "OORFIX_WORKER_KEY": self.key,
        }

    def __enter__(self) -> Workers:
        self.redis = start_redis(self.directory / "redis")
        try:
            for n in range(WORKERS):
                log = (self.directory / f"worker-{n}.log").open("wb")
                argv = [
                    str(self.python), "-m", "oorfix", "worker", "-c", str(WORKER_CONCURRENCY),
                    "-n", f"bench{n}@localhost", "--loglevel", "INFO", "--chdir", str(self.repo),
                ]  # fmt: skip
                self.procs.append(subprocess.Popen(argv, env=self.env, stdout=log, stderr=log))
            for n in range(WORKERS):
                self._ready(n)
        except BaseException:
            self.__exit__()  # a worker that did not start leaves neither Redis nor the others
            raise
        return self

    def _ready(self, n: int, deadline: float = 60.0) -> None:
        log = self.directory / f"worker-{n}.log"
        end = time.monotonic() + deadline
        while b" ready." not in log.read_bytes():
            if time.monotonic() > end or self.procs[n].poll() is not None:
                raise SystemExit(f"oorfix worker {n} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)

    def cpu(self) -> float:
        """CPU seconds the workers have used so far."""
        return sum(process_cpu(p.pid) for p in self.procs)

    def __exit__(self, *_: object) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.redis is not None:
            self.redis.stop()


def projection(
    small: int,
    small_cpu: tuple[float, float],
    n: int,
    wall: float,
    cpu: tuple[float, float],
    result_bytes: float,
) -> Sequence[str]:
    """Lines projecting a FLEET-host diagnose from runs of ``small`` and ``n`` hosts: the
    cost of one more host is the difference between them (start-up cancels out)."""
    (controller_cpu, worker_cpu), (small_controller, small_worker) = cpu, small_cpu
    extra = max(1, n - small)
    per_host_worker = max(worker_cpu - small_worker, 1e-6) / extra
    per_host_controller = max(controller_cpu - small_controller, 1e-6) / extra
    controller_rate = 1 / per_host_controller  # hosts/s one controller process can take in
    # Per host: send, STARTED, result, liveness and state polls (~6 round trips at a 0.5 s poll
    # for a host that takes about a second): the broker is far from its limit.
    broker_rate = REDIS_OPS_PER_SECOND / 6
    lines = [
        f"each host more (N={small} to {n}): controller {1000 * per_host_controller:.1f} ms "
        f"CPU, workers {1000 * per_host_worker:.1f} ms CPU, result {result_bytes / 1024:.1f} "
        f"KiB; {n / wall:.1f} hosts/s at N={n} on this 2-core machine",
        f"projection for {FLEET:,} hosts, one worker process per core "
        f"({WORKER_CONCURRENCY} threads each):",
    ]
    for workers in (4, 16, 64):
        worker_rate = workers / per_host_worker
        rate = min(worker_rate, controller_rate, broker_rate)
        limit = (
            "workers' CPU" if rate == worker_rate
            else "the controller's CPU" if rate == controller_rate
            else "the broker"
        )  # fmt: skip
        minutes = FLEET / rate / 60
        lines.append(
            f"  W={workers:>3}: {rate:7.0f} hosts/s -> {minutes:5.1f} min, limited by {limit}; "
            f"results {FLEET * result_bytes / 2**20:.0f} MiB through Redis"
        )
    return lines
