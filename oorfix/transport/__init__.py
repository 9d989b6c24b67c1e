"""Transports: how commands reach a host. ``open_transport`` picks one per host.

The SSH transport is imported only when an SSH host is opened, so commands that never
contact a host (``oorfix validate``) never import paramiko.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

from oorfix.errors import ConnectError
from oorfix.inventory.hosts import CONNECTION_KINDS, HostConnection
from oorfix.transport.base import ConnectOptions, Transport

__all__ = ["ConnectOptions", "Transport", "open_transport"]


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports it."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _defer(name: str) -> None:
    """Import module ``name`` only when it is used, if it is installed and not imported yet."""
    if name not in sys.modules and importlib.util.find_spec(name) is not None:
        sys.modules[name] = _Deferred(name)


# paramiko's ssh_config reader imports invoke (and with it unittest.mock and asyncio, about
# 50 ms) only to run `Match exec` lines. This package's init runs before any module here
# imports paramiko, so the import waits until such a line is met.
_defer("invoke")


def open_transport(conn: HostConnection, options: ConnectOptions) -> Transport:
    """A transport for ``conn`` by its kind ("ssh" or "local"), not yet connected."""
    if conn.kind == "local":
        from oorfix.transport.local import LocalTransport

        return LocalTransport(conn, options)
    if conn.kind == "ssh":
        from oorfix.transport.ssh import SshTransport

        return SshTransport(conn, options)
    speaks = ", ".join(CONNECTION_KINDS)
    raise ConnectError(conn.name, f"unsupported connection {conn.kind!r} (oorfix speaks {speaks})")
