"""The script that runs many read-only checks of one host in one round trip, and its reading.

Each check costs the host what the same command costs in a plain script: it is started
directly (a check of plain words without ``sh -c``), in the background, with stdout and
stderr redirected to files of its own, and the script waits for it. Its exit status and end
time are kept in shell variables (times come from ``read`` on ``/proc/uptime``, a shell
builtin; a check starts when the one before it ended). Time limits are enforced on the host by
one watchdog per batch, a subshell that ticks every ``TICK`` seconds: when the running check
has used its ticks it sends TERM to the check and its descendants, ``KILL_GRACE`` later KILL,
and leaves a mark so the check reads as timed out (124, or 137 when KILL was needed), as
coreutils ``timeout`` reports it. A check is never stopped before its limit, and at most a tick
late. The watchdog also holds the batch to its whole budget, so no ``timeout`` process wraps
the batch (see ``Command.limits_itself``); should the watchdog die, no further check starts.

Only when every check has run does the script print, after a random marker:

    MARKER times UPTIME0 i:rc:start:end ...      the checks that ran (uptime in 1/100 s)
    MARKER sizes, then ``wc -c`` of every file   total bytes of each stream
    MARKER data, then every file's first         raw, one after the other; the reader
                  KEEP_BYTES (``head -q -c``)     splits them by the sizes it was told
    (a newline) MARKER end

So a batch forks, besides the checks themselves, mkdir, wc, head and rm, and the watchdog's
sleeps (one per tick: none finish in a batch of quick checks); pgrep only to stop a check that
overran. A check's output never reaches the channel before every size is printed, and the data
is read by length, so it cannot forge a frame. The reader gets the channel as text decoded
with ``backslashreplace`` and recovers the exact bytes (see ``_exact``); the data must come to
exactly the sizes announced, else only the checks that printed nothing are read from the batch,
and the others run on their own (as do those of a batch whose output was cut short).
"""

from __future__ import annotations

import math
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from oorfix.redact import Command
from oorfix.results import CommandResult, Output
from oorfix.transport.shell import TIMEOUT_KILLED_STATUS, TIMEOUT_STATUS, direct_argv, seconds

KILL_GRACE = 2.0
TICK = 0.1  # the watchdog's period: how late past its limit a check may be stopped
# Per check and stream: what is kept of the output. Checks print little; evidence is not batched.
KEEP_BYTES = 16 * 1024
FRAME = "@@oorfix-batch"
# /proc/uptime counts in hundredths of a second; the script reports it so, as an integer.
UPTIME_RESOLUTION = 0.01


@dataclass(frozen=True)
class BatchItem:
    """One check to run inside a batch."""

    command: Command
    timeout: float


# Where a batch may keep its files: tmpfs first (creating twenty small files there costs
# about half what it does on a disk), else /tmp. Created with mkdir -m 700, never reused.
BATCH_PARENTS = ("/dev/shm", "/tmp")  # noqa: S108


def batch_dirs(marker: str) -> tuple[str, ...]:
    """The places the private directory of one batch may be on the host, in order."""
    return tuple(f"{parent}/oorfix-batch-{marker}" for parent in BATCH_PARENTS)


def new_marker() -> str:
    """A marker no earlier batch used."""
    return secrets.token_hex(8)


def stop_command(marker: str) -> Command:
    """The command that stops the batch ``marker`` before its next check."""
    folders = " ".join(shlex.quote(folder) for folder in batch_dirs(marker))
    return Command(f'for d in {folders}; do [ -d "$d" ] && touch -- "$d/stop"; done; true')


def budget(items: Sequence[BatchItem]) -> float:
    """Seconds the whole batch may take: every check's budget and grace, back to back."""
    # A check may overrun its limit by a tick (and the watchdog's own latency) before TERM.
    return sum(item.timeout + KILL_GRACE + 2 * TICK for item in items) + 5.0


def _ticks(seconds: float) -> int:
    """Watchdog ticks that cover ``seconds``: a check is never stopped before its limit."""
    return max(1, math.ceil(seconds / TICK - 1e-9))


# The script's own shell functions: a check whose first word is one of these (`w` is also
# a program) must not call the function, so it runs through `sh -c`, which does not see them.
_FUNCTIONS = frozenset({"k", "u", "w"})


def _check(index: int, item: BatchItem) -> str:
    direct = direct_argv(item.command.text)
    if direct is not None and direct.split(" ", 1)[0] in _FUNCTIONS:
        direct = None
    run = direct if direct is not None else f"sh -c {shlex.quote(item.command.text)}"
    files = f'>"$d/{index}.o" 2>"$d/{index}.e" </dev/null'
    return f'[ -e "$stop" ] || {{ i={index}; {run} {files} & w $! {_ticks(item.timeout)}; }}'


