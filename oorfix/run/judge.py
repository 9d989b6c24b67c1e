"""Judging a command's result against a step's expectation."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from oorfix.errors import InputError
from oorfix.results import CommandResult, StepStatus
from oorfix.runbook import templating
from oorfix.runbook.models import Expect

DEFAULT_EXPECT = Expect()


def result_vars(result: CommandResult) -> dict[str, Any]:
    """A command result as template data (what ``register`` keeps and ``that`` sees)."""
    stdout = result.stdout.text.rstrip("\n")
    return {
        "rc": result.rc,
        "stdout": stdout,
        "stdout_lines": stdout.splitlines(),
        "stderr": result.stderr.text.rstrip("\n"),
        "ok": result.ok,
        "failed": not result.ok,
        "timed_out": result.timed_out,
        "skipped": False,
    }


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _bounds(expect: Expect, stdout: str) -> str | None:
    if expect.min is None and expect.max is None:
        return None
    value = _number(stdout)
    if value is None:
        return f"stdout {stdout.strip()[:40]!r} is not a number"
    if expect.min is not None and value < expect.min:
        return f"{value:g} is below the minimum {expect.min:g}"
    if expect.max is not None and value > expect.max:
        return f"{value:g} is above the maximum {expect.max:g}"
    return None


def judge(expect: Expect | None, result: CommandResult, context: Mapping[str, Any]) -> str | None:
    """None when the result meets the expectation, else why not (TemplateError on `that`)."""
    expect = expect or DEFAULT_EXPECT
    if result.rc not in expect.accepted_rcs:
        wanted = " or ".join(str(rc) for rc in expect.accepted_rcs)
        return f"exit status {result.rc}, expected {wanted}"
    stdout = result.stdout.text
    if expect.stdout is not None and not re.search(expect.stdout, stdout, re.M):
        return f"stdout does not match {expect.stdout!r}"
    if expect.stdout_not is not None and re.search(expect.stdout_not, stdout, re.M):
        return f"stdout matches {expect.stdout_not!r}"
    if expect.stderr_not is not None and re.search(expect.stderr_not, result.stderr.text, re.M):
        return f"stderr matches {expect.stderr_not!r}"
    bounds = _bounds(expect, stdout)
    if bounds is not None:
        return bounds
    if expect.that is not None:
        local = {**context, "result": result_vars(result)}
        if not templating.evaluate(expect.that, local):
            return f"not true: {expect.that}"
    return None


def verdict(
    expect: Expect | None, result: CommandResult, context: Mapping[str, Any]
) -> tuple[StepStatus, str | None]:
    """Passed, failed (and why) or error: a result with no trustworthy status is never judged.

    A timed-out command and one without an exit status (the session ended first, which a
    transport cannot tell apart from a remote ``kill -9`` by the status alone) are errors,
    not failures: their effect is unknown, so nothing may act on them as on a plain failure.
    """
    if result.timed_out:
        seconds = (result.ended - result.started).total_seconds()
        return StepStatus.ERROR, f"timed out after {seconds:.1f}s; the host killed it"
    if result.rc is None:
        return StepStatus.ERROR, "no exit status (the session ended without one)"
    try:
        reason = judge(expect, result, context)
    except InputError as exc:
        return StepStatus.ERROR, exc.message
    return (StepStatus.PASSED, None) if reason is None else (StepStatus.FAILED, reason)
