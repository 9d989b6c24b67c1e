"""A host's SSH endpoint as OpenSSH would resolve it: ssh_config, Ansible's ssh arguments, jumps.

The name looked up is the one Ansible would hand to ssh: ``ansible_host`` if set, else the
inventory name. Each setting is taken from the first of:

1. the inventory's connection variables (``ansible_host``/``ansible_port``/``ansible_user``/
   ``ansible_ssh_private_key_file``), then ``ansible_ssh_common_args``, then
   ``ansible_ssh_extra_args`` (the order Ansible puts them on ssh's command line, where the
   first value wins);
2. the host's ssh_config: the ``-F`` file in those arguments, else its ``oorfix_ssh_config``
   variable, else the run's ``-F/--ssh-config``, else ``~/.ssh/config`` if it exists;
3. the defaults: port 22, the local user, paramiko's default keys.

``IdentityFile`` accumulates in that order (a configured file that does not exist is skipped,
as ssh skips it). ``ProxyJump`` hops (``[user@]host[:port]``, comma-separated) are each
resolved through the same ssh_config, as ``ssh -J`` does: a hop's own user, port, keys and
timeouts come from its ``Host`` entry, and the first hop's own ProxyJump or ProxyCommand is
followed too. ``ProxyJump none`` and ``ProxyCommand none`` turn a configured proxy off; of
ProxyJump and ProxyCommand the first one given wins. ProxyCommand's ``%h %p %r %n`` are
replaced by shell-quoted values and ``%%`` by ``%``.

Errors are InputErrors naming the file and line (SshConfigError) or the host and variable
(InventoryError): bad ports, hop specifications, tokens, loops. Options oorfix does not use
from the arguments, and some from ssh_config that change how a host is trusted or reached,
are warnings naming the host (``Note``).
"""

from __future__ import annotations

import getpass
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from oorfix.errors import InputError, InputErrors, InventoryError, SshConfigError
from oorfix.inventory.hosts import HostConnection
from oorfix.transport.ssh_args import ArgSetting, SshArgs, config_path, parse_ssh_args
from oorfix.transport.ssh_config_file import ConfigFile, load, user_config

SSH_PORT = 22
MAX_HOPS = 10
# ssh_config settings that change how a host is trusted or reached, which oorfix does not use.
_NOT_USED = {
    "HostKeyAlias": "known_hosts is looked up by HostName and port",
    "StrictHostKeyChecking": "host keys are checked against --known-hosts; "
    "see --accept-new-host-keys",
    "UserKnownHostsFile": "host keys are checked against --known-hosts",
    "CertificateFile": "client certificates are not offered",
    "BindAddress": "the system picks the source address",
    "BindInterface": "the system picks the source interface",
    "ServerAliveCountMax": "every command has its own deadline instead",
}
_TOKEN = re.compile(r"%(.)")
_DURATION = re.compile(r"(\d+)([smhdw]?)", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Origin:
    """Where a value came from: shown by ``oorfix inventory --host``, named in errors."""

    label: str
    path: Path | None = None
    line: int | None = None
    order: int = -1  # the directive's position in its ssh_config, to tell which came first

    def error(self, host: str, message: str) -> InputError:
        """An input error about ``host`` located here."""
        if self.path is not None:
            return SshConfigError(f"host {host!r}: {message}", self.path, self.line)
        return InventoryError(f"host {host!r}: {self.label}: {message}")


DEFAULT = Origin("default")


@dataclass(frozen=True)
class Note:
    """A warning about one host (or, without ``host``, about a file)."""

    host: str | None
    text: str

    def __str__(self) -> str:
        return f"host {self.host!r}: {self.text}" if self.host else self.text


@dataclass(frozen=True)
class Endpoint:
    """Where and how one SSH connection is opened; ``jumps`` are opened first, in order."""

    name: str  # the name it was looked up by (an inventory host, or a hop as written)
    address: str
    port: int = SSH_PORT
    user: str = ""
    identity_files: tuple[Path, ...] = ()
    identities_only: bool = False  # offer only identity_files, not the agent's keys
    jumps: tuple[Endpoint, ...] = ()
    proxy_command: str | None = None  # tokens already replaced; run by /bin/sh
    connect_timeout: float | None = None  # None: --connect-timeout
    server_alive_interval: float | None = None  # None: no keepalive
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def direct(cls, conn: HostConnection) -> Endpoint:
        """The endpoint the inventory alone describes (no ssh_config, no arguments)."""
        keys = (conn.key_file,) if conn.key_file is not None else ()
        return cls(conn.name, conn.address, conn.port, conn.user or getpass.getuser(), keys)

    def source(self, setting: str) -> str:
        """Where ``setting`` (a field name) came from."""
        return dict(self.sources).get(setting, DEFAULT.label)

    def describe(self) -> dict[str, Any]:
        """JSON-ready: every setting and, under ``sources``, where each came from."""
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "user": self.user,
            "identity_files": [str(p) for p in self.identity_files],
            "identities_only": self.identities_only,
            "agent": not self.identities_only,
            "jumps": [jump.describe() for jump in self.jumps],
            "proxy_command": self.proxy_command,
            "connect_timeout": self.connect_timeout,
            "server_alive_interval": self.server_alive_interval,
            "sources": {name: self.source(name) for name in _SHOWN},
        }


