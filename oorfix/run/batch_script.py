"""The script that runs many read-only checks of one host in one round trip, and its reading.

Each check costs the host what the same command costs in a plain script: a check of plain
words is started directly, one with shell syntax (pipes, quotes, ``&&``) in a subshell of
the batch's shell (a fork, where ``sh -c`` would also exec a shell; the batch's names and
EXIT trap are set aside there, but ``$$``, ``$PPID`` and ``$!`` are the batch's shell's, as
in any subshell, and the shell's own error messages may read ``eval:``), in the background,
with stdout and stderr redirected to files of its own, and the script waits for it. A check
of only ``true``, ``false`` or ``echo`` and plain words runs in the batch's shell itself,
with no fork. Its exit status and
times are kept in shell variables (times come from ``read`` on ``/proc/uptime``, a shell
builtin; a check ends when the next one starts). Time limits are enforced on the host by one
watchdog per batch, a subshell that sleeps until the running check's deadline: then it sends
TERM to the check and its descendants, ``KILL_GRACE`` later KILL, and leaves a mark so the
check reads as timed out (124, or 137 when KILL was needed), as coreutils ``timeout`` reports
it. A check is never stopped before its limit. The watchdog also holds the batch to its whole
budget, so no ``timeout`` process wraps the batch (see ``Command.limits_itself``); should the
watchdog die, no further check starts.

The files are named by the batch's shell's PID and its marker, in a directory of the login
user's own on tmpfs that the first batch on a host makes (mode 700) and later batches reuse.
The main shell opens each check's two files itself: once the check is done, the offset of
its descriptor (``/proc/$$/fdinfo``) is the size of what the check wrote, with no exec. A
batch does not remove its files (an exec): it empties those that are not, and one batch in
``SWEEP_EVERY`` removes the files of the batches that are dead, with one ``rm``.

Only when every check has run does the script print, after a random marker:

    MARKER times UPTIME0 i:rc:start:end ...      the checks that ran (uptime in 1/100 s)
    MARKER offsets, then "BYTES i.o|i.e" lines   (over SHELL_BYTES only) where the check's
                                                 writes came to
    MARKER sizes, then "BYTES i.o|i.e" lines     total bytes of each stream
    MARKER data, then the files                  raw, one after the other
    (a newline) MARKER end [i.o:BYTES ...]

Up to ``SHELL_BYTES`` of output in all is printed with shell builtins (`x`), only the files
that are not empty, and the end line says how many bytes it printed of each: a stream is read
when that is its size (a NUL byte, which the shell drops, or bytes written after the check
ended, fail that), and the data is split by those counts. More output: ``wc -c`` tells the
sizes, one ``head -q -c`` prints every file's first KEEP_BYTES, and the reader splits them by
the sizes, reading a stream only where its size is its offset. A check that reopens its
stdout or stderr by name (``echo x >/dev/stderr``, ``tee /dev/stdout``) cuts the file and
writes it through a description of its own, and the file no longer holds what a pipe would
have carried: an offset of 0 tells, and the check runs on its own. What cannot be told:
a check that writes through both descriptions and ends with the file as long as its offset
(``echo a; echo b >/dev/stdout; echo c``), as with any capture in a file.

So a batch forks, besides the checks themselves, the watchdog's sleep (one, when
every check ends well within its limit), wc and head only for larger outputs, mkdir only where
the directory is not there yet, rm once in SWEEP_EVERY batches, and pgrep only to stop a check
that overran. A check's output never reaches the channel before every size is printed, the
data is read by length, and the counts come after it on the last line, so it cannot forge a
frame. The reader gets the channel as text decoded with ``backslashreplace`` and recovers the
exact bytes (see ``_exact``); what cannot be told exactly is not read: the checks that printed
nothing are still read from the batch, and the others run on their own (as do those of a batch
whose output was cut short).
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
from oorfix.transport.shell import (
    TIMEOUT_KILLED_STATUS,
    TIMEOUT_STATUS,
    direct_argv,
    plain_words,
)

KILL_GRACE = 2.0
# How late past its limit a check may be stopped (the watchdog's own latency), per check.
SLACK = 0.2
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


# Where a batch keeps its files, each named by its marker: on tmpfs (creating twenty small
# files there costs about half what it does on a disk), in a directory of the login user's
# own that the first batch makes with mode 700 and later ones reuse (making it costs an
# exec). Should that name be taken by someone else (or the user's name be unusual), the
# batch makes a directory of its own with mode 700, on tmpfs, else in /tmp.
SHARED_PARENT = "/dev/shm"  # noqa: S108
OWN_PARENTS = ("/dev/shm", "/tmp")  # noqa: S108
# Total bytes of output the script prints with shell builtins (reading a file costs about a
# system call a byte); more, and one `head` prints them all.
SHELL_BYTES = 1024
# A batch leaves its files in the user's directory, emptied (removing them costs an exec).
# One batch in SWEEP_EVERY (the controller draws which) removes those of every dead batch
# there, with one `rm`: about that many batches' files are left on a host.
SWEEP_EVERY = 16


def new_marker() -> str:
    """A marker no earlier batch used."""
    return secrets.token_hex(8)


def batch_globs(marker: str) -> tuple[str, ...]:
    """Shell patterns that match the files of the batch ``marker``, wherever they are."""
    # Named "PID-MARKER.…", PID the batch's shell's.
    own = (f"{parent}/oorfix-batch-{marker}/*-{marker}.*" for parent in OWN_PARENTS)
    return (f"{SHARED_PARENT}/oorfix-*/*-{marker}.*", *own)


def stop_command(marker: str) -> Command:
    """The command that stops the batch ``marker`` before its next check."""
    # Only in a directory of the login user's own: another user's could hold a planted link.
    patterns = batch_globs(marker)
    found = " ".join(pattern.replace(f"{marker}.*", f"{marker}.w") for pattern in patterns)
    return Command(
        f'for f in {found}; do [ -e "$f" ] && [ -O "${{f%/*}}" ] && true >"${{f%.w}}.stop"; '
        "done; true"
    )


def budget(items: Sequence[BatchItem]) -> float:
    """Seconds the whole batch may take: every check's budget and grace, back to back."""
    return sum(item.timeout + KILL_GRACE + SLACK for item in items) + 5.0


