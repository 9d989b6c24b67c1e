"""known_hosts read and host keys decided as OpenSSH does, without a network.

Keys and certificates come from ssh-keygen (into tmp_path) or are built here field by field
for the cases ssh-keygen refuses to make; the host "presents" them as paramiko would after
a key exchange. Validity is checked against a fake clock.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import hmac
import itertools
import logging
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paramiko
import pytest

from oorfix.errors import ControllerError, HostKeyError
from oorfix.inventory.hosts import HostConnection
from oorfix.transport import known_hosts_file
from oorfix.transport import ssh as ssh_module
from oorfix.transport.hostcert import (
    FOREVER,
    CertificateError,
    parse_certificate,
    validity_problem,
)
from oorfix.transport.known_hosts import KnownHost, append_known_host, fingerprint
from oorfix.transport.known_hosts_file import (
    HostPatterns,
    KnownHostsFile,
    Marker,
    parse_line,
    wildcard_match,
)
from tests.support import require

PORT = 2222
ADDRESS = "127.0.0.2"
NAME = f"[{ADDRESS}]:{PORT}"
CERT = "-cert-v01@openssh.com"
# The certificates ssh-keygen signs here are valid for January 2030 (UTC).
JAN_2030 = "20300101000000Z:20300201000000Z"
MID_JAN_2030 = datetime(2030, 1, 15, tzinfo=UTC).timestamp()
KEY_CLASSES: dict[str, type[paramiko.PKey]] = {
    "ed25519": paramiko.Ed25519Key,
    "ecdsa": paramiko.ECDSAKey,
    "rsa": paramiko.RSAKey,
}


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


@dataclass(frozen=True)
class KeyPair:
    """A key ssh-keygen made: its private file and ``type base64`` public key."""

    path: Path
    public: str
    kind: str

    @property
    def pub_path(self) -> Path:
        return self.path.with_suffix(".pub")

    def presented(self) -> paramiko.PKey:
        """The plain public key, as a host presents it."""
        key_type, data = self.public.split()
        return paramiko.PKey.from_type_string(key_type, base64.b64decode(data))

    def private(self) -> paramiko.PKey:
        return KEY_CLASSES[self.kind].from_private_key_file(str(self.path))


class Keys:
    """Makes keys and certificates with ssh-keygen under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def make(self, name: str, kind: str = "ed25519") -> KeyPair:
        path = self.directory / name
        if not path.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)],
                check=True,
                capture_output=True,
            )
        return KeyPair(path, " ".join(path.with_suffix(".pub").read_text().split()[:2]), kind)

    def certify(
        self,
        host: KeyPair,
        ca: KeyPair,
        *,
        principals: str | None = ADDRESS,
        validity: str = JAN_2030,
        host_cert: bool = True,
    ) -> paramiko.PKey:
        """``host``'s certificate signed by ``ca``, as the host presents it."""
        argv = ["ssh-keygen", "-q", "-s", str(ca.path), "-I", "web-1", "-z", "7", "-V", validity]
        argv += ["-h"] if host_cert else []
        argv += ["-n", principals] if principals is not None else []
        subprocess.run([*argv, str(host.pub_path)], check=True, capture_output=True)
        cert_file = host.path.parent / f"{host.path.name}-cert.pub"
        blob = base64.b64decode(cert_file.read_text().split()[1])
        cert_file.unlink()
        return presented_cert(blob, host.kind)


def presented_cert(blob: bytes, kind: str) -> paramiko.PKey:
    """A certificate as paramiko hands it over after the key exchange."""
    return KEY_CLASSES[kind](data=blob)  # type: ignore[arg-type]  # the stubs say str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    require("SSHD", shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed")
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def host_key(keys: Keys) -> KeyPair:
    return keys.make("host")


@pytest.fixture
def ca(keys: Keys) -> KeyPair:
    return keys.make("ca")