# The settings whose source `oorfix inventory --host` shows ("default" when nothing set them).
_SHOWN = (
    "address",
    "port",
    "user",
    "identity_files",
    "identities_only",
    "jumps",
    "proxy_command",
    "connect_timeout",
    "server_alive_interval",
)


@dataclass(frozen=True)
class Resolution:
    """A host's endpoint, the ssh_config it was read from, and what to warn about."""

    endpoint: Endpoint
    config: Path | None
    notes: tuple[Note, ...] = ()


def resolve(conn: HostConnection, ssh_config: Path | None = None) -> Resolution:
    """Resolve ``conn`` (``ssh_config``: the run's ``-F``); InputError if a setting is bad."""
    args = parse_ssh_args(conn.name, conn.ssh_args)
    path = _config_path(conn, args, ssh_config)
    config = load(path) if path is not None else None
    resolver = _Resolver(conn.name, config)
    endpoint = resolver.target(conn, args)
    notes = [Note(conn.name, text) for text in args.warnings]
    notes += resolver.notes
    notes += [Note(None, text) for text in (config.warnings if config else ())]
    return Resolution(endpoint, path, tuple(dict.fromkeys(notes)))


def check_hosts(conns: Iterable[HostConnection], ssh_config: Path | None = None) -> list[str]:
    """Resolve every host now (before any is contacted): InputError(s) for bad settings;
    the warnings, each said once with the hosts it concerns."""
    by_text: dict[str, list[str]] = {}
    errors: dict[str, InputError] = {}
    for conn in conns:
        try:
            notes = resolve(conn, ssh_config).notes
        except InputError as exc:
            # One bad line in a `Host *` block would otherwise be reported for every host.
            where = f"{exc.path}:{exc.line}" if exc.path else exc.message
            errors.setdefault(where, exc)
            continue
        for note in notes:
            by_text.setdefault(note.text, [])
            if note.host is not None:
                by_text[note.text].append(note.host)
    if len(errors) == 1:
        raise next(iter(errors.values()))
    if errors:
        raise InputErrors(list(errors.values()))
    return [_grouped(text, hosts) for text, hosts in by_text.items()]


def _grouped(text: str, hosts: list[str], shown: int = 3) -> str:
    if not hosts:
        return text
    if len(hosts) == 1:
        return f"host {hosts[0]!r}: {text}"
    names = ", ".join(repr(h) for h in hosts[:shown])
    more = f" and {len(hosts) - shown} more" if len(hosts) > shown else ""
    return f"hosts {names}{more}: {text}"


