"""Host certificates, @revoked and bad known_hosts lines against a real sshd.

Two lab sshds present host certificates signed by a test CA for 127.0.0.2 only (127.0.0.3
plays a host the certificate does not name): one valid forever, one long expired. Every
refusal happens before authentication: sshd logs no accepted login, and no command runs.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from oorfix.errors import HostKeyError
from oorfix.inventory.hosts import HostConnection
from oorfix.lab.sshd import SshdServer
from oorfix.redact import Command
from oorfix.transport import ConnectOptions, open_transport
from tests.integration.conftest import require_sshd, run_cli

pytestmark = pytest.mark.integration

NAMED, UNNAMED = "127.0.0.2", "127.0.0.3"  # the certificates' one principal, and another host


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path``; its public key as ``type base64``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


@dataclass(frozen=True)
class Ca:
    """A test certificate authority: its private key file and public key."""

    key: Path
    public: str


@dataclass(frozen=True)
class CertifiedSshd:
    """A running sshd whose host key a test CA certified for NAMED."""

    server: SshdServer

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host_key(self) -> str:
        return self.server.host_pubkey

    def logins(self) -> int:
        return self.server.log.read_text(errors="replace").count("Accepted publickey")

    def options(self, known_hosts: Path, **overrides: object) -> ConnectOptions:
        base = ConnectOptions(
            known_hosts=known_hosts,
            global_known_hosts=None,
            connect_timeout=5.0,
            banner_timeout=5.0,
            auth_timeout=5.0,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def conn(self, address: str) -> HostConnection:
        return HostConnection(
            name=f"cert-{address}",
            address=address,
            port=self.server.port,
            user=getpass.getuser(),
            key_file=self.server.client_key,
            kind="ssh",
        )


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    key = tmp_path_factory.mktemp("ca") / "ca"
    return Ca(key, keygen(key))


@contextlib.contextmanager
def certified_sshd(directory: Path, ca: Ca, validity: str) -> Iterator[CertifiedSshd]:
    """An sshd on NAMED and UNNAMED whose host certificate ``ca`` signed for NAMED."""
    require_sshd()
    host_key = directory / "ssh_host_ed25519_key"  # SshdServer keeps a key that exists
    keygen(host_key)
    subprocess.run(
        ["ssh-keygen", "-q", "-s", str(ca.key), "-I", "oorfix-test-host", "-h", "-n", NAMED,
         "-z", "42", "-V", validity, str(host_key.with_suffix(".pub"))],
        check=True,
        capture_output=True,
    )  # fmt: skip
    cert = directory / "ssh_host_ed25519_key-cert.pub"
    config = [f"HostCertificate {cert}"]
    with SshdServer(directory, (NAMED, UNNAMED), extra_config=config) as server:
        yield CertifiedSshd(server)


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory, ca: Ca) -> Iterator[CertifiedSshd]:
    with certified_sshd(tmp_path_factory.mktemp("valid"), ca, "always:forever") as running:
        yield running


@pytest.fixture(scope="module")
def expired(tmp_path_factory: pytest.TempPathFactory, ca: Ca) -> Iterator[CertifiedSshd]:
    window = "20200101000000Z:20200102000000Z"
    with certified_sshd(tmp_path_factory.mktemp("expired"), ca, window) as running:
        yield running


def refused(sshd: CertifiedSshd, address: str, options: ConnectOptions) -> str:
    """Connect to ``address``, expecting a HostKeyError before login; its message."""
    logins = sshd.logins()
    transport = open_transport(sshd.conn(address), options)
    try:
        with pytest.raises(HostKeyError) as caught:
            transport.connect()
    finally:
        transport.close()
    assert sshd.logins() == logins, "a login happened despite the refused host key"
    return caught.value.message


@pytest.mark.parametrize("pattern", ["[{address}]:{port}", "*", "[127.0.0.?]:{port},!nothing"])
def test_a_certificate_from_a_trusted_ca_logs_in(
    valid: CertifiedSshd, ca: Ca, tmp_path: Path, pattern: str
) -> None:
    # Only the CA is listed: the host is trusted through its certificate alone.
    known_hosts = tmp_path / "known_hosts"
    hosts = pattern.format(address=NAMED, port=valid.port)
    known_hosts.write_text(f"@cert-authority {hosts} {ca.public}\n")
    transport = open_transport(valid.conn(NAMED), valid.options(known_hosts))
    transport.connect()
    try:
        assert transport.run(Command("echo in"), timeout=10).stdout.text == "in\n"
    finally:
        transport.close()
    assert known_hosts.read_text() == f"@cert-authority {hosts} {ca.public}\n"


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_certificate_from_an_unknown_ca_is_refused(
    valid: CertifiedSshd, tmp_path: Path, accept_new: bool
) -> None:
    known_hosts = tmp_path / "known_hosts"
    other = keygen(tmp_path / "other_ca")
    known_hosts.write_text(f"@cert-authority * {other}\n")
    options = valid.options(known_hosts, accept_new_host_keys=accept_new)
    message = refused(valid, NAMED, options)
    assert message.startswith(
        f"host certificate for [{NAMED}]:{valid.port} (key id 'oorfix-test-host', serial 42) "
        "is not trusted: it is signed by CA ssh-ed25519 SHA256:"
    )
    assert f"which no @cert-authority line for [{NAMED}]:{valid.port} lists" in message
    assert message.endswith("; refused before logging in")
    assert known_hosts.read_text() == f"@cert-authority * {other}\n"  # accept-new added nothing


def test_a_certificate_not_naming_the_host_is_refused(
    valid: CertifiedSshd, ca: Ca, tmp_path: Path
) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@cert-authority * {ca.public}\n")
    message = refused(valid, UNNAMED, valid.options(known_hosts))
    assert f"is not trusted: {UNNAMED} is not among its principals ({NAMED})" in message
    assert f"(CA at {known_hosts}:1)" in message


def test_an_expired_certificate_is_refused(expired: CertifiedSshd, ca: Ca, tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"@cert-authority * {ca.public}\n")
    message = refused(expired, NAMED, expired.options(known_hosts))
    assert "is not trusted: it expired at 2020-01-02T00:00:00Z" in message


@pytest.mark.parametrize("what", ["key", "CA"])
def test_a_revoked_certificate_key_or_ca_is_refused(
    valid: CertifiedSshd, ca: Ca, tmp_path: Path, what: str
) -> None:
    known_hosts = tmp_path / "known_hosts"
    revoked = valid.host_key if what == "key" else ca.public
    known_hosts.write_text(f"@cert-authority * {ca.public}\n@revoked * {revoked}\n")
    # A revoked key is refused even when it is also listed as the host's plain key.
    with known_hosts.open("a") as listing:
        listing.write(f"[{NAMED}]:{valid.port} {valid.host_key}\n")
    message = refused(valid, NAMED, valid.options(known_hosts, accept_new_host_keys=True))
    assert f"is revoked: its {what} ssh-ed25519 SHA256:" in message
    assert f"is listed under @revoked at {known_hosts}:2" in message


def test_a_refused_certificate_falls_back_to_a_listed_plain_key(
    valid: CertifiedSshd, ca: Ca, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # As OpenSSH: the certificate does not name UNNAMED, but its key is listed for it.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(
        f"@cert-authority * {ca.public}\n[{UNNAMED}]:{valid.port} {valid.host_key}\n"
    )
    caplog.set_level(logging.WARNING, logger="oorfix")
    transport = open_transport(valid.conn(UNNAMED), valid.options(known_hosts))
    transport.connect()
    transport.close()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{UNNAMED} is not among its principals" in warning
    assert warning.endswith(f"; accepted because {known_hosts}:2 lists its key")


def test_a_garbage_line_is_skipped_and_warned_about_on_stderr(
    valid: CertifiedSshd, tmp_path: Path
) -> None:
    # The real CLI: the warning names file:line on stderr, and the host is still reached.
    known_hosts = tmp_path / "known_hosts"
    name = f"[{NAMED}]:{valid.port}"
    known_hosts.write_text(f"{name} ssh-ed25519 AAAA@@garbage\n{name} {valid.host_key}\n")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(valid.server.inventory_yaml(["garbage"]))
    runbook = tmp_path / "runbook.yml"
    runbook.write_text(
        "name: probe\nfault: software.service_interruption\nhosts: all\n"
        "detect:\n  - name: probe\n    run: 'true'\n"
    )
    record = tmp_path / "record.json"
    argv = ["run", str(runbook), "-i", str(inventory), "--known-hosts", str(known_hosts)]
    run = run_cli([*argv, "--json", str(record)], record)
    assert run.rc == 0, run.stderr
    assert run.result("garbage")["status"] == "healthy"
    expected = f"known_hosts {known_hosts}:1: invalid base64 key"
    assert sum(expected in line for line in run.stderr.splitlines()) == 1, run.stderr
