"""The transport contract, run against both transports, and SSH's own traps against a real sshd.

Every test in ``TestContract`` runs once over LocalTransport and once over SshTransport talking
to the lab sshd (§ numbers refer to docs/pitfalls.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest

from oorfix.errors import ConnectError, ConnectionLost, HostKeyError
from oorfix.inventory.core import load_inventory
from oorfix.inventory.hosts import Host, HostConnection
from oorfix.lab.sshd import SshdServer
from oorfix.redact import MASK, Command, Redactor
from oorfix.results import Outcome
from oorfix.run.engine import Engine, EngineOptions, EngineParts
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import load_runbook
from oorfix.safety.audit import NoAudit
from oorfix.safety.gates import OpenGate
from oorfix.transport import ConnectOptions, Transport, open_transport
from oorfix.transport import common as common_module
from oorfix.transport import ssh as ssh_module
from oorfix.transport.shell import Become

pytestmark = pytest.mark.integration

MakeTransport = Callable[..., Transport]


@pytest.fixture(params=["local", "ssh"])
def make_transport(
    request: pytest.FixtureRequest,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
) -> Iterator[MakeTransport]:
    """Open connected transports of one kind (options overridable); close them all after."""
    opened: list[Transport] = []

    def make(**overrides: object) -> Transport:
        options = replace(ssh_options, **overrides)  # type: ignore[arg-type]
        if request.param == "local":
            conn = HostConnection(name="localhost", address="localhost", kind="local")
        else:
            conn = ssh_conn("127.0.0.2")
        transport = open_transport(conn, options)
        transport.connect()
        opened.append(transport)
        return transport

    yield make
    for transport in opened:
        transport.close()


@pytest.fixture
def transport(make_transport: MakeTransport) -> Transport:
    return make_transport()


def marker() -> str:
    """A fractional number of seconds unique to one test, to find its processes by."""
    return f"{60 + int(uuid.uuid4().int % 10**6) / 10**6:.6f}"


def pids_of(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def gone_within(pattern: str, seconds: float) -> bool:
    """Whether no process matches ``pattern`` within ``seconds`` (polling, it may be dying)."""
    deadline = time.monotonic() + seconds
    while pids_of(pattern):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_matching(pattern: str) -> None:
    """Clean up processes a test started on purpose, by pid."""
    for pid in pids_of(pattern):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class TestContract:
    """What every transport promises the engine."""

    def test_echo_and_exit_status(self, transport: Transport) -> None:
        result = transport.run(Command("echo hello"), timeout=10)
        assert (result.rc, result.ok, result.timed_out) == (0, True, False)
        assert result.stdout.text == "hello\n"
        assert result.stderr.text == ""
        assert result.ended >= result.started

    def test_non_zero_exit_is_data(self, transport: Transport) -> None:
        result = transport.run(Command("echo partial; exit 7"), timeout=10)
        assert (result.rc, result.ok, result.timed_out) == (7, False, False)
        assert result.stdout.text == "partial\n"

    def test_stderr_is_captured_apart(self, transport: Transport) -> None:
        result = transport.run(Command("echo out; echo oops >&2"), timeout=10)
        assert (result.stdout.text, result.stderr.text) == ("out\n", "oops\n")

    def test_the_result_names_the_command_redacted(self, transport: Transport) -> None:
        command = Command("echo s3cret-token", redactor=Redactor.of(["s3cret-token"]))
        result = transport.run(command, timeout=10)
        assert result.command == f"echo {MASK}"
        assert result.stdout.text == "s3cret-token\n"  # output is redacted by the caller

    def test_stdin_is_fed(self, transport: Transport) -> None:
        data = bytes(range(256)) * 4000  # 1 MB, more than one SSH window's worth of packets
        result = transport.run(Command("wc -c; echo done >&2", stdin=data), timeout=10)
        assert (result.rc, result.stdout.text.strip(), result.stderr.text) == (
            0,
            "1024000",
            "done\n",
        )

    def test_without_stdin_the_command_reads_eof(self, transport: Transport) -> None:
        result = transport.run(Command("cat; echo after"), timeout=10)
        assert (result.rc, result.stdout.text, result.timed_out) == (0, "after\n", False)

    def test_big_stdout_and_stderr_at_once_do_not_deadlock(self, transport: Transport) -> None:
        # Both streams exceed the SSH window and the pipe buffers at once (docs/pitfalls.md §7).
        script = "(yes out | head -c 3000000) & (yes err | head -c 3000000 >&2); wait"
        started = time.monotonic()
        result = transport.run(Command(script), timeout=20)
        assert time.monotonic() - started < 10
        assert result.rc == 0
        for output, word in ((result.stdout, "out"), (result.stderr, "err")):
            assert output.total_bytes == 3_000_000
            assert output.truncated
            assert output.text.startswith(f"{word}\n{word}\n")
            assert output.text.endswith(f"{word}\n")

    def test_output_is_bounded_to_head_and_tail(self, make_transport: MakeTransport) -> None:
        transport = make_transport(head_bytes=12, tail_bytes=19)
        result = transport.run(Command("seq 1 100000"), timeout=10)
        total = sum(len(f"{n}\n") for n in range(1, 100001))
        assert result.stdout.total_bytes == total
        assert result.stdout.text == (
            f"1\n2\n3\n4\n5\n6\n\n[... {total - 31} bytes omitted ...]\n99998\n99999\n100000\n"
        )

    def test_non_utf8_bytes_survive_as_escapes(self, transport: Transport) -> None:
        result = transport.run(Command(r"printf 'caf\303\251 \377\376 ok\n'"), timeout=10)
        assert result.stdout.text == "café \\xff\\xfe ok\n"

    def test_timeout_stops_the_command_on_the_host(self, transport: Transport) -> None:
        # docs/pitfalls.md §4: the host's own `timeout` kills it, not just our wait.
        seconds = marker()
        result = transport.run(Command(f"sh -c 'sleep {seconds}'"), timeout=1)
        assert (result.timed_out, result.rc) == (True, 124)
        assert 1 <= result.duration < 4
        assert gone_within(f"sleep {seconds}", 3), "the timed-out command is still running"

    def test_a_command_ignoring_term_is_killed(self, make_transport: MakeTransport) -> None:
        transport = make_transport(kill_grace=0.5)
        seconds = marker()
        result = transport.run(Command(f"trap '' TERM; sleep {seconds}"), timeout=0.5)
        assert (result.timed_out, result.rc) == (True, 137)
        assert gone_within(f"sleep {seconds}", 3)

    def test_exit_124_before_the_budget_is_not_a_timeout(self, transport: Transport) -> None:
        result = transport.run(Command("exit 124"), timeout=10)
        assert (result.rc, result.timed_out) == (124, False)

    def test_a_killed_command_reports_its_signal(self, transport: Transport) -> None:
        # A remote `kill -9` is data (128 + 9), not a lost connection (docs/pitfalls.md §5).
        result = transport.run(Command("echo before; kill -9 $$"), timeout=10)
        assert (result.rc, result.timed_out, result.stdout.text) == (137, False, "before\n")

    def test_a_background_child_holding_stdout_does_not_hold_the_result(
        self, transport: Transport
    ) -> None:
        seconds = marker()
        try:
            result = transport.run(Command(f"(sleep {seconds} &); echo started"), timeout=30)
            assert (result.rc, result.timed_out, result.stdout.text) == (0, False, "started\n")
            assert result.duration < 5
        finally:
            kill_matching(f"sleep {seconds}")

    def test_sudo_never_prompts(self, transport: Transport) -> None:
        started = time.monotonic()
        result = transport.run(Command("id -u"), timeout=10, become=Become())
        assert time.monotonic() - started < 5
        if os.geteuid() == 0:  # logged in as root: sudo is skipped, not required
            assert (result.rc, result.stdout.text) == (0, "0\n")
        elif shutil.which("sudo") is None:
            assert result.rc == 127
            assert "sudo" in result.stderr.text
        else:  # root, a NOPASSWD rule, or "a password is required" at once
            assert result.rc == 0 or "password is required" in result.stderr.text

    def test_commands_run_concurrently_on_one_transport(self, transport: Transport) -> None:
        results: dict[int, str] = {}

        def work(n: int) -> None:
            results[n] = transport.run(Command(f"sleep 0.3; echo {n}"), timeout=10).stdout.text

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert results == {n: f"{n}\n" for n in range(6)}
        assert time.monotonic() - started < 3  # in parallel, not one after another

    def test_the_client_deadline_backs_up_the_host(
        self, make_transport: MakeTransport, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Were `timeout` missing on the host, our own wall-clock deadline still ends the wait.
        monkeypatch.setattr(common_module, "wrap", lambda text, **_: text)
        monkeypatch.setattr(common_module, "CLIENT_MARGIN", 0.2)
        transport = make_transport(kill_grace=0.2)
        seconds = marker()
        try:
            result = transport.run(Command(f"sleep {seconds}"), timeout=0.3)
            assert (result.timed_out, result.rc) == (True, None)
            assert result.duration < 3
        finally:
            kill_matching(f"sleep {seconds}")


def test_an_unsupported_connection_is_that_hosts_connect_error() -> None:
    with pytest.raises(ConnectError, match=r"unsupported connection 'winrm' \(oorfix speaks"):
        open_transport(HostConnection("x", "x", kind="winrm"), ConnectOptions())


# --- SSH only -------------------------------------------------------------------------------


def accepted_logins(sshd: SshdServer) -> int:
    return sshd.log.read_text(errors="replace").count("Accepted publickey")


def other_host_key(tmp_path: Path) -> str:
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def lab_fingerprint(sshd: SshdServer) -> str:
    listed = subprocess.run(
        ["ssh-keygen", "-lf", str(sshd.host_key.with_suffix(".pub"))],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()[1]


def test_an_unknown_host_key_is_refused_before_login(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    transport = open_transport(ssh_conn("127.0.0.3"), replace(ssh_options, known_hosts=known_hosts))
    logins = accepted_logins(sshd)
    with pytest.raises(HostKeyError) as caught:
        transport.connect()
    message = str(caught.value)
    assert f"[127.0.0.3]:{sshd.port}" in message
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.3 >> {known_hosts}" in message
    assert "--accept-new-host-keys" in message
    assert lab_fingerprint(sshd) in message
    with pytest.raises(ConnectionLost, match="not connected"):
        transport.run(Command("touch /nonexistent"), timeout=5)
    transport.close()
    assert accepted_logins(sshd) == logins, "a login happened despite the unknown key"
    assert known_hosts.read_text() == ""


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_changed_host_key_is_always_refused(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
    accept_new: bool,
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.4]:{sshd.port} {other_host_key(tmp_path)}\n")
    before = known_hosts.read_text()
    options = replace(ssh_options, known_hosts=known_hosts, accept_new_host_keys=accept_new)
    transport = open_transport(ssh_conn("127.0.0.4"), options)
    logins = accepted_logins(sshd)
    with pytest.raises(HostKeyError, match=r"has changed.*possible man-in-the-middle") as caught:
        transport.connect()
    assert lab_fingerprint(sshd) in str(caught.value)
    assert "ssh-keygen -R" in str(caught.value)
    transport.close()
    assert accepted_logins(sshd) == logins
    assert known_hosts.read_text() == before


def test_accept_new_trusts_and_records_an_unknown_key(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"  # neither file nor directory exists yet
    options = replace(ssh_options, known_hosts=known_hosts, accept_new_host_keys=True)
    transport = open_transport(ssh_conn("127.0.0.5"), options)
    transport.connect()
    try:
        assert transport.run(Command("echo in"), timeout=10).stdout.text == "in\n"
    finally:
        transport.close()
    assert known_hosts.read_text() == f"[127.0.0.5]:{sshd.port} {sshd.host_pubkey}\n"
    # From now on the key is simply known, with or without accept-new.
    strict = open_transport(ssh_conn("127.0.0.5"), replace(options, accept_new_host_keys=False))
    strict.connect()
    strict.close()


def test_accept_new_keeps_an_unterminated_last_line_whole(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("# hand-written, no final newline")
    options = replace(ssh_options, known_hosts=known_hosts, accept_new_host_keys=True)
    transport = open_transport(ssh_conn("127.0.0.6"), options)
    transport.connect()
    transport.close()
    assert known_hosts.read_text().splitlines() == [
        "# hand-written, no final newline",
        f"[127.0.0.6]:{sshd.port} {sshd.host_pubkey}",
    ]


def test_a_corrupt_known_hosts_line_is_skipped_with_a_warning(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # OpenSSH skips a line it cannot parse; the good line still trusts the host.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        f"[127.0.0.3]:{sshd.port} ssh-ed25519 !!not-base64!!\n"
        f"[127.0.0.3]:{sshd.port} {sshd.host_pubkey}\n"
    )
    caplog.set_level(logging.WARNING, logger="oorfix")
    transport = open_transport(ssh_conn("127.0.0.3"), replace(ssh_options, known_hosts=known_hosts))
    transport.connect()
    try:
        assert transport.run(Command("echo in"), timeout=10).stdout.text == "in\n"
    finally:
        transport.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"known_hosts {known_hosts}:1: invalid base64 key")
    assert warnings[0].endswith("; line skipped")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("[{address}]:{port} ssh-ed25519 !!not-base64!!", "invalid base64 key"),
        ("|1|c2FsdA==|aGFzaA== ssh-ed25519 {key}", "malformed hashed host name"),
        ("|1|a|aGFzaA== ssh-ed25519 {key}", "malformed hashed host name"),
        ("@trusted [{address}]:{port} ssh-ed25519 {key}", "unknown marker '@trusted'"),
        ("[{address}]:{port} ssh-dss {key}", "key type 'ssh-dss' is not one oorfix can check"),
    ],
)
def test_a_corrupt_known_hosts_line_never_makes_the_host_unreachable(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    line: str,
    why: str,
) -> None:
    # Through the engine, as `oorfix run` does it: the bad line is skipped with a warning
    # naming file:line, and the host is reached through the good line after it.
    known_hosts = tmp_path / "known_hosts"
    key = sshd.host_pubkey.split()[1]
    known_hosts.write_text(
        "# hand-written\n"
        + line.format(address="127.0.0.2", port=sshd.port, key=key)
        + f"\n[127.0.0.2]:{sshd.port} {sshd.host_pubkey}\n"
    )
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(sshd.inventory_yaml(["corrupt"]))
    runbook = tmp_path / "runbook.yml"
    runbook.write_text(
        "name: probe\nfault: software.service_interruption\nhosts: all\n"
        "detect:\n  - name: probe\n    run: 'true'\n"
    )
    loaded_inventory = load_inventory(inventory)
    jobs = [p.job for p in plan_run([load_runbook(runbook)], loaded_inventory, {})]
    options = replace(ssh_options, known_hosts=known_hosts)

    def factory(host: Host) -> Transport:
        return open_transport(host.connection(), options)

    parts = EngineParts(loaded_inventory, ConnectionPool(factory), OpenGate(), NoAudit())
    engine = Engine(parts, EngineOptions(forks=2))
    caplog.set_level(logging.WARNING, logger="oorfix")
    (result,) = engine.run(jobs).results
    assert (result.host, result.status, result.error) == ("corrupt", Outcome.HEALTHY, None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"known_hosts {known_hosts}:2: {why}")
    assert warnings[0].endswith("; line skipped")


def test_connection_refused_is_a_quick_connect_error(
    sshd: SshdServer, ssh_options: ConnectOptions, ssh_conn: Callable[[str], HostConnection]
) -> None:
    transport = open_transport(ssh_conn("127.0.0.99"), ssh_options)
    started = time.monotonic()
    with pytest.raises(ConnectError, match="refused") as caught:
        transport.connect()
    assert not isinstance(caught.value, HostKeyError)
    assert time.monotonic() - started < 2
    transport.close()


def test_running_out_of_file_descriptors_is_the_controllers_error(
    sshd: SshdServer, ssh_options: ConnectOptions, ssh_conn: Callable[[str], HostConnection]
) -> None:
    # A real EMFILE: a child process whose fd limit is what it already has open.
    conn = ssh_conn("127.0.0.2")
    code = f"""
