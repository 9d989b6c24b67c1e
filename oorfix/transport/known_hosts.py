"""Host key checking for the SSH transport: known_hosts loading, names, fingerprints, refusals.

Host keys work like OpenSSH with ``StrictHostKeyChecking=yes`` (or ``accept-new`` when
``accept_new_host_keys`` is set): keys come from ``options.known_hosts`` (default
``~/.ssh/known_hosts``, where a port other than 22 is written ``[address]:port``); an unknown
key is refused before any credential is sent, and a changed key is always refused. A
known_hosts file that cannot be read or parsed refuses the host too (HostKeyError, naming the
file and the line): paramiko's own errors for it never escape this module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from oorfix.errors import HostKeyError
from oorfix.inventory.hosts import HostConnection
from oorfix.transport.common import raise_local_shortage

_LOG = logging.getLogger(__name__)
_KNOWN_HOSTS_LOCK = threading.Lock()
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
SSH_PORT = 22


def known_hosts_name(address: str, port: int) -> str:
    """How known_hosts names a host: ``address``, or ``[address]:port`` off port 22."""
    return address if port == SSH_PORT else f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """The key's SHA256 fingerprint as OpenSSH prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def append_known_host(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append one known_hosts line; never rewrites the file (comments, hashed entries stay)."""
    line = f"{name} {key.get_name()} {key.get_base64()}\n".encode("ascii")
    with _KNOWN_HOSTS_LOCK:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with path.open("a+b") as handle:
            if handle.seek(0, 2) > 0:
                handle.seek(-1, 2)
                if handle.read(1) != b"\n":
                    line = b"\n" + line  # no final newline: keep the last line whole
            handle.write(line)  # append mode: always at the end


def corrupt_line(path: Path, name: str) -> int | None:
    """The number of the first known_hosts line paramiko fails on, if one can be found."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8").strip()
            if not line or line.startswith("#"):
                continue
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, number)
            for hashed in entry.hostnames if entry is not None else []:
                if hashed.startswith("|1|"):
                    paramiko.HostKeys.hash_host(name, hashed)
        except paramiko.SSHException:
            continue  # paramiko skips such a line itself
        except Exception:  # whatever paramiko raises for it, this is the line
            return number
    return None


def _parse_failure(exc: Exception) -> str:
    """What paramiko's exception says is wrong with a known_hosts line."""
    cause = exc.exc if isinstance(exc, paramiko.hostkeys.InvalidHostKey) else exc
    if isinstance(cause, binascii.Error):
        return f"invalid base64: {cause}"
    if isinstance(cause, AssertionError):  # paramiko asserts a hashed name's salt length
        return "malformed hashed host name"
    return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__


@dataclass(frozen=True)
class KnownHost:
    """One host checked against one known_hosts file: its oorfix name, address and port."""

    host: str
    address: str
    port: int
    path: Path

    @classmethod
    def of(cls, conn: HostConnection, path: Path | None) -> KnownHost:
        """``conn`` checked against ``path``, or ``~/.ssh/known_hosts`` when that is None."""
        return cls(conn.name, conn.address, conn.port, (path or DEFAULT_KNOWN_HOSTS).expanduser())

    @property
    def name(self) -> str:
        """This host's name in known_hosts."""
        return known_hosts_name(self.address, self.port)

    def trust(self, client: paramiko.SSHClient, *, accept_new: bool) -> None:
        """Load known_hosts into ``client`` and refuse (or accept-new) keys it does not list.

        Raises HostKeyError when the file cannot be read or parsed.
        """
        if self.path.exists():
            self._load(client.get_host_keys())
        client.set_missing_host_key_policy(_HostKeyPolicy(self, accept_new=accept_new))

    def _load(self, keys: paramiko.HostKeys) -> None:
        """Load the file into ``keys``; a file paramiko cannot parse refuses the host."""
        try:
            keys.load(str(self.path))
            # Hashed names (|1|salt|hash) are decoded only when looked up: do it now, so a
            # corrupt one fails here rather than in the middle of the login.
            keys.lookup(self.name)
        except OSError as exc:
            raise_local_shortage(self.host, exc)
            known = shlex.quote(str(self.path))
            raise HostKeyError(
                self.host, f"cannot read known_hosts file {known}: {exc.strerror or exc}"
            ) from exc
        except Exception as exc:  # InvalidHostKey, binascii.Error, UnicodeDecodeError, ...
            raise HostKeyError(self.host, self._corrupt_message(exc)) from exc

    def _corrupt_message(self, exc: Exception) -> str:
        """Why a known_hosts file that does not parse refused the host."""
        line = corrupt_line(self.path, self.name)
        where = shlex.quote(str(self.path)) + (f":{line}" if line is not None else "")
        return (
            f"known_hosts file {where} cannot be parsed ({_parse_failure(exc)}); "
            "refused before logging in. Fix or remove that line"
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

    def changed_key_message(self, exc: paramiko.BadHostKeyException) -> str:
        """Why a changed key was refused, and how to accept a legitimate re-key."""
        known = shlex.quote(str(self.path))
        return (
            f"host key for {self.name} has changed: the host offers "
            f"{exc.key.get_name()} {fingerprint(exc.key)} but {known} holds "
            f"{fingerprint(exc.expected_key)}; possible man-in-the-middle attack, refused. "
            "If the host was legitimately re-keyed, remove the old key with "
            f"`ssh-keygen -R {shlex.quote(self.name)} -f {known}`"
        )


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """What to do with a key known_hosts does not list: refuse it, or accept-new and record it."""

    def __init__(self, known: KnownHost, *, accept_new: bool) -> None:
        self.known = known
        self.accept_new = accept_new

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if not self.accept_new:
            # Raised before authentication: no credential and no command reach the host.
            raise HostKeyError(self.known.host, self.known.unknown_key_message(key))
        append_known_host(self.known.path, hostname, key)
        _LOG.info("trusted new %s key %s for %s", key.get_name(), fingerprint(key), hostname)