# The watchdog reads the running check's "ticks pid index" from $d/w on every tick; a new
# line restarts its count. `k` signals a process's descendants (found with pgrep: an exec
# only when a check overran its limit), deepest first, then the process: once a parent is
# gone, its children are no longer found by their parent.
_WATCHDOG = (
    "k() { for x in $(pgrep -P $2); do k $1 $x; done; kill -$1 $2 2>/dev/null; }; "
    # A `sleep` without fractions (some busybox builds) ticks once a second, counting for 10.
    "p=@TICK@; q=1; sleep $p 2>/dev/null || { p=1; q=@PER@; }; "
    'o=; t=0; a=0; while sleep $p; do l=; read l <"$d/w" 2>/dev/null; a=$((a + q)); '
    # The batch's shell gone (killed, or dead of a write to a closed channel): stop the
    # running check, remove the directory and end, rather than tick on.
    'kill -0 $$ 2>/dev/null || { [ -z "$l" ] || { set -- $l; k TERM $2; }; rm -rf "$d"; exit; }; '
    # The whole batch over its budget (which no check within its own limit reaches).
    '[ $a -lt @BUDGET@ ] || { [ -z "$l" ] || { set -- $l; k KILL $2; }; kill -KILL $$; '
    'rm -rf "$d"; exit; }; '
    '[ "$l" = "$o" ] || { o=$l; t=0; }; [ -n "$l" ] || continue; t=$((t + q)); '
    "set -- $l; if [ $t -ge $(($1 + @GRACE@)) ]; then k KILL $2; "
    'elif [ ! -e "$d/k$3" ] && [ $t -ge $1 ]; then : >"$d/k$3"; k TERM $2; fi; done'
)
# `w PID TICKS` arms the watchdog, waits for the check, disarms the watchdog, and notes the
# status (marked as a time-out when the watchdog stopped the check) and the check's start
# (the end of the one before) and end. A watchdog found dead starts no further check.
_HELPERS = (
    "u() { n=; read n _ 2>/dev/null </proc/uptime; n=${n%.*}${n#*.}; }; "
    'w() { echo "$2 $1 $i" >"$d/w"; wait $1 2>/dev/null; r=$?; : >"$d/w"; u; '
    'if [ -e "$d/k$i" ]; then [ $r = 137 ] || r=124; fi; '
    'T="$T $i:$r:$s:$n"; s=$n; F="$F $d/$i.o $d/$i.e"; kill -0 $W 2>/dev/null || : >"$stop"; }'
)


def script(items: Sequence[BatchItem], marker: str) -> str:
    """The shell script that runs every item in order, then reports them all."""
    # The batch's directory is named by its marker, so the engine can drop a stop file in it
    # from another session; mkdir refuses a directory that already exists (or a link).
    shm, tmp = (shlex.quote(folder) for folder in batch_dirs(marker))
    frame = f"{FRAME} {marker}"
    watchdog = (
        _WATCHDOG.replace("@TICK@", seconds(TICK))
        .replace("@PER@", str(_ticks(1.0)))
        .replace("@GRACE@", str(_ticks(KILL_GRACE)))
        .replace("@BUDGET@", str(_ticks(budget(items))))
    )
    setup = (
        f'd={shm}; mkdir -m 700 "$d" 2>/dev/null || {{ d={tmp}; mkdir -m 700 "$d" || exit 97; }}; '
        f'stop="$d/stop"; : >"$d/w"; '
        f"( {watchdog} ) </dev/null >/dev/null 2>&1 & W=$!; "
        "trap 'kill $W 2>/dev/null; rm -rf \"$d\"' EXIT; "
        f'{_HELPERS}; T=""; F=""; u; u0=$n; s=$n'
    )
    report = (
        f"printf '%s times %s%s\\n' '{frame}' \"$u0\" \"$T\"; "
        f"if [ -n \"$F\" ]; then printf '%s sizes\\n' '{frame}'; wc -c $F; "
        f"printf '%s data\\n' '{frame}'; head -q -c {KEEP_BYTES} $F; fi; "
        f"printf '\\n%s end\\n' '{frame}'"
    )
    return "; ".join([setup, *(_check(i, item) for i, item in enumerate(items)), report])


@dataclass(frozen=True)
class _Ran:
    """What the times line says of one check."""

    index: int
    rc: int
    start: float | None  # seconds of host uptime
    end: float | None


