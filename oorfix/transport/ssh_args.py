"""Ansible's ``ansible_ssh_common_args`` and ``ansible_ssh_extra_args``, read as ssh reads them.

Ansible appends these to its ssh command line, so a bastion is often configured there
(``-o ProxyJump=bastion``, ``-J bastion``, ``-o ProxyCommand="ssh -W %h:%p bastion"``). They
are split with shlex and read with ssh's own option syntax (``-oKey=Value`` and ``-o 'Key
Value'`` too, flags grouped as ``-qC``). Understood: ``-o`` with the settings oorfix honours
(``SETTINGS``), ``-J``, ``-p``, ``-l``, ``-i`` and ``-F``. Anything else is ignored with a
warning naming the host and the option, never silently. As on ssh's command line the first
value of a setting wins (``IdentityFile`` accumulates).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from oorfix.errors import InventoryError

# ssh_config keywords (lower case) oorfix honours, and how ssh_config(5) spells them.
SETTINGS = {
    key.lower(): key
    for key in (
        "HostName",
        "User",
        "Port",
        "IdentityFile",
        "IdentitiesOnly",
        "ProxyJump",
        "ProxyCommand",
        "ConnectTimeout",
        "ServerAliveInterval",
    )
}
# ssh's options that take an argument (its getopt string), so the argument is not misread.
_WITH_ARGUMENT = frozenset("bceilmopBDEFIJLOPQRSWw")
_FLAGS = {"-p": "port", "-l": "user", "-i": "identityfile", "-J": "proxyjump"}
# Why some ignored options change nothing oorfix does, to say with the warning.
_HINTS = {
    "stricthostkeychecking": "host keys are checked against --known-hosts; "
    "see --accept-new-host-keys",
    "userknownhostsfile": "host keys are checked against --known-hosts",
    "globalknownhostsfile": "host keys are checked against --known-hosts",
    "controlmaster": "oorfix keeps one connection per host for the whole run",
    "controlpersist": "oorfix keeps one connection per host for the whole run",
    "controlpath": "oorfix keeps one connection per host for the whole run",
}


@dataclass(frozen=True)
class ArgSetting:
    """One setting given on the ssh command line: keyword, value and where it was written."""

    key: str  # an ssh_config keyword, lower case
    value: str
    variable: str  # ansible_ssh_common_args or ansible_ssh_extra_args
    written: str  # the option as written, e.g. ``-o ProxyJump=bastion`` or ``-J bastion``

    @property
    def source(self) -> str:
        """Where the value came from, for people."""
        return f"inventory {self.variable} {self.written}"


@dataclass(frozen=True)
class SshArgs:
    """A host's ssh arguments as ssh would read them."""

    settings: tuple[ArgSetting, ...] = ()
    config: ArgSetting | None = None  # -F FILE (the last one wins, as in ssh)
    warnings: tuple[str, ...] = ()  # about this host; the caller names it

    def first(self, *keys: str) -> ArgSetting | None:
        """The first setting of any of ``keys`` (ssh keeps the first value given)."""
        return next((s for s in self.settings if s.key in keys), None)

    def every(self, key: str) -> list[ArgSetting]:
        """Every setting of ``key``, in order (for IdentityFile, which accumulates)."""
        return [s for s in self.settings if s.key == key]


def parse_ssh_args(host: str, args: tuple[tuple[str, str], ...]) -> SshArgs:
    """Read ``(variable, text)`` pairs; InventoryError for an option missing its argument
    or an ``-o`` that names no value."""
    settings: list[ArgSetting] = []
    config: ArgSetting | None = None
    warnings: list[str] = []
    for variable, text in args:
        parser = _Parser(host, variable, text)
        for option, argument in parser.options():
            if option == "-o":
                found = _setting(parser, argument)
                if found is None:
                    continue
                key, value = found
                settings.append(ArgSetting(key, value, variable, f"-o {argument}"))
            elif option == "-F":
                config = ArgSetting("-F", argument or "", variable, f"-F {argument}")
            elif option in _FLAGS:
                key = _FLAGS[option]
                settings.append(ArgSetting(key, argument or "", variable, f"{option} {argument}"))
            else:
                shown = option if argument is None else f"{option} {argument}"
                parser.ignored(shown)
        warnings += parser.warnings
    return SshArgs(tuple(settings), config, tuple(warnings))


def _setting(parser: _Parser, argument: str | None) -> tuple[str, str] | None:
    """``Key=Value``, ``Key Value`` or ``Key = Value`` from ``-o``; None when ignored."""
    text = (argument or "").strip()
    key, sep, value = text.partition("=")
    if " " in key.strip() or "\t" in key.strip() or not sep:
        key, _, value = text.partition(" ") if " " in text else text.partition("\t")
    key, value = key.strip(), value.strip()
    if len(value) > 1 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    if not key or not value:
        raise parser.error(f"-o {text!r} gives no value (write -o Key=Value)")
    if key.lower() not in SETTINGS:
        parser.ignored(f"-o {text}", _HINTS.get(key.lower()))
        return None
    return key.lower(), value


class _Parser:
    """ssh's getopt over one variable's words."""

    def __init__(self, host: str, variable: str, text: str) -> None:
        self.host = host
        self.variable = variable
        self.words = shlex.split(text)  # the inventory checked that it splits
        self.warnings: list[str] = []

    def options(self) -> Iterator[tuple[str, str | None]]:
        """(option, argument) pairs in order; a word that is no option is ignored, with a
        warning (in order with the caller's)."""
        words = list(self.words)
        while words:
            word = words.pop(0)
            if not word.startswith("-") or word == "-":
                self.ignored(f"{word!r} (not an option)")
                continue
            letters = word[1:]
            while letters:
                letter, letters = letters[0], letters[1:]
                if letter not in _WITH_ARGUMENT:
                    yield f"-{letter}", None
                    continue
                if letters:
                    argument, letters = letters, ""
                elif words:
                    argument = words.pop(0)
                else:
                    raise self.error(f"-{letter} needs an argument")
                yield f"-{letter}", argument

    def ignored(self, option: str, why: str | None = None) -> None:
        """Warn that ``option`` is ignored (and ``why`` that changes nothing, if known)."""
        text = f"{self.variable}: {option} is not supported by oorfix; ignored"
        self.warnings.append(text + (f" ({why})" if why else ""))

    def error(self, message: str) -> InventoryError:
        """An input error naming the host and the variable."""
        return InventoryError(f"host {self.host!r}: {self.variable}: {message}")


def config_path(setting: ArgSetting) -> Path:
    """The file a ``-F`` names (``~`` expanded; relative to the working directory, as ssh)."""
    return Path(setting.value).expanduser()