def _hundredths(seconds: float) -> int:
    """``seconds`` in the host's uptime steps, rounded up: a limit is never cut short."""
    return max(1, math.ceil(seconds / UPTIME_RESOLUTION - 1e-9))


def _limit(item: BatchItem) -> int:
    # One step more: the start is read after the check was started, and uptime is floored.
    return _hundredths(item.timeout) + 1


# The main shell's own functions (see _HELPERS, `o` and `z`), and its variables: a check that
# is not run directly runs in a subshell of the main shell, which sets them aside first (and
# its EXIT trap), so that the check finds what `sh -c` would give it.
_FUNCTIONS = frozenset({"o", "u", "v", "w", "x", "z"})
_VARIABLES = "B E F N Q T W b c f i j l m n p q r s stop t u0 y"
# Builtins that cannot wait on anything and print only their words: such a check runs in the
# main shell itself, with no fork, as `sh -c` would run it. Not `test` or `[`: a file's
# status on a mount that does not answer would hold the whole batch past every limit.
_BUILTINS = frozenset({"echo", "false", "true"})
# As `sh -c` would run a check, without the exec of a shell (a syntax error ends the subshell).
_SET_ASIDE = f"trap - EXIT; unset -f {' '.join(sorted(_FUNCTIONS))}; unset {_VARIABLES}"


def _builtin(text: str) -> str | None:
    """``text`` as plain words the main shell may run as a builtin, or None."""
    words = plain_words(text)
    if words is None or words.split(" ", 1)[0] not in _BUILTINS:
        return None
    return words


