"""pydantic errors as input errors that name the file, the line and the key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from oorfix.errors import InputError, RunbookError
from oorfix.runbook.yamlsource import Document, Loc


def format_loc(loc: Iterable[str | int]) -> str:
    """``('detect', 0, 'run')`` as ``detect[0].run``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _document_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Loc, Any]:
    """The longest prefix of a pydantic loc that exists in the data, and the rest."""
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_list or (isinstance(node, dict) and part in node):
            node = node[part]
        else:
            return tuple(path), loc[i:]
        path.append(part)
    return tuple(path), ()


def _describe(error: Any, rest: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (check its spelling; see `oorfix schema`)"
    if kind == "missing":
        return f"missing required key {rest[0]!r}" if rest else "missing required value"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and isinstance(error.get("input"), int | float | bool):
        message += " (quote it: YAML read it as a number or boolean)"
    return message


def validation_errors(doc: Document, exc: ValidationError) -> list[InputError]:
    """Each pydantic error as an InputError naming the file, line and key."""
    found: dict[tuple[Loc, str], InputError] = {}
    for error in exc.errors():
        loc, rest = _document_loc(doc.data, tuple(error["loc"]))
        message = _describe(error, rest)
        key = (loc, message)
        # A union reports one error per member; one line per place is enough.
        if key not in found and not any(k[0] == loc for k in found):
            where = f"{format_loc(loc)}: " if loc else ""
            found[key] = RunbookError(where + message, doc.path, doc.line_of(loc))
    return list(found.values())
