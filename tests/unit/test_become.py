"""Which steps run privileged, as whom and with which password: runbook step plus inventory."""
# ruff: noqa: S105, S106  (test passwords, on purpose)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oorfix.errors import TemplateError
from oorfix.inventory.hosts import Host
from oorfix.run.become import PASSWORD_ENV, become_for, become_passwords
from oorfix.runbook.models import Step
from oorfix.transport.shell import Become


def step(**fields: Any) -> Step:
    return Step.model_validate({"run": "systemctl restart pg-api", **fields})


def host(**variables: Any) -> Host:
    return Host(name="api-1", vars=variables)


@pytest.fixture(autouse=True)
def _no_environment_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)


def test_an_unprivileged_step_never_becomes_anyone() -> None:
    assert become_for(step(), host(ansible_become_password="pw", ansible_become=True)) is None


def test_sudo_becomes_root_unless_the_inventory_names_another_user() -> None:
    assert become_for(step(sudo=True), host()) == Become(user="root", method="sudo")
    assert become_for(step(sudo=True), host(ansible_become_user="ops")) == Become(user="ops")


def test_the_step_s_become_user_wins_and_implies_privilege() -> None:
    become = become_for(step(become_user="postgres"), host(ansible_become_user="ops"))
    assert become == Become(user="postgres")


@pytest.mark.parametrize(
    "name",
    [
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
        "ansible_sudo_password",
    ],
)
def test_the_password_comes_from_ansible_s_variables(name: str) -> None:
    become = become_for(step(sudo=True), host(**{name: "s3cret"}))
    assert become is not None
    assert become.password == "s3cret"


def test_the_password_comes_from_a_secret_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITE_SUDO", "from-env")
    (tmp_path / "pw").write_text("from-file\n")
    by_env = become_for(step(sudo=True), host(oorfix_become_secret="env:SITE_SUDO"))
    by_file = become_for(step(sudo=True), host(oorfix_become_secret=f"file:{tmp_path / 'pw'}"))
    assert by_env is not None
    assert by_env.password == "from-env"
    assert by_file is not None
    assert by_file.password == "from-file"


def test_the_environment_password_is_the_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "fallback")
    fallback = become_for(step(sudo=True), host())
    inventory = become_for(step(sudo=True), host(ansible_become_password="inventory"))
    assert fallback is not None
    assert fallback.password == "fallback"
    assert inventory is not None
    assert inventory.password == "inventory"


def test_every_become_password_is_known_to_the_redactor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "fallback")
    monkeypatch.setenv("SITE_SUDO", "from-env")
    hosts = {"a": host(oorfix_become_secret="env:SITE_SUDO"), "b": host()}
    assert sorted(become_passwords(hosts)) == ["fallback", "from-env"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"ansible_become_method": "doas"}, "host api-1: become method 'doas' is not supported"),
        (
            {"ansible_become_method": "su", "ansible_become_password": "x"},
            "host api-1: become method su cannot take a password",
        ),
        (
            {"oorfix_become_secret": "env:OORFIX_TEST_UNSET_VARIABLE"},
            "no such environment variable",
        ),
    ],
)
def test_what_cannot_work_is_an_error_naming_the_host(
    variables: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        become_for(step(sudo=True), host(**variables))


def test_su_from_a_root_login_needs_no_password() -> None:
    become = become_for(step(become_user="postgres"), host(ansible_become_method="su"))
    assert become == Become(user="postgres", method="su")
