"""The safe YAML loader: traps PyYAML leaves open are closed, and every error has a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oorfix.errors import InputError, YamlError
from oorfix.runbook.yamlsource import (
    MAX_EXPANDED_NODES,
    MAX_FILE_BYTES,
    Document,
    load_file,
    load_text,
)

SOURCE = Path("source.yml")

# The classic "billion laughs": 342 bytes that expand to 9**9 strings when walked.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def load_error(text: str) -> str:
    with pytest.raises(YamlError) as info:
        load_text(text, SOURCE)
    return info.value.location_message()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a: 1\nb: 2\na: 3\n", "source.yml:3: duplicate key 'a'", id="top-level"),
        pytest.param("a: {b: 1, b: 2}\n", "source.yml:1: duplicate key 'b'", id="flow-mapping"),
        pytest.param(
            "a:\n  - {x: 1}\n  - x: 1\n    y: 2\n    x: 3\n",
            "source.yml:5: duplicate key 'x'",
            id="nested-in-list",
        ),
        pytest.param("? a\n: 1\n? a\n: 2\n", "source.yml:3: duplicate key 'a'", id="complex-keys"),
        pytest.param(
            "a: &a {x: 1}\nb:\n  <<: *a\n  x: 2\n  x: 3\n",
            "source.yml:5: duplicate key 'x'",
            id="explicit-after-merge",
        ),
        pytest.param("1: a\n1.0: b\n", "source.yml:2: duplicate key 1.0", id="equal-numbers"),
    ],
)
def test_duplicate_keys_are_rejected_with_their_line(text: str, expected: str) -> None:
    assert load_error(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
            "source.yml:1: tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
            id="python-object-apply",
        ),
        pytest.param(
            "!!python/name:os.system\n",
            "source.yml:1: tag 'tag:yaml.org,2002:python/name:os.system' is not allowed",
            id="python-name",
        ),
        pytest.param(
            "x: 1\na: !!python/tuple [1, 2]\n",
            "source.yml:2: tag 'tag:yaml.org,2002:python/tuple' is not allowed",
            id="python-tuple",
        ),
        pytest.param("a: !foo x\n", "source.yml:1: tag '!foo' is not allowed", id="local-tag"),
        pytest.param(
            "a: !!binary aGVsbG8=\n",
            "source.yml:1: tag 'tag:yaml.org,2002:binary' is not allowed",
            id="binary",
        ),
        pytest.param(
            "a: !!set {x}\n",
            "source.yml:1: tag 'tag:yaml.org,2002:set' is not allowed",
            id="set",
        ),
        pytest.param(
            "a: !!timestamp 2020-01-01\n",
            "source.yml:1: tag 'tag:yaml.org,2002:timestamp' is not allowed",
            id="timestamp",
        ),
        pytest.param("a: !!int x\n", "source.yml:1: 'x' is not a valid int", id="bad-int"),
        pytest.param("a: !!bool yes\n", "source.yml:1: 'yes' is not a valid bool", id="bad-bool"),
    ],
)
def test_unsafe_and_unknown_tags_are_rejected(text: str, expected: str) -> None:
    assert load_error(text) == expected


def test_billion_laughs_is_rejected_before_it_is_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    from oorfix.runbook import yamlsource

    class NeverBuilt:
        def __init__(self, path: Path) -> None:
            raise AssertionError("the expansion was walked")  # ~4e8 nodes: minutes

    monkeypatch.setattr(yamlsource, "_Builder", NeverBuilt)
    assert len(BILLION_LAUGHS) == 342
    message = load_error(BILLION_LAUGHS)
    assert message == f"source.yml:1: aliases expand to more than {MAX_EXPANDED_NODES} nodes"


def test_aliases_below_the_bound_are_expanded() -> None:
    doc = load_text("\n".join(BILLION_LAUGHS.splitlines()[:4]) + "\n", SOURCE)
    level_d = doc.data["d"]
    assert len(level_d) == 9
    assert sum(len(b) for c in level_d for b in c) == 9**3
    assert level_d[8][8][8] == ["lol"] * 9


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a: &a [*a]\n", "source.yml:1: recursive alias", id="sequence"),
        pytest.param("a: &a {b: *a}\n", "source.yml:1: recursive alias", id="flow-mapping"),
        pytest.param("x: 1\na: &a\n  b: *a\n", "source.yml:2: recursive alias", id="block"),
        pytest.param(
            "x: 1\na: &a\n  - 1\n  - [2, *a]\n", "source.yml:2: recursive alias", id="deeper"
        ),
    ],
)
def test_recursive_alias_is_rejected(text: str, expected: str) -> None:
    assert load_error(text) == expected


def test_repeated_non_recursive_alias_is_fine() -> None:
    doc = load_text("- &x\n  a: 1\n- *x\n- *x\n", SOURCE)
    assert doc.data == [{"a": 1}, {"a": 1}, {"a": 1}]
    assert doc.data[1] is not doc.data[0]  # copies: mutating one cannot change another


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("NO", "NO"),
        ("no", "no"),
        ("yes", "yes"),
        ("Yes", "Yes"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("0755", "0755"),
        ("0o17", "0o17"),
        ("0x1F", "0x1F"),
        ("2020-01-01", "2020-01-01"),
        ("12:30:00", "12:30:00"),
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("0", 0),
        ("12", 12),
        ("-3", -3),
        ("+1", 1),
        ("1_000", 1000),
        ("1.5", 1.5),
        ("1.10", 1.1),
        (".5", 0.5),
        ("-2.5e3", -2500.0),
        ("~", None),
        ("null", None),
        ("'1'", "1"),
        ('"true"', "true"),
        ("'0755'", "0755"),
        ("'~'", "~"),
        ("''", ""),
        ("!!str 12", "12"),
        ("!!str", ""),
        ("!!int 12", 12),
        ("!!float 1.5", 1.5),
    ],
)
def test_scalars_resolve_with_yaml_1_2_rules(scalar: str, expected: Any) -> None:
    value = load_text(f"v: {scalar}\n", SOURCE).data["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_empty_value_and_empty_document() -> None:
    assert load_text("a:\n", SOURCE).data == {"a": None}
    empty = load_text("# only a comment\n", SOURCE)
    assert empty.data is None
    assert empty.lines == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v: !!int true\n", "source.yml:1: 'true' is not a valid int"),
        ("v: !!bool 1\n", "source.yml:1: '1' is not a valid bool"),
        ("v: !!null x\n", "source.yml:1: 'x' is not a valid null"),
    ],
)
def test_explicit_tag_that_does_not_fit_is_rejected(text: str, expected: str) -> None:
    assert load_error(text) == expected


def test_explicit_float_tag_gives_a_float() -> None:
    assert repr(load_text("v: !!float 1\n", SOURCE).data["v"]) == "1.0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "a: [1\n", "source.yml:2: invalid YAML: expected ',' or ']', but got '<stream end>'"
        ),
        pytest.param(
            "a: [1, 2\nb: 3\n", "source.yml:2: invalid YAML: expected ',' or ']', but got ':'"
        ),
        pytest.param(
            "key: value\n  bad: indent\n",
            "source.yml:2: invalid YAML: mapping values are not allowed here",
        ),
        pytest.param(
            "a:\n\tb: 1\n",
            "source.yml:2: invalid YAML: found character '\\t' that cannot start any token",
        ),
        pytest.param(
            "a: 'unterminated\nb: 2\n", "source.yml:3: invalid YAML: found unexpected end of stream"
        ),
        pytest.param("a: 1\n---\nb: 2\n", "source.yml:2: invalid YAML: but found another document"),
        pytest.param("a: *nope\n", "source.yml:1: invalid YAML: found undefined alias 'nope'"),
        pytest.param("? [a]\n: 1\n", "source.yml:1: a mapping key must be a plain value"),
    ],
)
def test_syntax_errors_name_the_line(text: str, expected: str) -> None:
    assert load_error(text) == expected


def test_yaml_error_is_an_input_error_with_path_and_line() -> None:
    with pytest.raises(InputError) as info:
        load_text("x: 1\ny: [\n", Path("/srv/rb.yml"))
    assert isinstance(info.value, YamlError)
    assert (info.value.path, info.value.line) == ("/srv/rb.yml", 3)
    assert str(info.value) == info.value.location_message()


@pytest.mark.parametrize(
    ("size", "accepted"),
    [(MAX_FILE_BYTES - 1, True), (MAX_FILE_BYTES, True), (MAX_FILE_BYTES + 1, False)],
)
def test_file_size_limit(tmp_path: Path, size: int, accepted: bool) -> None:
    path = tmp_path / "big.yml"
    path.write_bytes(b"a: 1\n" + b"#" * (size - 5))
    assert path.stat().st_size == size
    if accepted:
        assert load_file(path).data == {"a": 1}
    else:
        with pytest.raises(YamlError) as info:
            load_file(path)
        assert info.value.location_message() == f"{path}: file is larger than 1048576 bytes"


def test_load_text_counts_bytes_not_characters() -> None:
    # 'é' is two bytes in UTF-8: half a million of them are over the limit.
    text = "k: " + "é" * (MAX_FILE_BYTES // 2) + "\n"
    assert len(text) < MAX_FILE_BYTES < len(text.encode())
    assert load_error(text) == "source.yml: file is larger than 1048576 bytes"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a: caf\xe9\n", "not UTF-8 text (invalid continuation byte at byte 6)"),
        (b"\xff\xfe\x00a", "not UTF-8 text (invalid start byte at byte 0)"),
        (b"a: ok\nb: \x80\n", "not UTF-8 text (invalid start byte at byte 9)"),
    ],
)
def test_non_utf8_file_is_rejected_clearly(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(content)
    with pytest.raises(YamlError) as info:
        load_file(path)
    assert info.value.location_message() == f"{path}: {expected}"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yml"
    with pytest.raises(YamlError) as info:
        load_file(path)
    assert info.value.location_message() == f"{path}: cannot read: No such file or directory"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_file(path).data == {"a": 1}


NESTED = """\
# comment
top:
  list:
    - first
    - key: 1
      other: 2
  flag: true
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        ((), 2),
        (("top",), 2),
        (("top", "list"), 3),
        (("top", "list", 0), 4),
        (("top", "list", 1), 5),
        (("top", "list", 1, "other"), 6),
        (("top", "flag"), 7),
        (("top", "list", 1, "other", "deeper", 3), 6),  # falls back to the nearest ancestor
        (("top", "nope"), 2),
        (("top", "list", 7), 3),
        (("missing",), 2),  # unknown top-level key: the document's first line
    ],
)
def test_line_of_falls_back_to_the_nearest_ancestor(loc: tuple[Any, ...], line: int) -> None:
    assert load_text(NESTED, SOURCE).line_of(loc) == line


