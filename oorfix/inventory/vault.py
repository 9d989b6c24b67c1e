"""Ansible Vault: ``!vault`` values and vault-encrypted files, decrypted with the passwords given.

The format is Ansible's (1.1, and 1.2 with a vault id label; cipher AES256). A header line
``$ANSIBLE_VAULT;1.1;AES256`` (1.2: ``$ANSIBLE_VAULT;1.2;AES256;LABEL``), then, in lines of 80,
the hex of ``hex(salt) \\n hex(hmac) \\n hex(ciphertext)``. PBKDF2-HMAC-SHA256 of the password and
salt (10,000 rounds) gives 80 bytes: the AES-256 key, the HMAC-SHA256 key and the initial
counter. The HMAC of the ciphertext is checked, in constant time, before AES-256-CTR decrypts
it, so a wrong password is told apart from a damaged value; PKCS#7 padding is then removed.

Passwords come from ``--vault-password-file FILE`` and ``--vault-id [LABEL@]FILE``, read once,
when the first encrypted value needs them: an executable file is run and its stdout used (as
Ansible does), any other file gives its first line, stripped.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oorfix.errors import InventoryError
from oorfix.inventory.programs import ProgramError, run_program
from oorfix.redact import SecretText

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.hmac import HMAC

HEADER = "$ANSIBLE_VAULT"
CIPHER = "AES256"
VERSIONS = ("1.1", "1.2")
DEFAULT_LABEL = "default"  # Ansible's vault id for a password given without a label
ITERATIONS = 10_000
KEY_BYTES, IV_BYTES = 32, 16
SALT_BYTES = 32
PASSWORD_SCRIPT_TIMEOUT = 120.0  # a password script may ask a person on the terminal
MAX_PASSWORD_BYTES = 64 * 1024
CLIENT_SCRIPT_UNKNOWN_ID = 2  # exit status of a "-client" script that has no such vault id


class VaultError(ValueError):
    """An encrypted value that cannot be decrypted; the caller says where it is."""


class MalformedVault(VaultError):
    """The envelope is not Ansible's vault format."""

    def __init__(self, why: str):
        super().__init__(f"malformed vault envelope: {why}")


class NoPassword(VaultError):
    """No vault password was given at all."""

    def __init__(self) -> None:
        super().__init__("no vault password given")


class WrongPassword(VaultError):
    """No password given fits: the HMAC does not match."""


@dataclass(frozen=True)
class Envelope:
    """One parsed vault envelope: its vault id label (1.2) and the three binary parts."""

    version: str
    label: str | None
    salt: bytes
    hmac: bytes
    ciphertext: bytes


def is_encrypted(text: str) -> bool:
    """Whether ``text`` is vault-encrypted data (it starts with the vault header)."""
    return text.startswith(HEADER)


def parse_envelope(text: str) -> Envelope:
    """The parts of a vault envelope; MalformedVault says what is wrong with it."""
    lines = text.strip().splitlines()
    header = lines[0].strip().split(";") if lines else []
    if len(header) not in (3, 4) or header[0] != HEADER:
        raise MalformedVault(f"the header must read {HEADER};1.1;{CIPHER} or ...;1.2;{CIPHER};ID")
    version, cipher = header[1].strip(), header[2].strip()
    if version not in VERSIONS:
        raise MalformedVault(f"format version {version!r} is not supported (1.1 or 1.2)")
    if cipher != CIPHER:
        raise MalformedVault(f"cipher {cipher!r} is not supported ({CIPHER} only)")
    label = header[3].strip() if len(header) == 4 else None
    inner = _unhex("".join(line.strip() for line in lines[1:]), "the body")
    parts = inner.split(b"\n", 2)
    if len(parts) != 3:
        raise MalformedVault("expected a salt, an HMAC and a ciphertext")
    salt, mac = _unhex(parts[0], "the salt"), _unhex(parts[1], "the HMAC")
    ciphertext = _unhex(parts[2], "the ciphertext")
    if not salt or len(mac) != 32 or not ciphertext or len(ciphertext) % 16:
        raise MalformedVault("the salt, HMAC or ciphertext has the wrong length")
    return Envelope(version, label, salt, mac, ciphertext)


