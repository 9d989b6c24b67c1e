"""`make bench`: fleet-wide checks with oorfix and its baselines, side by side, in one run.

Workload: CHECKS small read-only checks on each of N hosts (N = 1, 10, 50, 200), every host a
loopback address of one real sshd on this machine, logged into as a light target account: a
dedicated user whose login shell is a plain /bin/sh and whose home holds no rc files (as
service accounts on real hosts do; made when run as root, else the current user, labelled).

Tools, each run as its own process (so start-up counts), each in its own virtualenv:
- oorfix diagnose, one runbook whose detect holds the checks (`--forks 50`);
- fabric ThreadingGroup, one script of every check per host;
- fabric ThreadingGroup, one exec per check;
- pyinfra, one `server.shell` operation with the checks;
- oorfix diagnose on Celery workers (`--workers`, `workers.py`): two `oorfix worker`
  processes on this machine behind a real Redis, to show the overhead of a distributed run
  against the local engine on the same hosts, and project a 20,000-host diagnose.
Every tool's output is validated (every check on every host came back with exit status 0).

A second, labelled scenario (``--heavy-sizes``, default N=200; root only) runs oorfix, fabric
one-script and pyinfra against hosts whose target account's login shell is bash with a
~/.bashrc of about 80 ms of CPU, which bash reads for every command sshd runs: there every
exec a tool makes costs the host that much more.

Reported per tool and N, each the median of REPEAT runs (5; 3 for the heavy-shell scenario),
taken figure by figure: the wall time, the controller's CPU per host
(the tool process's user+system time), and the sshd side's CPU per host (the sshd master's
reaped children: per-connection sshd, the session shell and the checks, and, as sshd runs as a
child subreaper, whatever a session left behind). At N=200, oorfix's
peak open fds and threads are sampled. Ratios are against the baselines of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from oorfix.lab.sshd import SshdServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workers import Workers, projection

REPO = Path(__file__).resolve().parents[1]
OORFIX_PYTHON = REPO / ".venv" / "bin" / "python"
BASELINE_PYTHON = REPO / ".venv-bench" / "bin" / "python"
BENCH_USER = "oorfixbench"
# The second, labelled scenario: a target account whose login shell is bash with an rc file
# that costs about 80 ms of CPU per exec (bash reads ~/.bashrc for commands run by sshd), as
# on hosts where a team's shell set-up runs for every session. Root only.
HEAVY_USER = "oorfixbenchrc"
HEAVY_RC = "i=0; while [ $i -lt 16000 ]; do i=$((i+1)); done\n"
HEAVY_SIZES = (200,)
HEAVY_TOOLS = ("oorfix", "fabric-script", "pyinfra")
SIZES = (1, 10, 50, 200)
FORKS = 50
CHECKS = (
    "test -d /tmp",
    "cat /proc/loadavg",
    "uptime",
    "df -P /",
    "test -r /etc/hostname",
    "id -u",
    "uname -r",
    "head -3 /proc/meminfo",
    "date +%s",
    "true",
)
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measure:
    """One run of one tool: wall seconds, controller and sshd CPU seconds, peaks."""

    wall: float
    controller_cpu: float
    sshd_cpu: float
    peak_fds: int = 0
    peak_threads: int = 0
    peak_sockets: int = 0
    worker_cpu: float = 0.0  # oorfix-workers: the workers' CPU seconds
    result_bytes: float = 0.0  # oorfix-workers: the hosts' results, JSON bytes per host


# -- the target account and hosts -----------------------------------------------------------


def light_account(home: Path) -> str:
    """A user with /bin/sh and an empty home (root only); else the current user."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.getuid()).pw_name
    try:
        pwd.getpwnam(BENCH_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--shell",
                "/bin/sh",
                "--home-dir",
                str(home),
                "--no-create-home",
                BENCH_USER,
            ],
            check=True,
        )
    # "*": no password, but not locked ("!"), which sshd refuses even for key logins.
    usermod = ["usermod", "--home", str(home), "--shell", "/bin/sh", "--password", "*"]
    subprocess.run([*usermod, BENCH_USER], check=True)
    home.mkdir(mode=0o755, exist_ok=True)
    return BENCH_USER


