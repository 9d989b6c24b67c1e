"""Transports: how commands reach a host. ``open_transport`` picks one per host.

The SSH transport is imported only when an SSH host is opened, so commands that never
contact a host (``oorfix validate``) never import paramiko.
"""

from __future__ import annotations

from oorfix.errors import ConnectError
from oorfix.inventory.hosts import CONNECTION_KINDS, HostConnection
from oorfix.transport.base import ConnectOptions, Transport

__all__ = ["ConnectOptions", "Transport", "open_transport"]


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
