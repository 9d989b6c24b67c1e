"""A real Redis on loopback, for the team-state tests and demos.

``start_redis`` runs ``/usr/bin/redis-server`` (Debian ``redis-server``) bound to 127.0.0.1
on a free port, with a password, no persistence and no config file of the machine's, and
returns once it answers PING. ``stop`` ends it (SIGTERM, then SIGKILL); ``pause`` and
``resume`` (SIGSTOP/SIGCONT) play a server that stops answering.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REDIS_SERVER = Path("/usr/bin/redis-server")
READY_TIMEOUT = 30.0  # a bound against a server that never comes up; it takes ~10 ms
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A running redis-server: where it listens, its password and its process."""

    port: int
    password: str
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        """The state URL without the password (give it in OORFIX_STATE_PASSWORD)."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def url_with_password(self) -> str:
        """The state URL with the password in it."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        """Whether the server answers an authenticated PING right now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(_command("AUTH", self.password) + _command("PING"))
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(256)
                    if not chunk:
                        return False
                    reply += chunk
                return reply.endswith(b"+PONG\r\n")
        except OSError:
            return False

    def pause(self) -> None:
        """Stop the process (SIGSTOP): connections hang, as with a server that froze."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on."""
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the server and reap it."""
        if self.process.poll() is not None:
            return
        self.resume()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        """The server's log, for failure messages."""
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _command(*words: str) -> bytes:
    """One command in Redis' wire protocol (RESP)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def start_redis(directory: Path, tries: int = 5) -> RedisServer:
    """A redis-server on a free port of 127.0.0.1, answering PING; RuntimeError if not."""
    directory.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(16)
    problem = ""
    for _ in range(tries):  # the free port may be taken before the server binds it
        port = free_port()
        argv = [str(REDIS_SERVER), "-"]  # the config comes on stdin: the password stays off argv
        config = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                "protected-mode yes",
                f"requirepass {password}",
                'save ""',
                "appendonly no",
                f"dir {directory}",
                f"logfile {directory / 'redis.log'}",
                "daemonize no",
                "",
            ]
        )
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        assert process.stdin is not None
        process.stdin.write(config.encode())
        process.stdin.close()
        server = RedisServer(port, password, process, directory)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            if server.ping():
                return server
            time.sleep(0.02)
        problem = server.log()
        with contextlib.suppress(Exception):
            server.stop()
    raise RuntimeError(f"redis-server did not start on 127.0.0.1: {problem}")
