"""The lab's service manager, behind the ``systemctl`` and ``journalctl`` command interfaces.

A lab host has no systemd, so its PATH holds small ``systemctl``/``journalctl`` shims that
run this module. Units live in ``$OORFIX_LAB_STATE/units/NAME.json`` (argv and environment);
a running service is a pid file holding the pid and the process start time, so a recycled
pid is never mistaken for the service (and never killed). The journal is a log file per unit
with systemd-style lines, so runbooks grep it as they would ``journalctl`` output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STOP_TIMEOUT = 5.0
# Services started by this process: kept so they are reaped when stopped (and so CPython
# does not warn about a collected Popen whose daemon runs on).
_children: dict[int, subprocess.Popen[bytes]] = {}
START_SETTLE = 0.3  # a service that dies this soon after start did not start


@dataclass(frozen=True)
class Unit:
    """One service of a lab host."""

    state: Path
    name: str

    @property
    def spec_file(self) -> Path:
        """Where the unit's argv and environment are kept."""
        return self.state / "units" / f"{self.name}.json"

    @property
    def pid_file(self) -> Path:
        """Where the running process is recorded: ``pid starttime``."""
        return self.state / "run" / f"{self.name}.pid"

    @property
    def journal(self) -> Path:
        """The unit's log, journalctl's source."""
        return self.state / "journal" / f"{self.name}.log"

    def exists(self) -> bool:
        """Whether the unit is defined on this host."""
        return self.spec_file.is_file()


def define(
    state: Path,
    name: str,
    argv: list[str],
    env: dict[str, str] | None = None,
    netns: str | None = None,
) -> Unit:
    """Define (or redefine) a unit on a lab host, optionally inside its network namespace."""
    unit = Unit(state, name)
    unit.spec_file.parent.mkdir(parents=True, exist_ok=True)
    unit.spec_file.write_text(json.dumps({"argv": argv, "env": env or {}, "netns": netns}))
    return unit


def in_netns(name: str) -> bool:
    """Whether this process already runs in network namespace ``name``."""
    try:
        return os.stat(f"/run/netns/{name}").st_ino == os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return False


def journal(unit: Unit, message: str) -> None:
    """Append a systemd-style line to the unit's journal."""
    unit.journal.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().astimezone().strftime("%b %d %H:%M:%S")
    with unit.journal.open("a") as log:
        log.write(f"{stamp} lab systemd[1]: {unit.name}.service: {message}\n")


def _reap(pid: int) -> None:
    proc = _children.pop(pid, None)
    if proc is not None:
        proc.wait(STOP_TIMEOUT)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is dead, whatever kill(0) says
        return None
    return fields[19]


def running_pid(unit: Unit) -> int | None:
    """The pid of the unit's process if it is alive and still the one we started."""
    try:
        pid_text, started = unit.pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _start_time(pid) == started else None


@contextlib.contextmanager
def _job(unit: Unit) -> Iterator[None]:
    """One start or stop of a unit at a time, across processes, as systemd queues its jobs:
    two starts at once would otherwise both start it, and lose one process to no pid file."""
    unit.pid_file.parent.mkdir(parents=True, exist_ok=True)
    with unit.pid_file.with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def start(unit: Unit) -> bool:
    """Start the unit unless it runs; False when it is undefined or dies at once."""
    with _job(unit):
        return _start(unit)


def _start(unit: Unit) -> bool:
    if running_pid(unit) is not None:
        return True
    if not unit.exists():
        return False
    spec = json.loads(unit.spec_file.read_text())
    unit.pid_file.parent.mkdir(parents=True, exist_ok=True)
    unit.journal.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OORFIX_LAB_STATE": str(unit.state), **spec["env"]}
    argv = list(spec["argv"])
    netns = spec.get("netns")
    if netns and not in_netns(netns):
        argv = ["ip", "netns", "exec", netns, *argv]  # it execs: the pid stays the server's
    with unit.journal.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            cwd=unit.state,
        )
    _children[proc.pid] = proc
    started = _start_time(proc.pid)
    unit.pid_file.write_text(f"{proc.pid} {started}\n")
    journal(unit, f"Started {unit.name}.service (pid {proc.pid}).")
    time.sleep(START_SETTLE)
    if proc.poll() is not None:
        _children.pop(proc.pid, None)
        journal(unit, f"Main process exited, code=exited, status={proc.returncode}/FAILURE")
        return False
    return True