def heavy_account(home: Path) -> str | None:
    """A user whose bash reads a costly ~/.bashrc for every command (root only), else None."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(HEAVY_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", HEAVY_USER], check=True)
    usermod = ["usermod", "--home", str(home), "--shell", "/bin/bash", "--password", "*"]
    subprocess.run([*usermod, HEAVY_USER], check=True)
    home.mkdir(mode=0o755, exist_ok=True)
    (home / ".bashrc").write_text(HEAVY_RC)
    (home / ".bashrc").chmod(0o644)
    return HEAVY_USER


# sshd runs as a child subreaper (prctl, kept across exec): a process a session leaves behind
# (a batch's watchdog, its last sleep) is then reaped by the sshd master rather than by init,
# so its CPU counts on the sshd side too, as it does on a real host.
SUBREAPER = (
    sys.executable,
    "-c",
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0):\n"  # PR_SET_CHILD_SUBREAPER
    "    sys.exit('prctl(PR_SET_CHILD_SUBREAPER) failed')\n"
    "os.execv(sys.argv[1], sys.argv[1:])",
)


def sshd_cpu(pid: int) -> float:
    """CPU seconds of the sshd master's reaped children (sessions and their commands)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime


def sshd_settled(pid: int, deadline: float = 30.0) -> None:
    """Wait until the sshd master has reaped every session (their CPU then counts)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if not children:
            return
        time.sleep(0.01)


class Hosts:
    """N loopback hosts behind several sshds (one sshd listens on at most 16 addresses),
    sharing one host key and one client key; started and stopped together."""

    PER_SSHD = 16

    def __init__(self, directory: Path, addresses: Sequence[str], user: str) -> None:
        self.directory, self.user = directory, user
        chunks = [addresses[i : i + self.PER_SSHD] for i in range(0, len(addresses), self.PER_SSHD)]
        self.servers = [
            SshdServer(directory / f"sshd-{i}", chunk, user=user, command_prefix=SUBREAPER)
            for i, chunk in enumerate(chunks)
        ]
        self.known_hosts = directory / "known_hosts"

    @property
    def client_key(self) -> Path:
        """The one client key every sshd accepts."""
        return self.servers[0].client_key

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """Every host's address and port, in order."""
        return [(a, server.port) for server in self.servers for a in server.addresses]

    @property
    def pids(self) -> list[int]:
        """The sshd masters."""
        return [server.pid for server in self.servers if server.pid is not None]

    def __enter__(self) -> Hosts:
        first = self.servers[0]
        for server in self.servers:
            server.directory.mkdir(mode=0o755)
            if server is not first:  # the same keys everywhere: one key file for the tools
                for key in (first.host_key, first.client_key):
                    for suffix in ("", ".pub"):
                        source = key.with_name(key.name + suffix)
                        shutil.copy2(source, server.directory / source.name)
            server.start()
            # sshd reads the authorized key as the target user.
            (server.directory / "client_key.pub").chmod(0o644)
        self.known_hosts.write_text("".join(s.known_hosts.read_text() for s in self.servers))
        return self

    def __exit__(self, *_: object) -> None:
        for server in self.servers:
            server.stop()

    def inventory_yaml(self) -> str:
        """An Ansible YAML inventory of every host."""
        lines = ["all:", "  hosts:"]
        for i, (address, port) in enumerate(self.endpoints):
            lines += [
                f"    h{i}:",
                f"      ansible_host: {address}",
                f"      ansible_port: {port}",
                f"      ansible_user: {self.user}",
                f"      ansible_ssh_private_key_file: {self.client_key}",
            ]
        return "\n".join(lines) + "\n"


# -- running one tool -----------------------------------------------------------------------


