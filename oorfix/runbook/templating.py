"""Jinja2 in a sandbox with StrictUndefined; the only module that imports jinja2.

jinja2 is imported the first time a text holds Jinja syntax: text without any is its own
rendering, and a runbook of plain commands never pays for the template engine.

Two ways to render: ``command`` shell-quotes every interpolated value unless it went
through the ``quote`` filter (already quoted) or the ``raw`` filter (an explicit opt-out);
``text`` renders names, messages and action parameters as they are, and the actions quote
those themselves. Values from hosts (registered output) are data in the context; nothing
ever renders them as a template again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from oorfix.errors import TemplateError

if TYPE_CHECKING:
    import jinja2
    from jinja2 import nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment


class ShellSafe(str):
    """Text already fit to stand in a shell command as it is."""

    __slots__ = ()


def _quote_filter(value: Any) -> ShellSafe:
    return value if isinstance(value, ShellSafe) else ShellSafe(shlex.quote(str(value)))


def _raw_filter(value: Any) -> ShellSafe:
    return ShellSafe(str(value))


def _finalize_for_shell(value: Any) -> Any:
    if isinstance(value, ShellSafe):
        return value
    return shlex.quote("" if value is None else str(value))


def _environment(finalize: Any = None) -> ImmutableSandboxedEnvironment:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=finalize,
    )
    env.filters["quote"] = _quote_filter
    env.filters["raw"] = _raw_filter
    return env


@cache
def _env(quoted: bool) -> ImmutableSandboxedEnvironment:
    return _environment(_finalize_for_shell if quoted else None)


def is_template(source: str) -> bool:
    """Whether ``source`` contains Jinja syntax at all."""
    return "{{" in source or "{%" in source or "{#" in source


def _message(exc: Exception) -> str:
    import jinja2

    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"not allowed in a template: {exc}"
    return f"template error: {type(exc).__name__}: {exc}"


@lru_cache(maxsize=4096)
def _compile(source: str, quoted: bool) -> jinja2.Template:
    return _env(quoted).from_string(source)


@lru_cache(maxsize=4096)
def _compile_expression(source: str) -> Any:
    return _env(False).compile_expression(source, undefined_to_none=False)


def _render(source: str, context: Mapping[str, Any], quoted: bool) -> str:
    if not is_template(source):
        return source
    import jinja2

    try:
        return _compile(source, quoted).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(_message(exc)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateError(_message(exc)) from None


def render_command(source: str, context: Mapping[str, Any]) -> str:
    """Render a shell command: every interpolated value is shell-quoted unless opted out."""
    return _render(source, context, quoted=True)


def render_text(source: str, context: Mapping[str, Any]) -> str:
    """Render text (names, messages, action parameters) without quoting."""
    return _render(source, context, quoted=False)


def render_data(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside nested lists and dicts as text."""
    if isinstance(value, str):
        return render_text(value, context)
    if isinstance(value, list):
        return [render_data(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render_data(v, context) for k, v in value.items()}
    return value


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """Evaluate a Jinja expression such as ``result.rc == 0 and 'ok' in result.stdout``."""
    import jinja2

    try:
        value = _compile_expression(expression)(**context)
        if isinstance(value, jinja2.Undefined):
            str(value)  # StrictUndefined raises UndefinedError here, with its message
        return value
    except jinja2.TemplateError as exc:
        raise TemplateError(_message(exc)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        raise TemplateError(_message(exc)) from None


def _parse(source: str) -> nodes.Template:
    import jinja2

    try:
        return _env(False).parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_message(exc)) from None


def names_used(source: str, expression: bool = False) -> frozenset[str]:
    """The top-level variable names a template (or an expression) reads."""
    if not expression and not is_template(source):
        return frozenset()
    return _names_used(source, expression)


# Planning asks this of the same templates for every host: parse each one once.
@lru_cache(maxsize=4096)
def _names_used(source: str, expression: bool) -> frozenset[str]:
    import jinja2
    from jinja2 import meta

    text = "{{ (" + source + ") }}" if expression else source
    try:
        return frozenset(meta.find_undeclared_variables(_parse(text)))
    except jinja2.TemplateError as exc:  # an unknown filter or test, found while compiling
        raise TemplateError(_message(exc)) from None


def quoted_expressions(source: str) -> list[str]:
    """The ``{{ ... }}`` of a shell command that stand inside '...' or "..." quotes.

    oorfix quotes every interpolated value itself; inside the author's own quotes that quoting
    cancels out (``'{{ v }}'`` with ``v = "x'; rm -rf /; '"``), so such places are refused,
    unless the value goes through ``raw`` on purpose.
    """
    found: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(source):
        if source.startswith("{{", i):
            end = source.find("}}", i)
            end = len(source) if end < 0 else end + 2
            expression = source[i:end]
            if quote is not None and not re.search(r"\|\s*raw\b", expression):
                found.append(expression)
            i = end
            continue
        char = source[i]
        if char == "\\" and quote != "'":
            i += 2
            continue
        if char in "'\"" and quote in (None, char):
            quote = None if quote == char else char
        i += 1
    return found


def secret_names(source: str, expression: bool = False) -> frozenset[str]:
    """The literal names passed to ``secret(...)`` in a template; non-literals are errors."""
    if "secret" not in source:
        return frozenset()
    return _secret_names(source, expression)


@lru_cache(maxsize=4096)
def _secret_names(source: str, expression: bool) -> frozenset[str]:
    from jinja2 import nodes

    tree = _parse("{{ (" + source + ") }}" if expression else source)
    names = set()
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name == "secret"):
            continue
        args = call.args
        if (
            len(args) != 1
            or not isinstance(args[0], nodes.Const)
            or not isinstance(args[0].value, str)
        ):
            raise TemplateError("secret() takes one quoted name, e.g. secret('DB_PASSWORD')")
        names.add(args[0].value)
    return frozenset(names)


def check_syntax(source: str, expression: bool = False) -> None:
    """Raise TemplateError if ``source`` is not a valid template (or expression)."""
    names_used(source, expression)
