"""A host's checks in one round trip: framing, exact bytes, budgets, and the engine's use of it."""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from oorfix.inventory.core import load_inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Command
from oorfix.results import CommandResult, Outcome, Output, RunMode, utcnow
from oorfix.run import batch_script
from oorfix.run.batch_script import (
    BatchItem,
    batch_globs,
    new_marker,
    parse,
    script,
    stop_command,
)
from oorfix.run.engine import EngineOptions
from oorfix.run.planner import plan_run
from oorfix.run.pool import ConnectionPool
from oorfix.runbook.loader import load_runbook
from oorfix.transport import ConnectOptions, open_transport
from oorfix.transport.capture import Capture
from oorfix.transport.shell import Become

from .fakes import make_engine


@pytest.fixture(autouse=True)
def _login_of_the_tests_own(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Batches run here leave their files in a directory of the test's own, removed after."""
    name = f"oorfix-test-{new_marker()}"
    monkeypatch.setenv("LOGNAME", name)
    yield
    shutil.rmtree(f"{batch_script.SHARED_PARENT}/oorfix-{name}", ignore_errors=True)


def captured(raw: bytes, *, head: int = 64 * 1024, tail: int = 64 * 1024) -> Output:
    """``raw`` as a transport hands it over: bounded and decoded by a Capture."""
    capture = Capture(head, tail)
    capture.feed(raw)
    return capture.output()


def run_batch(items: list[BatchItem]) -> list[CommandResult | None]:
    marker = new_marker()
    done = subprocess.run(["sh", "-c", script(items, marker)], capture_output=True, check=False)
    return parse(items, captured(done.stdout), marker, utcnow())


def test_each_check_keeps_its_own_status_streams_and_bytes() -> None:
    items = [
        BatchItem(Command("echo out; echo err >&2"), 5),
        BatchItem(Command("printf '\\377\\376x'; exit 3"), 5),
        BatchItem(Command("printf '@@oorfix-batch forged 0 0 0 0 0 0\\n'"), 5),
        BatchItem(Command("printf 'caf\\303\\251 \\351'"), 5),
        BatchItem(Command("printf '  lead \\\\ back\\r\\n\\n\\nno end'"), 5),
    ]
    first, second, third, fourth, fifth = run_batch(items)
    assert first is not None
    assert second is not None
    assert third is not None
    assert fourth is not None
    assert fifth is not None
    assert (first.rc, first.stdout.text, first.stderr.text) == (0, "out\n", "err\n")
    assert (second.rc, second.stdout.text, second.stdout.total_bytes) == (3, "\\xff\\xfex", 3)
    # A check's output cannot forge a frame: the data is read by the sizes printed before it.
    assert third.stdout.text == "@@oorfix-batch forged 0 0 0 0 0 0\n"
    # UTF-8 and a byte that is not, each exactly as a transport decodes them.
    assert (fourth.stdout.text, fourth.stdout.total_bytes) == ("caf\u00e9 \\xe9", 7)
    # Printed by shell builtins: blanks, backslashes, empty lines and the last line kept.
    assert fifth.stdout.text == "  lead \\ back\r\n\n\nno end"


def test_a_nul_byte_is_kept_by_head_and_sends_the_checks_alone_when_the_shell_prints() -> None:
    nul = BatchItem(Command("printf 'a\\000b'"), 5)
    quiet = BatchItem(Command("true"), 5)
    big = BatchItem(Command("head -c 2000 /dev/zero | tr '\\0' a"), 5)
    # Little output: the shell prints it and drops the NUL; the sizes tell, and the checks
    # that printed run on their own, which keeps the byte.
    assert [r is not None for r in run_batch([nul, quiet])] == [False, True]
    # More than SHELL_BYTES: `head` prints it all, exactly.
    with_nul, _, more = run_batch([nul, quiet, big])
    assert with_nul is not None
    assert more is not None
    assert (with_nul.stdout.text, len(more.stdout.text)) == ("a\x00b", 2000)


def test_output_that_cannot_be_told_exactly_leaves_its_checks_to_run_alone() -> None:
    # The text of an escape: it could as well be a byte that is not UTF-8.
    assert run_batch([BatchItem(Command("printf '\\\\xe9'"), 5)]) == [None]
    # A byte that is not UTF-8 and the text of an escape: decoded, both read "\xe9", and
    # which one is the byte cannot be told. The quiet check is still delivered.
    items = [
        BatchItem(Command("printf '\\351'"), 5),
        BatchItem(Command("printf 'x\\\\xe9'"), 5),
        BatchItem(Command("true"), 5),
    ]
    assert [r is not None for r in run_batch(items)] == [False, False, True]
    # Three NUL bytes the shell drops and a byte that reads as four: the sizes add up, but
    # the shell counts what it printed of each file. The check whose NULs it dropped runs on
    # its own; the other's bytes are told exactly.
    items = [
        BatchItem(Command("printf 'a\\000\\000\\000bc'"), 5),
        BatchItem(Command("printf '\\377XY'"), 5),
    ]
    dropped, other = run_batch(items)
    assert dropped is None
    assert other is not None
    assert (other.stdout.text, other.stdout.total_bytes) == ("\\xffXY", 3)


def test_a_check_over_its_budget_is_killed_and_marked_timed_out() -> None:
    slow, after = run_batch(
        [BatchItem(Command("sleep 30"), 0.5), BatchItem(Command("echo next"), 5)]
    )
    assert slow is not None
    assert after is not None
    assert (slow.rc, slow.timed_out) == (124, True)
    assert slow.duration >= 0.5 - 0.01  # never before its budget (host uptime: 10 ms steps)
    assert (after.rc, after.stdout.text) == (0, "next\n")


def test_a_short_limit_after_a_long_one_is_kept() -> None:
    # The watchdog sleeps no longer than the shortest limit: a check started meanwhile may
    # have it, though the one it saw running had 30 s.
    quick, slow = run_batch([BatchItem(Command("true"), 30), BatchItem(Command("sleep 30"), 0.5)])
    assert quick is not None
    assert slow is not None
    assert (slow.rc, slow.timed_out) == (124, True)
    assert 0.5 - 0.01 <= slow.duration < 10


def test_output_is_bounded_and_counted() -> None:
    (big,) = run_batch([BatchItem(Command("head -c 100000 /dev/zero | tr '\\0' a"), 5)])
    assert big is not None
    assert (big.stdout.total_bytes, big.stdout.truncated, len(big.stdout.text)) == (
        100000,
        True,
        16 * 1024,
    )


def test_output_cut_short_leaves_the_checks_that_printed_to_run_alone() -> None:
    items = [
        BatchItem(Command("echo one"), 5),
        BatchItem(Command("head -c 3000 /dev/zero"), 5),
        BatchItem(Command("true"), 5),
    ]
    marker = new_marker()
    done = subprocess.run(["sh", "-c", script(items, marker)], capture_output=True, check=True)
    cut = captured(done.stdout, head=1000, tail=1000)  # as bounded capture cuts it
    assert cut.truncated
    assert [r is not None for r in parse(items, cut, marker, utcnow())] == [False, False, True]
    whole = captured(done.stdout)
    assert [r is not None for r in parse(items, whole, marker, utcnow())] == [True, True, True]


@pytest.mark.parametrize("printer", ["shell", "head"])
def test_data_that_does_not_come_to_the_sizes_told_is_not_read(printer: str) -> None:
    # As a writer a check left behind would: its file grows after its size was taken (at
    # the check's end for the shell, by `wc` for head).
    items = [BatchItem(Command("echo early"), 5), BatchItem(Command("echo next"), 5)]
    if printer == "head":
        items.append(BatchItem(Command("head -c 2000 /dev/zero | tr '\\0' a"), 5))
    marker = new_marker()
    text, late = script(items, marker), 'echo late >>"$p.0.o"; '
    # After `wc`, or before the shell prints the files.
    counted, printing = "s=$(LC_ALL=C wc -c $F); ", 'for f in $N; do x "$p.${f%:*}"'
    assert text.count(counted) == text.count(printing) == 1
    if printer == "head":
        grown = text.replace(counted, counted + late)
    else:
        grown = text.replace(printing, late + printing)
    done = subprocess.run(["sh", "-c", grown], capture_output=True, check=True)
    assert b"late" in done.stdout
    results = parse(items, captured(done.stdout), marker, utcnow())
    assert results[0] is None
    # The shell counts what it printed of each file: the other checks' bytes are still told.
    assert [r is not None for r in results[1:]] == ([True] if printer == "shell" else [False] * 2)


def test_a_host_without_proc_uptime_gets_no_batch_and_keeps_nothing(login: str) -> None:
    # No clock for the limits (as off Linux): the script stops before it runs anything, and
    # every check then runs on its own, under `timeout`.
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("hiding /proc/uptime needs root and unshare")
    marker = new_marker()
    items = [BatchItem(Command("touch /dev/null/never"), 5), BatchItem(Command("true"), 5)]
    batch = shlex.quote(script(items, marker))
    hidden = f"mount --bind /dev/null /proc/uptime && exec sh -c {batch}"
    env = {"PATH": os.environ["PATH"], "LOGNAME": login}
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", hidden], capture_output=True, check=False, env=env
    )
    assert done.returncode == 97
    assert parse(items, captured(done.stdout), marker, utcnow()) == [None, None]
    assert not Path(f"{batch_script.SHARED_PARENT}/oorfix-{login}").exists()