class Sampler:
    """Samples a process's open fds, sockets and threads until stopped (the peaks)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.fds, self.sockets, self.threads = pid, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                fds = os.listdir(f"/proc/{self.pid}/fd")
                self.fds = max(self.fds, len(fds))
                self.sockets = max(self.sockets, sum(map(self._is_socket, fds)))
                status = Path(f"/proc/{self.pid}/status").read_text()
                threads = next(line for line in status.splitlines() if line.startswith("Threads:"))
                self.threads = max(self.threads, int(threads.split()[1]))
            except (OSError, StopIteration):
                pass
            self._stop.wait(0.002)

    def _is_socket(self, fd: str) -> bool:
        try:
            return os.readlink(f"/proc/{self.pid}/fd/{fd}").startswith("socket:")
        except OSError:
            return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def measure(
    argv: Sequence[str],
    sshd_pids: Sequence[int],
    validate: Callable[[str, str], None],
    sample: bool,
    env: dict[str, str] | None = None,
    workers: Workers | None = None,
) -> Measure:
    """Run one tool process; its wall time, its CPU, the sshd side's CPU, validated output."""
    for pid in sshd_pids:
        sshd_settled(pid)
    before_sshd = sum(sshd_cpu(pid) for pid in sshd_pids)
    before_workers = workers.cpu() if workers is not None else 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    sampler = Sampler(proc.pid) if sample else None
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    if sampler is not None:
        sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} exited {proc.returncode}:\n{err[-2000:]}{out[-3000:]}")
    validate(out, err)
    for pid in sshd_pids:
        sshd_settled(pid)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measure(
        wall,
        cpu,
        sum(sshd_cpu(pid) for pid in sshd_pids) - before_sshd,
        sampler.fds if sampler else 0,
        sampler.threads if sampler else 0,
        worker_cpu=(workers.cpu() - before_workers) if workers is not None else 0.0,
        peak_sockets=sampler.sockets if sampler else 0,
    )


# -- the tools ------------------------------------------------------------------------------


