"""Safe YAML loading with line numbers; the only module that imports yaml.

PyYAML's ``safe_load`` accepts duplicate keys (last wins), reads ``NO`` as False and
``0755`` as 493, and expands a tiny alias bomb into gigabytes only when the data is walked.
This loader composes the node graph itself and then builds plain Python data from it, so it
can reject duplicate keys, bound the expanded size, refuse unknown tags, resolve only YAML 1.2
style scalars, and remember the line of every key and item for error messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from oorfix.errors import YamlError

MAX_FILE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 64

Loc = tuple[str | int, ...]
# A local tag a caller accepts (inventories: Ansible's ``!vault``): the tagged scalar's text and
# line in, its value out. Without one, every tag outside the YAML core schema is refused.
TagHandler = Callable[[str, int], Any]

_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+\.[0-9]*)([eE][-+]?[0-9]+)?$")
_PLAIN = "tag:oorfix,2026:plain"
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:merge",
    _PLAIN,
}


@dataclass
class Document:
    """Plain data loaded from one YAML file, with the line of each key and item."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that has one."""
        parts = tuple(loc)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


class _Composer(yaml.SafeLoader):
    """A loader used only to compose nodes; we construct the values ourselves."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        # Untagged plain scalars are resolved later with YAML 1.2 rules, not 1.1's.
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return yaml.resolver.Resolver.resolve(self, kind, value, implicit)  # type: ignore[no-untyped-call]


class _FastComposer(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser: about 15 times faster, the same nodes and marks; its error messages
    are vaguer, so a document it refuses is composed again by ``_Composer`` to say why."""

    resolve = _Composer.resolve


def _mark_line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias counts once instead of looping
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(item, memo) for item in node.value)
    memo[key] = size
    return size


class _Builder:
    """Turns a composed node graph into plain data, recording lines and rejecting traps."""

    def __init__(
        self, path: Path, plain: Callable[[str], Any], tags: Mapping[str, TagHandler] | None = None
    ):
        self.path = path
        self.plain = plain
        self.tags = tags or {}
        self.lines: dict[Loc, int] = {}
        self.active: set[int] = set()

    def fail(self, node: yaml.Node, message: str) -> YamlError:
        return YamlError(message, self.path, _mark_line(node))

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.lines.setdefault(loc, _mark_line(node))
        if len(loc) > MAX_DEPTH:
            raise self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
        if node.tag in self.tags:
            if not isinstance(node, yaml.ScalarNode):
                raise self.fail(node, f"tag {node.tag!r} takes a text value")
            return self.tags[node.tag](str(node.value), _mark_line(node))
        if node.tag not in _STANDARD_TAGS:
            raise self.fail(node, f"tag {node.tag!r} is not allowed")
        if id(node) in self.active:
            raise self.fail(node, "recursive alias")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, loc)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            return self.scalar(node)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        explicit: set[Any] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _PLAIN and key_node.value == "<<":
                self.merge(result, value_node, loc)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "a mapping key must be a plain value")
            key = self.scalar(key_node)
            if key in explicit:
                raise self.fail(key_node, f"duplicate key {key!r}")
            explicit.add(key)
            if not isinstance(key, str | int):
                key = str(key)
            self.lines[(*loc, key)] = _mark_line(key_node)
            result[key] = self.build(value_node, (*loc, key))
        return result

    def merge(self, result: dict[Any, Any], node: yaml.Node, loc: Loc) -> None:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            merged = self.build(source, loc)
            if not isinstance(merged, Mapping):
                raise self.fail(source, "'<<' merges only mappings")
            for key, value in merged.items():
                result.setdefault(key, value)

    def scalar(self, node: yaml.Node) -> Any:
        value = str(node.value)
        if node.tag == _PLAIN:
            return self.plain(value)
        if node.tag == "tag:yaml.org,2002:str":
            return value
        # An explicit tag (!!int, !!float, !!bool, !!null) must fit its value exactly.
        kind = node.tag.rsplit(":", 1)[-1]
        parsed = _plain(value)
        if kind == "float" and isinstance(parsed, int) and not isinstance(parsed, bool):
            parsed = float(parsed)
        wanted = {"int": int, "float": float, "bool": bool, "null": type(None)}[kind]
        if type(parsed) is not wanted:
            raise self.fail(node, f"{value!r} is not a valid {kind}")
        return parsed


def plain_yaml11(value: str) -> Any:
    """A plain scalar as YAML 1.1 (and so Ansible's inventories) reads it: ``yes``/``no``/
    ``on``/``off`` are booleans, ``0755`` is octal, ``1:30`` is sexagesimal."""
    tag = _RESOLVER_11.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    try:
        return _CONSTRUCTOR_11.construct_object(yaml.ScalarNode(tag, value))
    except (ValueError, OverflowError, yaml.YAMLError):
        return value  # e.g. a "timestamp" with month 13: text, as it was written


_RESOLVER_11 = yaml.resolver.Resolver()
_CONSTRUCTOR_11 = yaml.constructor.SafeConstructor()


def _plain(value: str) -> Any:
    """A plain scalar resolved the YAML 1.2 core way; anything else stays a string."""
    if value in _NULL:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT.match(value):
        return int(value.replace("_", ""))
    if _FLOAT.match(value):
        return float(value)
    return value


def _compose(text: str, path: Path) -> yaml.Node | None:
    fast = _FastComposer(text)
    try:
        return fast.get_single_node()  # type: ignore[no-any-return]
    except (yaml.YAMLError, RecursionError):
        pass  # composed again below, for the clearer message
    finally:
        fast.dispose()
    loader = _Composer(text)
    try:
        return loader.get_single_node()
    except RecursionError:
        raise YamlError("invalid YAML: nested too deeply", path) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(f"invalid YAML: {problem}", path, line) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"invalid YAML: {exc}", path) from None
    finally:
        loader.dispose()


def load_text(
    text: str, path: Path, yaml11: bool = False, tags: Mapping[str, TagHandler] | None = None
) -> Document:
    """Load one YAML document from ``text``; errors name ``path`` and the line.

    Plain scalars follow YAML 1.2 (``no`` stays a string), or YAML 1.1 when ``yaml11``: Ansible
    reads inventories and their vars files that way, so a shared inventory must read the same.
    ``tags`` accepts local tags on scalars (``!vault`` in inventories); others stay refused.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise YamlError(f"file is larger than {MAX_FILE_BYTES} bytes", path)
    node = _compose(text, path)
    if node is None:
        return Document(path=path, data=None)
    try:
        size = _expanded_size(node, {})
    except RecursionError:
        raise YamlError("invalid YAML: nested too deeply", path) from None
    if size > MAX_EXPANDED_NODES:
        raise YamlError(
            f"aliases expand to more than {MAX_EXPANDED_NODES} nodes", path, _mark_line(node)
        )
    builder = _Builder(path, plain_yaml11 if yaml11 else _plain, tags)
    data = builder.build(node, ())
    return Document(path=path, data=data, lines=builder.lines)


def load_file(path: Path) -> Document:
    """Read and load one YAML file safely."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise YamlError(f"file is larger than {MAX_FILE_BYTES} bytes", path)
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YamlError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except OSError as exc:
        raise YamlError(f"cannot read: {exc.strerror or exc}", path) from None
    return load_text(text, path)


def dump(data: Any) -> str:
    """Serialise plain data as block-style YAML (for generated files and messages)."""
    return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True))
