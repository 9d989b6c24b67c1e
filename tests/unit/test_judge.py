"""Judging a command result against a step's expectation: exact reasons out."""

from __future__ import annotations

from typing import Any

import pytest

from oorfix.errors import TemplateError
from oorfix.results import CommandResult, Output
from oorfix.run.judge import judge, result_vars
from oorfix.runbook.models import Expect


def result(rc: int | None = 0, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(command="check", rc=rc, stdout=Output(stdout), stderr=Output(stderr))


@pytest.mark.parametrize(
    ("expect", "res", "reason"),
    [
        # rc (default 0)
        pytest.param(None, result(0), None, id="default-rc-0-passes"),
        pytest.param(None, result(1), "exit status 1, expected 0", id="default-rc-1-fails"),
        pytest.param(None, result(None), "exit status None, expected 0", id="no-rc"),
        pytest.param({"rc": 3}, result(3), None, id="rc-3-passes"),
        pytest.param({"rc": 3}, result(0), "exit status 0, expected 3", id="rc-3-fails-on-0"),
        pytest.param({"rc": [0, 3]}, result(3), None, id="rc-list-passes"),
        pytest.param({"rc": [0, 3]}, result(4), "exit status 4, expected 0 or 3", id="rc-list"),
        pytest.param(
            {"rc": [0, 3]}, result(None), "exit status None, expected 0 or 3", id="no-rc-2"
        ),
        # stdout: a regex searched in multiline mode
        pytest.param({"stdout": "^active$"}, result(0, "active\n"), None, id="stdout-passes"),
        pytest.param(
            {"stdout": "^active$"}, result(0, "x\nactive\ny"), None, id="stdout-multiline"
        ),
        pytest.param(
            {"stdout": "^active$"},
            result(0, "inactive\n"),
            "stdout does not match '^active$'",
            id="stdout-fails",
        ),
        pytest.param(
            {"stdout": '"status": *"ok"'},
            result(0, '{"status": "down"}'),
            'stdout does not match \'"status": *"ok"\'',
            id="stdout-json-fails",
        ),
        pytest.param(
            {"stdout": "ok"}, result(0, "", "ok"), "stdout does not match 'ok'", id="not-stderr"
        ),
        # stdout_not
        pytest.param({"stdout_not": "error"}, result(0, "fine"), None, id="stdout-not-passes"),
        pytest.param(
            {"stdout_not": "error"},
            result(0, "an error\n"),
            "stdout matches 'error'",
            id="stdout-not-fails",
        ),
        pytest.param({"stdout_not": "^E"}, result(0, "ok\nE: bad"), "stdout matches '^E'", id="m"),
        # stderr_not
        pytest.param({"stderr_not": "warn"}, result(0, "warn", "ok"), None, id="stderr-not-passes"),
        pytest.param(
            {"stderr_not": "warn"},
            result(0, "", "warning: disk"),
            "stderr matches 'warn'",
            id="stderr-not-fails",
        ),
        # min / max: stdout read as a number
        pytest.param({"min": 10}, result(0, "10\n"), None, id="min-equal-passes"),
        pytest.param({"min": 10}, result(0, "9.5\n"), "9.5 is below the minimum 10", id="min"),
        pytest.param({"max": 10}, result(0, " 10 "), None, id="max-equal-passes"),
        pytest.param({"max": 10}, result(0, "10.5"), "10.5 is above the maximum 10", id="max"),
        pytest.param({"max": 0.5}, result(0, "1e3"), "1000 is above the maximum 0.5", id="exp"),
        pytest.param({"min": 1, "max": 2}, result(0, "1.5"), None, id="range-passes"),
        pytest.param(
            {"min": 1, "max": 2}, result(0, "-1"), "-1 is below the minimum 1", id="range-below"
        ),
        pytest.param(
            {"max": 10}, result(0, " abc \n"), "stdout 'abc' is not a number", id="not-a-number"
        ),
        pytest.param({"min": 1}, result(0, ""), "stdout '' is not a number", id="empty"),
        pytest.param(
            {"min": 1},
            result(0, "x" * 100),
            "stdout 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' is not a number",
            id="long-text-is-cut",
        ),
        # that: a jinja expression over `result` and the context
        pytest.param(
            {"that": "result.stdout_lines | length == 2"}, result(0, "a\nb\n"), None, id="that"
        ),
        pytest.param(
            {"that": "result.stdout_lines | length == 3"},
            result(0, "a\nb\n"),
            "not true: result.stdout_lines | length == 3",
            id="that-fails",
        ),
        pytest.param({"that": "result.rc"}, result(0), "not true: result.rc", id="that-falsy"),
        pytest.param(
            {"that": "result.stdout == '{{ 7*7 }}'"}, result(0, "{{ 7*7 }}\n"), None, id="braces"
        ),
        # the order: rc first, then stdout, stdout_not, stderr_not, bounds, that
        pytest.param(
            {"rc": 0, "stdout": "x", "that": "false"},
            result(2, "y"),
            "exit status 2, expected 0",
            id="rc-before-stdout",
        ),
        pytest.param(
            {"stdout": "x", "stdout_not": "y", "that": "false"},
            result(0, "y"),
            "stdout does not match 'x'",
            id="stdout-before-stdout-not",
        ),
        pytest.param(
            {"stdout_not": "y", "max": 1}, result(0, "5"), "5 is above the maximum 1", id="bounds"
        ),
        pytest.param(
            {"max": 10, "that": "false"}, result(0, "5"), "not true: false", id="that-last"
        ),
    ],
)
def test_judge(expect: dict[str, Any] | None, res: CommandResult, reason: str | None) -> None:
    assert judge(Expect(**expect) if expect is not None else None, res, {}) == reason


@pytest.mark.parametrize(
    ("that", "stdout", "context", "reason"),
    [
        ("result.stdout | int > limit", "5\n", {"limit": 3}, None),
        (
            "result.stdout | int > limit",
            "5\n",
            {"limit": 5},
            "not true: result.stdout | int > limit",
        ),
        ("host.name in result.stdout", "api-1 up", {"host": {"name": "api-1"}}, None),
        (
            "host.name in result.stdout",
            "api-2 up",
            {"host": {"name": "api-1"}},
            "not true: host.name in result.stdout",
        ),
        ("result.stdout == '5'", "5\n\n", {}, None),
    ],
)
def test_that_sees_the_context(
    that: str, stdout: str, context: dict[str, Any], reason: str | None
) -> None:
    assert judge(Expect(that=that), result(0, stdout), context) == reason


@pytest.mark.parametrize(
    ("that", "message"),
    [
        ("result.nope == 1", "undefined variable: 'dict object' has no attribute 'nope'"),
        ("result.rc ==", "template syntax error: unexpected 'end of template'"),
        ("result.stdout | int / 0", "template error: ZeroDivisionError: division by zero"),
    ],
)
def test_that_errors_are_template_errors(that: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        judge(Expect(that=that), result(0, "1"), {})
    assert info.value.location_message() == message


@pytest.mark.parametrize("that", ["nope", "result.nope"])
def test_that_with_a_bare_undefined_name_is_a_template_error(that: str) -> None:
    with pytest.raises(TemplateError):
        judge(Expect(that=that), result(0), {})


@pytest.mark.parametrize("expect", [{"min": 0}, {"max": 90}, {"min": 0, "max": 90}])
def test_nan_is_not_within_bounds(expect: dict[str, float]) -> None:
    assert judge(Expect(**expect), result(0, "nan\n"), {}) is not None


def test_result_vars() -> None:
    res = CommandResult(
        command="c", rc=3, stdout=Output("a\nb\n\n"), stderr=Output("e\n"), timed_out=True
    )
    assert result_vars(res) == {
        "rc": 3,
        "stdout": "a\nb",
        "stdout_lines": ["a", "b"],
        "stderr": "e",
        "ok": False,
        "failed": True,
        "timed_out": True,
        "skipped": False,
    }