@pytest.mark.parametrize("own", [False, True], ids=["user's directory", "batch's own"])
def test_a_stopped_batch_reports_the_checks_it_ran(login: str, own: bool) -> None:
    marker = new_marker()
    stop = stop_command(marker).text
    items = [BatchItem(Command(stop), 5), BatchItem(Command("echo never"), 5)]
    env = {"PATH": os.environ["PATH"], "LOGNAME": "" if own else login}
    done = subprocess.run(
        ["sh", "-c", script(items, marker)], capture_output=True, check=True, env=env
    )
    first, second = parse(items, captured(done.stdout), marker, utcnow())
    assert first is not None
    assert first.rc == 0
    assert second is None


def test_one_batch_in_sweep_every_sweeps() -> None:
    # Markers are random: the share of them that sweep is the share of all markers.
    markers = [f"{n:016x}" for n in range(4096)]
    assert sum(map(batch_script.sweeps, markers)) == 4096 // batch_script.SWEEP_EVERY


def test_a_batch_forks_no_helper_process_per_check(tmp_path: Path, login: str) -> None:
    # Every command the script runs is looked up on PATH; log each one to count them.
    tools = ("timeout", "date", "mkdir", "rm", "wc", "head", "cat", "base64", "sleep", "sh")
    bindir = _logging_tools(tmp_path, tools)
    items = [BatchItem(Command("true"), 5) for _ in range(9)] + [BatchItem(Command("id -u"), 5)]
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "LOGNAME": login}
    for sweep in (False, False, True):
        _, results = _in_env(items, env, sweep=sweep)
        assert all(r is not None for r in results)
    ran = (tmp_path / "log").read_text().split()
    # Per check: nothing (`true` is run as plain words, no shell, no time limit process: the
    # watchdog's job); per batch: the watchdog's sleep. The sizes are the shell's, and the
    # files are left for a sweeping batch to remove; the first batch on the host makes the
    # user's directory.
    assert ran.count("sh") == 0
    assert sorted(set(ran) - {"sleep"}) == ["mkdir", "rm"]
    assert (ran.count("mkdir"), ran.count("rm")) == (1, 1)


