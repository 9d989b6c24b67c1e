"""Templates: sandboxed, strict about undefined names, and shell-quoting in commands."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from oorfix.errors import InputError, TemplateError
from oorfix.runbook.templating import (
    check_syntax,
    evaluate,
    is_template,
    names_used,
    render_command,
    render_data,
    render_text,
)

HOSTILE = [
    pytest.param("x; touch {marker}", id="semicolon"),
    pytest.param("$(touch {marker})", id="command-substitution"),
    pytest.param("`touch {marker}`", id="backticks"),
    pytest.param("it's'; touch {marker}; echo '", id="single-quotes"),
    pytest.param('"; touch {marker}; echo "', id="double-quotes"),
    pytest.param("a\ntouch {marker}", id="newline"),
    pytest.param("x && touch {marker} || touch {marker}", id="and-or"),
    pytest.param("x | tee {marker}", id="pipe"),
    pytest.param("x > {marker}", id="redirect"),
    pytest.param("${{IFS}}touch${{IFS}}{marker}", id="ifs"),
    pytest.param("*", id="glob"),
    pytest.param("-n", id="option-like"),
    pytest.param("", id="empty"),
    pytest.param("  spaced  out  ", id="spaces"),
    pytest.param("tab\there\\back", id="tab-backslash"),
]


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, timeout=10)


def template_error(call: Any, *args: Any) -> str:
    with pytest.raises(TemplateError) as info:
        call(*args)
    return info.value.location_message()


@pytest.mark.parametrize("render", [render_command, render_text])
@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("rm -rf /srv/{{ app_dir }}", {}, "undefined variable: 'app_dir' is undefined"),
        (
            "echo {{ cfg.port }}",
            {"cfg": {}},
            "undefined variable: 'dict object' has no attribute 'port'",
        ),
        ("echo {{ xs[3] }}", {"xs": [1]}, "undefined variable: list object has no element 3"),
        ("{% for x in nope %}{{ x }}{% endfor %}", {}, "undefined variable: 'nope' is undefined"),
        ("echo {{ missing|upper }}", {}, "undefined variable: 'missing' is undefined"),
        ("echo {{ missing ~ 'x' }}", {}, "undefined variable: 'missing' is undefined"),
        ("echo {{ 1 / 0 }}", {}, "template error: ZeroDivisionError: division by zero"),
    ],
)
def test_undefined_and_failing_values_raise(
    render: Any, source: str, context: dict[str, Any], expected: str
) -> None:
    error = template_error(render, source, context)
    assert error == expected


def test_template_error_is_an_input_error() -> None:
    with pytest.raises(InputError):
        render_command("{{ nope }}", {})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{{ ''.__class__.__mro__ }}",
            "not allowed in a template: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ x.__class__.__mro__[1].__subclasses__() }}",
            "not allowed in a template: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ ''|attr('__class__') }}",
            "not allowed in a template: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ cycler.__init__.__globals__ }}",
            "not allowed in a template: access to attribute '__init__' of 'type' object is unsafe.",
        ),
        (
            "{{ d.update({'a': 1}) }}",
            "not allowed in a template: access to attribute 'update' of 'dict' object is unsafe.",
        ),
        (
            "{{ xs.append(1) }}",
            "not allowed in a template: access to attribute 'append' of 'list' object is unsafe.",
        ),
    ],
)
@pytest.mark.parametrize("render", [render_command, render_text])
def test_sandbox_refuses_unsafe_access(render: Any, source: str, expected: str) -> None:
    context = {"x": "", "d": {}, "xs": []}
    assert template_error(render, source, context) == expected
    assert context == {"x": "", "d": {}, "xs": []}


def test_sandbox_refuses_unsafe_access_in_expressions() -> None:
    assert (
        template_error(evaluate, "''.__class__.__mro__", {})
        == "not allowed in a template: access to attribute '__class__' of 'str' object is unsafe."
    )


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("echo {{ v }}", {"v": "x; touch /tmp/pwned"}, "echo 'x; touch /tmp/pwned'"),
        ("echo {{ v }}", {"v": "$(id)"}, "echo '$(id)'"),
        ("echo {{ v }}", {"v": "`id`"}, "echo '`id`'"),
        ("echo {{ v }}", {"v": "it's"}, "echo 'it'\"'\"'s'"),
        ("echo {{ v }}", {"v": "a\nb"}, "echo 'a\nb'"),
        ("echo {{ v }}", {"v": "plain-word_1.2"}, "echo plain-word_1.2"),
        ("echo {{ v }}", {"v": ""}, "echo ''"),
        ("echo {{ v }}", {"v": None}, "echo ''"),
        ("echo {{ v }}", {"v": 42}, "echo 42"),
        ("echo {{ v }}", {"v": ["a b"]}, "echo '['\"'\"'a b'\"'\"']'"),
        ("echo {{ v|upper }}", {"v": "a b"}, "echo 'A B'"),
        ("echo {{ v ~ '/x' }}", {"v": "a b"}, "echo 'a b/x'"),
        ("echo {{ v|quote }}", {"v": "a b"}, "echo 'a b'"),
        ("echo {{ v|quote|quote }}", {"v": "a b"}, "echo 'a b'"),
        ("echo {{ v|quote }}", {"v": "$(id)"}, "echo '$(id)'"),
        ("echo {{ v|raw }}", {"v": "a b"}, "echo a b"),
        ("echo {{ v|raw }}", {"v": "$HOME"}, "echo $HOME"),
        ("echo {% for i in xs %}{{ i }} {% endfor %}", {"xs": ["a b", "c"]}, "echo 'a b' c "),
        ("echo {{ 'lit eral' }}", {}, "echo 'lit eral'"),
        ("echo $HOME; ls 'a b'", {}, "echo $HOME; ls 'a b'"),
        ("{{ v }}\n", {"v": "x"}, "x\n"),
    ],
)
def test_render_command_quotes_every_value(
    source: str, context: dict[str, Any], expected: str
) -> None:
    assert render_command(source, context) == expected


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_runs_as_one_inert_argument(tmp_path: Path, value: str) -> None:
    marker = tmp_path / "pwned"
    value = value.format(marker=marker)
    command = render_command("printf %s {{ v }}", {"v": value})
    result = sh(command, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == value.encode()
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_is_a_single_argument(tmp_path: Path, value: str) -> None:
    value = value.format(marker=tmp_path / "pwned")
    command = render_command("printf '<%s>' {{ v }} {{ v|quote }} end", {"v": value})
    result = sh(command, tmp_path)
    assert result.stdout == f"<{value}><{value}><end>".encode()


def test_quote_filter_is_not_quoted_twice_when_run(tmp_path: Path) -> None:
    command = render_command("printf %s {{ v|quote }}", {"v": "it's a test"})
    assert command == "printf %s 'it'\"'\"'s a test'"
    assert sh(command, tmp_path).stdout == b"it's a test"


def test_raw_filter_opts_out_of_quoting(tmp_path: Path) -> None:
    command = render_command("printf '<%s>' {{ v|raw }}", {"v": "a  b $MARK"})
    assert command == "printf '<%s>' a  b $MARK"
    result = subprocess.run(
        ["sh", "-c", command], cwd=tmp_path, capture_output=True, env={"MARK": "m"}, check=True
    )
    assert result.stdout == b"<a><b><m>"


@pytest.mark.parametrize(
    ("source", "context", "expected"),
    [
        ("{{ v }}", {"v": "a b; c"}, "a b; c"),
        ("{{ v|quote }}", {"v": "a b"}, "'a b'"),
        ("{{ v|raw }}", {"v": "a b"}, "a b"),
        ("http://{{ h }}:{{ p }}/", {"h": "127.0.0.1", "p": 8080}, "http://127.0.0.1:8080/"),
        ("{{ v }}", {"v": None}, "None"),
        ("no template $(id)", {}, "no template $(id)"),
    ],
)
def test_render_text_does_not_quote(source: str, context: dict[str, Any], expected: str) -> None:
    assert render_text(source, context) == expected


def test_render_data_renders_nested_strings_as_text() -> None:
    data = {"a": ["{{ x }}", 1, {"b": "{{ x }} y", "c": None}], "d": True}
    assert render_data(data, {"x": "v w"}) == {
        "a": ["v w", 1, {"b": "v w y", "c": None}],
        "d": True,
    }


@pytest.mark.parametrize(
    ("render", "expected"),
    [(render_command, "echo '{{ 7*7 }}'"), (render_text, "echo {{ 7*7 }}")],
)
def test_registered_output_is_never_rendered_again(render: Any, expected: str) -> None:
    context = {"out": "{{ 7*7 }}"}
    rendered = render("echo {{ out }}", context)
    assert rendered == expected
    assert "49" not in rendered


def test_registered_output_comes_back_literally_when_run(tmp_path: Path) -> None:
    remote = "{{ 7*7 }} {% raw %}{{ lipsum.__globals__ }}"
    command = render_command("printf %s {{ out.stdout }}", {"out": {"stdout": remote}})
    assert sh(command, tmp_path).stdout == remote.encode()


@pytest.mark.parametrize(
    ("expression", "context", "expected"),
    [
        ("result.rc == 0 and 'ok' in result.stdout", {"result": {"rc": 0, "stdout": "ok!"}}, True),
        ("result.rc == 0", {"result": {"rc": 1}}, False),
        ("result.rc in [0, 3]", {"result": {"rc": 3}}, True),
        ("x + 1", {"x": 2}, 3),
        ("result.stdout_lines | length", {"result": {"stdout_lines": ["a", "b"]}}, 2),
        ("result.stdout | int > limit", {"result": {"stdout": "12"}, "limit": 10}, True),
        ("'{{ 7*7 }}' == s", {"s": "{{ 7*7 }}"}, True),
        ("not flag", {"flag": False}, True),
    ],
)
def test_evaluate_expressions(expression: str, context: dict[str, Any], expected: Any) -> None:
    value = evaluate(expression, context)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("expression", "context", "expected"),
    [
        ("1 +", {}, "template syntax error: unexpected 'end of template'"),
        ("x ==", {"x": 1}, "template syntax error: unexpected 'end of template'"),
        ("nope == 1", {}, "undefined variable: 'nope' is undefined"),
        ("x.y == 1", {"x": {}}, "undefined variable: 'dict object' has no attribute 'y'"),
        ("1 / 0", {}, "template error: ZeroDivisionError: division by zero"),
    ],
)
def test_evaluate_errors(expression: str, context: dict[str, Any], expected: str) -> None:
    assert template_error(evaluate, expression, context) == expected


@pytest.mark.parametrize(
    ("expression", "context"), [("nope", {}), ("result.nope", {"result": {"rc": 0}})]
)
def test_evaluate_bare_undefined_name_raises(expression: str, context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError):
        evaluate(expression, context)


@pytest.mark.parametrize(
    ("source", "expression", "expected"),
    [
        ("echo {{ a }} {{ b.c }} {% for i in xs %}{{ i }}{% endfor %}", False, {"a", "b", "xs"}),
        ("{% set z = 1 %}{{ z }}{{ y|default(q) }}", False, {"y", "q"}),
        ("{% if flag %}{{ host.name }}{% endif %}", False, {"flag", "host"}),
        ("echo {{ 'x' }}", False, set()),
        ("echo a b", False, set()),
        ("echo a and b", False, set()),
        ("a and b.c", True, {"a", "b"}),
        ("result.rc == 0 and 'ok' in result.stdout", True, {"result"}),
        ("1 == 1", True, set()),
        ("x", True, {"x"}),
    ],
)
def test_names_used(source: str, expression: bool, expected: set[str]) -> None:
    assert names_used(source, expression) == expected


@pytest.mark.parametrize(
    ("source", "expression", "expected"),
    [
        (
            "{{ x",
            False,
            "template syntax error: unexpected end of template, expected 'end of print statement'.",
        ),
        (
            "{% if x %}",
            False,
            "template syntax error: Unexpected end of template. Jinja was looking for the "
            "following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be "
            "closed is 'if'.",
        ),
        ("{{ 1 + }}", False, "template syntax error: unexpected 'end of print statement'"),
        ("a ==", True, "template syntax error: unexpected ')'"),
    ],
)
def test_check_syntax_errors(source: str, expression: bool, expected: str) -> None:
    assert template_error(check_syntax, source, expression) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a {{ b }}", True),
        ("{% if %}", True),
        ("a {# c #}", True),
        ("a { b } c", False),
        ("", False),
    ],
)
def test_is_template(source: str, expected: bool) -> None:
    assert is_template(source) is expected