def _check(index: int, item: BatchItem) -> str:
    text = item.command.text
    # The main shell opens the check's files: their offsets then tell what the check wrote.
    # Should it fail to, the check does not run (`command`: the failure does not end the
    # shell), and it runs on its own.
    files = f'command exec 5>"$p.{index}.o" 6>"$p.{index}.e"'
    builtin = _builtin(text)
    if builtin is not None:
        started = f'u; [ -z "$T" ] || T="$T:$n"; command {builtin} >&5 2>&6 </dev/null; r=$?; o'
    else:
        direct = direct_argv(text)
        if direct is None or direct.split(" ", 1)[0] in _FUNCTIONS:
            direct = f"( {_SET_ASIDE}; eval {shlex.quote(text)} )"
        started = f"{direct} >&5 2>&6 5>&- 6>&- </dev/null & w $! {_limit(item)}"
    return f'[ -e "$stop" ] || {{ i={index}; {files} && {{ {started}; }}; }}'


# The watchdog sleeps until the running check's deadline, "DEADLINE pid index" in $p.w
# (in uptime hundredths), and no longer than the shortest limit of any check (one started
# meanwhile may have that limit), nor past the batch's deadline $B. A quick batch thus costs
# it one `sleep`. At the deadline it sends TERM, and leaves the mark `k` reads as a time-out;
# KILL_GRACE later KILL. `k` signals a process's descendants (found with pgrep: an exec only
# when a check overran its limit), deepest first, then the process: once a parent is gone,
# its children are no longer found by their parent. The sleep runs in the background, so
# the TERM that ends the watchdog ends it too.
_WATCHDOG = (
    # `S T` sleeps T hundredths, in the background so that a TERM ends the wait at once. A
    # `sleep` without fractions (some busybox builds) fails at once: then whole seconds.
    'S() { if [ -z "$f" ]; then LC_ALL=C sleep $(($1 / 100)).$(($1 / 10 % 10))$(($1 % 10)) & '
    "s=$!; wait $s; [ $? -ne 1 ] || f=1; else LC_ALL=C sleep $((($1 + 99) / 100)) & s=$!; "
    "wait $s; fi; }; s=; f=; "
    # Ended with the batch: what TERM reached and ignored still gets KILL at the grace's end.
    'trap \'kill $s 2>/dev/null; [ -z "$g" ] || { u; [ $n -ge $h ] || S $((h - n)); '
    "kill -KILL $g 2>/dev/null; }; exit' TERM; "
    "k() { for x in $(pgrep -P $2); do k $1 $x; done; kill -$1 $2 2>/dev/null; "
    '[ $1 != TERM ] || g="$g $2"; }; g=; h=; '
    # Its copy of the list of files is the one at its start: every file of the batch, then.
    'Z() { LC_ALL=C rm -rf -- "$p".* $y; }; '
    'while :; do l=; read l <"$p.w" 2>/dev/null; u; '
    # The batch's shell gone (killed, or dead of a write to a closed channel): stop the
    # running check, remove the files and end.
    'kill -0 $$ 2>/dev/null || { [ -z "$l" ] || { set -- $l; k TERM $2; }; Z; exit; }; '
    # The whole batch over its budget (which no check within its own limit reaches).
    '[ $n -lt $B ] || { [ -z "$l" ] || { set -- $l; k KILL $2; }; kill -KILL $$; Z; exit; }; '
    # What TERM reached and ignored (the check's parent may be gone with it) gets KILL.
    '[ -z "$g" ] || [ $n -lt $h ] || { kill -KILL $g 2>/dev/null; g=; }; '
    'd=$((n + @SHORTEST@)); [ -z "$g" ] || [ $d -le $h ] || d=$h; '
    'if [ -n "$l" ]; then set -- $l; e=$(($1 + @GRACE@)); '
    "if [ $n -ge $e ]; then k KILL $2; "
    'elif [ $n -ge $1 ]; then [ -e "$p.k$3" ] || { true >"$p.k$3"; k TERM $2; h=$e; }; '
    "[ $d -le $e ] || d=$e; else [ $d -le $1 ] || d=$1; fi; fi; "
    "[ $d -le $B ] || d=$B; S $((d - n)); done"
)
# `w PID LIMIT` notes the check's start, arms the watchdog, waits for the check, disarms the
# watchdog, and notes the status (marked as a time-out when the watchdog stopped the check);
# a check's end is noted when the next one starts, the last one's after it. A watchdog found
# dead starts no further check. `v NAME FD` notes a stream: when its file is empty, among
# those to look at again before the report (`E`); else its size, the offset of the main
# shell's descriptor, which the check's writes moved, and its name among those to print
# (`N`, with the size). An offset of 0 (the check wrote to the file through a description of
# its own, as `echo x >/dev/stderr` does: reopened by name, the file is cut to nothing first)
# or one that cannot be read leaves the size unknown: that check runs on its own. `x FILE
# SIZE` prints a file with builtins only, no further than past SIZE, and counts the bytes it
# printed in `m`.
_HELPERS = (
    "u() { n=; read n j </proc/uptime; n=${n%.*}${n#*.}; }; "
    'v() { if [ -s "$p.$1" ]; then q=; read j q j </proc/$$/fdinfo/$2; '
    "case $q in ''|0|*[!0-9]*) q=-1;; *) t=$((t + q)); N=\"$N $1:$q\";; esac; "
    'Q="$Q $q $1"; else E="$E $1"; fi; }; '
    'w() { u; [ -z "$T" ] || T="$T:$n"; echo "$((n + $2)) $1 $i" >"$p.w"; '
    'wait $1; r=$?; true >"$p.w"; '
    'if [ -e "$p.k$i" ]; then [ $r = 137 ] || r=124; fi; '
    'o; kill -0 $W || true >"$stop"; }; '
    # `o` notes a check's status `r`, its start and its streams (the main shell's own too).
    'o() { T="$T $i:$r:$n"; F="$F $p.$i.o $p.$i.e"; v $i.o 5; v $i.e 6; }; '
    "x() { l=; m=0; while [ $m -le $2 ] && IFS= read -r l; do printf '%s\\n' \"$l\"; "
    "m=$((m + ${#l} + 1)); l=; "
    'done <"$1"; printf %s "$l"; m=$((m + ${#l})); }'
)