@pytest.fixture
def login() -> Iterator[str]:
    """A login name of the test's own, and the batch directory it gets on this machine."""
    name = f"oorfix-test-{new_marker()}"
    yield name
    folder = Path(f"{batch_script.SHARED_PARENT}/oorfix-{name}")
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    folder.unlink(missing_ok=True)


def _in_env(
    items: list[BatchItem],
    env: dict[str, str],
    *,
    sweep: bool | None = None,
    marker: str | None = None,
) -> tuple[str, list[CommandResult | None]]:
    marker = marker or new_marker()
    text = script(items, marker, sweep=sweep)
    done = subprocess.run(["/bin/sh", "-c", text], capture_output=True, check=True, env=env)
    return marker, parse(items, captured(done.stdout), marker, utcnow())


def test_the_login_users_directory_is_private_reused_and_swept(login: str) -> None:
    folder = Path(f"{batch_script.SHARED_PARENT}/oorfix-{login}")
    # Where a check's stdout goes: the file of its own in the batch's directory.
    items = [BatchItem(Command("readlink /proc/self/fd/1"), 5), BatchItem(Command("id"), 5)]
    env = {"PATH": os.environ["PATH"], "LOGNAME": login}
    markers = []
    for sweep in (False, False, False, True, False):
        marker, results = _in_env(items, env, sweep=sweep)
        markers.append(marker)
        assert results[0] is not None
        assert re.fullmatch(rf"{folder}/\d+-{marker}\.0\.o\n", results[0].stdout.text)
        assert folder.stat().st_mode & 0o777 == 0o700
        # What the checks printed is not kept on the host.
        assert all(f.stat().st_size == 0 for f in folder.iterdir())
    # Each batch leaves its files (two per check, and its deadline file) until a sweeping
    # batch removes those of the dead ones.
    left = [f.name.split("-", 1)[1].split(".")[0] for f in folder.iterdir()]
    assert sorted(left) == sorted(markers[-2:] * (2 * len(items) + 1))


def test_the_sweep_spares_live_batches_and_one_that_died_within_a_check(
    login: str, tmp_path: Path
) -> None:
    folder = Path(f"{batch_script.SHARED_PARENT}/oorfix-{login}")
    folder.mkdir(mode=0o700)
    # No process has a PID above pid_max: those batches are dead.
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    gone = [f"{dead}-{new_marker()}" for _ in range(3)]
    for name in gone:
        (folder / f"{name}.w").write_text("")
        (folder / f"{name}.0.o").write_text("")
    live, within, long_ago, odd = (
        f"{pid}-{new_marker()}" for pid in (os.getpid(), dead, dead, dead)
    )
    kept = [f"{live}.w", f"{live}.0.o", f"{within}.w", "odd.w", f"{dead}-x *.w", f"{odd}.0.o"]
    for name in kept:
        (folder / name).write_text("")
    # Died within a check: its watchdog removes its files once it has stopped the check, by
    # the deadline (in uptime hundredths) and its grace; long after it, it died too.
    now = int(float(Path("/proc/uptime").read_text().split()[0]) * 100)
    (folder / f"{within}.w").write_text(f"{now + 6000} 4242 0\n")
    (folder / f"{long_ago}.w").write_text(f"{now - 3 * batch_script.LATE} 4242 0\n")
    (folder / f"{long_ago}.0.o").write_text("left")
    # A name that is not a batch's is left alone, whatever it holds: the list is expanded
    # unquoted, and a blank would make a pattern of the current directory's files.
    (tmp_path / "precious").write_text("")
    env = {"PATH": os.environ["PATH"], "LOGNAME": login}
    marker = new_marker()
    text = script([BatchItem(Command("true"), 5)], marker, sweep=True)
    done = subprocess.run(
        ["/bin/sh", "-c", text], capture_output=True, check=True, env=env, cwd=tmp_path
    )
    assert parse([BatchItem(Command("true"), 5)], captured(done.stdout), marker, utcnow()) != [None]
    assert sorted(f.name for f in folder.iterdir() if marker not in f.name) == sorted(kept)
    assert (tmp_path / "precious").exists()