def _config_path(conn: HostConnection, args: SshArgs, run_config: Path | None) -> Path | None:
    """The one ssh_config of this host, as the module docstring orders them."""
    if args.config is not None:
        return config_path(args.config)
    if conn.ssh_config is not None:
        return conn.ssh_config
    if run_config is not None:
        return run_config.expanduser()
    return user_config()


@dataclass(frozen=True)
class _Hop:
    """One ``[user@]host[:port]`` of a ProxyJump."""

    host: str
    user: str | None
    port: int | None


class _Found:
    """What an ssh_config says for one name, with where each value is."""

    def __init__(self, name: str, config: ConfigFile | None) -> None:
        self.name = name
        self.config = config
        self.options = config.lookup(name) if config is not None else {}

    def get(self, key: str) -> tuple[Any, Origin] | None:
        """The value of ``key`` (None for ``ProxyCommand none``) and its origin, if set."""
        if self.config is None or key not in self.options:
            return None
        value = self.options[key]
        directive = self.config.where(self.name, key, value)
        if directive is None:
            if key == "hostname":  # paramiko sets it to the name itself when none is given
                return None
            return value, Origin(f"ssh_config {self.config.path}", self.config.path)
        order = self.config.directives.index(directive)
        label = f"ssh_config {directive.where}"
        return value, Origin(label, directive.path, directive.line, order)


