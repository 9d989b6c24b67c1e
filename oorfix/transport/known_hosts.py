"""Host key checking for the SSH transport, done by oorfix the way OpenSSH does it.

Keys come from ``options.known_hosts`` (default ``~/.ssh/known_hosts``) and the system file
``options.global_known_hosts`` (default ``/etc/ssh/ssh_known_hosts``), read as
``known_hosts_file`` describes: a line oorfix cannot use is skipped with a warning, never a
reason to refuse every host; a file that cannot be read refuses the host (HostKeyError).

paramiko is given no host keys, so it hands every key to ``_HostKeyPolicy`` after the key
exchange and before any credential is sent. As ``ssh -o StrictHostKeyChecking=yes`` (or
``accept-new`` with ``accept_new_host_keys``):

- a key, or a certificate's key or CA, listed under ``@revoked`` is refused;
- a host certificate is accepted when an ``@cert-authority`` line for the host lists its CA
  and ``hostcert`` finds it valid; otherwise its plain key is looked up as below, and refused
  with the certificate's reason unless listed;
- a plain key listed for the host (``address``, or ``[address]:port`` off port 22; off port
  22 a key listed for the bare address counts too, as OpenSSH) is accepted; a host listed
  with other keys only has changed its key and is refused, whatever accept-new says;
- an unknown key is refused, or with accept-new appended to the user's file (never the
  system file) and logged at WARNING with its fingerprint.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from oorfix.errors import HostKeyError
from oorfix.inventory.hosts import HostConnection
from oorfix.transport import known_hosts_file
from oorfix.transport.common import raise_local_shortage
from oorfix.transport.hostcert import (
    CertificateError,
    ca_key,
    parse_certificate,
    signature_problem,
    validity_problem,
)
from oorfix.transport.known_hosts_file import (
    CERT_SUFFIX,
    HostPatterns,
    KeyLine,
    Marker,
    fingerprint_of,
)

_LOG = logging.getLogger(__name__)
_KNOWN_HOSTS_LOCK = threading.Lock()
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_GLOBAL_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
SSH_PORT = 22
_RSA_ALGORITHMS = ("ssh-rsa", "rsa-sha2-256", "rsa-sha2-512")


def known_hosts_name(address: str, port: int) -> str:
    """How known_hosts names a host: ``address``, or ``[address]:port`` off port 22."""
    return address if port == SSH_PORT else f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it (a certificate's: its key's)."""
    return fingerprint_of(key.asbytes())


def append_known_host(path: Path, name: str, key: paramiko.PKey) -> bool:
    """Append one known_hosts line (False: it is there already); never rewrites the file."""
    blob = key.asbytes()
    line = f"{name} {key.get_name()} {key.get_base64()}\n".encode("ascii")
    with _KNOWN_HOSTS_LOCK:
        listed = known_hosts_file.load(path).matching(name)
        if any(found.marker is Marker.KEY and found.blob == blob for found in listed):
            return False  # another connection to the same host added it meanwhile
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        before = path.stat() if path.exists() else None
        with path.open("a+b") as handle:
            handle.seek(0)
            existing = handle.read()
            if existing and not existing.endswith(b"\n"):
                line = b"\n" + line  # no final newline: keep the last line whole
            handle.write(line)  # append mode: always at the end
        number = existing.count(b"\n") + line.count(b"\n")
        added = KeyLine(
            path, number, Marker.KEY, HostPatterns.parse(name), key.get_name(), key, blob
        )
        # The cached parse of the file gains the line: 1,000 new hosts, no reparse each.
        known_hosts_file.appended(path, before, added, len(line))
        return True


def _algorithms(key_type: str) -> tuple[str, ...]:
    """The host key algorithms that negotiate a key of ``key_type``."""
    return _RSA_ALGORITHMS if key_type == "ssh-rsa" else (key_type,)


def _find(lines: Sequence[KeyLine], marker: Marker, *blobs: bytes) -> KeyLine | None:
    """The first of ``lines`` with ``marker`` whose key is one of ``blobs``."""
    return next((ln for ln in lines if ln.marker is marker and ln.blob in blobs), None)