@pytest.mark.parametrize("squat", ["another user's", "link", "file", "odd name"])
def test_a_directory_name_taken_by_something_else_is_not_used(
    login: str, tmp_path: Path, squat: str
) -> None:
    folder = Path(f"{batch_script.SHARED_PARENT}/oorfix-{login}")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if squat == "another user's":
        if os.geteuid() != 0:
            pytest.skip("giving a directory to another user needs root")
        folder.mkdir(mode=0o777)
        os.chown(folder, 65534, 65534)
        elsewhere = folder  # nothing of the batch may land in it
    elif squat == "link":  # a link to a directory of the user's: -O alone would accept it
        folder.symlink_to(elsewhere)
    elif squat == "file":
        folder.write_text("")
    name = f"{login} x" if squat == "odd name" else login
    items = [BatchItem(Command("readlink /proc/self/fd/1"), 5), BatchItem(Command("true"), 5)]
    marker, results = _in_env(items, {"PATH": os.environ["PATH"], "LOGNAME": name})
    assert results[0] is not None
    own = f"{batch_script.SHARED_PARENT}/oorfix-batch-{marker}"
    assert re.fullmatch(rf"{own}/\d+-{marker}\.0\.o\n", results[0].stdout.text)
    assert list(elsewhere.iterdir()) == []
    assert not _files(marker)  # its own directory was used, and removed


def test_a_big_output_is_cut_on_the_host() -> None:
    items = [BatchItem(Command("head -c 20000 /dev/zero"), 5), BatchItem(Command("id -u"), 5)]
    marker = new_marker()
    done = subprocess.run(["/bin/sh", "-c", script(items, marker)], capture_output=True, check=True)
    assert len(done.stdout) < 16 * 1024 + 1000  # what crossed the channel
    big, small = parse(items, captured(done.stdout), marker, utcnow())
    assert big is not None
    assert small is not None
    assert (big.stdout.total_bytes, big.stdout.truncated, len(big.stdout.text)) == (
        20000,
        True,
        16 * 1024,
    )
    assert small.stdout.text.strip().isdigit()


def test_what_term_reached_is_killed_after_the_grace_though_the_check_died() -> None:
    # The check's own shell dies of TERM; the child it leaves ignores TERM.
    text = "(trap '' TERM; exec sleep 38.5); echo never"
    (check,) = run_batch([BatchItem(Command(text), 0.2)])
    assert check is not None
    assert (check.rc, check.timed_out) == (124, True)
    _wait_for(lambda: not _pids("^sleep 38.5$"))


def test_the_watchdog_outlives_a_mark_it_cannot_write(login: str) -> None:
    # A redirection that fails ends a shell when it is a special builtin's (`:`). The first
    # check makes the second's mark a dangling link (files are named by the batch's PID, the
    # `$$` of a check that runs in a subshell of the batch's shell).
    marker = new_marker()
    folder = Path(f"{batch_script.SHARED_PARENT}/oorfix-{login}")
    plant = f"ln -s /nonexistent/oorfix/mark {folder}/$$-{marker}.k1"
    items = [
        BatchItem(Command(plant), 5),
        BatchItem(Command("sleep 39.5"), 0.3),
        BatchItem(Command("echo after"), 5),
    ]
    env = {"PATH": os.environ["PATH"], "LOGNAME": login}
    _, (planted, slow, after) = _in_env(items, env, marker=marker)
    assert planted is not None
    assert planted.rc == 0
    assert slow is not None
    assert after is not None
    assert (slow.rc, after.stdout.text) == (128 + 15, "after\n")  # TERM, though unmarked
    assert slow.duration < 10


def test_a_check_that_ignores_term_is_killed_with_its_children() -> None:
    # TERM is ignored by the shell and the sleeps it starts; KILL after the grace stops them.
    text = "trap '' TERM; sleep 30 & sleep 31; wait"
    (stubborn,) = run_batch([BatchItem(Command(text), 0.2)])
    assert stubborn is not None
    assert (stubborn.rc, stubborn.timed_out) == (137, True)
    alive = subprocess.run(["pgrep", "-f", "sleep 3[01]$"], capture_output=True, check=False)
    assert alive.stdout == b""


