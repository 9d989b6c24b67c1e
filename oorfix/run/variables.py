"""Template variables of a job, and which of their values are secrets.

Precedence, lowest first: runbook ``vars`` < inventory group vars < host vars < ``-e``;
then the names oorfix provides (``host``, ``runbook``, ``hostvars``, ``groups``,
``inventory_hostname``). Runbook vars may be templates over other variables; each is
rendered exactly once, after the runbook vars it uses, so a value that came from the
inventory, ``-e`` or a host is never rendered as a template.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from oorfix.errors import TemplateError
from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Redactor, marked_secrets
from oorfix.runbook import templating
from oorfix.runbook.loader import LoadedRunbook, runbook_templates

# Variables whose names say they hold a secret are masked even when not listed in `secrets:`.
SECRET_NAME = re.compile(
    r"(passw|passphrase|(^|_)pass$|pwd|secret|token|api_?key|private_?key|credential)", re.I
)
MAGIC_GROUPS = ("all", "ungrouped")
# Where the values read by secret(...) are kept in a job's context (for the redactor).
SECRETS_KEY = "__oorfix_secrets__"


def is_secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret (paths to key files do not)."""
    return bool(SECRET_NAME.search(name)) and not name.endswith(("_file", "_path"))


def inventory_secrets(inventory: Inventory) -> list[Any]:
    """Every secret-named or vault-decrypted value of every host: ``hostvars`` reaches all."""
    hosts = inventory.hosts.values()
    named = [v for h in hosts for k, v in h.vars.items() if is_secret_name(k)]
    return named + [secret for h in hosts for v in h.vars.values() for secret in marked_secrets(v)]


def _render_order(loaded: LoadedRunbook, pending: list[str]) -> list[str]:
    """Pending runbook vars ordered so each comes after the pending vars it uses."""
    uses = {n: templating.names_used(loaded.runbook.vars[n]) & set(pending) for n in pending}
    order: list[str] = []
    while len(order) < len(pending):
        ready = [n for n in pending if n not in order and uses[n] <= set(order)]
        if not ready:
            stuck = next(n for n in pending if n not in order)
            raise loaded.error(("vars", stuck), "runbook variables refer to each other in a loop")
        order += ready
    return order


def read_secret(ref: str) -> str:
    """``NAME`` or ``env:NAME``: an environment variable; ``file:PATH``: a file's text."""
    if ref.startswith("file:"):
        return Path(ref.removeprefix("file:")).expanduser().read_text().rstrip("\n")
    return os.environ[ref.removeprefix("env:")]


def runbook_secrets(loaded: LoadedRunbook) -> dict[str, str]:
    """Every ``secret(...)`` the runbook reads, read now: a missing one is an input error."""
    values: dict[str, str] = {}
    for loc, source, expression in runbook_templates(loaded.runbook):
        for ref in templating.secret_names(source, expression) - set(values):
            try:
                values[ref] = read_secret(ref)
            except KeyError:
                raise loaded.error(loc, f"secret {ref!r}: no such environment variable") from None
            except OSError as exc:
                why = exc.strerror or str(exc)
                raise loaded.error(loc, f"secret {ref!r}: cannot read: {why}") from None
    return values


def build_context(
    loaded: LoadedRunbook,
    host: Host,
    inventory: Inventory,
    extra_vars: Mapping[str, Any],
) -> dict[str, Any]:
    """Template variables of ``loaded`` on ``host``."""
    runbook_vars = loaded.runbook.vars
    overridden = set(host.vars) | set(extra_vars)
    pending = [
        n
        for n, v in runbook_vars.items()
        if isinstance(v, str) and templating.is_template(v) and n not in overridden
    ]
    context: dict[str, Any] = {**runbook_vars, **host.vars, **extra_vars}
    context.update(_magic(loaded, host, inventory))
    secrets = runbook_secrets(loaded)
    context[SECRETS_KEY] = secrets
    context["secret"] = secrets.__getitem__
    for name in _render_order(loaded, pending):
        try:
            context[name] = templating.render_text(runbook_vars[name], context)
        except TemplateError as exc:
            raise loaded.error(("vars", name), f"{exc.message} (host {host.name})") from None
    return context


def _magic(loaded: LoadedRunbook, host: Host, inventory: Inventory) -> dict[str, Any]:
    conn = host.connection()
    rb = loaded.runbook
    return {
        "host": {
            "name": host.name,
            "address": conn.address,
            "port": conn.port,
            "user": conn.user,
            "groups": [g for g in host.groups if g not in MAGIC_GROUPS],
        },
        "runbook": {"name": rb.name, "fault": rb.fault, "severity": rb.severity},
        "inventory_hostname": host.name,
        "hostvars": {name: h.vars for name, h in inventory.hosts.items()},
        "groups": {g: sorted(inventory.group_members(g)) for g in inventory.groups},
    }


def job_redactor(
    loaded: LoadedRunbook, context: Mapping[str, Any], site: Iterable[Any] = ()
) -> Redactor:
    """Masks the runbook's declared secrets, secret-named variables and the site's secrets."""
    names = set(loaded.runbook.secrets) | {k for k in context if is_secret_name(k)}
    read = context.get(SECRETS_KEY, {})
    return Redactor.of([*(context[n] for n in names if n in context), *read.values(), *site])
