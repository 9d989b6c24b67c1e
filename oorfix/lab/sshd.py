"""A real OpenSSH sshd on loopback addresses, for the test suite and the demo.

One sshd listens on one port of several 127.x addresses, each of which plays a host. Keys
come from ssh-keygen; readiness is the ``SSH-`` banner read on every address (never a
sleep); the known_hosts file it writes lets clients verify the host key for real.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

SSHD = Path("/usr/sbin/sshd")
DEFAULT_ADDRESSES = tuple(f"127.0.0.{n}" for n in range(2, 10))
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_PORT_ATTEMPTS = 5
_BIND_FAILED = ("Address already in use", "Cannot bind any address")


class SshdError(RuntimeError):
    """The lab sshd could not be started."""


class SshdServer:
    """An sshd serving ``addresses`` on one free port, with keys and config in ``directory``."""

    def __init__(
        self,
        directory: Path,
        addresses: Sequence[str] = DEFAULT_ADDRESSES,
        *,
        sshd: Path = SSHD,
        user: str | None = None,
        environments: Mapping[str, Mapping[str, str]] | None = None,
        force_commands: Mapping[str, str] | None = None,
        extra_config: Sequence[str] = (),
        command_prefix: Sequence[str] = (),
        port: int = 0,
    ) -> None:
        self.directory = Path(directory).resolve()
        self.addresses = tuple(addresses)
        self.sshd = sshd
        self.user = user or getpass.getuser()
        # Per address: variables sshd sets for sessions there (a lab host's state and PATH).
        self.environments = dict(environments or {})
        # Per address: a command sessions there run instead (a lab host's namespace entry).
        self.force_commands = dict(force_commands or {})
        # Lines put before the defaults: sshd keeps the first value of a keyword, so these win
        # (a HostCertificate, AllowTcpForwarding for a jump host).
        self.extra_config = tuple(extra_config)
        # Run sshd through this (e.g. `ip netns exec NS`, for an sshd inside a network
        # namespace). Readiness is then sshd's own "Server listening" line for every address,
        # since this namespace may have no route to them, and ``port`` (0: any free one)
        # should be given: a free port cannot be probed from here either.
        self.command_prefix = tuple(command_prefix)
        self.fixed_port = port
        self.port = 0
        self.host_key = self.directory / "ssh_host_ed25519_key"
        self.client_key = self.directory / "client_key"
        self.known_hosts = self.directory / "known_hosts"
        self.config = self.directory / "sshd_config"
        self.log = self.directory / "sshd.log"
        self.pid_file = self.directory / "sshd.pid"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host_pubkey(self) -> str:
        """The host key as ``type base64``, the way known_hosts lists it."""
        return " ".join(self.host_key.with_suffix(".pub").read_text().split()[:2])

    @property
    def pid(self) -> int | None:
        """The pid of the listening sshd while it runs."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> SshdServer:
        """Generate keys, start sshd, wait for its banner on every address."""
        if not self.sshd.is_absolute():
            raise SshdError(f"sshd needs an absolute path to re-exec itself, not {self.sshd}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._make_keys()
        _ensure_privsep_dir()
        for _attempt in range(_PORT_ATTEMPTS):
            self.port = self.fixed_port or free_port(self.addresses)
            if self._launch():
                self._write_known_hosts()
                return self
        raise SshdError(f"no free port for sshd after {_PORT_ATTEMPTS} attempts")

    def stop(self) -> None:
        """Terminate sshd (by its pid), killing it if it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is None:
            self._stop_recorded()
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def running_pid(self) -> int | None:
        """The pid in sshd's PidFile, if that process is alive and is this server's sshd."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return None
        # sshd rewrites its process title ("sshd: /usr/sbin/sshd -D ... [listener]"), so the
        # config path is looked for in the text, not as one argument.
        return pid if str(self.config).encode() in cmdline else None

    def _stop_recorded(self) -> None:
        """Stop an sshd started by another process (``oorfix lab down``), by its pid file."""
        pid = self.running_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.running_pid() is not None:
            os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> SshdServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines sshd logged."""
        try:
            text = self.log.read_text(errors="backslashreplace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def inventory_yaml(self, names: Sequence[str]) -> str:
        """An Ansible YAML inventory naming one host per address (names in address order)."""
        if len(names) > len(self.addresses):
            raise ValueError(f"{len(names)} names but only {len(self.addresses)} addresses")
        lines = ["all:", "  hosts:"]
        for name, address in zip(names, self.addresses, strict=False):
            lines += [
                f"    {json.dumps(name)}:",
                f"      ansible_host: {json.dumps(address)}",
                f"      ansible_port: {self.port}",
                f"      ansible_user: {json.dumps(self.user)}",
                f"      ansible_ssh_private_key_file: {json.dumps(str(self.client_key))}",
            ]
        return "\n".join(lines) + "\n"

    def _make_keys(self) -> None:
        for key in (self.host_key, self.client_key):
            if not key.exists():
                _keygen(key)

    def _launch(self) -> bool:
        """Start sshd on self.port; False if the port was taken meanwhile."""
        self.config.write_text(self._config_text())
        with self.log.open("wb") as log:  # fresh per attempt: old errors must not count
            # -D: stay in the foreground so we own the pid; -e: log to stderr, i.e. the file.
            self._proc = subprocess.Popen(
                [*self.command_prefix, str(self.sshd), "-D", "-e", "-f", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            self._wait_ready(time.monotonic() + START_TIMEOUT)
        except _PortTaken:
            self.stop()
            return False
        except BaseException:
            self.stop()
            raise
        return True

    def _wait_ready(self, deadline: float) -> None:
        for address in self.addresses:
            while not self._ready(address):
                self._check_alive()
                if time.monotonic() > deadline:
                    raise SshdError(
                        f"sshd gave no banner on {address}:{self.port} within "
                        f"{START_TIMEOUT:g}s; log:\n{self.log_tail()}"
                    )
                time.sleep(0.02)  # a poll interval, not a guess at readiness

    def _ready(self, address: str) -> bool:
        """Whether sshd answers on address (or, run through a prefix, says it listens)."""
        if not self.command_prefix:
            return _banner_ready(address, self.port)
        listening = f"Server listening on {address} port {self.port}."
        return listening in self.log.read_text(errors="replace")

    def _check_alive(self) -> None:
        log = self.log_tail()
        if any(marker in log for marker in _BIND_FAILED):
            raise _PortTaken
        if self._proc is not None and self._proc.poll() is not None:
            raise SshdError(f"sshd exited with status {self._proc.returncode}; log:\n{log}")

    def _config_text(self) -> str:
        listen = [f"ListenAddress {address}:{self.port}" for address in self.addresses]
        settings = [
            f"HostKey {self.host_key}",
            f"PidFile {self.pid_file}",
            f"AuthorizedKeysFile {self.client_key}.pub",
            f"AllowUsers {self.user}",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowAgentForwarding no",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "UseDNS no",
            # Many lab hosts connect at once; the default 10:30:100 drops some at random.
            "MaxStartups 200",
            "LogLevel INFO",
        ]
        lines = [*listen, *self.extra_config, *settings, *self._match_blocks()]
        return "\n".join(lines) + "\n"

    def _match_blocks(self) -> list[str]:
        """A ``Match LocalAddress`` block per address that has session variables."""
        blocks = []
        for address in self.addresses:
            lines = []
            variables = self.environments.get(address, {})
            if variables:
                lines.append(
                    "    SetEnv " + " ".join(_setenv_pair(k, v) for k, v in variables.items())
                )
            if address in self.force_commands:
                lines.append(f"    ForceCommand {self.force_commands[address]}")
            if lines:
                blocks += [f"Match LocalAddress {address}", *lines]
        return blocks

    def _write_known_hosts(self) -> None:
        key = self.host_pubkey
        lines = [f"[{address}]:{self.port} {key}\n" for address in self.addresses]
        self.known_hosts.write_text("".join(lines))


class _PortTaken(Exception):
    """sshd could not bind the chosen port: another process took it first."""


def _setenv_pair(name: str, value: str) -> str:
    if not name.isidentifier() or any(c in value for c in '"\n\\'):
        raise SshdError(f"cannot pass {name}={value!r} through sshd_config SetEnv")
    return f'"{name}={value}"'


def free_port(addresses: Sequence[str]) -> int:
    """A TCP port that is free on every one of ``addresses`` right now."""
    for _attempt in range(50):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = int(probe.getsockname()[1])
        if all(_bindable(address, port) for address in addresses[1:]):
            return port
    raise SshdError("no port is free on every lab address")


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _banner_ready(address: str, port: int) -> bool:
    """Whether an SSH server answers with its banner on address:port."""
    try:
        with socket.create_connection((address, port), timeout=1.0) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "oorfix-lab", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )


def _ensure_privsep_dir() -> None:
    """sshd started as root refuses to run without its privilege-separation directory."""
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
