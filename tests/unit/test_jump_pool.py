"""The jump host pool (shared, counted, failures told once per hop) and the ProxyCommand socket,
without a network: logins and channels are fakes here; tests/integration/test_jump_hosts.py
runs them against real sshds."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oorfix.errors import ConnectError, HostKeyError
from oorfix.transport import jump as jump_module
from oorfix.transport.base import ConnectOptions
from oorfix.transport.jump import JumpPool, Route, _Failure, _Hop
from oorfix.transport.links import ProxyCommandExited, ProxySocket, keep_alive, login_args
from oorfix.transport.sshconfig import Endpoint

BASTION = Endpoint("bastion", "10.0.0.1", 22, "ops")
INNER = Endpoint("inner", "10.0.1.1", 22, "ops")
ROUTE = Route(ConnectOptions(), factory=lambda known: None)  # type: ignore[arg-type,return-value]


def target(name: str, *jumps: Endpoint) -> Endpoint:
    return Endpoint(name, f"{name}.internal", 22, "ops", jumps=jumps)


class FakeTransport:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active

    def join(self, timeout: float | None = None) -> None:
        pass


class FakeClient:
    def __init__(self, name: str, closed: list[str]) -> None:
        self.name = name
        self.transport = FakeTransport()
        self.closed = closed

    def get_transport(self) -> FakeTransport:
        return self.transport

    def close(self) -> None:
        self.transport.active = False
        self.closed.append(self.name)


class FakeChannel:
    def __init__(self, to: str) -> None:
        self.to = to
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Fakes:
    """Records logins (hop, through whom), channels and closes of a patched pool."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, str | None]] = []
        self.closed: list[str] = []
        self.fail: dict[str, _Failure] = {}
        self.clients: dict[str, FakeClient] = {}


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    found = Fakes()

    def login(pool: JumpPool, hop: _Hop, through: Any, route: Route) -> FakeClient:
        parent = hop.parent.endpoint.name if hop.parent is not None else None
        found.logins.append((hop.endpoint.name, parent))
        if hop.endpoint.name in found.fail:
            raise found.fail[hop.endpoint.name]
        client = found.clients[hop.endpoint.name] = FakeClient(hop.endpoint.name, found.closed)
        return client

    def channel(pool: JumpPool, transport: Any, hop: Endpoint, to: Endpoint, o: Any) -> Any:
        return FakeChannel(to.name)

    monkeypatch.setattr(JumpPool, "_login", login)
    monkeypatch.setattr(JumpPool, "_channel", channel)
    return found


def test_hosts_behind_one_jump_host_share_one_login(fakes: Fakes) -> None:
    pool = JumpPool()
    leases = [pool.open(target(name, BASTION), name, ROUTE) for name in ("a", "b", "c")]
    assert fakes.logins == [("bastion", None)]
    assert pool.open_hops() == 1
    leases[0].close()
    leases[0].close()  # a second close releases nothing more
    leases[1].close()
    assert fakes.closed == []
    leases[2].close()
    assert (fakes.closed, pool.open_hops()) == (["bastion"], 0)


def test_a_chain_logs_in_hop_by_hop_and_closes_from_the_inside_out(fakes: Fakes) -> None:
    pool = JumpPool()
    first = pool.open(target("a", BASTION, INNER), "a", ROUTE)
    second = pool.open(target("b", BASTION, INNER), "b", ROUTE)
    beside = pool.open(target("c", BASTION), "c", ROUTE)
    assert fakes.logins == [("bastion", None), ("inner", "bastion")]
    first.close()
    second.close()
    assert fakes.closed == ["inner"]  # bastion still carries c
    beside.close()
    assert fakes.closed == ["inner", "bastion"]


def test_a_lost_jump_connection_is_logged_into_again(fakes: Fakes) -> None:
    pool = JumpPool()
    lease = pool.open(target("a", BASTION), "a", ROUTE)
    fakes.clients["bastion"].transport.active = False  # the bastion dropped us
    again = pool.open(target("b", BASTION), "b", ROUTE)
    assert fakes.logins == [("bastion", None), ("bastion", None)]
    lease.close()
    again.close()
    assert pool.open_hops() == 0


def test_a_failed_hop_is_reported_on_each_host_in_its_words(fakes: Fakes) -> None:
    pool = JumpPool()
    fakes.fail["bastion"] = _Failure("bastion", "connection refused by 10.0.0.1:22")
    with pytest.raises(ConnectError) as caught:
        pool.open(target("web1", BASTION), "web1", ROUTE)
    assert type(caught.value) is ConnectError
    assert str(caught.value) == (
        "web1: cannot reach bastion (jump host for web1): connection refused by 10.0.0.1:22"
    )
    assert pool.open_hops() == 0  # nothing held after a failure
    fakes.fail["bastion"] = _Failure("bastion", "host key for 10.0.0.1 is not known", host_key=True)
    with pytest.raises(HostKeyError, match="web2: cannot reach bastion \\(jump host for web2\\)"):
        pool.open(target("web2", BASTION), "web2", ROUTE)


