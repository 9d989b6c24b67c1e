"""ssh_config files read as OpenSSH reads them, parsed and looked up by ``paramiko.SSHConfig``.

paramiko does the parsing and the lookup (``Host`` patterns and negations, ``Match`` host,
originalhost, user, localuser, canonical, final and all, first value wins, ``IdentityFile``
accumulating, the tokens of ``HostName`` and ``IdentityFile``, ``CanonicalizeHostname``). It
knows no line numbers, ignores ``Include`` and runs ``Match exec`` through invoke, so each
file is read here first, line by line:

- ``Include`` is inlined as OpenSSH does: globs, sorted; a relative name is under ``~/.ssh``;
  at most 16 levels; the block that held the ``Include`` goes on after it;
- every directive is kept with its file and line, to name them in errors and to show where
  a value came from (``Directive``);
- a line paramiko could not parse is refused with its file and line (SshConfigError);
- a ``Match`` with a criterion oorfix does not evaluate (exec, localnetwork, tagged, ...)
  never matches, with a warning: oorfix runs no command from an ssh_config.

A file is read once while it (and every file it includes) is unchanged.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from oorfix.errors import SshConfigError

USER_CONFIG = Path("~/.ssh/config")
_INCLUDE_DEPTH = 16  # OpenSSH's READCONF_MAX_DEPTH
_SETTING = re.compile(r"(\w+)(?:\s*=\s*|\s+)(.+)")  # what paramiko accepts as a line
_MATCH_EVALUATED = frozenset(
    {"all", "canonical", "final", "host", "originalhost", "user", "localuser"}
)
_NEVER = "Host !*"  # what paramiko reads for a block that must not apply


class _Config(paramiko.SSHConfig):
    """paramiko's SSHConfig leaving ProxyCommand's tokens alone: they are replaced later,
    shell-quoted (paramiko would paste the raw values into a shell command)."""

    TOKENS_BY_CONFIG_KEY = {**paramiko.SSHConfig.TOKENS_BY_CONFIG_KEY, "proxycommand": []}  # noqa: RUF012


@dataclass(frozen=True)
class Block:
    """A ``Host`` or ``Match`` line, or the top of a file (every host): where directives live."""

    path: Path
    line: int
    patterns: tuple[str, ...] | None  # Host patterns; None for a Match block

    def applies(self, name: str) -> bool | None:
        """Whether the block applies to ``name``; None when a Match decides (unknown here)."""
        if self.patterns is None:
            return None
        return host_matches(self.patterns, name)


@dataclass(frozen=True)
class Directive:
    """One ``Keyword value`` line (keyword in lower case, value as paramiko keeps it)."""

    path: Path
    line: int
    key: str
    value: str
    block: Block

    @property
    def where(self) -> str:
        """``path:line``."""
        return f"{self.path}:{self.line}"


def host_matches(patterns: tuple[str, ...], name: str) -> bool:
    """``Host`` matching as ssh_config(5) (and paramiko) define it: a negation vetoes."""
    matched = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if _glob(pattern[1:], name):
                return False
        elif _glob(pattern, name):
            matched = True
    return matched


def _glob(pattern: str, name: str) -> bool:
    # ssh_config patterns know only * and ?; fnmatch's [...] classes are literal there.
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, name) is not None


@dataclass(frozen=True)
class ConfigFile:
    """One ssh_config file with what it includes: paramiko's lookup plus where lines are."""

    path: Path
    directives: tuple[Directive, ...]
    warnings: tuple[str, ...]
    signature: tuple[tuple[str, int, int], ...]  # (file, mtime_ns, size) of every file read
    parsed: paramiko.SSHConfig

    def lookup(self, name: str) -> dict[str, Any]:
        """The options ssh would use for ``name`` (lower-case keys; ``hostname`` always set)."""
        return dict(self.parsed.lookup(name))

    def where(self, name: str, key: str, value: Any = None) -> Directive | None:
        """The directive that gave ``name`` its ``key``: the first in a block that applies
        (a Match block is believed when its value is the one found)."""
        for directive in self.directives:
            if directive.key != key:
                continue
            applies = directive.block.applies(name)
            if applies or (applies is None and _same(directive.value, value)):
                return directive
        return None


def _same(raw: str, value: Any) -> bool:
    if value is None:
        return raw.lower() == "none"
    if isinstance(value, list):
        return bool(value) and raw in value
    return raw == str(value)


_CACHE: dict[Path, ConfigFile] = {}
_CACHE_LOCK = threading.Lock()


def load(path: Path) -> ConfigFile:
    """The ssh_config at ``path``, read once while unchanged; SshConfigError if unusable."""
    path = path.expanduser()
    with _CACHE_LOCK:
        cached = _CACHE.get(path)
    if cached is not None and _signature(cached.signature) == cached.signature:
        return cached
    loaded = _Reader(path).read()
    with _CACHE_LOCK:
        _CACHE[path] = loaded
    return loaded