# `z` ends a batch. In a directory of the batch's own, it removes it. In the user's, it
# empties the batch's files that are not (a writer a check left may have filled one since);
# a sweeping batch then removes the files of dead batches, found by the PID and marker
# their names are made of (nothing else: the list is expanded unquoted). A dead batch whose
# deadline file is not empty died within a check: its watchdog, which reads that file, stops
# the check and removes them, well before the deadline's grace and LATE are over; after,
# the batch's own watchdog died too.
_END = (
    'z() { if [ -n "$y" ]; then LC_ALL=C rm -rf -- "$y"; return; fi; '
    'for f in $F; do [ ! -s "$f" ] || true >"$f"; done; @SWEEP@ }'
)
_SWEEP = (
    'D=; for f in "$b"/*-*.w; do q=${f##*/}; r=${q#*-}; r=${r%.w}; q=${q%%-*}; '
    "case $q in ''|*[!0-9]*) continue;; esac; case $r in ''|*[!0-9a-f]*) continue;; esac; "
    '[ "$q" != $$ ] || continue; ! kill -0 "$q" 2>/dev/null || continue; '
    'if [ -s "$f" ]; then d=; read d j <"$f"; case $d in \'\'|*[!0-9]*) continue;; esac; '
    "u; [ $n -gt $((d + @LATE@)) ] || continue; fi; "
    'D="$D $b/$q-$r.*"; done; [ -z "$D" ] || LC_ALL=C rm -f -- $D;'
)
# Hundredths of a second after a check's deadline by which its watchdog has stopped it.
LATE = 1000

