"""Test and demo infrastructure: a real sshd on loopback addresses."""

from oorfix.lab.sshd import SshdError, SshdServer

__all__ = ["SshdError", "SshdServer"]