@pytest.fixture
def files(tmp_path: Path) -> Callable[..., KnownHost]:
    """A KnownHost for NAME reading ``user`` (and ``system``) text written to new tmp files
    (new paths each time: a file rewritten in place may keep its size and mtime)."""
    made = itertools.count()

    def make(
        user: str = "", system: str | None = None, *, address: str = ADDRESS, port: int = PORT
    ) -> KnownHost:
        directory = tmp_path / f"files-{next(made)}"
        directory.mkdir()
        user_path = directory / "known_hosts"
        user_path.write_text(user)
        system_path = None
        if system is not None:
            system_path = directory / "ssh_known_hosts"
            system_path.write_text(system)
        conn = HostConnection("web-1", address, port=port, kind="ssh")
        known = KnownHost.of(conn, user_path, global_path=system_path)
        known.clock = lambda: MID_JAN_2030
        return known

    return make


def refusal(known: KnownHost, key: paramiko.PKey, *, accept_new: bool = False) -> str:
    with pytest.raises(HostKeyError) as caught:
        known.verify(key, accept_new=accept_new)
    assert caught.value.host == "web-1"
    return caught.value.message


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --- Lines and patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("{name} {key}", Marker.KEY),
        ("{name} {key} a comment with spaces", Marker.KEY),
        ("   {name}\t{key}  ", Marker.KEY),
        ("@cert-authority {name} {key}", Marker.CA),
        ("@revoked\t{name} {key} old", Marker.REVOKED),
    ],
)
def test_every_line_form_parses(host_key: KeyPair, text: str, marker: Marker) -> None:
    line = parse_line(Path("kh"), 3, text.format(name=NAME, key=host_key.public))
    assert line is not None
    assert (line.marker, line.key_type, line.where) == (marker, "ssh-ed25519", "kh:3")
    assert line.blob == host_key.presented().asbytes()
    assert line.hosts.matches(NAME.lower())


@pytest.mark.parametrize("text", ["", "   ", "# comment", "  # indented comment"])
def test_blank_lines_and_comments_are_not_lines(text: str) -> None:
    assert parse_line(Path("kh"), 1, text) is None


def hashed(name: str, salt: bytes = b"s" * 20) -> str:
    digest = hmac.digest(salt, name.encode(), hashlib.sha1)
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


@pytest.mark.parametrize(
    ("patterns", "name", "matches"),
    [
        ("web-1.example.com", "web-1.example.com", True),
        ("WEB-1.Example.COM", "web-1.example.com", True),  # names match case-insensitively
        ("a,b,web-1", "web-1", True),
        ("*.example.com", "web-1.example.com", True),
        ("*.example.com", "example.com", False),
        ("web-?", "web-1", True),
        ("web-?", "web-10", False),
        ("*.example.com,!db-*.example.com", "web-1.example.com", True),
        ("*.example.com,!db-*.example.com", "db-1.example.com", False),
        ("!db-1", "db-1", False),  # a negation alone never matches
        ("!db-1", "web-1", False),
        ("[10.0.0.1]:2222", "[10.0.0.1]:2222", True),
        ("[10.0.0.1]:2222", "10.0.0.1", False),  # port 22 is written bare
        ("10.0.0.1", "[10.0.0.1]:2222", False),
        ("[10.0.0.*]:2222", "[10.0.0.7]:2222", True),
        ("*", "[10.0.0.7]:2222", True),
        (hashed("[10.0.0.1]:2222"), "[10.0.0.1]:2222", True),
        (hashed("[10.0.0.1]:2222"), "10.0.0.1", False),
        (hashed("web-1"), "web-1", True),
    ],
)
def test_host_patterns_match_as_openssh(patterns: str, name: str, matches: bool) -> None:
    assert HostPatterns.parse(patterns).matches(name) is matches


def test_wildcards_are_only_star_and_question_mark() -> None:
    assert wildcard_match("a.b", "a.b")
    assert not wildcard_match("axb", "a.b")  # a dot is a dot, not any character
    assert wildcard_match("[x]:1", "[x]:?")
    assert not wildcard_match("b", "[ab]")  # no character classes