_ENDS = _END.replace("@SWEEP@", "")
_ENDS_SWEEPING = _END.replace(
    "@SWEEP@", _SWEEP.replace("@LATE@", str(_hundredths(KILL_GRACE) + LATE))
)


def sweeps(marker: str) -> bool:
    """Whether the batch ``marker`` removes the files dead batches left: one in SWEEP_EVERY."""
    return int(marker, 16) % SWEEP_EVERY == 0


def script(items: Sequence[BatchItem], marker: str, *, sweep: bool | None = None) -> str:
    """The shell script that runs every item in order, then reports them all (``sweep``:
    whether it removes what dead batches left, by default as ``sweeps`` draws it)."""
    frame = f"{FRAME} {marker}"
    swept = sweeps(marker) if sweep is None else sweep
    shm, tmp = (shlex.quote(f"{parent}/oorfix-batch-{marker}") for parent in OWN_PARENTS)
    watchdog = _WATCHDOG.replace("@SHORTEST@", str(min(map(_limit, items), default=1))).replace(
        "@GRACE@", str(_hundredths(KILL_GRACE))
    )
    # The login user's directory, when it is a directory of theirs and no link; else one of
    # the batch's own (mkdir refuses a name that exists, a link included), removed at the end.
    # The script's own programs run in the C locale: loading another costs each an exec's
    # worth of system calls, and their output is read by a program.
    place = (
        f"b={SHARED_PARENT}/oorfix-$LOGNAME; y=; case $LOGNAME in ''|*[!A-Za-z0-9._-]*) b=;; esac; "
        '[ -n "$b" ] && { [ -d "$b" ] && [ -O "$b" ] && [ ! -h "$b" ] || '
        'LC_ALL=C mkdir -m 700 "$b" 2>/dev/null; } || '
        f'{{ y={shm}; mkdir -m 700 "$y" 2>/dev/null || '
        f'{{ y={tmp}; mkdir -m 700 "$y" || exit 97; }}; b=$y; }}'
    )
    # Without /proc/uptime (not Linux) there is no clock for the limits: the checks then
    # run on their own, each under `timeout`.
    setup = (
        f'{_HELPERS}; u 2>/dev/null; [ -n "$n" ] || exit 97; u0=$n; '
        f"B=$((n + {_hundredths(budget(items))})); "
        f'{place}; p="$b/$$-{marker}"; stop="$p.stop"; true >"$p.w"; '
        f"{_ENDS_SWEEPING if swept else _ENDS}; "
        f"( {watchdog} ) </dev/null >/dev/null 2>&1 & W=$!; "
        "trap 'kill $W 2>/dev/null; z' EXIT; "
        "T=; F=; N=; Q=; E=; t=0; c="
    )
    # The sizes, then the data. Up to SHELL_BYTES in all: the sizes the checks' writes came
    # to, the files that are not empty printed by `x`, and what `x` printed of each on the
    # end line (`LC_ALL=C`: a shell that counts characters counts bytes then). More: the
    # sizes `wc` tells, and every file printed by `head`.
    report = (
        '[ -z "$T" ] || { u; T="$T:$n"; }; LC_ALL=C; '
        f"printf '%s times %s%s\\n' '{frame}' \"$u0\" \"$T\"; "
        f'if [ -z "$F" ]; then :; elif [ $t -le {SHELL_BYTES} ]; then '
        # A file empty when its check ended may not be now (a writer the check left, or the
        # file gone): then its size cannot be told.
        'for f in $E; do if [ -s "$p.$f" ] || [ ! -e "$p.$f" ]; then Q="$Q -1 $f"; '
        'else Q="$Q 0 $f"; fi; done; '
        f"printf '%s sizes\\n' '{frame}'; printf '%s %s\\n' $Q; printf '%s data\\n' '{frame}'; "
        'for f in $N; do x "$p.${f%:*}" ${f#*:}; c="$c ${f%:*}:$m"; done; '
        # `wc`'s sizes must be the offsets (and 0 where the file was empty at its check's end).
        f'else s=$(LC_ALL=C wc -c $F); for f in $E; do Q="$Q 0 $f"; done; '
        f"printf '%s offsets\\n' '{frame}'; printf '%s %s\\n' $Q; "
        f"printf '%s sizes\\n%s\\n%s data\\n' '{frame}' \"$s\" "
        f"'{frame}'; LC_ALL=C head -q -c {KEEP_BYTES} $F; fi; "
        f"printf '\\n%s end%s\\n' '{frame}' \"$c\""
    )
    return "; ".join([setup, *(_check(i, item) for i, item in enumerate(items)), report])