class _Resolver:
    """Resolves a host and its hops through one ssh_config."""

    def __init__(self, host: str, config: ConfigFile | None) -> None:
        self.host = host
        self.config = config
        self.notes: list[Note] = []

    def target(self, conn: HostConnection, args: SshArgs) -> Endpoint:
        """The host's endpoint: inventory variables, then arguments, then ssh_config."""
        found = _Found(conn.address, self.config)
        sources: dict[str, str] = {}
        address = _pick("hostname", args, found)
        if address is not None:
            sources["address"] = address[1].label
        else:
            named = conn.address != conn.name
            sources["address"] = "inventory (ansible_host)" if named else "inventory name"
        if conn.port_given:
            port, sources["port"] = conn.port, "inventory (ansible_port)"
        else:
            port = self._port(_pick("port", args, found), sources)
        if conn.user:
            user, sources["user"] = conn.user, "inventory (ansible_user)"
        else:
            user = self._user(_pick("user", args, found), sources)
        files: list[tuple[Path, str]] = []
        if conn.key_file is not None:
            files.append((conn.key_file, "inventory (ansible_ssh_private_key_file)"))
        files += [(Path(s.value).expanduser(), s.source) for s in args.every("identityfile")]
        endpoint = Endpoint(
            name=conn.name,
            address=str(address[0]) if address is not None else conn.address,
            port=port,
            user=user,
        )
        return self._complete(endpoint, args, found, files, sources, (conn.address,))

    def _complete(  # noqa: PLR0913 - the parts of an endpoint under construction
        self,
        endpoint: Endpoint,
        args: SshArgs,
        found: _Found,
        files: list[tuple[Path, str]],
        sources: dict[str, str],
        seen: tuple[str, ...] | None,
    ) -> Endpoint:
        """Keys, timeouts and (unless ``seen`` is None: a later hop) the proxy."""
        configured = found.get("identityfile")
        if configured is not None:
            paths = [Path(str(p)).expanduser() for p in configured[0]]
            files += [(p, configured[1].label) for p in paths if p.exists()]
        if files:
            sources["identity_files"] = "; ".join(dict.fromkeys(s for _, s in files))
        only = _pick("identitiesonly", args, found)
        timeout = _pick("connecttimeout", args, found)
        alive = _pick("serveraliveinterval", args, found)
        jumps: tuple[Endpoint, ...] = ()
        command = None
        proxy = self._proxy(args, found) if seen is not None else None
        if proxy is not None and seen is not None:
            key, value, origin = proxy
            if key == "proxyjump":
                jumps = self._jumps(str(value), origin, seen)
                sources["jumps"] = origin.label
            else:
                command = self._command(str(value), endpoint, origin)
                sources["proxy_command"] = origin.label
        self._warn_unused(found, endpoint.name)
        for key, picked in (
            ("identities_only", only),
            ("connect_timeout", timeout),
            ("server_alive_interval", alive),
        ):
            if picked is not None:
                sources[key] = picked[1].label
        return replace(
            endpoint,
            identity_files=tuple(dict.fromkeys(p for p, _ in files)),
            identities_only=self._yes(only, "IdentitiesOnly"),
            jumps=jumps,
            proxy_command=command,
            connect_timeout=self._seconds(timeout, "ConnectTimeout"),
            server_alive_interval=self._seconds(alive, "ServerAliveInterval") or None,
            sources=tuple(sources.items()),
        )

    def _proxy(self, args: SshArgs, found: _Found) -> tuple[str, Any, Origin] | None:
        """ProxyJump or ProxyCommand, whichever was given first; None when none or off."""
        setting = args.first("proxyjump", "proxycommand")
        if setting is not None:
            chosen: tuple[str, Any, Origin] = (setting.key, setting.value, _origin(setting))
        else:
            given = [(k, *v) for k in ("proxyjump", "proxycommand") if (v := found.get(k))]
            if not given:
                return None
            chosen = min(given, key=lambda item: item[2].order)
        value = chosen[1]
        if value is None or str(value).strip().lower() == "none":
            return None
        return chosen

    def _jumps(self, value: str, origin: Origin, seen: tuple[str, ...]) -> tuple[Endpoint, ...]:
        """The hops of a ProxyJump, flattened: the first hop's own jumps come before it."""
        hops = _parse_hops(value, origin, self.host)
        first = self._hop(hops[0], origin, seen, proxy=True)
        chain = [*first.jumps, replace(first, jumps=())]
        for hop in hops[1:]:
            chain.append(self._hop(hop, origin, seen, proxy=False))
        if len(chain) > MAX_HOPS:
            raise origin.error(self.host, f"ProxyJump: more than {MAX_HOPS} jump hosts")
        return tuple(chain)

    def _hop(self, hop: _Hop, origin: Origin, seen: tuple[str, ...], *, proxy: bool) -> Endpoint:
        """One hop, resolved through the ssh_config like ``ssh -J`` resolves it."""
        if hop.host in seen:
            loop = " -> ".join([*seen, hop.host])
            raise origin.error(
                self.host,
                f"ProxyJump loops ({loop}); exclude the jump host from the pattern that "
                "sets it, e.g. `Host * !bastion`",
            )
        found = _Found(hop.host, self.config)
        sources: dict[str, str] = {}
        spec = f"ProxyJump from {origin.label}"
        address = found.get("hostname")
        sources["address"] = address[1].label if address else spec
        if hop.port is not None:
            port, sources["port"] = hop.port, spec
        else:
            port = self._port(_pick("port", SshArgs(), found), sources)
        if hop.user is not None:
            user, sources["user"] = hop.user, spec
        else:
            user = self._user(_pick("user", SshArgs(), found), sources)
        endpoint = Endpoint(
            name=hop.host,
            address=str(address[0]) if address else hop.host,
            port=port,
            user=user,
        )
        later = (*seen, hop.host) if proxy else None
        return self._complete(endpoint, SshArgs(), found, [], sources, later)

    def _command(self, command: str, endpoint: Endpoint, origin: Origin) -> str:
        """ProxyCommand with its tokens replaced by shell-quoted values."""
        values = {
            "h": endpoint.address,
            "p": str(endpoint.port),
            "r": endpoint.user,
            "n": endpoint.name,
        }

        def token(found: re.Match[str]) -> str:
            letter = found.group(1)
            if letter == "%":
                return "%"
            if letter not in values:
                raise origin.error(
                    self.host, f"ProxyCommand: unknown token %{letter} (known: %h %p %r %n %%)"
                )
            return shlex.quote(values[letter])

        return _TOKEN.sub(token, command)

    def _port(self, picked: tuple[Any, Origin] | None, sources: dict[str, str]) -> int:
        if picked is None:
            return SSH_PORT
        sources["port"] = picked[1].label
        return _port_number(str(picked[0]), picked[1], self.host)

    def _user(self, picked: tuple[Any, Origin] | None, sources: dict[str, str]) -> str:
        if picked is None:
            sources["user"] = "default (the local user)"
            return getpass.getuser()
        sources["user"] = picked[1].label
        return str(picked[0])

    def _yes(self, picked: tuple[Any, Origin] | None, keyword: str) -> bool:
        if picked is None:
            return False
        text = str(picked[0]).strip().lower()
        if text not in ("yes", "no", "true", "false"):
            raise picked[1].error(self.host, f"{keyword} {picked[0]!r}: write yes or no")
        return text in ("yes", "true")

    def _seconds(self, picked: tuple[Any, Origin] | None, keyword: str) -> float | None:
        """A time as ssh_config writes it (``30``, ``30s``, ``1m30s``)."""
        if picked is None:
            return None
        text = str(picked[0]).strip()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise picked[1].error(self.host, f"{keyword} {text!r} is not a time (e.g. 30, 1m)")
        seconds = float(sum(int(n) * _UNITS[u.lower()] for n, u in parts))
        if keyword == "ConnectTimeout" and seconds <= 0:
            raise picked[1].error(self.host, f"{keyword} {text!r} must be more than 0")
        return seconds

    def _warn_unused(self, found: _Found, name: str) -> None:
        for keyword, why in _NOT_USED.items():
            got = found.get(keyword.lower())
            if got is not None:
                hop = "" if name == self.host else f" (for jump host {name})"
                text = f"{got[1].label}: {keyword} is not used by oorfix{hop}; ignored ({why})"
                self.notes.append(Note(self.host, text))


