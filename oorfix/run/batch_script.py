"""The script that runs many read-only checks of one host in one round trip, and its reading.

Each check costs the host what the check itself costs plus its time limit: it runs as
``timeout -k GRACE LIMIT sh -c CHECK`` (a check of plain words without ``sh -c``: one exec
fewer) with stdout and stderr redirected to files of its own,
and its exit status and start and end times are kept in shell variables (times come from
``read`` on ``/proc/uptime``, a shell builtin, so no ``date`` is forked per check). Only when
every check has run does the script print, after a random marker:

    MARKER times UPTIME0 EPOCH_NS0 i:rc:start:end ...   the checks that ran
    MARKER sizes, then ``wc -c`` of every output file  total bytes of each stream
    MARKER data, then every file cut to KEEP_BYTES,    one base64 stream; the reader splits
                  concatenated, in base64                it by the sizes it was told
    MARKER end

That is four helper processes per batch (date, wc, truncate and base64, plus cat), not per
check. A check's output never reaches the channel, so it cannot forge a frame, and base64
keeps its bytes exact. If the channel output was cut short, the checks whose bytes arrived
whole are still read; the others are left to run on their own.
"""

from __future__ import annotations

import base64
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oorfix.redact import Command
from oorfix.results import CommandResult, Output
from oorfix.transport.shell import TIMEOUT_KILLED_STATUS, TIMEOUT_STATUS, direct_argv, seconds

KILL_GRACE = 2.0
# Per check and stream: what is kept of the output. Checks print little; evidence is not batched.
KEEP_BYTES = 16 * 1024
FRAME = "@@oorfix-batch"
# /proc/uptime counts in hundredths of a second.
UPTIME_RESOLUTION = 0.01


@dataclass(frozen=True)
class BatchItem:
    """One check to run inside a batch."""

    command: Command
    timeout: float


def batch_dir(marker: str) -> str:
    """The private directory of one batch on the host."""
    return f"/tmp/oorfix-batch-{marker}"  # noqa: S108 - created with mkdir -m 700, never reused


def new_marker() -> str:
    """A marker no earlier batch used."""
    return secrets.token_hex(8)


def stop_command(marker: str) -> Command:
    """The command that stops the batch ``marker`` before its next check."""
    folder = shlex.quote(batch_dir(marker))
    return Command(f"[ -d {folder} ] && touch -- {folder}/stop")


def budget(items: Sequence[BatchItem]) -> float:
    """Seconds the whole batch may take: every check's budget and grace, back to back."""
    return sum(item.timeout + KILL_GRACE for item in items) + 5.0


def _check(index: int, item: BatchItem) -> str:
    limit = f"timeout -k {seconds(KILL_GRACE)} {seconds(item.timeout)}"
    files = f'"$d/{index}.o" "$d/{index}.e"'
    direct = direct_argv(item.command.text)
    run = direct if direct is not None else f"sh -c {shlex.quote(item.command.text)}"
    return (
        f'[ -e "$stop" ] || {{ read s _ 2>/dev/null </proc/uptime; '
        f'{limit} {run} >"$d/{index}.o" 2>"$d/{index}.e" '
        f"</dev/null; r=$?; read e _ 2>/dev/null </proc/uptime; "
        f'T="$T {index}:$r:$s:$e"; F="$F {files}"; }}'
    )


def script(items: Sequence[BatchItem], marker: str) -> str:
    """The shell script that runs every item in order, then reports them all."""
    # The batch's directory is named by its marker, so the engine can drop a stop file in it
    # from another session; mkdir refuses a directory that already exists (or a link).
    folder = shlex.quote(batch_dir(marker))
    frame = f"{FRAME} {marker}"
    setup = (
        f'd={folder}; stop="$d/stop"; mkdir -m 700 "$d" || exit 97; trap \'rm -rf "$d"\' EXIT; '
        f'T=""; F=""; read u0 _ 2>/dev/null </proc/uptime; t0=$(date +%s%N)'
    )
    report = (
        f'printf \'%s times %s %s%s\\n\' \'{frame}\' "$u0" "$t0" "$T"; '
        f"if [ -n \"$F\" ]; then printf '%s sizes\\n' '{frame}'; wc -c $F; "
        f"truncate -s '<{KEEP_BYTES}' $F; printf '%s data\\n' '{frame}'; cat $F | base64; fi; "
        f"printf '%s end\\n' '{frame}'"
    )
    return "; ".join([setup, *(_check(i, item) for i, item in enumerate(items)), report])