def _sections(text: str, marker: str) -> dict[str, tuple[list[str], list[str]]]:
    """Frame name -> (the frame line's fields after the name, the lines up to the next frame)."""
    sections: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        fields = line.split(" ")
        if len(fields) >= 3 and fields[0] == FRAME and fields[1] == marker:
            sections[fields[2]] = (fields[3:], [])
            current = sections[fields[2]][1]
        elif current is not None:
            current.append(line)
    return sections


def _uptime(text: str) -> float | None:
    """Seconds of host uptime from the script's hundredths (empty without /proc/uptime)."""
    return int(text) * UPTIME_RESOLUTION if text.isdigit() else None


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


# How ``backslashreplace`` shows a byte that is not UTF-8: only bytes from 0x80 are escaped.
_ESCAPE = re.compile(rb"\\x([89a-f][0-9a-f])")


def _exact(text: str, size: int) -> bytes | None:
    """The ``size`` bytes the host sent, from their ``backslashreplace`` decoding; None when
    that is not what arrived, or the bytes cannot be told for sure."""
    data = text.encode()
    if len(data) == size:
        return data  # nothing was escaped: each escaped byte reads as four
    # When the excess is three for every escape-like sequence, each one of them is an escape
    # (a check may also print the text "\xff", and then which is which cannot be told).
    escapes = len(_ESCAPE.findall(data))
    if escapes and len(data) - size == 3 * escapes:
        return _ESCAPE.sub(lambda m: bytes((int(m[1], 16),)), data)
    return None


@dataclass(frozen=True)
class _Clock:
    """Host uptime to wall-clock time, anchored at the batch's start (when it was sent: the
    script starts a round trip's half later, which costs a fork of ``date`` to learn)."""

    uptime0: float | None
    epoch0: datetime

    def at(self, uptime: float | None) -> datetime:
        if uptime is None or self.uptime0 is None:
            return self.epoch0
        return self.epoch0 + timedelta(seconds=uptime - self.uptime0)


def _timed_out(item: BatchItem, ran: _Ran) -> bool:
    if ran.rc not in (TIMEOUT_STATUS, TIMEOUT_KILLED_STATUS):
        return False
    if ran.start is None or ran.end is None:
        return True  # no clock on this host: the status is all there is to go on
    return ran.end - ran.start >= item.timeout - UPTIME_RESOLUTION


def _data(rest: str, marker: str, size: int) -> bytes | None:
    """The data, from what follows its frame: None unless it all arrived, exactly."""
    end = f"\n{FRAME} {marker} end\n"
    return _exact(rest[: -len(end)], size) if rest.endswith(end) else None


def parse(
    items: Sequence[BatchItem], stdout: Output, marker: str, sent: datetime
) -> list[CommandResult | None]:
    """One result per item (``sent``: when the batch left); None for an item the batch did
    not deliver whole."""
    results: list[CommandResult | None] = [None] * len(items)
    head, found, rest = stdout.text.partition(f"{FRAME} {marker} data\n")
    sections = _sections(head, marker)
    if "times" not in sections:
        return results
    fields = sections["times"][0]
    clock = _Clock(_uptime(fields[0]) if fields else None, sent)
    sizes = _sizes(sections.get("sizes", ([], []))[1])
    ran = _ran(fields[1:], len(items))
    totals = [(sizes.get(f"{r.index}.o", 0), sizes.get(f"{r.index}.e", 0)) for r in ran]
    kept = sum(min(total, KEEP_BYTES) for pair in totals for total in pair)
    # A cut (bounded capture) leaves no way to tell where each check's bytes are.
    data = _data(rest, marker, kept) if found and not stdout.truncated else None
    offset = 0
    for check, (out_total, err_total) in zip(ran, totals, strict=True):
        streams = []
        for total in (out_total, err_total):
            size = min(total, KEEP_BYTES)
            if data is not None:
                streams.append(_output(data[offset : offset + size], total))
            elif size == 0:
                streams.append(Output())  # nothing to read: the batch delivers it anyway
            offset += size
        if len(streams) < 2:
            continue  # its bytes did not arrive exactly: it runs on its own
        item = items[check.index]
        results[check.index] = CommandResult(
            command=str(item.command),
            rc=check.rc,
            stdout=streams[0],
            stderr=streams[1],
            started=clock.at(check.start),
            ended=clock.at(check.end),
            timed_out=_timed_out(item, check),
        )
    return results


def _output(raw: bytes, total: int) -> Output:
    return Output(raw.decode("utf-8", "backslashreplace"), total, total > len(raw))
