"""The script that runs many read-only checks of one host in one round trip, and its reading.

Each check costs the host what the same command costs in a plain script: it is started
directly (a check of plain words without ``sh -c``), in the background, with stdout and
stderr redirected to files of its own, and the script waits for it. Its exit status and
start and end times are kept in shell variables (times come from ``read`` on
``/proc/uptime``, a shell builtin). Time limits are enforced on the host by one watchdog per
batch, a subshell that ticks every ``TICK`` seconds: when the running check has used its
ticks it sends TERM to the check and its descendants, ``KILL_GRACE`` later KILL, and leaves a
mark so the check reads as timed out (124, or 137 when KILL was needed), as coreutils
``timeout`` reports it. A check is never stopped before its limit, and at most a tick late.

Only when every check has run does the script print, after a random marker:

    MARKER times UPTIME0 i:rc:start:end ...      the checks that ran (uptime in 1/100 s)
    MARKER sizes, then ``wc -c`` of every file   total bytes of each stream
    MARKER data, then every file (cut to         one base64 stream; the reader splits
                  KEEP_BYTES), in base64         it by the sizes it was told
    MARKER end

So a batch forks, besides the checks themselves, mkdir, wc, cat, base64 and rm, the
watchdog's sleeps (one per tick: none finish in a batch of quick checks), truncate only
when an output is over KEEP_BYTES, and pgrep only to stop a check that overran. A check's
output never reaches the channel, so it cannot forge a frame, and base64 keeps its bytes
exact. If the channel output was cut short, the checks whose bytes arrived whole are still
read; the others are left to run on their own.
"""

from __future__ import annotations

import base64
import math
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
_FUNCTIONS = frozenset({"c", "k", "u", "w"})


def _check(index: int, item: BatchItem) -> str:
    direct = direct_argv(item.command.text)
    if direct is not None and direct.split(" ", 1)[0] in _FUNCTIONS:
        direct = None
    run = direct if direct is not None else f"sh -c {shlex.quote(item.command.text)}"
    files = f'>"$d/{index}.o" 2>"$d/{index}.e" </dev/null'
    return f'[ -e "$stop" ] || {{ i={index}; c; {run} {files} & w $! {_ticks(item.timeout)}; }}'


# The watchdog reads the running check's "ticks pid index" from $d/w on every tick; a new
# line restarts its count. `k` signals a process's descendants (found with pgrep: an exec
# only when a check overran its limit), deepest first, then the process: once a parent is
# gone, its children are no longer found by their parent.
_WATCHDOG = (
    "k() { for x in $(pgrep -P $2); do k $1 $x; done; kill -$1 $2 2>/dev/null; }; "
    # A `sleep` without fractions (some busybox builds) ticks once a second, counting for 10.
    "p=@TICK@; q=1; sleep $p 2>/dev/null || { p=1; q=@PER@; }; "
    'o=; t=0; while sleep $p; do l=; read l <"$d/w" 2>/dev/null; '
    # The batch's shell gone (killed, or dead of a write to a closed channel): stop the
    # running check, remove the directory and end, rather than tick until `timeout` ends all.
    'kill -0 $$ 2>/dev/null || { [ -z "$l" ] || { set -- $l; k TERM $2; }; rm -rf "$d"; exit; }; '
    '[ "$l" = "$o" ] || { o=$l; t=0; }; [ -n "$l" ] || continue; t=$((t + q)); '
    "set -- $l; if [ $t -ge $(($1 + @GRACE@)) ]; then k KILL $2; "
    'elif [ ! -e "$d/k$3" ] && [ $t -ge $1 ]; then : >"$d/k$3"; k TERM $2; fi; done'
)
# Per check: `c` notes its start; `w PID TICKS` arms the watchdog, waits, disarms it, and
# notes the status, marked as a time-out when the watchdog stopped the check.
_HELPERS = (
    "u() { n=; read n _ 2>/dev/null </proc/uptime; n=${n%.*}${n#*.}; }; c() { u; s=$n; }; "
    'w() { echo "$2 $1 $i" >"$d/w"; wait $1 2>/dev/null; r=$?; : >"$d/w"; u; '
    'if [ -e "$d/k$i" ]; then [ $r = 137 ] || r=124; fi; '
    'T="$T $i:$r:$s:$n"; F="$F $d/$i.o $d/$i.e"; }'
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
    )
    setup = (
        f'd={shm}; mkdir -m 700 "$d" 2>/dev/null || {{ d={tmp}; mkdir -m 700 "$d" || exit 97; }}; '
        f'stop="$d/stop"; : >"$d/w"; '
        f"( {watchdog} ) </dev/null >/dev/null 2>&1 & W=$!; "
        "trap 'kill $W 2>/dev/null; rm -rf \"$d\"' EXIT; "
        f'{_HELPERS}; T=""; F=""; u; u0=$n'
    )
    report = (
        f"printf '%s times %s%s\\n' '{frame}' \"$u0\" \"$T\"; "
        f"if [ -n \"$F\" ]; then printf '%s sizes\\n' '{frame}'; wc -c $F >\"$d/s\"; b=; "
        f'while read z f; do echo "$z $f"; [ "$f" = total ] || [ $z -le {KEEP_BYTES} ] || b=1; '
        'done <"$d/s"; '
        f"[ -z \"$b\" ] || truncate -s '<{KEEP_BYTES}' $F; "
        f"printf '%s data\\n' '{frame}'; cat $F | base64; fi; "
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


def parse(
    items: Sequence[BatchItem], stdout: str, marker: str, sent: datetime
) -> list[CommandResult | None]:
    """One result per item (``sent``: when the batch left); None for an item the batch did
    not deliver whole."""
    results: list[CommandResult | None] = [None] * len(items)
    sections = _sections(stdout, marker)
    if "times" not in sections:
        return results
    fields = sections["times"][0]
    clock = _Clock(_uptime(fields[0]) if fields else None, sent)
    sizes = _sizes(sections.get("sizes", ([], []))[1])
    data = _data(sections.get("data", ([], []))[1])
    offset = 0
    for ran in _ran(fields[1:], len(items)):
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