@dataclass(frozen=True)
class _Ran:
    """What the times line says of one check."""

    index: int
    rc: int
    start: float  # seconds of host uptime
    end: float


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


def _ran(entries: Sequence[str], count: int) -> list[_Ran]:
    ran = []
    for entry in entries:
        parts = entry.split(":")
        if len(parts) == 4 and all(part.isdigit() for part in parts) and int(parts[0]) < count:
            index, rc, start, end = map(int, parts)
            ran.append(_Ran(index, rc, start * UPTIME_RESOLUTION, end * UPTIME_RESOLUTION))
    return ran


_STREAM = re.compile(r"\d+\.[oe]")


def _sizes(lines: Sequence[str]) -> dict[str, int]:
    """Lines of "BYTES FILE" (the script's own, or ``wc -c``'s) as stream (``3.o``) -> bytes;
    a size the script could not tell, and the ``total`` line, are left out."""
    sizes = {}
    for line in lines:
        count, _, path = line.strip().partition(" ")
        name = ".".join(path.rsplit("/", 1)[-1].rsplit(".", 2)[-2:])
        if count.isdigit() and _STREAM.fullmatch(name):
            sizes[name] = int(count)
    return sizes


# How ``backslashreplace`` shows a byte that is not UTF-8: only bytes from 0x80 are escaped.
_ESCAPE = re.compile(rb"\\x([89a-f][0-9a-f])")


def _exact(text: str, size: int) -> bytes | None:
    """The ``size`` bytes the host sent, from their ``backslashreplace`` decoding; None when
    that is not what arrived, or the bytes cannot be told for sure."""
    data = text.encode()
    # Each escaped byte reads as four: the excess must be three for every escape-like
    # sequence, each of them then an escape. No other count is trusted: a check may print the
    # text "\xff", and the shell drops NUL bytes, which could make up for escapes.
    escapes = len(_ESCAPE.findall(data))
    if len(data) - size != 3 * escapes:
        return None
    return _ESCAPE.sub(lambda m: bytes((int(m[1], 16),)), data) if escapes else data


@dataclass(frozen=True)
class _Clock:
    """Host uptime to wall-clock time, anchored at the batch's start (when it was sent: the
    script starts a round trip's half later, which costs a fork of ``date`` to learn)."""

    uptime0: float
    epoch0: datetime

    def at(self, uptime: float) -> datetime:
        return self.epoch0 + timedelta(seconds=uptime - self.uptime0)


def _timed_out(item: BatchItem, ran: _Ran) -> bool:
    if ran.rc not in (TIMEOUT_STATUS, TIMEOUT_KILLED_STATUS):
        return False
    return ran.end - ran.start >= item.timeout - UPTIME_RESOLUTION


@dataclass(frozen=True)
class _Data:
    """What follows the data frame: the data, and what the end line says the shell printed
    of each stream, in order (none when ``head`` printed it all)."""

    text: str
    printed: list[tuple[str, int]]


