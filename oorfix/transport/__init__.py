"""Transports: how commands reach a host. ``open_transport`` picks one per host.

The SSH transport is imported only when an SSH host is opened, so commands that never
contact a host (``oorfix validate``) never import paramiko.
"""

from __future__ import annotations

from oorfix.inventory.hosts import HostConnection
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
    raise ValueError(f"host {conn.name}: unknown connection kind {conn.kind!r}")