import os, resource
from pathlib import Path
from oorfix.errors import ControllerError, TransportError
from oorfix.inventory.hosts import HostConnection
from oorfix.transport import ConnectOptions, open_transport
conn = HostConnection({conn.name!r}, {conn.address!r}, {conn.port}, {conn.user!r},
                      Path({str(conn.key_file)!r}), "ssh")
options = ConnectOptions(known_hosts=Path({str(ssh_options.known_hosts)!r}), connect_timeout=5)
transport = open_transport(conn, options)
import paramiko  # everything imported before the limit, so only the connection needs an fd
used = len(os.listdir("/proc/self/fd")) - 1  # the listing's own fd is closed again
resource.setrlimit(resource.RLIMIT_NOFILE, (used, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
try:
    transport.connect()
except ControllerError as exc:
    print("controller:", exc)
except TransportError as exc:
    print("host:", type(exc).__name__, exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("controller: "), done.stdout
    assert "too many open files" in done.stdout


def test_a_wrong_key_is_a_connect_error(
    ssh_options: ConnectOptions, ssh_conn: Callable[[str], HostConnection], tmp_path: Path
) -> None:
    other_host_key(tmp_path)  # any key the server does not know
    conn = replace(ssh_conn("127.0.0.7"), key_file=tmp_path / "other_key")
    transport = open_transport(conn, ssh_options)
    with pytest.raises(ConnectError, match="authentication failed"):
        transport.connect()
    transport.close()


@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A TCP listener that accepts connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    thread.join(5)
    for sock in accepted:
        sock.close()
    listener.close()


def test_a_silent_server_fails_within_the_banner_timeout(
    silent_server: tuple[str, int],
    ssh_options: ConnectOptions,
    capfd: pytest.CaptureFixture[str],
) -> None:
    address, port = silent_server
    conn = HostConnection("silent", address, port=port, key_file=None)
    transport = open_transport(conn, replace(ssh_options, banner_timeout=1.0))
    started = time.monotonic()
    with pytest.raises(ConnectError, match="no SSH banner"):
        transport.connect()
    assert time.monotonic() - started < 3
    transport.close()
    # docs/pitfalls.md §13: paramiko logs a traceback here; none of it may reach the terminal.
    assert capfd.readouterr().err == ""


def session_sshd_pids(shell_pid: int, listener_pid: int) -> list[int]:
    """The sshd processes between the lab listener and a remote shell: the session's own."""
    found = []
    pid = shell_pid
    while pid not in (listener_pid, 0, 1):
        stat = Path(f"/proc/{pid}/stat").read_text()
        name, rest = re.fullmatch(r"\d+ \((.*)\) (.*)", stat.strip(), re.S).groups()  # type: ignore[union-attr]
        if name == "sshd":
            found.append(pid)
        pid = int(rest.split()[1])
    assert pid == listener_pid, "the shell does not descend from the lab sshd"
    return found


def test_a_lost_connection_raises_connection_lost(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    seconds = marker()
    transport = open_transport(ssh_conn("127.0.0.8"), ssh_options)
    transport.connect()

    def cut_connection() -> None:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        for pid in session_sshd_pids(int(pid_file.read_text()), sshd.pid or 0):
            os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=cut_connection)
    killer.start()
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionLost, match="connection lost"):
            transport.run(Command(f"echo $$ > {pid_file}; sleep {seconds}"), timeout=20)
        assert time.monotonic() - started < 5
        with pytest.raises(ConnectionLost, match="lost earlier"):
            transport.run(Command("true"), timeout=5)
    finally:
        killer.join(10)
        transport.close()
        kill_matching(f"sleep {seconds}")


def raise_mapped(transport: Transport, exc: Exception, *, lost: bool) -> None:
    assert isinstance(transport, ssh_module.SshTransport)
    with transport._mapped(lost=lost):
        raise exc


@pytest.mark.parametrize(
    "exc",
    [
        paramiko.ChannelException(1, "Administratively prohibited"),
        paramiko.SSHException("Timeout opening channel."),
    ],
)
def test_session_failures_on_a_connected_transport_are_connection_lost(exc: Exception) -> None:
    # Mid-session the host was reached: a refused channel is a lost connection, not unreachable.
    transport = open_transport(HostConnection("h", "127.0.0.1", kind="ssh"), ConnectOptions())
    with pytest.raises(ConnectionLost) as caught:
        raise_mapped(transport, exc, lost=True)
    assert caught.value.__cause__ is exc
    with pytest.raises(ConnectError) as caught_connecting:
        raise_mapped(transport, exc, lost=False)
    assert caught_connecting.value.__cause__ is exc


class NoSessionsSshd(SshdServer):
    """An sshd that authenticates but refuses every session channel (MaxSessions 0)."""

    def _config_text(self) -> str:
        return "MaxSessions 0\n" + super()._config_text()


def test_a_host_refusing_sessions_is_connection_lost(
    sshd: SshdServer, ssh_options: ConnectOptions, tmp_path: Path
) -> None:
    # A real ChannelException: the login succeeds, then the server refuses the session.
    with NoSessionsSshd(tmp_path / "sshd", ("127.0.0.2",)) as refusing:
        conn = HostConnection(
            "refusing",
            "127.0.0.2",
            port=refusing.port,
            user=refusing.user,
            key_file=refusing.client_key,
            kind="ssh",
        )
        transport = open_transport(conn, replace(ssh_options, known_hosts=refusing.known_hosts))
        transport.connect()
        try:
            with pytest.raises(ConnectionLost, match="refused a session") as caught:
                transport.run(Command("true"), timeout=5)
            assert not isinstance(caught.value, ConnectError)
            assert isinstance(caught.value.__cause__, paramiko.ChannelException)
        finally:
            transport.close()


def test_a_frozen_connection_is_bounded_by_the_deadline(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/pitfalls.md §6: a path that stops answering is caught only by a wall-clock deadline.
    monkeypatch.setattr(common_module, "CLIENT_MARGIN", 0.2)
    pid_file = tmp_path / "pid"
    transport = open_transport(ssh_conn("127.0.0.8"), replace(ssh_options, kill_grace=0.2))
    transport.connect()
    frozen: list[int] = []

    def freeze() -> None:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        frozen.extend(session_sshd_pids(int(pid_file.read_text()), sshd.pid or 0))
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)

    freezer = threading.Thread(target=freeze)
    freezer.start()
    try:
        result = transport.run(Command(f"echo $$ > {pid_file}; sleep 0.3; echo late"), timeout=1)
        assert (result.timed_out, result.rc) == (True, None)
        assert result.duration < 3
    finally:
        freezer.join(10)
        for pid in frozen:
            os.kill(pid, signal.SIGKILL)
        transport.close()


def resources() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def settled(baseline: tuple[int, int], seconds: float = 5) -> tuple[int, int]:
    """Resource counts once they are back at ``baseline``, or as they are after ``seconds``."""
    deadline = time.monotonic() + seconds
    while resources() != baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return resources()


def test_threads_and_fds_return_to_baseline(
    sshd: SshdServer,
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    tmp_path: Path,
) -> None:
    # docs/pitfalls.md §12: a failed login must not leave paramiko's threads or sockets behind.
    other_host_key(tmp_path)
    good = ssh_conn("127.0.0.9")
    wrong_key = replace(good, key_file=tmp_path / "other_key")
    no_key = replace(ssh_options, known_hosts=tmp_path / "empty_known_hosts")
    baseline = resources()
    for cycle in range(20):
        kind = cycle % 3
        transport = open_transport(
            wrong_key if kind == 1 else good, no_key if kind == 2 else ssh_options
        )
        try:
            transport.connect()
            assert transport.run(Command("echo ok"), timeout=10).stdout.text == "ok\n"
        except ConnectError:
            assert kind != 0
        finally:
            transport.close()
    assert settled(baseline) == baseline


def test_agent_forwarding_is_never_requested(
    ssh_options: ConnectOptions,
    ssh_conn: Callable[[str], HostConnection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # docs/pitfalls.md §14: a forwarded agent lets any root on the host sign as us; never ask.
    asked: list[str] = []

    def refuse(what: str) -> Callable[..., None]:
        def refused(*_args: object, **_kwargs: object) -> None:
            asked.append(what)
            raise AssertionError(f"{what} was called: agent forwarding requested")

        return refused

    monkeypatch.setattr(paramiko.agent.AgentRequestHandler, "__init__", refuse("handler"))
    monkeypatch.setattr(paramiko.Channel, "request_forward_agent", refuse("request"))
    monkeypatch.setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")  # as if an agent ran
    transport = open_transport(ssh_conn("127.0.0.9"), ssh_options)
    transport.connect()
    try:
        result = transport.run(Command("echo ${SSH_AUTH_SOCK:-no agent}"), timeout=10)
    finally:
        transport.close()
    assert (result.rc, result.stdout.text) == (0, "no agent\n")
    assert asked == []
