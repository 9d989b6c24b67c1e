"""The public API: small, complete, and lazy (importing oorfix loads none of it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import oorfix

MAX_PUBLIC_NAMES = 20


def test_the_public_api_stays_small() -> None:
    assert len(oorfix.__all__) <= MAX_PUBLIC_NAMES


def test_every_public_name_resolves() -> None:
    for name in oorfix.__all__:
        assert getattr(oorfix, name) is not None, name


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(oorfix.__all__) == {"__version__", *oorfix._EXPORTS}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        oorfix.no_such_thing  # type: ignore[attr-defined]  # noqa: B018


def test_importing_oorfix_loads_no_submodule() -> None:
    code = "import sys, oorfix; print(sorted(m for m in sys.modules if m.startswith('oorfix.')))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