def test_a_killed_batch_leaves_no_watchdog_check_or_file_behind(login: str) -> None:
    marker = new_marker()
    items = [BatchItem(Command("sleep 37.25"), 60), BatchItem(Command("echo never"), 1)]
    env = {"PATH": os.environ["PATH"], "LOGNAME": login}
    batch = subprocess.Popen(
        ["sh", "-c", script(items, marker)], stdout=subprocess.DEVNULL, env=env
    )
    try:
        # The check runs, the watchdog is armed.
        _wait_for(lambda: [f for f in _files(marker) if f.name.endswith(".w") and _text(f)])
        assert _pids("^sleep 37.25$")
        assert [pid for pid in _pids(marker) if pid != batch.pid]  # the watchdog
        batch.kill()  # no trap runs: the watchdog alone must clean up
        batch.wait()
        _wait_for(lambda: not _pids(marker) and not _pids("^sleep 37.25$"))
        assert not _files(marker)
    finally:
        batch.kill()
        subprocess.run(["pkill", "-f", marker], check=False)
        subprocess.run(["pkill", "-f", "^sleep 37.25$"], check=False)


def test_a_batch_over_its_whole_budget_is_killed_by_its_watchdog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No `timeout` wraps a batch. A check that stops the batch's own shell stalls it past any
    # check's limit; the watchdog ends it at the batch's budget and cleans up.
    monkeypatch.setattr(batch_script, "budget", lambda items: 0.3)
    marker = new_marker()
    # `$$`: a check that is not plain words runs in a subshell of the batch's shell.
    items = [BatchItem(Command("kill -STOP $$"), 5), BatchItem(Command("echo never"), 5)]
    batch = subprocess.Popen(["sh", "-c", script(items, marker)], stdout=subprocess.PIPE)
    try:
        stdout, _ = batch.communicate(timeout=60)  # bounds a failing test only
        assert batch.returncode == -9
        assert b"never" not in stdout
        _wait_for(lambda: not _pids(marker))
        assert not _files(marker)
    finally:
        batch.kill()
        subprocess.run(["pkill", "-f", marker], check=False)


def test_no_check_starts_once_the_watchdog_is_gone(tmp_path: Path) -> None:
    # The first check kills every other child of the batch's shell: the watchdog. The batch's
    # shell learns of it once it has reaped it: while it waits for the first check, or else
    # for the second, which waits for that (the watchdog's /proc entry gone).
    # The check runs in a subshell of the batch's shell (`$$`), whose PID a shell it starts
    # tells as its parent's.
    noted = tmp_path / "watchdog"
    each = f'[ "$p" = "$me" ] || {{ echo $p >{noted}; kill -KILL "$p"; }}'
    killer = f"me=$(exec sh -c 'echo $PPID'); for p in $(pgrep -P $$); do {each}; done"
    reaped = f"while [ -e /proc/$(cat {noted}) ]; do sleep 0.01; done"
    items = [
        BatchItem(Command(killer), 5),
        BatchItem(Command(reaped), 5),
        BatchItem(Command("echo never"), 5),
    ]
    first, second, third = run_batch(items)
    assert first is not None
    assert first.rc == 0
    # The second starts only if the batch's shell had not reaped the watchdog yet; the third
    # never does (each runs on its own, under its own time limit).
    assert second is None or second.rc == 0
    assert third is None


@pytest.mark.parametrize("printer", ["shell", "head"])
def test_a_stream_written_by_name_sends_its_check_to_run_alone(printer: str) -> None:
    # Reopened by name, the file is cut to nothing and written through a description of its
    # own: the batch's descriptor does not move, and what the file holds is not what a pipe
    # would have carried (run alone, `tee` gives "a" on both streams, in order).
    items = [
        BatchItem(Command("echo a | tee /dev/stderr"), 5),
        BatchItem(Command("sh -c 'echo err >/dev/stderr; exit 1'"), 5),
        BatchItem(Command("echo plain"), 5),
    ]
    if printer == "head":
        items.append(BatchItem(Command("head -c 2000 /dev/zero | tr '\\0' a"), 5))
    teed, reopened, plain, *big = run_batch(items)
    assert (teed, reopened) == (None, None)
    assert plain is not None
    assert plain.stdout.text == "plain\n"
    assert all(result is not None and len(result.stdout.text) == 2000 for result in big)


def test_a_stream_filled_after_its_check_ended_is_not_told_empty(tmp_path: Path) -> None:
    # A writer the first check left fills its stdout once the second check has started.
    go, wrote = tmp_path / "go", tmp_path / "wrote"
    writer = f"(while [ ! -e {go} ]; do sleep 0.01; done; echo late; touch {wrote}) &"
    waiter = f"touch {go}; while [ ! -e {wrote} ]; do sleep 0.01; done"
    items = [BatchItem(Command(f"sh -c '{writer}'"), 5), BatchItem(Command(waiter), 5)]
    left, waited = run_batch(items)
    assert left is None  # it runs on its own
    assert waited is not None


