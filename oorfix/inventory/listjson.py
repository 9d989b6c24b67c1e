"""The JSON of ``ansible-inventory --list`` and of inventory scripts, read as Ansible reads it.

The shape: top-level groups, each ``{"hosts": [...], "children": [...], "vars": {...}}`` (a bare
list is its hosts), and ``_meta.hostvars`` with each host's variables. Host names are taken as
written: no ``host:port``, no ranges, as Ansible's script plugin takes them. Values are JSON's
own (no YAML typing); ``{"__ansible_vault": "..."}`` is a vault value and
``{"__ansible_unsafe": "..."}`` plain text, as ansible-inventory writes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from oorfix.errors import InventoryError
from oorfix.inventory.formats import Builder, kind_of
from oorfix.inventory.vault import Keyring, open_value
from oorfix.redact import SecretText

HostVars = Callable[[str], Any]  # a host's variables when _meta.hostvars is missing (--host H)
_VAULT, _UNSAFE = "__ansible_vault", "__ansible_unsafe"


def is_list_shape(data: Any) -> bool:
    """Whether JSON ``data`` is ansible-inventory's --list shape rather than the YAML
    inventory shape written as JSON (``{"all": {"hosts": {"h1": {...}}}}``)."""
    if not isinstance(data, dict):
        return False
    if "_meta" in data:
        return True
    for body in data.values():
        if isinstance(body, list):
            return True
        if isinstance(body, dict) and any(
            isinstance(body.get(key), list) for key in ("hosts", "children")
        ):
            return True
    return False


def read_list(
    data: Any, builder: Builder, path: Path, keyring: Keyring, host_vars: HostVars | None = None
) -> None:
    """Record the groups and hosts of --list JSON in ``builder``; ``host_vars`` is asked for
    each host's variables when there is no ``_meta.hostvars`` (a script's ``--host H``)."""
    reader = _ListReader(builder, path, keyring)
    if not isinstance(data, dict):
        raise reader.error(f"inventory JSON must be an object of groups, not a {kind_of(data)}")
    meta = data.get("_meta", {})
    if not isinstance(meta, dict):
        raise reader.error(f"'_meta' must be an object, not a {kind_of(meta)}")
    hostvars = meta.get("hostvars")
    if hostvars is not None and not isinstance(hostvars, dict):
        raise reader.error(f"'_meta.hostvars' must be an object, not a {kind_of(hostvars)}")
    for name, body in data.items():
        if name != "_meta":
            reader.group(str(name), body)
    for host in reader.seen:
        # As in Ansible, only hosts some group lists are in the inventory.
        if hostvars is not None:
            variables = hostvars.get(host, {})
        else:
            variables = host_vars(host) if host_vars is not None else {}
        if not isinstance(variables, dict):
            what = kind_of(variables)
            raise reader.error(f"host {host!r}: variables must be an object, not a {what}")
        builder.host_vars(host, reader.values(variables, f"host {host!r}"))


class _ListReader:
    def __init__(self, builder: Builder, path: Path, keyring: Keyring):
        self.builder = builder
        self.path = path
        self.keyring = keyring
        self.seen: dict[str, None] = {}

    def error(self, message: str) -> InventoryError:
        return InventoryError(message, self.path)

    def group(self, name: str, body: Any) -> None:
        where = (self.path, None)
        self.builder.group(name, where)
        if isinstance(body, list):
            body = {"hosts": body}  # Ansible's old form: a group as the list of its hosts
        elif isinstance(body, dict) and not body.keys() & {"hosts", "vars", "children"}:
            body = {"hosts": [name], "vars": body}  # Ansible's old form: a host of its own
        elif not isinstance(body, dict):
            raise self.error(f"group {name!r} must be an object or a list, not a {kind_of(body)}")
        for host in self.names(body, "hosts", name):
            self.builder.host(host, name, {}, where)
            self.seen[host] = None
        variables = body.get("vars", {})
        if not isinstance(variables, dict):
            what = kind_of(variables)
            raise self.error(f"'vars' of group {name!r} must be an object, not a {what}")
        self.builder.group_vars(name, self.values(variables, f"group {name!r}"))
        for child in self.names(body, "children", name):
            self.builder.child(name, child, where)

    def names(self, body: dict[str, Any], key: str, group: str) -> list[str]:
        names = body.get(key, [])
        if not isinstance(names, list):
            raise self.error(f"'{key}' of group {group!r} must be a list, not a {kind_of(names)}")
        for name in names:
            if not isinstance(name, str) or not name:
                raise self.error(f"'{key}' of group {group!r} lists {name!r}: not a name")
        return names

    def values(self, variables: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {str(k): self.value(v, f"{owner} variable {k!r}") for k, v in variables.items()}

    def value(self, value: Any, what: str) -> Any:
        if isinstance(value, dict):
            if value.keys() == {_VAULT}:
                return self.decrypt(value[_VAULT], what)
            if value.keys() == {_UNSAFE} and isinstance(value[_UNSAFE], str):
                return value[_UNSAFE]
            return {key: self.value(item, what) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, what) for item in value]
        return value

    def decrypt(self, text: Any, what: str) -> SecretText:
        where = f"the {_VAULT} value of {what}"
        if not isinstance(text, str):
            raise self.error(f"{where} must be text, not a {kind_of(text)}")
        return open_value(self.keyring, text, where, self.path, None)