def stop(unit: Unit) -> None:
    """Stop the unit: TERM, then KILL after a deadline."""
    with _job(unit):
        _stop(unit)


def _stop(unit: Unit) -> None:
    pid = running_pid(unit)
    if pid is None:
        unit.pid_file.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGCONT)  # a hung (stopped) process only acts on TERM once resumed
    deadline = time.monotonic() + STOP_TIMEOUT
    while running_pid(unit) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if running_pid(unit) is not None:
        os.kill(pid, signal.SIGKILL)
    _reap(pid)
    unit.pid_file.unlink(missing_ok=True)
    journal(unit, f"Stopped {unit.name}.service.")


def crash(unit: Unit, oom: bool = True) -> bool:
    """Kill the unit's process the way the kernel's OOM killer does, and journal it."""
    pid = running_pid(unit)
    if pid is None:
        return False
    if oom:
        journal(unit, f"Out of memory: Killed process {pid} ({unit.name}) total-vm:812344kB")
    os.kill(pid, signal.SIGKILL)
    _reap(pid)
    deadline = time.monotonic() + STOP_TIMEOUT
    while running_pid(unit) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    journal(unit, "Main process exited, code=killed, status=9/KILL")
    journal(unit, "Failed with result 'oom-kill'." if oom else "Failed with result 'signal'.")
    return True


def _names(args: list[str]) -> list[str]:
    names = [a for a in args if not a.startswith("-")]
    return [n.removesuffix(".service") for n in names]


def _status(unit: Unit) -> int:
    pid = running_pid(unit)
    state = "active (running)" if pid else "inactive (dead)"
    print(
        f"* {unit.name}.service - lab unit\n     Active: {state}"
        + (f"\n   Main PID: {pid}" if pid else "")
    )
    return 0 if pid else 3


def systemctl(state: Path, args: list[str]) -> int:
    """The subset of ``systemctl`` runbooks use: start, stop, restart, reload, is-active, status."""
    if not args:
        print("systemctl: missing verb", file=sys.stderr)
        return 1
    verb, rest = args[0], args[1:]
    quiet = "--quiet" in rest or "-q" in rest
    units = [Unit(state, n) for n in _names(rest)]
    if verb == "is-active":
        alive = [running_pid(u) is not None for u in units]
        if not quiet:
            print("\n".join("active" if a else "inactive" for a in alive))
        return 0 if alive and all(alive) else 3
    if verb == "status":
        return max((_status(u) for u in units), default=0)
    if verb in ("start", "stop", "restart", "reload"):
        return _control(verb, units)
    print(f"systemctl: unknown verb {verb!r} in the lab", file=sys.stderr)
    return 1


def _control(verb: str, units: list[Unit]) -> int:
    rc = 0
    for unit in units:
        if not unit.exists():
            print(
                f"Failed to {verb} {unit.name}.service: Unit {unit.name}.service not found.",
                file=sys.stderr,
            )
            rc = 5
            continue
        if verb in ("stop", "restart", "reload"):
            stop(unit)
        if verb != "stop" and not start(unit):
            print(f"Job for {unit.name}.service failed.", file=sys.stderr)
            rc = 1
    return rc


def journalctl(state: Path, args: list[str]) -> int:
    """``journalctl -u NAME [-n N]``: the tail of the unit's journal."""
    name, lines = None, 10
    for i, arg in enumerate(args):
        if arg == "-u" and i + 1 < len(args):
            name = args[i + 1].removesuffix(".service")
        elif arg == "-n" and i + 1 < len(args):
            lines = int(args[i + 1])
    if name is None:
        print("journalctl: the lab keeps journals per unit; use -u NAME", file=sys.stderr)
        return 1
    path = Unit(state, name).journal
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    print("\n".join(text[-lines:]) if text else "-- No entries --")
    return 0


def main() -> None:
    """Entry point of the shims: ``python -m oorfix.lab.services systemctl|journalctl ARGS``."""
    state = Path(os.environ.get("OORFIX_LAB_STATE", "."))
    tool, args = sys.argv[1], sys.argv[2:]
    handler = systemctl if tool == "systemctl" else journalctl
    sys.exit(handler(state, args))


if __name__ == "__main__":
    main()
