"""Suite-wide fixtures: one real OpenSSH sshd on loopback addresses for the integration tests."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator

import pytest

from oorfix.inventory.hosts import HostConnection
from oorfix.lab.sshd import SSHD, SshdServer
from oorfix.transport.base import ConnectOptions
from tests.support import require

SSHD_ADDRESSES = tuple(f"127.0.0.{n}" for n in range(2, 10))


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdServer]:
    """One sshd serving 127.0.0.2-127.0.0.9 on one port; CI fails without sshd."""
    require("SSHD", SSHD.exists(), f"{SSHD} is not installed")
    server = SshdServer(tmp_path_factory.mktemp("sshd"), SSHD_ADDRESSES)
    with server:
        yield server


@pytest.fixture
def ssh_options(sshd: SshdServer) -> ConnectOptions:
    """Connect options that trust exactly the lab sshd's host key; short timeouts."""
    return ConnectOptions(
        known_hosts=sshd.known_hosts,
        connect_timeout=5.0,
        banner_timeout=5.0,
        auth_timeout=5.0,
    )


@pytest.fixture
def ssh_conn(sshd: SshdServer) -> Callable[[str], HostConnection]:
    """Make a HostConnection to one of the lab sshd's addresses, as the current user."""

    def make(address: str) -> HostConnection:
        return HostConnection(
            name=f"lab-{address}",
            address=address,
            port=sshd.port,
            user=getpass.getuser(),
            key_file=sshd.client_key,
            kind="ssh",
        )

    return make


@pytest.fixture(scope="session", autouse=True)
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs the CLI makes keep history, locks and the audit log in a temporary state home."""
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state-home"))
    yield
    if previous is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = previous