BAD_LINES = [
    ("{name} ssh-ed25519 !!not-base64!!", "invalid base64 key"),
    ("{name} ssh-dss {key_b64}", "key type 'ssh-dss' is not one oorfix can check"),
    ("{name} ssh-rsa {key_b64}", "key type ssh-rsa but the key is ssh-ed25519"),
    ("{name} ssh-ed25519-cert-v01@openssh.com {key_b64}", "a certificate, not a key"),
    ("{name} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5", "the ssh-ed25519 key does not parse"),
    ("|1|c2FsdA==|aGFzaA== {key}", "malformed hashed host name (salt and hash must be 20"),
    ("|1|a|aGFzaA== {key}", "malformed hashed host name (invalid base64"),
    ("|2|c2FsdA==|aGFzaA== {key}", "malformed hashed host name (expected |1|salt|hash)"),
    ("|1|only-two {key}", "malformed hashed host name (expected |1|salt|hash)"),
    ("@trusted {name} {key}", "unknown marker '@trusted'"),
    ("@revoked @cert-authority {name} {key}", "more than one marker"),
    ("{name} ssh-ed25519", "no key (expected: hosts, key type, base64 key)"),
    ("@cert-authority", "no key"),
]


@pytest.mark.parametrize(("text", "why"), BAD_LINES)
def test_a_bad_line_is_skipped_with_its_file_and_line_and_good_lines_still_count(
    host_key: KeyPair, tmp_path: Path, text: str, why: str
) -> None:
    bad = text.format(name=NAME, key=host_key.public, key_b64=host_key.public.split()[1])
    data = f"# header\n{bad}\n{NAME} {host_key.public}\n".encode()
    parsed = KnownHostsFile.parse(tmp_path / "kh", data)
    (skipped,) = parsed.skipped
    assert skipped.startswith(f"{tmp_path / 'kh'}:2: {why}")
    assert skipped.endswith("; line skipped")
    assert [line.number for line in parsed.matching(NAME)] == [3]


