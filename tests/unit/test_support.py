"""The one require() rule: skip where a resource is missing, fail where CI requires it."""

from __future__ import annotations

import pytest

from tests.support import require


def test_an_available_resource_passes() -> None:
    require("SSHD", True, "never said")


def test_a_missing_resource_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OORFIX_REQUIRE_NETNS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no namespaces"):
        require("NETNS", False, "no namespaces")


def test_a_missing_resource_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OORFIX_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="OORFIX_REQUIRE_BROWSER=1"):
        require("BROWSER", False, "no chromium")


def test_an_unknown_resource_is_a_mistake_in_the_test() -> None:
    with pytest.raises(ValueError, match="unknown resource"):
        require("GPU", True, "")