def _pick(key: str, args: SshArgs, found: _Found) -> tuple[Any, Origin] | None:
    """The first value of ``key``: the ssh arguments, then the ssh_config."""
    setting = args.first(key)
    if setting is not None:
        return setting.value, _origin(setting)
    got = found.get(key)
    if got is None or got[0] is None:
        return None
    return got


def _origin(setting: ArgSetting) -> Origin:
    return Origin(setting.source)


def _port_number(text: str, origin: Origin, host: str, within: str = "") -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise origin.error(host, f"{within}port {text!r} is not a port number (1-65535)")
    return int(text)


def _parse_hops(value: str, origin: Origin, host: str) -> list[_Hop]:
    """``[user@]host[:port]`` (or ``ssh://[user@]host[:port]``, ``[v6]:port``), comma-separated."""
    hops = []
    within = f"ProxyJump {value!r}: "
    for part in value.split(","):
        text = part.strip()
        if text.startswith("ssh://"):
            text = text[len("ssh://") :].rstrip("/")
        user, at, rest = text.rpartition("@")
        port: int | None = None
        if rest.startswith("["):
            name, bracket, tail = rest[1:].partition("]")
            if not bracket or (tail and not tail.startswith(":")):
                raise origin.error(host, f"ProxyJump {value!r}: cannot read {part.strip()!r}")
            if tail:
                port = _port_number(tail[1:], origin, host, within)
        else:
            name, colon, number = rest.partition(":")
            if colon:
                port = _port_number(number, origin, host, within)
        if not name or (at and not user) or any(c.isspace() for c in name + user):
            raise origin.error(
                host,
                f"ProxyJump {value!r}: {part.strip()!r} is not [user@]host[:port]",
            )
        hops.append(_Hop(name, user or None, port))
    return hops