def _unhex(data: str | bytes, what: str) -> bytes:
    try:
        return binascii.unhexlify(data)
    except (binascii.Error, ValueError):
        raise MalformedVault(f"{what} is not hexadecimal") from None


# cryptography is imported where used: about 15 ms that only a vault needs, not every command.


def _keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    """The AES key, the HMAC key and the initial counter for ``password`` and ``salt``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    kdf = PBKDF2HMAC(hashes.SHA256(), 2 * KEY_BYTES + IV_BYTES, salt, ITERATIONS)
    derived = kdf.derive(password)
    return derived[:KEY_BYTES], derived[KEY_BYTES : 2 * KEY_BYTES], derived[2 * KEY_BYTES :]


def _aes_ctr(key: bytes, counter: bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CTR(counter)).encryptor()  # CTR: both ways
    return cipher.update(data) + cipher.finalize()


def _hmac(key: bytes, data: bytes) -> HMAC:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.hmac import HMAC

    mac = HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac


def decrypt(envelope: Envelope, password: bytes) -> bytes:
    """The plaintext of ``envelope``; WrongPassword when its HMAC does not match."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import padding

    key, mac_key, counter = _keys(password, envelope.salt)
    try:
        _hmac(mac_key, envelope.ciphertext).verify(envelope.hmac)  # constant time
    except InvalidSignature:
        raise WrongPassword("the HMAC does not match") from None
    padded = _aes_ctr(key, counter, envelope.ciphertext)
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise MalformedVault("bad padding after decryption") from None


def encrypt(
    plaintext: bytes, password: bytes, label: str | None = None, salt: bytes | None = None
) -> str:
    """``plaintext`` as a vault envelope, as ``ansible-vault encrypt`` writes it (a label other
    than "default" makes it format 1.2)."""
    from cryptography.hazmat.primitives import padding

    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    key, mac_key, counter = _keys(password, salt)
    padder = padding.PKCS7(128).padder()
    ciphertext = _aes_ctr(key, counter, padder.update(plaintext) + padder.finalize())
    mac = _hmac(mac_key, ciphertext).finalize()
    inner = b"\n".join(binascii.hexlify(part) for part in (salt, mac, ciphertext))
    body = binascii.hexlify(inner).decode("ascii")
    header = [HEADER, "1.1", CIPHER]
    if label and label != DEFAULT_LABEL:
        header = [HEADER, "1.2", CIPHER, label]
    lines = [";".join(header), *(body[i : i + 80] for i in range(0, len(body), 80))]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PasswordSource:
    """Where one vault id's password comes from: a file, or a script when executable."""

    label: str
    path: Path

    @classmethod
    def of_vault_id(cls, text: str) -> PasswordSource:
        """``--vault-id [LABEL@]FILE`` as Ansible reads it (the label ends at the first @)."""
        label, at, file = text.partition("@")
        if not at:
            label, file = DEFAULT_LABEL, text
        if not file or file == "prompt":
            message = f"--vault-id {text!r}: oorfix does not prompt; give a password file"
            raise InventoryError(message)
        return cls(label or DEFAULT_LABEL, Path(file).expanduser())

    def read(self) -> bytes:
        """The password; InventoryError naming the file when it cannot be had."""
        path = self.path
        if not path.exists():
            raise InventoryError("vault password file: no such file", path)
        if path.is_dir():
            raise InventoryError("vault password file: is a directory", path)
        password = self._run() if os.access(path, os.X_OK) else self._first_line()
        if not password:
            raise InventoryError("vault password file: the password is empty", path)
        return password

    def _first_line(self) -> bytes:
        try:
            data = self.path.read_bytes()[:MAX_PASSWORD_BYTES]
        except OSError as exc:
            message = f"vault password file: cannot read: {exc.strerror or exc}"
            raise InventoryError(message, self.path) from None
        lines = data.strip().splitlines()
        return lines[0].strip() if lines else b""

    def _run(self) -> bytes:
        argv = [str(self.path)]
        # Ansible passes the vault id only to scripts named *-client (its "client scripts").
        client = self.path.stem.endswith("-client")
        if client:
            argv += ["--vault-id", self.label]
        where = "vault password script"
        try:
            done = run_program(
                argv, timeout=PASSWORD_SCRIPT_TIMEOUT, limit=MAX_PASSWORD_BYTES, interactive=True
            )
        except ProgramError as exc:
            raise InventoryError(f"{where}: {exc}", self.path) from None
        if client and done.returncode == CLIENT_SCRIPT_UNKNOWN_ID:
            raise InventoryError(f"{where}: it knows no vault id {self.label!r}", self.path)
        if done.returncode != 0:
            raise InventoryError(f"{where}: it exited with status {done.returncode}", self.path)
        return done.stdout.strip(b"\r\n")


