"""Running the programs an inventory names (inventory scripts, vault password scripts), bounded.

A program's stdout is read while it runs, so one that prints without end is killed at the
size limit instead of filling memory, and one that hangs is killed at the time limit; only
the tail of stderr is kept, for the error message.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

STDERR_TAIL_BYTES = 2000
STDERR_TAIL_LINES = 3
_CHUNK = 65536


class ProgramError(Exception):
    """A program that could not be run or was killed; the message says which."""


@dataclass(frozen=True)
class Finished:
    """A program's exit status, its stdout and the tail of its stderr."""

    returncode: int
    stdout: bytes
    stderr: bytes

    def stderr_tail(self) -> str:
        """The last lines of stderr on one line, or "" when it printed nothing."""
        return stderr_tail(self.stderr)


def stderr_tail(data: bytes) -> str:
    """The last few non-empty lines of ``data``, joined by `` | ``."""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    return " | ".join([line for line in lines if line][-STDERR_TAIL_LINES:])


def run_program(
    argv: Sequence[str], *, timeout: float, limit: int, interactive: bool = False
) -> Finished:
    """Run ``argv``; ProgramError if it cannot start, outlives ``timeout`` or prints more than
    ``limit`` bytes. ``interactive`` leaves stdin and stderr on the terminal (a password
    script may ask there, as Ansible lets it)."""
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE,
            # Its own process group, so a kill also reaches what it started.
            start_new_session=not interactive,
        )
    except OSError as exc:
        raise ProgramError(f"cannot run it: {exc.strerror or exc}") from exc
    deadline = time.monotonic() + timeout
    try:
        stdout, stderr = _collect(process, deadline, limit)
        process.wait(timeout=max(0.01, _remaining(deadline)))
    except subprocess.TimeoutExpired:
        _kill(process, interactive)
        raise ProgramError(f"it did not exit within {timeout:g} s (killed)") from None
    except ProgramError:
        _kill(process, interactive)
        raise
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return Finished(process.returncode, stdout, stderr)


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _collect(process: subprocess.Popen[bytes], deadline: float, limit: int) -> tuple[bytes, bytes]:
    """Read stdout (up to ``limit``) and the tail of stderr until both close."""
    stdout, stderr = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            remaining = _remaining(deadline)
            if remaining <= 0:
                raise subprocess.TimeoutExpired(process.args, 0)
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, _CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is process.stdout:
                    stdout += chunk
                    if len(stdout) > limit:
                        raise ProgramError(f"it printed more than {limit} bytes (killed)")
                else:
                    stderr += chunk
                    del stderr[:-STDERR_TAIL_BYTES]
    return bytes(stdout), bytes(stderr)


def _kill(process: subprocess.Popen[bytes], interactive: bool) -> None:
    try:
        if interactive:
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone
    process.wait()