def test_a_bad_line_never_refuses_the_host(
    files: Callable[..., KnownHost], host_key: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [t.format(name=NAME, key=host_key.public, key_b64="eA==") for t, _ in BAD_LINES]
    known = files("\n".join([*lines, f"{NAME} {host_key.public}", "\xff\xfe garbage"]) + "\n")
    caplog.set_level(logging.WARNING, logger="oorfix")
    known.verify(host_key.presented(), accept_new=False)
    warned = warnings_in(caplog)
    assert len(warned) == len(BAD_LINES) + 1
    assert all(w.startswith(f"known_hosts {known.path}:") for w in warned)


def test_lookups_use_the_literal_index_and_scan_the_rest(host_key: KeyPair) -> None:
    text = "\n".join(
        [
            f"other {host_key.public}",
            f"{NAME},alias {host_key.public}",
            f"{hashed(NAME.lower())} {host_key.public}",
            f"[127.0.0.*]:{PORT} {host_key.public}",
            f"*,!{NAME} {host_key.public}",
        ]
    )
    parsed = KnownHostsFile.parse(Path("kh"), text.encode())
    assert [line.number for line in parsed.matching(NAME)] == [2, 3, 4]
    assert [line.number for line in parsed.matching("ALIAS")] == [2, 5]


# --- Files: reading, caching, the system file --------------------------------------------------


def test_a_file_is_parsed_and_warned_about_once_per_version(
    tmp_path: Path,
    host_key: KeyPair,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "kh"
    path.write_text(f"{NAME} ssh-ed25519 !!bad!!\n{NAME} {host_key.public}\n")
    parses: list[Path] = []
    real_parse = KnownHostsFile.parse

    def counted(parsed: Path, data: bytes) -> KnownHostsFile:
        parses.append(parsed)
        return real_parse(parsed, data)

    monkeypatch.setattr(KnownHostsFile, "parse", counted)
    caplog.set_level(logging.WARNING, logger="oorfix")
    for _ in range(1000):  # 1,000 hosts
        assert len(known_hosts_file.load(path).matching(NAME)) == 1
    assert (parses, len(warnings_in(caplog))) == ([path], 1)
    path.write_text(path.read_text() + f"other {host_key.public}\n")  # a new version
    assert len(known_hosts_file.load(path).lines) == 2
    assert (len(parses), len(warnings_in(caplog))) == (2, 2)


def test_a_missing_file_is_empty_and_an_unreadable_one_refuses_the_host(
    files: Callable[..., KnownHost], tmp_path: Path, host_key: KeyPair
) -> None:
    known = files()
    known.path.unlink()
    assert known.lines() == []
    known.path.mkdir()  # a directory: cannot be read as a file
    message = refusal(known, host_key.presented())
    assert message.startswith(f"cannot read known_hosts file {known.path}: Is a directory")


def test_running_out_of_file_descriptors_is_the_controllers_error(
    files: Callable[..., KnownHost], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = files()

    def no_fds(path: Path) -> KnownHostsFile:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(known_hosts_file, "load", no_fds)
    with pytest.raises(ControllerError, match="too many open files"):
        known.lines()


def test_the_system_file_is_read_too(files: Callable[..., KnownHost], host_key: KeyPair) -> None:
    known = files("", f"{NAME} {host_key.public}\n")
    known.verify(host_key.presented(), accept_new=False)
    skipped = KnownHost(known.host, known.address, known.port, known.path, None)
    assert "is not known" in refusal(skipped, host_key.presented())


def test_a_key_matching_in_either_file_is_accepted(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair
) -> None:
    # As OpenSSH: a different key in one file is no change when the other lists this one.
    known = files(f"{NAME} {keys.make('old').public}\n", f"{NAME} {host_key.public}\n")
    known.verify(host_key.presented(), accept_new=False)


def test_accept_new_appends_to_the_user_file_only_and_records_the_fingerprint(
    files: Callable[..., KnownHost], host_key: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    known = files("# mine, no final newline", "# the system's\n")
    caplog.set_level(logging.WARNING, logger="oorfix")
    key = host_key.presented()
    known.verify(key, accept_new=True)
    assert known.path.read_text() == f"# mine, no final newline\n{NAME} {host_key.public}\n"
    assert known.global_path is not None
    assert known.global_path.read_text() == "# the system's\n"
    assert known.new_host_key == fingerprint(key)
    (warned,) = warnings_in(caplog)
    assert warned == (
        f"web-1: trusted the new ssh-ed25519 host key {fingerprint(key)} of {NAME} "
        f"(accept-new; appended to {known.path})"
    )
    # The cached file gained the line: strict from now on, and the line is numbered.
    (line,) = known.lines()
    assert (line.number, line.blob) == (2, key.asbytes())
    known.verify(key, accept_new=False)
    assert known_hosts_file.KnownHostsFile.parse(known.path, known.path.read_bytes()).lines == (
        line,
    )


def test_an_appended_line_joins_names_already_looked_up(
    tmp_path: Path, keys: Keys, host_key: KeyPair
) -> None:
    other = keys.make("other").public
    text = f"{hashed(NAME)} {other}\n[127.0.0.*]:{PORT} {other}\nelsewhere {other}\n"
    parsed = KnownHostsFile.parse(tmp_path / "kh", text.encode())
    assert [line.number for line in parsed.matching(NAME)] == [1, 2]
    assert parsed.matching("elsewhere")[0].number == 3
    for number, hosts in enumerate([NAME, hashed("new-host"), "*.example.com"], 4):
        line = parse_line(tmp_path / "kh", number, f"{hosts} {host_key.public}")
        assert line is not None
        parsed = parsed.with_line(line)
    assert [line.number for line in parsed.matching(NAME)] == [1, 2, 4]
    assert [line.number for line in parsed.matching("elsewhere")] == [3]
    assert [line.number for line in parsed.matching("new-host")] == [5]
    assert [line.number for line in parsed.matching("www.example.com")] == [6]


def test_accept_new_appends_a_key_once_however_many_connections_race(
    files: Callable[..., KnownHost], host_key: KeyPair
) -> None:
    known = files("")
    assert append_known_host(known.path, NAME, host_key.presented())
    assert not append_known_host(known.path, NAME, host_key.presented())
    assert known.path.read_text() == f"{NAME} {host_key.public}\n"


def test_a_file_another_process_appended_to_meanwhile_is_parsed_again(
    tmp_path: Path, keys: Keys, host_key: KeyPair
) -> None:
    path = tmp_path / "kh"
    path.write_text("")
    known_hosts_file.load(path)
    before = path.stat()
    ours = f"{NAME} {host_key.public}\n"
    theirs = f"{NAME} {keys.make('theirs').public}\n"
    path.write_text(ours + theirs)
    line = parse_line(path, 1, ours)
    assert line is not None
    known_hosts_file.appended(path, before, line, len(ours))
    assert [line.number for line in known_hosts_file.load(path).matching(NAME)] == [1, 2]


# --- Plain keys -------------------------------------------------------------------------------


def test_a_listed_key_is_accepted_by_pattern_and_by_hash(
    files: Callable[..., KnownHost], host_key: KeyPair
) -> None:
    for hosts in (NAME, f"[127.0.0.*]:{PORT}", hashed(NAME)):
        files(f"{hosts} {host_key.public}\n").verify(host_key.presented(), accept_new=False)


def test_port_22_is_written_bare(files: Callable[..., KnownHost], host_key: KeyPair) -> None:
    known = files(f"{ADDRESS} {host_key.public}\n", port=22)
    assert known.name == ADDRESS
    known.verify(host_key.presented(), accept_new=False)
    unknown = files("", port=22)
    message = refusal(unknown, host_key.presented())
    assert message.startswith(f"host key for {ADDRESS} is not known")
    assert f"`ssh-keyscan {ADDRESS} >> {unknown.path}`" in message


def test_off_port_22_a_key_listed_for_the_bare_address_counts(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair
) -> None:
    # OpenSSH's fallback, only when nothing is listed for [address]:port.
    files(f"{ADDRESS} {host_key.public}\n").verify(host_key.presented(), accept_new=False)
    other = keys.make("other").public
    changed = files(f"{ADDRESS} {host_key.public}\n{NAME} {other}\n")
    assert "has changed" in refusal(changed, host_key.presented())


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_changed_key_is_refused_with_how_to_remove_the_old_one(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair, accept_new: bool
) -> None:
    old = keys.make("old")
    known = files(f"# header\n{NAME} {old.public}\n")
    message = refusal(known, host_key.presented(), accept_new=accept_new)
    assert message == (
        f"host key for {NAME} has changed: the host offers ssh-ed25519 "
        f"{fingerprint(host_key.presented())} but {known.path}:2 holds ssh-ed25519 "
        f"{fingerprint(old.presented())}; possible man-in-the-middle attack, refused. "
        "If the host was legitimately re-keyed, remove the old key with "
        f"`ssh-keygen -R '{NAME}' -f {known.path}`"
    )
    assert known.path.read_text() == f"# header\n{NAME} {old.public}\n"


def test_a_key_of_another_type_listed_is_a_change_too(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair
) -> None:
    # As OpenSSH: else an attacker holding only another key type would pass as new.
    listed = keys.make("listed-ecdsa", "ecdsa")
    message = refusal(files(f"{NAME} {listed.public}\n"), host_key.presented(), accept_new=True)
    assert "has changed" in message
    assert "holds ecdsa-sha2-nistp256" in message


def test_an_unknown_key_is_refused_with_how_to_trust_it(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair
) -> None:
    known = files(f"other-host {keys.make('other').public}\n")
    assert refusal(known, host_key.presented()) == (
        f"host key for {NAME} is not known (ssh-ed25519 {fingerprint(host_key.presented())}); "
        "refused before logging in. To trust it, confirm the fingerprint and run "
        f"`ssh-keyscan -p {PORT} {ADDRESS} >> {known.path}`, or pass --accept-new-host-keys"
    )


@pytest.mark.parametrize("accept_new", [False, True])
def test_a_revoked_key_is_refused_even_when_listed(
    files: Callable[..., KnownHost], host_key: KeyPair, accept_new: bool
) -> None:
    known = files(f"{NAME} {host_key.public}\n@revoked * {host_key.public}\n")
    assert refusal(known, host_key.presented(), accept_new=accept_new) == (
        f"host key for {NAME} is revoked: ssh-ed25519 {fingerprint(host_key.presented())} is "
        f"listed under @revoked at {known.path}:2; refused before logging in"
    )


def test_a_revoked_line_for_other_hosts_does_not_apply(
    files: Callable[..., KnownHost], host_key: KeyPair
) -> None:
    known = files(f"{NAME} {host_key.public}\n@revoked other {host_key.public}\n")
    known.verify(host_key.presented(), accept_new=False)


# --- Certificates -----------------------------------------------------------------------------


@pytest.mark.parametrize(("host_kind", "ca_kind"), [("ed25519", "ed25519"), ("ecdsa", "rsa")])
def test_a_valid_host_certificate_is_accepted_through_its_ca(
    files: Callable[..., KnownHost], keys: Keys, host_kind: str, ca_kind: str
) -> None:
    host, ca = keys.make(f"host-{host_kind}", host_kind), keys.make(f"ca-{ca_kind}", ca_kind)
    presented = keys.certify(host, ca)
    assert presented.public_blob is not None
    assert presented.public_blob.key_type.endswith(CERT)
    files(f"@cert-authority {NAME} {ca.public}\n").verify(presented, accept_new=False)


def test_a_certificate_is_parsed_field_by_field(keys: Keys, host_key: KeyPair, ca: KeyPair) -> None:
    presented = keys.certify(host_key, ca, principals="127.0.0.2,*.example.com")
    assert presented.public_blob is not None
    cert = parse_certificate(presented.public_blob.key_blob)
    assert (cert.cert_type, cert.kind, cert.key_id, cert.serial) == (
        f"ssh-ed25519{CERT}",
        2,
        "web-1",
        7,
    )
    assert cert.principals == ("127.0.0.2", "*.example.com")
    assert (cert.valid_after, cert.valid_before) == (1893456000, 1896134400)
    assert cert.critical_options == ()
    assert cert.signature_key == ca.presented().asbytes()
    assert presented.public_blob.key_blob.startswith(cert.signed)


@pytest.mark.parametrize(
    ("certify", "clock", "why"),
    [
        ({}, datetime(2030, 2, 1, tzinfo=UTC), "it expired at 2030-02-01T00:00:00Z"),
        ({}, datetime(2029, 12, 31, tzinfo=UTC), "it is not valid before 2030-01-01T00:00:00Z"),
        ({"principals": "10.0.0.1,web-*"}, None, "127.0.0.2 is not among its principals"),
        ({"principals": None}, None, "it lists no principals, so it names no host"),
        ({"host_cert": False}, None, "it is a user certificate, not a host certificate"),
    ],
)
def test_an_invalid_certificate_is_refused_with_its_reason(
    files: Callable[..., KnownHost],
    keys: Keys,
    host_key: KeyPair,
    ca: KeyPair,
    certify: dict[str, object],
    clock: datetime | None,
    why: str,
) -> None:
    known = files(f"@cert-authority * {ca.public}\n")
    if clock is not None:
        known.clock = clock.timestamp
    message = refusal(known, keys.certify(host_key, ca, **certify), accept_new=True)  # type: ignore[arg-type]
    assert message.startswith(
        f"host certificate for {NAME} (key id 'web-1', serial 7) is not trusted: {why}"
    )
    assert message.endswith(f"(CA at {known.path}:1); refused before logging in")
    assert known.path.read_text() == f"@cert-authority * {ca.public}\n"  # accept-new added nothing


def test_a_wildcard_principal_names_the_host(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair, ca: KeyPair
) -> None:
    known = files(f"@cert-authority * {ca.public}\n", address="web-1.example.com", port=22)
    known.verify(keys.certify(host_key, ca, principals="*.example.com"), accept_new=False)


def test_the_exact_validity_window(keys: Keys, host_key: KeyPair, ca: KeyPair) -> None:
    presented = keys.certify(host_key, ca)
    assert presented.public_blob is not None
    cert = parse_certificate(presented.public_blob.key_blob)

    def check(now: float) -> str | None:
        return validity_problem(cert, principal=ADDRESS, now=now)

    assert check(cert.valid_after) is None
    assert check(cert.valid_after - 1) is not None
    assert check(cert.valid_before - 1) is None
    assert check(cert.valid_before) is not None


def test_a_certificate_from_an_unknown_ca_is_refused(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair, ca: KeyPair
) -> None:
    other = keys.make("other-ca")
    # The right CA is trusted, but only for other hosts: it does not count for this one.
    known = files(f"@cert-authority * {other.public}\n@cert-authority db-* {ca.public}\n")
    message = refusal(known, keys.certify(host_key, ca))
    assert message == (
        f"host certificate for {NAME} (key id 'web-1', serial 7) is not trusted: it is signed "
        f"by CA ssh-ed25519 {fingerprint(ca.presented())}, which no @cert-authority line for "
        f"{NAME} lists; refused before logging in"
    )


@pytest.mark.parametrize("what", ["key", "CA"])
def test_a_certificate_whose_key_or_ca_is_revoked_is_refused(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair, ca: KeyPair, what: str
) -> None:
    revoked = host_key if what == "key" else ca
    known = files(
        f"@cert-authority * {ca.public}\n{NAME} {host_key.public}\n@revoked * {revoked.public}\n"
    )
    assert refusal(known, keys.certify(host_key, ca), accept_new=True) == (
        f"host certificate for {NAME} (key id 'web-1', serial 7) is revoked: its {what} "
        f"ssh-ed25519 {fingerprint(revoked.presented())} is listed under @revoked at "
        f"{known.path}:3; refused before logging in"
    )


def test_a_refused_certificate_falls_back_to_its_listed_plain_key(
    files: Callable[..., KnownHost],
    keys: Keys,
    host_key: KeyPair,
    ca: KeyPair,
    caplog: pytest.LogCaptureFixture,
) -> None:
    known = files(f"@cert-authority * {ca.public}\n{NAME} {host_key.public}\n")
    known.clock = lambda: 0.0  # long before the certificate is valid
    caplog.set_level(logging.WARNING, logger="oorfix")
    known.verify(keys.certify(host_key, ca), accept_new=False)
    (warned,) = warnings_in(caplog)
    assert warned.startswith(f"host certificate for {NAME} (key id 'web-1', serial 7) is not")
    assert "it is not valid before 2030-01-01T00:00:00Z" in warned
    assert warned.endswith(f"; accepted because {known.path}:2 lists its key")


def test_a_refused_certificate_with_a_changed_plain_key_keeps_the_certificates_reason(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair, ca: KeyPair
) -> None:
    known = files(f"@cert-authority * {ca.public}\n{NAME} {keys.make('old').public}\n")
    known.clock = lambda: 0.0
    assert "is not trusted: it is not valid before" in refusal(known, keys.certify(host_key, ca))


# Certificates ssh-keygen will not make, built field by field and signed with the CA's key.


def build_cert(
    host: KeyPair,
    ca: KeyPair,
    *,
    kind: int = 2,
    critical: tuple[str, ...] = (),
    signature: bytes | None = None,
    tail: bytes = b"",
) -> bytes:
    plain = host.presented().asbytes()
    key_fields = plain[len(ssh_string(b"ssh-ed25519")) :]
    options = b"".join(ssh_string(name.encode()) + ssh_string(b"") for name in critical)
    body = (
        ssh_string(f"ssh-ed25519{CERT}".encode())
        + ssh_string(b"n" * 32)
        + key_fields
        + (7).to_bytes(8, "big")
        + kind.to_bytes(4, "big")
        + ssh_string(b"built")
        + ssh_string(ssh_string(ADDRESS.encode()))
        + (0).to_bytes(8, "big")
        + FOREVER.to_bytes(8, "big")
        + ssh_string(options)
        + ssh_string(b"")
        + ssh_string(b"")
        + ssh_string(ca.presented().asbytes())
    )
    signed = signature if signature is not None else ca.private().sign_ssh_data(body).asbytes()
    return body + ssh_string(signed) + tail


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (
            {"critical": ("force-command", "source-address")},
            "it has critical options (force-command, source-address), none of which a host "
            "certificate may have",
        ),
        ({"kind": 3}, "it is of type 3, not a host certificate"),
        (
            {"signature": ssh_string(b"ssh-rsa") + ssh_string(b"x" * 64)},
            "it is signed with ssh-rsa (SHA-1), which OpenSSH does not accept from a CA",
        ),
        (
            {"signature": ssh_string(b"ssh-ed25519") + ssh_string(b"x" * 64)},
            "its signature does not verify with the CA key",
        ),
        (
            {"signature": ssh_string(b"ssh-ed25519") + ssh_string(b"short")},
            "its signature does not verify with the CA key",
        ),
    ],
)
def test_a_built_certificate_is_refused_with_its_reason(
    files: Callable[..., KnownHost],
    host_key: KeyPair,
    ca: KeyPair,
    build: dict[str, object],
    why: str,
) -> None:
    known = files(f"@cert-authority * {ca.public}\n")
    presented = presented_cert(build_cert(host_key, ca, **build), "ed25519")  # type: ignore[arg-type]
    message = refusal(known, presented)
    assert f"(key id 'built', serial 7) is not trusted: {why} (CA at" in message


def test_a_built_certificate_signed_right_is_accepted(
    files: Callable[..., KnownHost], host_key: KeyPair, ca: KeyPair
) -> None:
    known = files(f"@cert-authority * {ca.public}\n")
    known.verify(presented_cert(build_cert(host_key, ca), "ed25519"), accept_new=False)


def test_a_signature_over_other_bytes_does_not_verify(
    files: Callable[..., KnownHost], host_key: KeyPair, ca: KeyPair
) -> None:
    good = build_cert(host_key, ca)
    tampered = good.replace(ssh_string(b"built"), ssh_string(b"bumlt"))  # the key id
    message = refusal(
        files(f"@cert-authority * {ca.public}\n"), presented_cert(tampered, "ed25519")
    )
    assert "its signature does not verify with the CA key" in message


@pytest.mark.parametrize(
    ("mangle", "why"),
    [
        (lambda blob: blob[:-10], "truncated"),
        (lambda blob: blob + b"x", "trailing data after the signature"),
        (lambda blob: ssh_string(b"ssh-dss-cert-v01@openssh.com") + blob[4 + 32 :], "unsupported"),
    ],
)
def test_a_malformed_certificate_does_not_parse(
    host_key: KeyPair, ca: KeyPair, mangle: Callable[[bytes], bytes], why: str
) -> None:
    with pytest.raises(CertificateError, match=why):
        parse_certificate(mangle(build_cert(host_key, ca)))


def test_an_unparsable_certificate_is_refused_unless_its_key_is_listed(
    files: Callable[..., KnownHost], host_key: KeyPair, ca: KeyPair
) -> None:
    presented = presented_cert(build_cert(host_key, ca), "ed25519")
    assert presented.public_blob is not None
    presented.public_blob.key_blob += b"x"  # as if the host sent trailing bytes
    message = refusal(files(f"@cert-authority * {ca.public}\n"), presented)
    assert message == (
        f"host certificate for {NAME} is not trusted: it cannot be parsed (trailing data "
        "after the signature); refused before logging in"
    )
    files(f"{NAME} {host_key.public}\n").verify(presented, accept_new=False)


# --- Host key algorithms and paramiko -----------------------------------------------------------


@pytest.fixture
def sockets() -> Iterator[socket.socket]:
    ours, theirs = socket.socketpair()
    yield ours
    ours.close()
    theirs.close()


def offered(known: KnownHost, sock: socket.socket) -> list[str]:
    transport = ssh_module.transport_factory(known)(sock)
    return list(transport.preferred_keys)


def test_certificate_algorithms_come_first_when_a_ca_is_trusted_for_the_host(
    files: Callable[..., KnownHost], ca: KeyPair, sockets: socket.socket
) -> None:
    order = offered(files(f"@cert-authority *.example.com,{NAME} {ca.public}\n"), sockets)
    certs = [a for a in order if a.endswith(CERT)]
    assert certs
    assert order[: len(certs)] == certs
    assert order[0] == f"ssh-ed25519{CERT}"


def test_listed_key_types_come_first_and_certificates_last_without_a_ca(
    files: Callable[..., KnownHost], keys: Keys, sockets: socket.socket
) -> None:
    order = offered(files(f"{NAME} {keys.make('rsa-host', 'rsa').public}\n"), sockets)
    assert order[:2] == ["rsa-sha2-512", "rsa-sha2-256"]
    assert order[2] == "ssh-ed25519"
    certs = sum(a.endswith(CERT) for a in order)
    assert certs
    assert all(a.endswith(CERT) for a in order[-certs:])
    unordered = ssh_module._make_transport(sockets)  # what paramiko alone would offer
    assert sorted(order) == sorted(unordered.preferred_keys)


def test_trust_leaves_every_key_to_oorfix(
    files: Callable[..., KnownHost], keys: Keys, host_key: KeyPair
) -> None:
    client = paramiko.SSHClient()
    client.get_host_keys().add(NAME, "ssh-ed25519", keys.make("other").presented())
    known = files(f"{NAME} {host_key.public}\n")
    known.trust(client, accept_new=False)
    assert len(client.get_host_keys()) == 0  # else paramiko would judge the key itself
    policy = client._policy  # type: ignore[attr-defined]
    policy.missing_host_key(client, NAME, host_key.presented())
    with pytest.raises(HostKeyError, match="has changed"):
        policy.missing_host_key(client, NAME, keys.make("other").presented())