class Keyring:
    """The vault passwords of a run, each read once, when an encrypted value first needs it."""

    def __init__(self, sources: Sequence[PasswordSource] = ()):
        self.sources = tuple(sources)
        self._passwords: list[tuple[str, bytes]] | None = None

    @classmethod
    def from_options(cls, password_files: Sequence[Path], vault_ids: Sequence[str]) -> Keyring:
        """The keyring of ``--vault-password-file`` and ``--vault-id`` options, in order."""
        sources = [PasswordSource(DEFAULT_LABEL, Path(p).expanduser()) for p in password_files]
        return cls([*sources, *(PasswordSource.of_vault_id(text) for text in vault_ids)])

    def passwords(self) -> list[tuple[str, bytes]]:
        """Every (label, password), read on first use."""
        if self._passwords is None:
            self._passwords = [(source.label, source.read()) for source in self.sources]
        return self._passwords

    def decrypt(self, text: str) -> bytes:
        """The plaintext of the envelope ``text``; VaultError says why not.

        As in Ansible, the passwords of the envelope's vault id (a 1.2 label, else "default")
        are tried first, then every other: the label is a hint, not part of what is signed.
        """
        envelope = parse_envelope(text)
        if not self.sources:
            raise NoPassword()
        wanted = envelope.label or DEFAULT_LABEL
        passwords = self.passwords()
        ordered = sorted(passwords, key=lambda item: item[0] != wanted)  # stable: given order
        for _, password in ordered:
            try:
                return decrypt(envelope, password)
            except WrongPassword:
                continue
        tried = ", ".join(dict.fromkeys(label for label, _ in ordered))
        raise WrongPassword(f"wrong vault password: the HMAC does not match (ids tried: {tried})")


def open_text(keyring: Keyring, text: str, what: str, path: Path, line: int | None) -> str:
    """The decrypted text of ``what`` ("a !vault value", "this vault-encrypted file"), or an
    InventoryError at ``path:line`` saying a password is needed, or why it does not decrypt."""
    try:
        plaintext = keyring.decrypt(text)
    except NoPassword:
        message = f"{what} needs --vault-password-file or --vault-id"
        raise InventoryError(message, path, line) from None
    except VaultError as exc:
        raise InventoryError(f"{what} cannot be decrypted: {exc}", path, line) from None
    try:
        return plaintext.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError(f"{what} does not decrypt to UTF-8 text", path, line) from None


def open_value(keyring: Keyring, text: str, what: str, path: Path, line: int | None) -> SecretText:
    """``open_text`` of one encrypted value, marked secret for every output."""
    return SecretText(open_text(keyring, text, what, path, line))


NO_KEYS = Keyring()