def _data(rest: str, marker: str) -> _Data | None:
    """The data and the end line, from what follows the data frame; None unless it all came."""
    text, _, last = rest.removesuffix("\n").rpartition("\n")
    fields = last.split(" ")
    if not rest.endswith("\n") or fields[:3] != [FRAME, marker, "end"]:
        return None
    printed = [field.partition(":") for field in fields[3:]]
    if not all(_STREAM.fullmatch(name) and count.isdigit() for name, _, count in printed):
        return None
    return _Data(text, [(name, int(count)) for name, _, count in printed])


def _streams(ran: Sequence[_Ran]) -> list[str]:
    return [f"{check.index}.{stream}" for check in ran for stream in ("o", "e")]


def _printed(data: _Data, sizes: dict[str, int]) -> dict[str, Output]:
    """The streams the shell printed, each exactly as it came to its size, and the empty ones."""
    printed = {name for name, _ in data.printed}
    found = {name: Output() for name, size in sizes.items() if size == 0 and name not in printed}
    raw = _exact(data.text, sum(count for _, count in data.printed))
    if raw is None:
        return found  # which bytes are whose cannot be told: only the empty ones are sure
    offset = 0
    for name, count in data.printed:
        # `x` printed less than the check wrote (a NUL dropped), or more (written since).
        if sizes.get(name) == count:
            found[name] = _output(raw[offset : offset + count], count)
        offset += count
    return found


def _headed(
    data: _Data, sizes: dict[str, int], offsets: dict[str, int], streams: Sequence[str]
) -> dict[str, Output]:
    """The streams ``head`` printed: the first KEEP_BYTES of each, one after the other; a
    stream whose size is not the offset its check's writes came to is not told."""
    if not all(name in sizes for name in streams):
        return {}
    kept = [min(sizes[name], KEEP_BYTES) for name in streams]
    raw = _exact(data.text, sum(kept))
    if raw is None:
        return {}  # the data is not what `wc` counted: it changed meanwhile
    found, offset = {}, 0
    for name, size in zip(streams, kept, strict=True):
        if offsets.get(name) == sizes[name]:
            found[name] = _output(raw[offset : offset + size], sizes[name])
        offset += size
    return found


def parse(
    items: Sequence[BatchItem], stdout: Output, marker: str, sent: datetime
) -> list[CommandResult | None]:
    """One result per item (``sent``: when the batch left); None for an item the batch did
    not deliver whole."""
    results: list[CommandResult | None] = [None] * len(items)
    head, found, rest = stdout.text.partition(f"{FRAME} {marker} data\n")
    sections = _sections(head, marker)
    fields = sections.get("times", ([], []))[0]
    if not fields or not fields[0].isdigit():
        return results
    clock = _Clock(int(fields[0]) * UPTIME_RESOLUTION, sent)
    sizes = _sizes(sections.get("sizes", ([], []))[1])
    ran = _ran(fields[1:], len(items))
    # A cut (bounded capture) leaves no way to tell where each check's bytes are.
    data = _data(rest, marker) if found and not stdout.truncated else None
    # Printed by `head`, the sizes are `wc`'s, and good only where they are the offsets.
    offsets = _sizes(sections["offsets"][1]) if "offsets" in sections else None
    if data is None:
        outputs = {
            name: Output()
            for name, size in sizes.items()
            if size == 0 and (offsets is None or offsets.get(name) == 0)
        }
    elif offsets is None:
        outputs = _printed(data, sizes)
    else:
        outputs = _headed(data, sizes, offsets, _streams(ran))
    for check in ran:
        out, err = (outputs.get(f"{check.index}.{stream}") for stream in ("o", "e"))
        if out is None or err is None:
            continue  # its bytes did not arrive exactly: it runs on its own
        item = items[check.index]
        results[check.index] = CommandResult(
            command=str(item.command),
            rc=check.rc,
            stdout=out,
            stderr=err,
            started=clock.at(check.start),
            ended=clock.at(check.end),
            timed_out=_timed_out(item, check),
        )
    return results


def _output(raw: bytes, total: int) -> Output:
    return Output(raw.decode("utf-8", "backslashreplace"), total, total > len(raw))