def test_hosts_waiting_on_a_failing_hop_share_its_failure(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = JumpPool()
    second_waits = threading.Event()
    referenced = 0
    reference = JumpPool._reference

    def counting(self: JumpPool, options: Any, chain: Any) -> _Hop:
        nonlocal referenced
        hop = reference(self, options, chain)
        referenced += 1
        if referenced == 2:
            second_waits.set()
        return hop

    def slow_failure(self: JumpPool, hop: _Hop, through: Any, route: Route) -> Any:
        fakes.logins.append((hop.endpoint.name, None))
        second_waits.wait(10)  # the other host now waits for this login
        raise _Failure("bastion", "no answer from 10.0.0.1:22 within 10s")

    monkeypatch.setattr(JumpPool, "_reference", counting)
    monkeypatch.setattr(JumpPool, "_login", slow_failure)
    errors: dict[str, str] = {}

    def connect(name: str) -> None:
        try:
            pool.open(target(name, BASTION), name, ROUTE)
        except ConnectError as exc:
            errors[name] = exc.message

    threads = [threading.Thread(target=connect, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert fakes.logins == [("bastion", None)]  # one timeout, not one per host
    assert errors == {
        n: f"cannot reach bastion (jump host for {n}): no answer from 10.0.0.1:22 within 10s"
        for n in ("a", "b")
    }
    assert pool.open_hops() == 0


def test_the_pool_keys_on_the_run_options_too(fakes: Fakes) -> None:
    pool = JumpPool()
    other = Route(ConnectOptions(known_hosts=Path("/elsewhere")), ROUTE.factory)
    leases = [pool.open(target("a", BASTION), "a", r) for r in (ROUTE, other)]
    assert len(fakes.logins) == 2
    for lease in leases:
        lease.close()


def test_the_module_pool_is_a_jump_pool() -> None:
    assert isinstance(jump_module.POOL, JumpPool)


# --- ProxyCommand ------------------------------------------------------------------------


def test_a_proxy_command_runs_in_a_shell_and_carries_bytes() -> None:
    proxy = ProxySocket("cat | cat")  # a pipeline: only a shell runs that
    try:
        assert proxy.send(b"hello\n") == 6
        proxy.settimeout(10)
        assert proxy.recv(6) == b"hello\n"
    finally:
        proxy.close()
    assert proxy.process.returncode is not None  # stopped and reaped
    proxy.close()  # idempotent


def test_a_proxy_command_that_ends_says_how_with_its_stderr() -> None:
    command = "sh -c 'echo Host key verification failed. >&2; exit 255'"
    proxy = ProxySocket(command)
    try:
        proxy.settimeout(10)
        with pytest.raises(ProxyCommandExited) as caught:
            proxy.recv(10)
    finally:
        proxy.close()
    assert str(caught.value) == (
        f"ProxyCommand {command!r} exited with status 255: Host key verification failed."
    )


def test_a_silent_proxy_command_times_out_like_a_socket() -> None:
    proxy = ProxySocket("cat")
    try:
        proxy.settimeout(0)
        with pytest.raises(TimeoutError):
            proxy.recv(10)
    finally:
        proxy.close()


# --- what a login offers -----------------------------------------------------------------


def test_the_agent_is_offered_alongside_key_files_unless_identities_only() -> None:
    options = ConnectOptions(connect_timeout=7.0)
    keyed = Endpoint("h", "10.0.0.5", 22, "ops", identity_files=(Path("/k/a"), Path("/k/b")))
    args = login_args(keyed, options)
    assert (args["key_filename"], args["allow_agent"], args["look_for_keys"]) == (
        ["/k/a", "/k/b"], True, False
    )  # fmt: skip
    only = login_args(replace(keyed, identities_only=True), options)
    assert (only["allow_agent"], only["look_for_keys"]) == (False, False)
    bare = login_args(Endpoint("h", "10.0.0.5", 22, "ops"), options)
    assert (bare["key_filename"], bare["allow_agent"], bare["look_for_keys"]) == (None, True, True)
    assert (bare["timeout"], bare["username"]) == (7.0, "ops")
    slow = login_args(replace(keyed, connect_timeout=30.0), options)
    assert (slow["timeout"], slow["banner_timeout"]) == (30.0, 30.0)


def test_server_alive_interval_becomes_paramikos_keepalive() -> None:
    class Transport:
        interval: int | None = None

        def set_keepalive(self, interval: int) -> None:
            self.interval = interval

    class Client:
        transport = Transport()

        def get_transport(self) -> Transport:
            return self.transport

    client = Client()
    keep_alive(client, Endpoint("h", "a", server_alive_interval=None))  # type: ignore[arg-type]
    assert client.transport.interval is None
    keep_alive(client, Endpoint("h", "a", server_alive_interval=15.0))  # type: ignore[arg-type]
    assert client.transport.interval == 15