def test_the_shell_prints_no_more_of_a_file_than_its_check_wrote(tmp_path: Path) -> None:
    # A writer the first check left grows its stdout to 200 KB after the check ended: the
    # shell, which reads a byte a system call, stops past the size the check's writes came to.
    go, wrote = tmp_path / "go", tmp_path / "wrote"
    grow = f"while [ ! -e {go} ]; do sleep 0.01; done; yes | head -c 200000; touch {wrote}"
    waiter = f"touch {go}; while [ ! -e {wrote} ]; do sleep 0.01; done"
    items = [BatchItem(Command(f"sh -c 'echo x; ({grow}) &'"), 5), BatchItem(Command(waiter), 5)]
    marker = new_marker()
    done = subprocess.run(["sh", "-c", script(items, marker)], capture_output=True, check=True)
    assert len(done.stdout) < 2000
    grown, waited = parse(items, captured(done.stdout), marker, utcnow())
    assert grown is None  # it runs on its own
    assert waited is not None


def test_a_size_that_cannot_be_read_sends_the_check_to_run_alone() -> None:
    # As where /proc/PID/fdinfo is missing or says something else.
    items = [BatchItem(Command("echo printed"), 5), BatchItem(Command("true"), 5)]
    marker = new_marker()
    text = script(items, marker)
    assert text.count("/proc/$$/fdinfo/$2") == 1
    hidden = text.replace("/proc/$$/fdinfo/$2", "/proc/$$/fdinfo-none/$2")
    done = subprocess.run(["sh", "-c", hidden], capture_output=True, check=True)
    printed, quiet = parse(items, captured(done.stdout), marker, utcnow())
    assert printed is None  # it runs on its own
    assert quiet is not None


def test_a_check_whose_files_cannot_be_opened_does_not_run(login: str) -> None:
    # The first check puts a directory where the second's stdout would go.
    marker = new_marker()
    folder = Path(f"{batch_script.SHARED_PARENT}/oorfix-{login}")
    items = [
        BatchItem(Command(f"mkdir {folder}/$$-{marker}.1.o"), 5),
        BatchItem(Command("echo blocked"), 5),
        BatchItem(Command("echo after"), 5),
    ]
    env = {"PATH": os.environ["PATH"], "LOGNAME": login}
    _, (first, blocked, after) = _in_env(items, env, marker=marker)
    assert first is not None
    assert blocked is None  # it runs on its own
    assert after is not None
    assert after.stdout.text == "after\n"


def _files(marker: str) -> list[Path]:
    """The files of the batch ``marker`` left on this machine, and its own directory if any."""
    own = [Path(f"{parent}/oorfix-batch-{marker}") for parent in batch_script.OWN_PARENTS]
    found = [Path(f) for pattern in batch_globs(marker) for f in glob.glob(pattern)]
    return found + [folder for folder in own if folder.exists()]


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _pids(pattern: str) -> list[int]:
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _wait_for(condition: Callable[[], Any], deadline: float = 30.0) -> Any:
    """``condition()`` once it is true (polled; the deadline only bounds a failing test)."""
    end = time.monotonic() + deadline
    while not (value := condition()):
        assert time.monotonic() < end, "condition never held"
        time.sleep(0.02)
    return value