@dataclass(frozen=True)
class _Ran:
    """What the times line says of one check."""

    index: int
    rc: int
    start: float | None  # seconds of host uptime
    end: float | None


def _sections(stdout: str, marker: str) -> dict[str, tuple[list[str], list[str]]]:
    """Frame name -> (the frame line's fields after the name, the lines up to the next frame)."""
    sections: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None
    for line in stdout.splitlines():
        fields = line.split(" ")
        if len(fields) >= 3 and fields[0] == FRAME and fields[1] == marker:
            sections[fields[2]] = (fields[3:], [])
            current = sections[fields[2]][1]
        elif current is not None:
            current.append(line)
    return sections


def _uptime(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ran(entries: Sequence[str], count: int) -> list[_Ran]:
    ran = []
    for entry in entries:
        parts = entry.split(":")
        if len(parts) == 4 and parts[0].isdigit() and int(parts[0]) < count:
            index, rc = int(parts[0]), int(parts[1])
            ran.append(_Ran(index, rc, _uptime(parts[2]), _uptime(parts[3])))
    return ran


def _sizes(lines: Sequence[str]) -> dict[str, int]:
    """``wc -c`` lines as file name (``3.o``) -> total bytes; the ``total`` line is skipped."""
    sizes = {}
    for line in lines:
        count, _, path = line.strip().partition(" ")
        name = path.rsplit("/", 1)[-1]
        if count.isdigit() and name.endswith((".o", ".e")):
            sizes[name] = int(count)
    return sizes


def _data(lines: Sequence[str]) -> bytes:
    """The base64 stream decoded as far as it arrived whole (a cut ends it)."""
    kept = []
    for line in lines:
        if not line or line.startswith("[..."):
            break  # where bounded capture cut the output
        kept.append(line)
    text = "".join(kept)
    return base64.b64decode(text[: len(text) - len(text) % 4])


@dataclass(frozen=True)
class _Clock:
    """Host uptime to wall-clock time, anchored at the batch's start."""

    uptime0: float | None
    epoch0: datetime

    def at(self, uptime: float | None) -> datetime:
        if uptime is None or self.uptime0 is None:
            return self.epoch0
        return self.epoch0 + timedelta(seconds=uptime - self.uptime0)


def _clock(fields: Sequence[str]) -> _Clock:
    nanoseconds = fields[1] if len(fields) > 1 and fields[1].isdigit() else "0"
    return _Clock(
        _uptime(fields[0]) if fields else None, datetime.fromtimestamp(int(nanoseconds) / 1e9, UTC)
    )


def _timed_out(item: BatchItem, ran: _Ran) -> bool:
    if ran.rc not in (TIMEOUT_STATUS, TIMEOUT_KILLED_STATUS):
        return False
    if ran.start is None or ran.end is None:
        return True  # no clock on this host: the status is all there is to go on
    return ran.end - ran.start >= item.timeout - UPTIME_RESOLUTION


def parse(items: Sequence[BatchItem], stdout: str, marker: str) -> list[CommandResult | None]:
    """One result per item; None for an item the batch did not deliver whole."""
    results: list[CommandResult | None] = [None] * len(items)
    sections = _sections(stdout, marker)
    if "times" not in sections:
        return results
    fields = sections["times"][0]
    clock = _clock(fields)
    sizes = _sizes(sections.get("sizes", ([], []))[1])
    data = _data(sections.get("data", ([], []))[1])
    offset = 0
    for ran in _ran(fields[2:], len(items)):
        streams = []
        for suffix in ("o", "e"):
            total = sizes.get(f"{ran.index}.{suffix}", 0)
            kept = min(total, KEEP_BYTES)
            arrived = offset + kept <= len(data)
            streams.append(_output(data[offset : offset + kept], total) if arrived else None)
            offset += kept
        out, err = streams
        if out is None or err is None:
            continue  # its bytes did not all arrive: it runs on its own
        item = items[ran.index]
        results[ran.index] = CommandResult(
            command=str(item.command),
            rc=ran.rc,
            stdout=out,
            stderr=err,
            started=clock.at(ran.start),
            ended=clock.at(ran.end),
            timed_out=_timed_out(item, ran),
        )
    return results


def _output(raw: bytes, total: int) -> Output:
    return Output(raw.decode("utf-8", "backslashreplace"), total, total > len(raw))