def test_line_of_in_an_empty_document_is_none() -> None:
    assert load_text("", SOURCE).line_of(("a",)) is None
    assert Document(path=SOURCE, data=None).line_of(()) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n",
            {"base": {"x": 1, "y": 2}, "d": {"x": 1, "y": 3}},
            id="explicit-key-wins",
        ),
        pytest.param(
            "base: &b {x: 1}\nd:\n  y: 3\n  <<: *b\n",
            {"base": {"x": 1}, "d": {"y": 3, "x": 1}},
            id="merge-after-keys",
        ),
        pytest.param(
            "a: &a {x: 1}\nb: &b {x: 2, z: 1}\nd:\n  <<: [*a, *b]\n",
            {"a": {"x": 1}, "b": {"x": 2, "z": 1}, "d": {"x": 1, "z": 1}},
            id="first-source-wins",
        ),
        pytest.param("'<<': 1\n", {"<<": 1}, id="quoted-is-a-plain-key"),
    ],
)
def test_merge_keys(text: str, expected: dict[str, Any]) -> None:
    assert load_text(text, SOURCE).data == expected


def test_merged_keys_keep_the_line_of_their_source() -> None:
    doc = load_text("base: &b {x: 1}\nd:\n  <<: *b\n  y: 3\n", SOURCE)
    assert (doc.line_of(("d", "x")), doc.line_of(("d", "y")), doc.line_of(("d",))) == (1, 4, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d:\n  <<: [1]\n", "source.yml:2: '<<' merges only mappings"),
        ("s: &s [1]\nd:\n  <<: *s\n", "source.yml:1: '<<' merges only mappings"),
    ],
)
def test_merge_of_a_non_mapping_is_rejected(text: str, expected: str) -> None:
    assert load_error(text) == expected


def test_the_fast_parser_reads_every_shipped_file_as_the_pure_one_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from oorfix.runbook import yamlsource

    repo = Path(__file__).resolve().parents[2]
    files = sorted([*repo.glob("runbooks/*.yml"), *repo.glob("inventory/**/*.yml")])
    assert files
    fast = [load_file(path) for path in files]
    monkeypatch.setattr(yamlsource, "_FastComposer", yamlsource._Composer)
    pure = [load_file(path) for path in files]
    assert [(d.data, d.lines) for d in fast] == [(d.data, d.lines) for d in pure]
