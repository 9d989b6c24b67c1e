"""known_hosts files read as OpenSSH reads them: markers, host patterns, hashed names, keys.

A line is ``[@cert-authority|@revoked] PATTERNS KEYTYPE BASE64 [COMMENT]``. PATTERNS is a
comma-separated list with ``*`` and ``?`` wildcards and ``!negation``, a host off port 22
written ``[host]:port``, or one hashed name ``|1|salt|hash`` (HMAC-SHA1 of the name, keyed
with the salt). Names match case-insensitively. A line oorfix cannot use (bad base64, a key
type paramiko cannot check, a malformed hashed name, an unknown marker) is skipped with a
warning naming the file and the line; the other lines still count. Parsed files are cached
by path, inode, mtime and size: a run over 1,000 hosts parses (and warns about) each file once.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

_LOG = logging.getLogger(__name__)
# The key types paramiko can use as host keys (and so check against a line).
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-rsa",
    }
)
CERT_SUFFIX = "-cert-v01@openssh.com"
_HASH_MAGIC = "|1|"
_SHA1_SIZE = 20
_WILDCARDS = re.compile(r"[*?]")


class Marker(enum.Enum):
    """What a line says about its key: a host key, a trusted CA, or a revoked key."""

    KEY = ""
    CA = "@cert-authority"
    REVOKED = "@revoked"


class UnusableLine(ValueError):
    """Why a line is skipped."""


def fingerprint_of(blob: bytes) -> str:
    """A public key blob's SHA256 fingerprint as OpenSSH prints it."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    regex = "".join(
        ".*" if part == "*" else "." if part == "?" else re.escape(part)
        for part in re.split(r"([*?])", pattern)
    )
    return re.compile(regex, re.DOTALL)


def wildcard_match(name: str, pattern: str) -> bool:
    """OpenSSH's match_pattern: ``*`` is any run of characters, ``?`` one character."""
    if not _WILDCARDS.search(pattern):
        return name == pattern
    return _compiled(pattern).fullmatch(name) is not None