def _signature(files: tuple[tuple[str, int, int], ...]) -> tuple[tuple[str, int, int], ...]:
    """The same files' (name, mtime_ns, size) now; a missing file reads (name, -1, -1)."""
    found = []
    for name, _mtime, _size in files:
        try:
            info = os.stat(name)
        except OSError:
            found.append((name, -1, -1))
        else:
            found.append((name, info.st_mtime_ns, info.st_size))
    return tuple(found)


class _Reader:
    """Reads a file and its includes into the lines paramiko parses and the directives."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.directives: list[Directive] = []
        self.warnings: list[str] = []
        self.files: list[tuple[str, int, int]] = []

    def read(self) -> ConfigFile:
        self._file(self.path, depth=0, top=Block(self.path, 0, ("*",)), header="Host *")
        parsed = _Config()
        try:
            parsed.parse(self.lines)
        except paramiko.ConfigParseError as exc:  # checked per line below; kept as a guard
            raise SshConfigError(f"cannot parse: {exc}", self.path) from None
        return ConfigFile(
            self.path, tuple(self.directives), tuple(self.warnings), tuple(self.files), parsed
        )

    def _file(self, path: Path, *, depth: int, top: Block, header: str) -> None:
        """Read ``path``; lines before its first Host/Match belong to ``top``."""
        text = _read_text(path)
        try:
            info = path.stat()
            self.files.append((str(path), info.st_mtime_ns, info.st_size))
        except OSError:
            pass
        block = top
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            found = _SETTING.match(line)
            if found is None:
                raise SshConfigError(
                    f"cannot parse {line!r} (expected `Keyword value`)", path, number
                )
            key, value = found.group(1).lower(), found.group(2)
            if key in ("host", "match"):
                block, header = self._header(path, number, key, value, line)
                continue
            if key == "include":
                self._include((path, number), value, depth, (block, header))
                continue
            if value.startswith('"') and value.endswith('"') and len(value) > 1:
                value = value[1:-1]  # as paramiko stores it
            self.directives.append(Directive(path, number, key, value, block))
            self.lines.append(line)

    def _header(
        self, path: Path, number: int, key: str, value: str, line: str
    ) -> tuple[Block, str]:
        """A Host or Match line: checked with paramiko's own parser, then started."""
        try:
            _Config.from_text(line)
            words = shlex.split(value)
        except (paramiko.ConfigParseError, ValueError) as exc:
            raise SshConfigError(f"cannot parse {line!r}: {exc}", path, number) from None
        if key == "host":
            self.lines.append(line)
            return Block(path, number, tuple(words)), line
        unknown = _unevaluated(words)
        if unknown:
            self.warnings.append(
                f"{path}:{number}: Match {unknown} is not evaluated by oorfix (it runs no "
                "command from an ssh_config); this block is skipped"
            )
            line = _NEVER
        self.lines.append(line)
        return Block(path, number, () if unknown else None), line

    def _include(
        self, where: tuple[Path, int], value: str, depth: int, within: tuple[Block, str]
    ) -> None:
        """Read the files an Include names, inside ``within`` (its block and header line)."""
        path, number = where
        block, header = within
        if depth + 1 > _INCLUDE_DEPTH:
            raise SshConfigError(f"Include nested deeper than {_INCLUDE_DEPTH} files", path, number)
        try:
            names = shlex.split(value)
        except ValueError as exc:
            raise SshConfigError(f"cannot parse Include {value!r}: {exc}", path, number) from None
        for name in names:
            pattern = os.path.expanduser(name)
            if not os.path.isabs(pattern):
                pattern = str(USER_CONFIG.expanduser().parent / pattern)
            for found in sorted(glob.glob(pattern)):
                included = Path(found)
                if included.is_dir():
                    continue
                self._file(included, depth=depth + 1, top=block, header=header)
                # OpenSSH resumes the including block after the included file.
                self.lines.append(header)


def _unevaluated(words: list[str]) -> str | None:
    """The first Match criterion oorfix does not evaluate, if any."""
    expects_argument = False
    for word in words:
        if expects_argument:
            expects_argument = False
            continue
        criterion = word.lstrip("!").lower()
        if criterion not in _MATCH_EVALUATED:
            return criterion
        expects_argument = criterion not in ("all", "canonical", "final")
    return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SshConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise SshConfigError(f"cannot read this ssh_config: {exc.strerror or exc}", path) from None


def user_config() -> Path | None:
    """``~/.ssh/config`` when it exists (as ssh, oorfix reads it unless told otherwise)."""
    path = USER_CONFIG.expanduser()
    return path if path.exists() else None