def test_limits_hold_where_sleep_takes_whole_seconds_only(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real = shutil.which("sleep")
    (bindir / "sleep").write_text(f'#!/bin/sh\ncase "$1" in *.*) exit 1;; esac\nexec {real} "$1"\n')
    (bindir / "sleep").chmod(0o755)
    items = [BatchItem(Command("sleep 20"), 0.3), BatchItem(Command("echo after"), 5)]
    marker = new_marker()
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    done = subprocess.run(
        ["/bin/sh", "-c", script(items, marker)], capture_output=True, check=True, env=env
    )
    stdout = done.stdout
    slow, after = parse(items, captured(stdout), marker, utcnow())
    assert slow is not None
    assert after is not None
    assert (slow.rc, slow.timed_out, after.stdout.text) == (124, True, "after\n")


def _logging_tools(tmp_path: Path, tools: tuple[str, ...]) -> Path:
    """A directory of wrappers that log each tool's name to tmp_path/log, then run it."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "log"
    for tool in tools:
        real = shutil.which(tool)
        assert real is not None
        (bindir / tool).write_text(f'#!/bin/sh\necho {tool} >>{log}\nexec {real} "$@"\n')
        (bindir / tool).chmod(0o755)
    return bindir


class CountingTransport:
    """A real local transport that counts round trips."""

    calls: ClassVar[list[str]] = []

    def __init__(self, host: Host) -> None:
        self.inner = open_transport(host.connection(), ConnectOptions())
        self.name = host.name

    def connect(self) -> None:
        self.inner.connect()

    def run(
        self, command: Command, *, timeout: float, become: Become | None = None
    ) -> CommandResult:
        CountingTransport.calls.append(command.text)
        return self.inner.run(command, timeout=timeout, become=become)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def local_fleet(write: Callable[[str, str], Path]) -> Path:
    return write("inv.yml", "all:\n  hosts:\n    box: {ansible_connection: local}\n")


def test_engine_runs_all_plain_checks_of_a_host_in_one_round_trip(
    write: Callable[[str, str], Path], local_fleet: Path
) -> None:
    inventory = load_inventory(local_fleet)
    runbooks = [
        load_runbook(
            write(
                f"rb{n}.yml",
                f"name: rb{n}\nfault: software.crash\ndetect:\n"
                f"  - run: test {n} -lt 3\n  - run: echo {n}\n",
            )
        )
        for n in range(4)
    ]
    planned = plan_run(runbooks, inventory, {})
    CountingTransport.calls = []
    engine = make_engine(
        inventory, ConnectionPool(CountingTransport), EngineOptions(mode=RunMode.DRY_RUN)
    )
    result = engine.run([p.job for p in planned])
    statuses = [r.status for r in result.results]
    assert statuses == [Outcome.HEALTHY] * 3 + [Outcome.WOULD_FIX]
    assert len(CountingTransport.calls) == 1  # eight checks, one round trip
    steps = result.results[3].steps
    assert [(s.command, s.rc) for s in steps] == [("test 3 -lt 3", 1), ("echo 3", 0)]


def test_checks_taken_before_a_fix_are_taken_again_after_it(
    write: Callable[[str, str], Path], local_fleet: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "service-up"
    inventory = load_inventory(local_fleet)
    first = load_runbook(
        write(
            "a.yml",
            f"name: a\nfault: software.crash\ndetect:\n  - run: test -e {marker}\n"
            f"  - run: 'true'\nremediate:\n  - run: touch {marker}\n",
        )
    )
    second = load_runbook(
        write(
            "b.yml",
            f"name: b\nfault: software.service_interruption\ndetect:\n"
            f"  - run: test -e {marker}\nremediate:\n  - run: 'false'\n",
        )
    )
    planned = plan_run([first, second], inventory, {})
    engine = make_engine(inventory, ConnectionPool(CountingTransport))
    result = engine.run([p.job for p in planned])
    # b's check was batched with a's before a's fix; it must see the fixed host, not the old one.
    assert [r.status for r in result.results] == [Outcome.FIXED, Outcome.HEALTHY]


def test_no_check_execs_a_shell(tmp_path: Path) -> None:
    bindir = _logging_tools(tmp_path, ("timeout", "sh", "uname"))
    items = [BatchItem(Command("uname -r"), 5), BatchItem(Command("uname -r | cat"), 5)]
    marker = new_marker()
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    done = subprocess.run(
        ["/bin/sh", "-c", script(items, marker)], capture_output=True, check=True, env=env
    )
    plain, piped = parse(items, captured(done.stdout), marker, utcnow())
    assert plain is not None
    assert piped is not None
    assert plain.stdout.text == piped.stdout.text != ""
    ran = (tmp_path / "log").read_text().split()
    # The plain check is exec'd directly; the piped one runs in a subshell of the batch's
    # shell (a fork, no exec); neither under a timeout.
    assert (ran.count("timeout"), ran.count("sh"), ran.count("uname")) == (0, 0, 2)


def test_a_check_named_like_a_helper_of_the_script_runs_the_program(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("w", "c", "u", "k"):
        tool = bindir / name
        tool.write_text(f'#!/bin/sh\necho program {name} "$@"\nexit 3\n')
        tool.chmod(0o755)
    items = [BatchItem(Command(f"{name} -h"), 5) for name in ("w", "c", "u", "k")]
    marker = new_marker()
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    done = subprocess.run(
        ["/bin/sh", "-c", script(items, marker)], capture_output=True, check=True, env=env
    )
    results = parse(items, captured(done.stdout), marker, utcnow())
    assert [(r.rc, r.stdout.text) for r in results if r is not None] == [
        (3, f"program {name} -h\n") for name in ("w", "c", "u", "k")
    ]


@pytest.mark.parametrize(
    ("text", "direct"),
    [
        ("uname -r", "uname -r"),
        ("  df   -P /  ", "df -P /"),
        ("head -3 /proc/meminfo", "head -3 /proc/meminfo"),
        ("/usr/sbin/ip -o link", "/usr/sbin/ip -o link"),
        ("date +%s", "date +%s"),  # `%` is plain outside `${}`
        ("dd if=/dev/zero count=1", "dd if=/dev/zero count=1"),  # `=` after the first word
        ("true", "true"),
        ("echo hi", None),  # the builtin echo differs from /bin/echo
        ("cd /tmp", None),
        ("kill %1", None),  # a builtin, and %1 a job
        ("test -d /tmp && echo ok", None),
        ("cat $HOME/x", None),
        ("ls *.log", None),
        ("FOO=1 env", None),
        ("grep 'a b' f", None),
        ("a\nb", None),
        ("", None),
        (" uname  -r\n", "uname -r"),  # blanks around it are sh's
        ("uname -r\r", None),  # not sh's blanks: part of the word
        ("\u00a0uname -r", None),
        ("declare -f", None),  # bash's own: it would list the batch's shell's functions
        ("time uname", None),
    ],
)
def test_direct_argv_only_for_plain_words(text: str, direct: str | None) -> None:
    from oorfix.transport.shell import direct_argv

    assert direct_argv(text) == direct


# Run by the batch's shell itself; every other check in a process of its own, under the
# watchdog (`test` and `[` too: a file's status may hang on a mount that does not answer).
_IN_THE_SHELL = ("true", "false", "echo  two   words")
_DIRECT = (
    "uname -r",
    "cat /etc/os-release",
    "id -u",
    "ls -d /tmp",
    "no-such-command-here x",
    "test -d /tmp",
    "test -r /no/such/file",
)
_BASH = pytest.mark.skipif(shutil.which("bash") is None, reason="no bash here")


@pytest.mark.parametrize(
    "shell",
    [["sh"], pytest.param(["bash", "--posix"], marks=_BASH)],
    ids=["sh", "bash-posix"],
)
@pytest.mark.parametrize(
    "text",
    [
        *_IN_THE_SHELL,
        # Plain words, started directly (a program exec'd, `test` as the forked shell's).
        *_DIRECT,
        # In a subshell of the batch's shell.
        "[ -d /tmp ]",
        "[ 3 -gt 4 ]",
        "uname -r | tr a-z A-Z",
        "echo $HOME; echo err >&2; exit 3",
        "test ! -e /no/such/file && echo absent",
        "case x in x) echo matched;; esac",
        "exit 7",
        "echo 'unbalanced",
        "echo hi\r",
        "test -d /tmp\u00a0",
        "trap | grep EXIT || echo no exit trap",
    ],
)
def test_a_check_gives_the_same_status_and_output_with_or_without_the_shell(
    text: str, shell: list[str]
) -> None:
    from oorfix.transport.shell import direct_argv

    assert (batch_script._builtin(text) is not None) == (text in _IN_THE_SHELL)
    assert (direct_argv(text) is not None) == (text in (*_IN_THE_SHELL, *_DIRECT)) or (
        text == "echo  two   words"  # echo's builtin differs from /bin/echo: never exec'd
    )
    items = [BatchItem(Command(text), 5)]
    marker = new_marker()
    done = subprocess.run([*shell, "-c", script(items, marker)], capture_output=True, check=False)
    (batched,) = parse(items, captured(done.stdout), marker, utcnow())
    alone = subprocess.run([*shell, "-c", text], capture_output=True, check=False)
    assert batched is not None
    assert (batched.rc, batched.stdout.text) == (alone.returncode, alone.stdout.decode())
    assert bool(batched.stderr.text) == bool(alone.stderr)


def test_a_check_finds_the_environment_it_was_given(login: str) -> None:
    # The batch's shell reads with a name of its own, not `_`, which login shells export
    # (dash leaves it as given; bash sets it to each program's path, alone as in a batch).
    env = {"PATH": os.environ["PATH"], "LOGNAME": login, "_": "/usr/bin/given"}
    _, (found,) = _in_env([BatchItem(Command("printenv _"), 5)], env)
    alone = subprocess.run(["/bin/sh", "-c", "printenv _"], capture_output=True, env=env)
    assert found is not None
    assert found.stdout.text == alone.stdout.decode()


def test_a_check_in_a_subshell_finds_none_of_the_batch_shells_names(login: str) -> None:
    # `${X+X}` is X where X is set; `command -v` names a function, else a program's path.
    names = batch_script._VARIABLES.split()
    functions = sorted(batch_script._FUNCTIONS)
    text = 'echo "[' + "".join(f"${{{n}+{n}}}" for n in names) + ']"; '
    text += "; ".join(f"command -v {f} || echo no {f}" for f in functions)
    checks = [BatchItem(Command("true"), 5), BatchItem(Command(text), 5)]
    _, (_, batched) = _in_env(checks, {"PATH": os.environ["PATH"], "LOGNAME": login})
    alone = subprocess.run(["sh", "-c", text], capture_output=True, check=False)
    assert batched is not None
    assert batched.stdout.text == alone.stdout.decode()
    assert batched.stdout.text.startswith("[]\n")


def test_every_name_the_batch_shell_sets_is_set_aside_for_a_check() -> None:
    # A sweeping batch's `z` sets more, but only once every check has run.
    text = script([BatchItem(Command("uname"), 5)], new_marker(), sweep=False)
    main = text.replace(text[text.index("( S() {") : text.index("& W=$!")], "")
    assigned = set(re.findall(r"(?<![\w$.{])([A-Za-z_]\w*)=", main))
    assigned |= set(re.findall(r"\bfor (\w+) in ", main))
    for names in re.findall(r"\bread (?:-r )?([\w ]+?) *<", main):
        assigned |= set(names.split()) - {"_"}
    # IFS and LC_ALL are set for one command, or for the report after every check.
    assert assigned - {"IFS", "LC_ALL"} == set(batch_script._VARIABLES.split())