@dataclass(frozen=True)
class HashedName:
    """A hashed host name ``|1|salt|hash``: HMAC-SHA1 of the name, keyed with the salt."""

    salt: bytes
    digest: bytes
    # HMAC's two keyed SHA-1 states, computed once: a lookup checks every hashed line, and
    # copying them is three times faster than hmac.digest.
    _pads: tuple[Any, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.salt.ljust(64, b"\0")  # the salt is shorter than SHA-1's block
        inner = hashlib.sha1(bytes(b ^ 0x36 for b in key))  # noqa: S324 (OpenSSH's format)
        outer = hashlib.sha1(bytes(b ^ 0x5C for b in key))  # noqa: S324
        object.__setattr__(self, "_pads", (inner, outer))

    def matches(self, name: bytes) -> bool:
        """Whether ``name`` hashes to this digest."""
        inner, outer = self._pads[0].copy(), self._pads[1].copy()
        inner.update(name)
        outer.update(inner.digest())
        return bool(outer.digest() == self.digest)


@dataclass(frozen=True)
class HostPatterns:
    """A line's host field: patterns (positive and negated), or one hashed name."""

    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    hashed: HashedName | None = None

    @classmethod
    def parse(cls, text: str) -> HostPatterns:
        """The host field of a line; raises UnusableLine for a malformed hashed name."""
        if text.startswith("|"):
            return cls(hashed=HashedName(*_parse_hash(text)))
        patterns = [p for p in text.lower().split(",") if p]
        return cls(
            positive=tuple(p for p in patterns if not p.startswith("!")),
            negative=tuple(p[1:] for p in patterns if p.startswith("!")),
        )

    @property
    def literals(self) -> tuple[str, ...] | None:
        """The names this field matches when it holds no wildcard and no hash, else None."""
        if self.hashed is not None or any(_WILDCARDS.search(p) for p in self.positive):
            return None
        return self.positive

    def matches(self, name: str) -> bool:
        """Whether ``name`` (lower case) matches: a negated pattern overrides every other."""
        if self.hashed is not None:
            return self.hashed.matches(name.encode())
        if any(wildcard_match(name, p) for p in self.negative):
            return False
        return any(wildcard_match(name, p) for p in self.positive)


def _parse_hash(text: str) -> tuple[bytes, bytes]:
    """Salt and digest of ``|1|salt|hash``, both 20 bytes as OpenSSH writes them."""
    parts = text.split("|")
    if not text.startswith(_HASH_MAGIC) or len(parts) != 4:
        raise UnusableLine("malformed hashed host name (expected |1|salt|hash)")
    try:
        salt = base64.b64decode(parts[2], validate=True)
        digest = base64.b64decode(parts[3], validate=True)
    except binascii.Error as exc:
        raise UnusableLine(f"malformed hashed host name (invalid base64: {exc})") from exc
    if len(salt) != _SHA1_SIZE or len(digest) != _SHA1_SIZE:
        raise UnusableLine("malformed hashed host name (salt and hash must be 20 bytes each)")
    return salt, digest


@dataclass(frozen=True)
class KeyLine:
    """One usable line: where it is, its marker, the hosts it covers and its key."""

    path: Path
    number: int
    marker: Marker
    hosts: HostPatterns
    key_type: str
    key: paramiko.PKey
    blob: bytes  # the key in canonical wire form, to compare keys by

    @property
    def where(self) -> str:
        """``file:line``, to name the line in a message."""
        return f"{self.path}:{self.number}"

    @property
    def fingerprint(self) -> str:
        """The key's SHA256 fingerprint."""
        return fingerprint_of(self.blob)


def canonical_key(key_type: str, blob: bytes) -> paramiko.PKey:
    """The public key in ``blob``, checked against ``key_type``; raises ValueError if unusable."""
    if key_type.endswith(CERT_SUFFIX):
        raise ValueError("a certificate, not a key (list its CA with @cert-authority)")
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type {key_type!r} is not one oorfix can check")
    named = blob[4 : 4 + int.from_bytes(blob[:4], "big")] if len(blob) >= 4 else b""
    if named != key_type.encode():
        shown = named.decode("ascii", "replace") or "nothing"
        raise ValueError(f"key type {key_type} but the key is {shown}")
    try:
        return paramiko.PKey.from_type_string(key_type, blob)
    except Exception as exc:  # paramiko raises assorted errors for bad key material
        raise ValueError(f"the {key_type} key does not parse ({type(exc).__name__})") from exc


def parse_line(path: Path, number: int, text: str) -> KeyLine | None:
    """One line as a KeyLine; None for a blank line or a comment; UnusableLine when unusable."""
    fields = text.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = Marker.KEY
    if fields[0].startswith("@"):
        known = {m.value: m for m in Marker if m is not Marker.KEY}
        if fields[0] not in known:
            raise UnusableLine(f"unknown marker {fields[0]!r}")
        marker = known[fields.pop(0)]
        if fields and fields[0].startswith("@"):
            raise UnusableLine("more than one marker")
    if len(fields) < 3:
        raise UnusableLine("no key (expected: hosts, key type, base64 key)")
    hosts = HostPatterns.parse(fields[0])
    try:
        blob = base64.b64decode(fields[2], validate=True)
    except binascii.Error as exc:
        raise UnusableLine(f"invalid base64 key ({exc})") from exc
    try:
        key = canonical_key(fields[1], blob)
    except ValueError as exc:
        raise UnusableLine(str(exc)) from exc
    return KeyLine(path, number, marker, hosts, fields[1], key, key.asbytes())


@dataclass(frozen=True)
class KnownHostsFile:
    """A parsed file: its usable lines, indexed by literal name, and what was skipped."""

    path: Path
    lines: tuple[KeyLine, ...] = ()
    skipped: tuple[str, ...] = ()
    _by_name: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    _wild: tuple[int, ...] = field(default=(), repr=False)  # lines with a wildcard
    _hashed: tuple[tuple[int, HashedName], ...] = field(default=(), repr=False)
    # Names already looked up: a connection looks its host up several times, and each
    # hashed line costs an HMAC per lookup.
    _matched: dict[str, tuple[KeyLine, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, path: Path, data: bytes) -> KnownHostsFile:
        """Parse ``data`` (the file's bytes); a line that cannot be used is skipped."""
        lines: list[KeyLine] = []
        skipped: list[str] = []
        for number, raw in enumerate(data.splitlines(), 1):
            try:
                line = parse_line(path, number, raw.decode("utf-8", "replace"))
            except UnusableLine as exc:
                skipped.append(f"{path}:{number}: {exc}; line skipped")
                continue
            if line is not None:
                lines.append(line)
        return cls.of(path, lines, skipped)

    @classmethod
    def of(
        cls, path: Path, lines: Iterable[KeyLine], skipped: Iterable[str] = ()
    ) -> KnownHostsFile:
        """The file holding ``lines``, indexed for lookups."""
        held = tuple(lines)
        by_name: dict[str, list[int]] = {}
        wild: list[int] = []
        hashed: list[tuple[int, HashedName]] = []
        for index, line in enumerate(held):
            literals = line.hosts.literals
            if line.hosts.hashed is not None:
                hashed.append((index, line.hosts.hashed))
            elif literals is None:
                wild.append(index)
            for name in literals or ():
                by_name.setdefault(name, []).append(index)
        names = {name: tuple(found) for name, found in by_name.items()}
        return cls(path, held, tuple(skipped), names, tuple(wild), tuple(hashed))

    def matching(self, name: str) -> list[KeyLine]:
        """The lines whose host field matches ``name``, in file order."""
        name = name.lower()
        found = self._matched.get(name)
        if found is None:
            data = name.encode()
            hits = {i for i, hashed in self._hashed if hashed.matches(data)}
            for i in (*self._by_name.get(name, ()), *self._wild):
                if self.lines[i].hosts.matches(name):  # a negation may still rule it out
                    hits.add(i)
            found = tuple(self.lines[i] for i in sorted(hits))
            self._matched[name] = found  # a race only computes the same tuple twice
        return list(found)

    def with_line(self, line: KeyLine) -> KnownHostsFile:
        """This file with ``line`` appended (what accept-new just wrote), indexed as it was."""
        index = len(self.lines)
        by_name, wild, hashed = self._by_name, self._wild, self._hashed
        literals = line.hosts.literals
        if line.hosts.hashed is not None:
            hashed = (*hashed, (index, line.hosts.hashed))
        elif literals is None:
            wild = (*wild, index)
        else:
            by_name = dict(by_name)
            for name in literals:
                by_name[name] = (*by_name.get(name, ()), index)
        matched = {  # names looked up so far gain the line if it matches them
            name: (*found, line) if line.hosts.matches(name) else found
            for name, found in self._matched.items()
        }
        held = (*self.lines, line)
        return KnownHostsFile(self.path, held, self.skipped, by_name, wild, hashed, matched)


_Version = tuple[int, int, int, int]
_CACHE: dict[Path, tuple[_Version, KnownHostsFile]] = {}
_CACHE_LOCK = threading.Lock()


def _version(info: os.stat_result) -> _Version:
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


def load(path: Path) -> KnownHostsFile:
    """The parsed file (empty if it does not exist); OSError if it cannot be read.

    Skipped lines are logged at WARNING when a version of the file is first parsed.
    """
    with _CACHE_LOCK:  # one parse (and one set of warnings) per version, whatever the threads
        try:
            version = _version(path.stat())
        except FileNotFoundError:
            return KnownHostsFile(path)
        cached = _CACHE.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        with path.open("rb") as handle:
            version = _version(os.fstat(handle.fileno()))
            parsed = KnownHostsFile.parse(path, handle.read())
        for problem in parsed.skipped:
            _LOG.warning("known_hosts %s", problem)
        _CACHE[path] = (version, parsed)
        return parsed


def appended(path: Path, before: os.stat_result | None, line: KeyLine, size: int) -> None:
    """Record that ``line`` (``size`` bytes) was appended to ``path``: no reparse needed."""
    with _CACHE_LOCK:
        cached = _CACHE.get(path)
        after = path.stat()
        if (
            before is None
            or cached is None
            or cached[0] != _version(before)
            or after.st_size != before.st_size + size
        ):
            _CACHE.pop(path, None)  # someone else wrote to it too: parse it again
            return
        _CACHE[path] = (_version(after), cached[1].with_line(line))
