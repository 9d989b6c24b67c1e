"""Reading one inventory file or vars file, whatever its form: a script, ansible-inventory JSON,
YAML, INI, or any of those vault-encrypted; ``!vault`` values decrypted.

Values that come out of a vault are marked secret (``oorfix.redact.SecretText``): a ``!vault``
value, and every value of a vault-encrypted file. They are masked wherever oorfix prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oorfix.errors import InventoryError, YamlError
from oorfix.inventory.formats import Builder, kind_of, looks_like_yaml, parse_ini, parse_yaml
from oorfix.inventory.listjson import is_list_shape, read_list
from oorfix.inventory.scripts import MAX_SCRIPT_OUTPUT, is_script, read_script
from oorfix.inventory.vault import Keyring, is_encrypted, open_text, open_value
from oorfix.redact import mark_secret
from oorfix.runbook import yamlsource

YAML_SUFFIXES = (".yml", ".yaml", ".json")
MAX_JSON_BYTES = MAX_SCRIPT_OUTPUT  # an exported inventory may be far larger than a YAML file
VAULT_TAG = "!vault"
ENCRYPTED_GROWTH = 5  # the hex of the hex of the ciphertext, in lines of 80: over 4x


def read_source(path: Path, builder: Builder, keyring: Keyring) -> None:
    """Record the groups and hosts of the inventory file ``path`` in ``builder``."""
    if is_script(path):
        read_script(path, builder, keyring)
        return
    text, secret = read_plain(path, keyring, MAX_JSON_BYTES)
    builder.secret = secret
    try:
        _parse(path, text, builder, keyring)
    finally:
        builder.secret = False


def _parse(path: Path, text: str, builder: Builder, keyring: Keyring) -> None:
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        data = _json_or_none(text)
        if is_list_shape(data):
            read_list(data, builder, path, keyring)
            return
    if len(text.encode("utf-8", "surrogatepass")) > yamlsource.MAX_FILE_BYTES:
        raise InventoryError(f"file is larger than {yamlsource.MAX_FILE_BYTES} bytes", path)
    if path.suffix in YAML_SUFFIXES or looks_like_yaml(text):
        parse_yaml(load_yaml(text, path, keyring), builder)
    else:
        parse_ini(path, text, builder)


def _json_or_none(text: str) -> Any:
    # Not JSON: a YAML inventory in a .json file, which Ansible's YAML plugin reads too.
    try:
        return json.loads(text)
    except ValueError:
        return None


def read_text(path: Path, limit: int = yamlsource.MAX_FILE_BYTES) -> str:
    """A file's UTF-8 text (a BOM dropped); InventoryError when unreadable or over ``limit``."""
    try:
        if path.stat().st_size > limit:
            raise InventoryError(f"file is larger than {limit} bytes", path)
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InventoryError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise InventoryError(f"cannot read: {exc.strerror or exc}", path) from None


def read_plain(path: Path, keyring: Keyring, limit: int) -> tuple[str, bool]:
    """A file's text (at most ``limit`` bytes), decrypted when vault-encrypted, and whether
    it was; the plaintext's own format limits it further."""
    text = read_text(path, limit)
    if not is_encrypted(text):
        return text, False
    return open_text(keyring, text, "this vault-encrypted file", path, 1), True


def load_yaml(text: str, path: Path, keyring: Keyring) -> yamlsource.Document:
    """A YAML inventory or vars file read as Ansible reads it: YAML 1.1, ``!vault`` values."""

    def vault_value(envelope: str, line: int) -> Any:
        return open_value(keyring, envelope, f"a {VAULT_TAG} value", path, line)

    try:
        return yamlsource.load_text(text, path, yaml11=True, tags={VAULT_TAG: vault_value})
    except YamlError as exc:
        raise InventoryError(exc.message, exc.path, exc.line) from None


def read_vars(path: Path, keyring: Keyring) -> dict[str, Any]:
    """The variables of one group_vars/ or host_vars/ file (all secret if it was encrypted)."""
    # Vault text is over four times as long as its plaintext, which load_yaml then bounds.
    text, secret = read_plain(path, keyring, ENCRYPTED_GROWTH * yamlsource.MAX_FILE_BYTES)
    doc = load_yaml(text, path, keyring)
    if doc.data is None:
        return {}
    if not isinstance(doc.data, dict):
        message = f"a vars file must be a mapping of names to values, not a {kind_of(doc.data)}"
        raise InventoryError(message, path, doc.line_of(()))
    return {str(k): mark_secret(v) if secret else v for k, v in doc.data.items()}
