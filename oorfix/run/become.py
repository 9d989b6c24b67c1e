"""How a privileged step becomes another user on one host, read from the inventory.

A runbook says which steps are privileged (``sudo: true`` or ``become_user: X``); the
inventory says how, with Ansible's variables: ``ansible_become_user`` (default root),
``ansible_become_method`` (sudo or su) and the password, from the first of
``ansible_become_password`` (also ``ansible_become_pass``, ``ansible_sudo_pass``; vault
values welcome), ``oorfix_become_secret`` (``env:NAME`` or ``file:PATH``) or the
``OORFIX_BECOME_PASSWORD`` environment variable. ``ansible_become: true`` does not make
every step privileged: read-only checks stay unprivileged, which is the point of marking
the steps that need it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from oorfix.errors import TemplateError
from oorfix.inventory.hosts import Host
from oorfix.run.variables import read_secret
from oorfix.runbook.models import Step
from oorfix.transport.shell import Become

PASSWORD_VARS = (
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_sudo_password",
)
SECRET_VAR = "oorfix_become_secret"  # noqa: S105 (a variable name)
PASSWORD_ENV = "OORFIX_BECOME_PASSWORD"  # noqa: S105 (a variable name)


def become_for(step: Step, host: Host) -> Become | None:
    """The become of ``step`` on ``host``, or None for an unprivileged step."""
    if not step.privileged:
        return None
    variables = host.vars
    user = step.become_user or _text(variables, "ansible_become_user") or "root"
    method = _text(variables, "ansible_become_method") or "sudo"
    try:
        return Become(user=user, method=method, password=_password(variables))
    except ValueError as exc:
        raise TemplateError(f"host {host.name}: {exc}") from None


def become_passwords(hosts: Mapping[str, Host]) -> list[str]:
    """Every become password the run may use, for the redactor (those named as secrets are
    masked already; ``oorfix_become_secret`` and the environment's are not)."""
    found = [os.environ[PASSWORD_ENV]] if os.environ.get(PASSWORD_ENV) else []
    for host in hosts.values():
        ref = host.vars.get(SECRET_VAR)
        if isinstance(ref, str):
            try:
                found.append(read_secret(ref))
            except (KeyError, OSError):
                continue  # reported when a step needs it
    return found


def _text(variables: Mapping[str, Any], name: str) -> str | None:
    value = variables.get(name)
    return None if value is None or value == "" else str(value)


def _password(variables: Mapping[str, Any]) -> str | None:
    for name in PASSWORD_VARS:
        value = _text(variables, name)
        if value is not None:
            return value
    ref = _text(variables, SECRET_VAR)
    if ref is not None:
        try:
            return read_secret(ref)
        except KeyError:
            raise ValueError(f"{SECRET_VAR} {ref!r}: no such environment variable") from None
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise ValueError(f"{SECRET_VAR} {ref!r}: cannot read: {why}") from None
    return os.environ.get(PASSWORD_ENV) or None