def _certificate_blob(key: paramiko.PKey) -> bytes | None:
    """The certificate the host presented, when it presented one rather than a plain key."""
    blob = key.public_blob
    return blob.key_blob if blob is not None and blob.key_type.endswith(CERT_SUFFIX) else None


@dataclass
class KnownHost:
    """One host checked against known_hosts: its oorfix name, address, port and files."""

    host: str
    address: str
    port: int
    path: Path  # the user's file: read, and where accept-new appends
    global_path: Path | None = DEFAULT_GLOBAL_KNOWN_HOSTS  # the system file: only read
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    new_host_key: str | None = field(default=None, compare=False)  # accept-new's fingerprint

    @classmethod
    def of(
        cls,
        conn: HostConnection,
        path: Path | None,
        *,
        global_path: Path | None = DEFAULT_GLOBAL_KNOWN_HOSTS,
    ) -> KnownHost:
        """``conn`` checked against ``path`` (None: ``~/.ssh/known_hosts``) and ``global_path``."""
        user = (path or DEFAULT_KNOWN_HOSTS).expanduser()
        system = global_path.expanduser() if global_path is not None else None
        return cls(conn.name, conn.address, conn.port, user, system)

    @property
    def name(self) -> str:
        """This host's name in known_hosts."""
        return known_hosts_name(self.address, self.port)

    def trust(self, client: paramiko.SSHClient, *, accept_new: bool) -> None:
        """Leave every host key ``client`` sees to oorfix's check (accept-new: add unknown ones).

        Raises HostKeyError at once when a known_hosts file cannot be read.
        """
        self.lines()
        client.get_host_keys().clear()  # holding no key, paramiko asks the policy every time
        client.set_missing_host_key_policy(_HostKeyPolicy(self, accept_new=accept_new))

    def lines(self, name: str | None = None) -> list[KeyLine]:
        """The usable lines of both files that match this host (or ``name``), in order."""
        files = [self.path]
        if self.global_path is not None and self.global_path != self.path:
            files.append(self.global_path)
        found: list[KeyLine] = []
        for path in files:
            try:
                found += known_hosts_file.load(path).matching(name or self.name)
            except OSError as exc:
                raise_local_shortage(self.host, exc)
                known = shlex.quote(str(path))
                raise HostKeyError(
                    self.host, f"cannot read known_hosts file {known}: {exc.strerror or exc}"
                ) from exc
        return found

    def algorithm_rank(self) -> Callable[[str], int]:
        """How early to offer each host key algorithm: certificates first when a CA is
        trusted for this host, then the key types listed for it, then the rest."""
        lines = self.lines()
        certs_first = any(line.marker is Marker.CA for line in lines)
        known = {a for ln in lines if ln.marker is Marker.KEY for a in _algorithms(ln.key_type)}

        def rank(algorithm: str) -> int:
            if algorithm.endswith(CERT_SUFFIX):
                return 0 if certs_first else 3
            return 1 if algorithm in known else 2

        return rank

    def verify(self, key: paramiko.PKey, *, accept_new: bool) -> None:
        """Accept the host's ``key`` or raise HostKeyError, as OpenSSH decides."""
        lines = self.lines()
        blob = key.asbytes()
        certificate = _certificate_blob(key)
        refusal = None
        if certificate is not None:
            refusal = self._check_certificate(lines, blob, certificate)
            if refusal is None:
                return
        revoked = _find(lines, Marker.REVOKED, blob)
        if revoked is not None:
            raise HostKeyError(self.host, self.revoked_message(key, revoked))
        listed = [line for line in lines if line.marker is Marker.KEY]
        match = _find(listed, Marker.KEY, blob)
        if match is None and not listed and self.port != SSH_PORT:
            match = self._listed_without_port(blob)
        if match is not None:
            if refusal is not None:  # OpenSSH retries a refused certificate as a plain key
                _LOG.warning("%s; accepted because %s lists its key", refusal, match.where)
            return
        if refusal is not None:
            raise HostKeyError(self.host, f"{refusal}; refused before logging in")
        if listed:
            same_type = [line for line in listed if line.key_type == key.get_name()]
            raise HostKeyError(self.host, self.changed_key_message(key, (same_type or listed)[0]))
        if not accept_new:
            raise HostKeyError(self.host, self.unknown_key_message(key))
        if not append_known_host(self.path, self.name, key):
            return
        self.new_host_key = fingerprint(key)
        _LOG.warning(
            "%s: trusted the new %s host key %s of %s (accept-new; appended to %s)",
            self.host,
            key.get_name(),
            self.new_host_key,
            self.name,
            self.path,
        )

    def _listed_without_port(self, blob: bytes) -> KeyLine | None:
        """A line listing ``blob`` for the bare address (OpenSSH's fallback off port 22)."""
        bare = self.lines(self.address)
        return None if _find(bare, Marker.REVOKED, blob) else _find(bare, Marker.KEY, blob)

    def _check_certificate(self, lines: list[KeyLine], blob: bytes, cert_blob: bytes) -> str | None:
        """Why the host certificate is not trusted (None: it is); raises if it is revoked."""
        intro = f"host certificate for {self.name}"
        try:
            cert = parse_certificate(cert_blob)
            ca = ca_key(cert)
        except CertificateError as exc:
            return f"{intro} is not trusted: it cannot be parsed ({exc})"
        ca_blob = ca.asbytes()
        revoked = _find(lines, Marker.REVOKED, blob, ca_blob)
        if revoked is not None:
            what = "its CA" if revoked.blob == ca_blob else "its key"
            raise HostKeyError(
                self.host,
                f"{intro} ({cert.label}) is revoked: {what} {revoked.key_type} "
                f"{revoked.fingerprint} is listed under @revoked at {revoked.where}; "
                "refused before logging in",
            )
        intro += f" ({cert.label})"
        authority = _find(lines, Marker.CA, ca_blob)
        if authority is None:
            return (
                f"{intro} is not trusted: it is signed by CA {ca.get_name()} "
                f"{fingerprint_of(ca_blob)}, which no @cert-authority line for {self.name} lists"
            )
        problem = signature_problem(cert, authority.key) or validity_problem(
            cert, principal=self.address, now=self.clock()
        )
        if problem is not None:
            return f"{intro} is not trusted: {problem} (CA at {authority.where})"
        _LOG.debug("%s: %s signed by the CA at %s", self.host, intro, authority.where)
        return None

    def revoked_message(self, key: paramiko.PKey, line: KeyLine) -> str:
        """Why a revoked key was refused."""
        return (
            f"host key for {self.name} is revoked: {key.get_name()} {fingerprint(key)} is "
            f"listed under @revoked at {line.where}; refused before logging in"
        )

    def unknown_key_message(self, key: paramiko.PKey) -> str:
        """Why an unknown key was refused, and how to trust it."""
        port = f"-p {self.port} " if self.port != SSH_PORT else ""
        known = shlex.quote(str(self.path))
        return (
            f"host key for {self.name} is not known "
            f"({key.get_name()} {fingerprint(key)}); refused before logging in. "
            "To trust it, confirm the fingerprint and run "
            f"`ssh-keyscan {port}{self.address} >> {known}`, "
            "or pass --accept-new-host-keys"
        )

    def changed_key_message(self, key: paramiko.PKey, listed: KeyLine) -> str:
        """Why a changed key was refused, and how to accept a legitimate re-key."""
        known = shlex.quote(str(listed.path))
        return (
            f"host key for {self.name} has changed: the host offers "
            f"{key.get_name()} {fingerprint(key)} but {known}:{listed.number} holds "
            f"{listed.key_type} {listed.fingerprint}; possible man-in-the-middle attack, "
            "refused. If the host was legitimately re-keyed, remove the old key with "
            f"`ssh-keygen -R {shlex.quote(self.name)} -f {known}`"
        )


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Decides on every host key, since the client holds none: ``KnownHost.verify``."""

    def __init__(self, known: KnownHost, *, accept_new: bool) -> None:
        self.known = known
        self.accept_new = accept_new

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        # Called after the key exchange, before authentication: a refusal sends no credential.
        self.known.verify(key, accept_new=self.accept_new)
