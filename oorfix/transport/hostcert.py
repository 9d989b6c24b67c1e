"""OpenSSH host certificates (PROTOCOL.certkeys): parse one and check it as ssh(1) does.

A certificate is trusted when its signature verifies with a CA key that a known_hosts
``@cert-authority`` line lists for the host (the caller finds that line), it is a host
certificate, valid now, names the address oorfix connects to among its principals
(wildcards allowed, as OpenSSH allows them for hosts), and carries no critical option (none
is defined for host certificates). Every check returns the reason for a refusal, worded for
the operator, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import paramiko

from oorfix.transport.known_hosts_file import CERT_SUFFIX, canonical_key, wildcard_match

USER_CERT, HOST_CERT = 1, 2
FOREVER = 2**64 - 1
# How many strings each certificate type holds between the nonce and the serial: its key.
_KEY_FIELDS = {
    "ssh-rsa": 2,  # e, n
    "ecdsa-sha2-nistp256": 2,  # curve, point
    "ecdsa-sha2-nistp384": 2,
    "ecdsa-sha2-nistp521": 2,
    "ssh-ed25519": 1,  # pk
}
# OpenSSH's default CASignatureAlgorithms: a CA's ssh-rsa (SHA-1) signature is not trusted.
CA_SIGNATURE_ALGORITHMS = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "rsa-sha2-512",
        "rsa-sha2-256",
    }
)


class CertificateError(ValueError):
    """A certificate that cannot be parsed."""


class _Reader:
    """SSH wire fields read strictly: a short field is an error, never zero padding."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        end = self.at + size
        if end > len(self.data):
            raise CertificateError("truncated")
        chunk, self.at = self.data[self.at : end], end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def string(self) -> bytes:
        return self.take(self.uint(4))

    def text(self) -> str:
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CertificateError("a text field is not UTF-8") from exc

    def texts(self) -> list[str]:
        """Every string left, as text (a principals list)."""
        found = []
        while self.at < len(self.data):
            found.append(self.text())
        return found

    def names(self) -> list[str]:
        """The names of the (name, data) pairs left (critical options, extensions)."""
        found = []
        while self.at < len(self.data):
            found.append(self.text())
            self.string()
        return found


@dataclass(frozen=True)
class HostCertificate:
    """The fields of a certificate that decide whether a host is trusted."""

    cert_type: str
    serial: int
    kind: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical_options: tuple[str, ...]
    signature_key: bytes  # the CA's public key blob
    signature: bytes
    signed: bytes  # every field the signature covers

    @property
    def label(self) -> str:
        """How a message names the certificate."""
        return f"key id {self.key_id!r}, serial {self.serial}"


def parse_certificate(blob: bytes) -> HostCertificate:
    """The certificate in ``blob`` (its wire form); raises CertificateError if malformed."""
    reader = _Reader(blob)
    cert_type = reader.text()
    fields = _KEY_FIELDS.get(cert_type.removesuffix(CERT_SUFFIX))
    if not cert_type.endswith(CERT_SUFFIX) or fields is None:
        raise CertificateError(f"unsupported certificate type {cert_type!r}")
    reader.string()  # nonce
    for _ in range(fields):
        reader.string()
    serial, kind = reader.uint(8), reader.uint(4)
    key_id = reader.text()
    principals = _Reader(reader.string()).texts()
    valid_after, valid_before = reader.uint(8), reader.uint(8)
    critical = _Reader(reader.string()).names()
    _Reader(reader.string()).names()  # extensions: none matters for a host certificate
    reader.string()  # reserved
    signature_key = reader.string()
    signed = blob[: reader.at]
    signature = reader.string()
    if reader.at != len(blob):
        raise CertificateError("trailing data after the signature")
    return HostCertificate(
        cert_type,
        serial,
        kind,
        key_id,
        tuple(principals),
        valid_after,
        valid_before,
        tuple(critical),
        signature_key,
        signature,
        signed,
    )


def ca_key(cert: HostCertificate) -> paramiko.PKey:
    """The key that signed ``cert``; raises CertificateError when it is not a usable key."""
    key_type = _Reader(cert.signature_key).text()
    try:
        return canonical_key(key_type, cert.signature_key)
    except ValueError as exc:
        raise CertificateError(f"its CA key is unusable: {exc}") from exc


def signature_problem(cert: HostCertificate, ca: paramiko.PKey) -> str | None:
    """Why ``ca``'s signature on ``cert`` is not accepted, or None when it verifies."""
    algorithm = _Reader(cert.signature).text()
    if algorithm not in CA_SIGNATURE_ALGORITHMS:
        sha1 = " (SHA-1)" if algorithm == "ssh-rsa" else ""
        return f"it is signed with {algorithm}{sha1}, which OpenSSH does not accept from a CA"
    try:
        verified = ca.verify_ssh_sig(cert.signed, paramiko.Message(cert.signature))
    except Exception:  # paramiko raises assorted errors for a malformed signature
        verified = False
    return None if verified else "its signature does not verify with the CA key"


def validity_problem(cert: HostCertificate, *, principal: str, now: float) -> str | None:
    """Why ``cert`` does not vouch for ``principal`` at ``now``, or None when it does."""
    if cert.kind != HOST_CERT:
        kind = "a user certificate" if cert.kind == USER_CERT else f"of type {cert.kind}"
        return f"it is {kind}, not a host certificate"
    if now < cert.valid_after:
        return f"it is not valid before {_when(cert.valid_after)}"
    if now >= cert.valid_before:
        return f"it expired at {_when(cert.valid_before)}"
    if not cert.principals:
        # PROTOCOL.certkeys reads no principals as "any host"; OpenSSH 10.3 refuses such a
        # certificate (a CA that signs one by mistake vouches for every host, CVE-2024-7594).
        return "it lists no principals, so it names no host"
    name = principal.lower()
    if not any(wildcard_match(name, pattern) for pattern in cert.principals):
        listed = ", ".join(cert.principals)
        return f"{principal} is not among its principals ({listed})"
    if cert.critical_options:
        options = ", ".join(cert.critical_options)
        return f"it has critical options ({options}), none of which a host certificate may have"
    return None


def _when(seconds: int) -> str:
    """A validity bound as UTC ISO 8601 (or "forever")."""
    if seconds >= FOREVER:
        return "forever"
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (seconds since 1970)"
