"""The direct TCP link an SSH login rides on: no Nagle delay, and quick ACKs kept on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from oorfix.transport.links import QuickAckSocket, direct_socket


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A loopback server that answers each message of 5 bytes with 50."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while conn.recv(5):
                conn.sendall(b"x" * 50)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()
    server.close()
    thread.join(timeout=5)


@pytest.mark.skipif(not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux's")
def test_the_link_acknowledges_what_it_reads_at_once(echo_server: tuple[str, int]) -> None:
    # Request and reply, as an SSH session goes: the kernel soon holds ACKs back (a plain
    # socket reads 0 here after the second exchange); the link turns them on after each read.
    sock = direct_socket(*echo_server, timeout=5)
    with sock:
        assert isinstance(sock, QuickAckSocket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert sock.gettimeout() == 5
        for _ in range(5):
            sock.sendall(b"hello")
            assert sock.recv(50) == b"x" * 50
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1


def test_the_link_times_out_as_asked(echo_server: tuple[str, int]) -> None:
    sock = direct_socket(*echo_server, timeout=0.01)
    with sock, pytest.raises(TimeoutError):
        sock.recv(1)  # nothing was sent, so nothing comes