class Bench:
    """The files each tool reads for the first N hosts, and the command line of each tool."""

    def __init__(self, directory: Path, hosts: Hosts, n: int) -> None:
        self.directory, self.hosts, self.n = directory, hosts, n
        endpoints = hosts.endpoints[:n]
        self.inventory = directory / f"inventory-{n}.yml"
        everyone = hosts.inventory_yaml().splitlines()
        self.inventory.write_text("\n".join(everyone[: 2 + 5 * n]) + "\n")
        self.spec = directory / f"hosts-{n}.json"
        self.spec.write_text(
            json.dumps(
                {
                    "hosts": endpoints,
                    "user": hosts.user,
                    "key": str(hosts.client_key),
                    "known_hosts": str(hosts.known_hosts),
                    "checks": list(CHECKS),
                }
            )
        )
        self.record = directory / f"record-{n}.json"
        common = {
            "ssh_user": hosts.user,
            "ssh_key": str(hosts.client_key),
            "ssh_known_hosts_file": str(hosts.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        }
        entries = [(a, {**common, "ssh_port": port}) for a, port in endpoints]
        self.pyinfra_inventory = directory / f"pyinfra-inventory-{n}.py"
        self.pyinfra_inventory.write_text(f"hosts = {entries!r}\n")
        self.pyinfra_deploy = directory / "pyinfra_deploy.py"
        self.pyinfra_deploy.write_text(
            "from pyinfra.operations import server\n"
            f"server.shell(name='checks', commands={list(CHECKS)!r})\n"
        )

    def oorfix(self) -> list[str]:
        """oorfix diagnose over the bench runbook."""
        return [
            str(OORFIX_PYTHON), "-m", "oorfix", "diagnose", "-q",
            "-i", str(self.inventory), "--runbooks", str(self.directory / "runbooks"),
            "--known-hosts", str(self.hosts.known_hosts), "--forks", str(FORKS),
            "--state-dir", str(self.directory / "state"), "--json", str(self.record),
        ]  # fmt: skip

    def check_oorfix(self, out: str, err: str) -> None:
        """Every host healthy, every check passed, in the run record."""
        record = json.loads(self.record.read_text())
        results = record["results"]
        self.result_bytes = len(json.dumps(results, separators=(",", ":"))) / self.n
        passed = sum(
            1
            for r in results
            for s in r["steps"]
            if s["phase"] == "detect" and s["status"] == "passed"
        )
        healthy = sum(r["status"] == "healthy" for r in results)
        if (healthy, passed) != (self.n, self.n * len(CHECKS)):
            raise SystemExit(f"oorfix: {healthy} healthy, {passed} checks passed of {self.n}")
        self.record.unlink()

    def baseline(self, tool: str) -> list[str]:
        """A baseline tool over the same hosts."""
        if tool == "pyinfra":
            pyinfra = BASELINE_PYTHON.parent / "pyinfra"
            return [str(pyinfra), str(self.pyinfra_inventory), str(self.pyinfra_deploy), "-y",
                    "--parallel", str(FORKS)]  # fmt: skip
        return [str(BASELINE_PYTHON), str(REPO / "bench" / "baselines.py"), tool, str(self.spec)]

    def check_pyinfra(self, out: str, err: str) -> None:
        """pyinfra's own summary: the operation succeeded on every host (a check that exits
        non-zero fails it), none in error."""
        lines = (out + err).splitlines()
        total = next((line.split() for line in lines if "Grand total" in line), [])
        if total[2:5] != [str(self.n), str(self.n), "-"]:
            raise SystemExit(
                f"pyinfra output not valid for {self.n} hosts: {total}\n{(out + err)[-1500:]}"
            )

    def check_baseline(self, out: str, err: str) -> None:
        """Every host and every check came back with exit status 0."""
        found = json.loads(out.strip().splitlines()[-1])
        if found != {"hosts_ok": self.n, "checks_ok": self.n * len(CHECKS)}:
            raise SystemExit(f"baseline output not valid: {found} for {self.n} hosts")


def write_runbook(directory: Path) -> None:
    """The bench runbook and the site catalogue entry its fault id needs."""
    folder = directory / "runbooks"
    folder.mkdir()
    (folder / "catalog.yml").write_text(
        "faults:\n  - id: bench.sweep\n    summary: ten read-only checks\n"
    )
    lines = ["name: bench-checks", "fault: bench.sweep", "hosts: all", "detect:"]
    lines += [f"  - run: {json.dumps(check)}" for check in CHECKS]
    (folder / "bench.yml").write_text("\n".join(lines) + "\n")


# -- the report -----------------------------------------------------------------------------


def median(runs: Sequence[Measure]) -> Measure:
    """Each figure's median over the runs, on its own (the run of median wall time need not
    have the median CPU); the peaks, sampled in one run only, their highest."""

    def middle(figure: Callable[[Measure], float]) -> float:
        return statistics.median(figure(m) for m in runs)

    return Measure(
        wall=middle(lambda m: m.wall),
        controller_cpu=middle(lambda m: m.controller_cpu),
        sshd_cpu=middle(lambda m: m.sshd_cpu),
        peak_fds=max(m.peak_fds for m in runs),
        peak_threads=max(m.peak_threads for m in runs),
        peak_sockets=max(m.peak_sockets for m in runs),
        worker_cpu=middle(lambda m: m.worker_cpu),
        result_bytes=middle(lambda m: m.result_bytes),
    )


def main() -> None:
    """Start the hosts, measure every tool at every size, print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--heavy-repeat", type=int, default=3)
    parser.add_argument(
        "--tools", default="oorfix,oorfix-workers,fabric-script,fabric-exec,pyinfra"
    )
    parser.add_argument("--heavy-sizes", default=",".join(map(str, HEAVY_SIZES)),
                        help="sizes of the heavy-shell scenario ('' to skip it)")  # fmt: skip
    parser.add_argument("--heavy-tools", default=",".join(HEAVY_TOOLS))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = args.tools.split(",")
    heavy_sizes = [int(s) for s in args.heavy_sizes.split(",") if s]
    heavy_tools = args.heavy_tools.split(",")
    # The baselines run from the bytecode pip compiled when it installed them; oorfix is an
    # editable install, whose bytecode is written on first import, unless PYTHONDONTWRITEBYTECODE
    # says otherwise: then every run would compile every module again. Compile it as pip would.
    subprocess.run([str(OORFIX_PYTHON), "-m", "compileall", "-q", str(REPO / "oorfix")], check=True)
    heavy: Table | None = None
    with tempfile.TemporaryDirectory(prefix="oorfix-bench-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # sshd reads the client key's .pub as the target user
        user = light_account(directory / "home")
        addresses = [f"127.0.{60 + i // 250}.{i % 250 + 1}" for i in range(max(sizes))]
        write_runbook(directory)
        with Hosts(directory, addresses, user) as hosts, _workers(directory, tools) as workers:
            shell = pwd.getpwnam(user).pw_shell
            print(f"# {len(CHECKS)} checks per host; target account {user} (shell {shell}); "
                  f"{len(hosts.servers)} sshd on loopback; median of {args.repeat}; "
                  f"oorfix --forks {FORKS}")  # fmt: skip
            table = run_all(directory, hosts, sizes, tools, args.repeat, workers)
        heavy = _heavy(directory / "heavy", heavy_sizes, heavy_tools, args.heavy_repeat)
    report(table, sizes, tools)
    if heavy is not None:
        print(f"\n# Heavy-shell scenario: login shell bash, ~/.bashrc of about 80 ms CPU per "
              f"exec (user {HEAVY_USER}); median of {args.heavy_repeat}")  # fmt: skip
        report(heavy, heavy_sizes, heavy_tools)
        _check_heavy(table, heavy, heavy_sizes)


def _heavy(
    directory: Path, sizes: Sequence[int], tools: Sequence[str], repeat: int
) -> Table | None:
    """The heavy-shell scenario on hosts of its own, or None when it cannot or need not run."""
    if not sizes:
        return None
    directory.mkdir(mode=0o755)
    user = heavy_account(directory / "home")
    if user is None:
        print("# heavy-shell scenario skipped: it needs root to make its user", file=sys.stderr)
        return None
    write_runbook(directory)
    addresses = [f"127.0.{70 + i // 250}.{i % 250 + 1}" for i in range(max(sizes))]
    print(f"# heavy-shell scenario: {user} (bash, ~/.bashrc per exec)", file=sys.stderr)
    with Hosts(directory, addresses, user) as hosts:
        return run_all(directory, hosts, sizes, tools, repeat, None)


def _check_heavy(light: Table, heavy: Table, sizes: Sequence[int]) -> None:
    """The rc file ran for every exec: one script per host costs the hosts about 80 ms more."""
    n = max(sizes)
    if ("fabric-script", n) not in light or ("fabric-script", n) not in heavy:
        return
    extra = (heavy[("fabric-script", n)].sshd_cpu - light[("fabric-script", n)].sshd_cpu) / n
    if extra < 0.04:
        raise SystemExit(f"heavy-shell scenario not valid: the rc file cost {extra * 1000:.0f} ms")


def _workers(directory: Path, tools: Sequence[str]) -> contextlib.AbstractContextManager[Any]:
    """The Redis and workers of the distributed case, when it is measured."""
    if "oorfix-workers" not in tools:
        return contextlib.nullcontext()
    return Workers(directory, OORFIX_PYTHON, REPO)


Table = dict[tuple[str, int], Measure]


def _line(m: Measure, n: int) -> str:
    per_host = f"controller {1000 * m.controller_cpu / n:6.1f} ms/host"
    return f"wall {m.wall:6.2f}s  {per_host}  sshd {1000 * m.sshd_cpu / n:6.1f} ms/host"


def run_all(
    directory: Path,
    hosts: Hosts,
    sizes: Sequence[int],
    tools: Sequence[str],
    repeat: int,
    workers: Workers | None,
) -> Table:
    """Every tool at every size, interleaved so that drift hits every tool alike."""
    pids = hosts.pids
    table: Table = {}
    for n in sizes:
        bench = Bench(directory, hosts, n)
        runs: dict[str, list[Measure]] = {t: [] for t in tools}
        for _ in range(repeat):
            for tool in tools:
                if tool == "oorfix":
                    m = measure(bench.oorfix(), pids, bench.check_oorfix, sample=n == max(sizes))
                elif tool == "oorfix-workers":
                    assert workers is not None
                    argv, check = bench.oorfix(), bench.check_oorfix
                    m = measure(argv, pids, check, False, workers.env, workers)
                    m = replace(m, result_bytes=bench.result_bytes)
                else:
                    check = bench.check_pyinfra if tool == "pyinfra" else bench.check_baseline
                    m = measure(bench.baseline(tool), pids, check, sample=False)
                runs[tool].append(m)
        for tool in tools:
            table[(tool, n)] = median(runs[tool])
            print(
                f"  {tool:<14} N={n:<4} {_line(table[(tool, n)], n)}", file=sys.stderr, flush=True
            )
    return table


def report(table: Table, sizes: Sequence[int], tools: Sequence[str]) -> None:
    """The Markdown table and the ratios against each baseline."""
    big, small = max(sizes), min(sizes)
    head = " | ".join(f"N={n}" for n in sizes)
    columns = f"sshd CPU ms/host @{big} | controller CPU ms/host @{big}"
    print(f"\n| tool (median wall s) | {head} | {columns} |")
    print("|---" * (len(sizes) + 3) + "|")
    for tool in tools:
        walls = " | ".join(f"{table[(tool, n)].wall:.2f}" for n in sizes)
        m = table[(tool, big)]
        sshd, controller = 1000 * m.sshd_cpu / big, 1000 * m.controller_cpu / big
        print(f"| {tool} | {walls} | {sshd:.0f} | {controller:.0f} |")
    if "oorfix-workers" in tools:
        dist = table[("oorfix-workers", big)]
        print(f"\noorfix on workers at N={big}: workers' CPU {1000 * dist.worker_cpu / big:.0f} "
              f"ms/host (sshd-side columns above are the same hosts' cost)")  # fmt: skip
        if "oorfix" in tools:
            local = table[("oorfix", big)]
            extra = (dist.wall - local.wall) / big
            print(f"distributed overhead at N={big}: {1000 * extra:+.1f} ms/host wall, "
                  f"{dist.wall / local.wall:.2f}x the local engine on the same hosts")  # fmt: skip
        low = table[("oorfix-workers", small)]
        low_cpu = (low.controller_cpu, low.worker_cpu)
        cpu = (dist.controller_cpu, dist.worker_cpu)
        for line in projection(small, low_cpu, big, dist.wall, cpu, dist.result_bytes):
            print(line)
    if "oorfix" not in tools:
        return
    ours = table[("oorfix", big)]
    print(f"\noorfix at N={big} with --forks {FORKS}: peak {ours.peak_sockets} open sockets, "
          f"{ours.peak_fds} fds, {ours.peak_threads} threads")  # fmt: skip
    for tool in tools:
        if tool.startswith("oorfix"):
            continue
        theirs = table[(tool, big)]
        print(
            f"N={big} vs {tool}: wall {ours.wall / theirs.wall:.2f}x theirs, sshd CPU "
            f"{ours.sshd_cpu / theirs.sshd_cpu:.2f}x, controller CPU "
            f"{ours.controller_cpu / theirs.controller_cpu:.2f}x"
        )
        if small != big:
            gap = table[("oorfix", small)].wall - table[(tool, small)].wall
            print(f"N={small} vs {tool}: {gap:+.2f}s")


if __name__ == "__main__":
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        raise SystemExit("sshd not found: install openssh-server (make system-deps)")
    main()
