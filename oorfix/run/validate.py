"""`oorfix validate`: tell runbooks, catalogues and inventories apart, load them all, report
every error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from oorfix.errors import InputError, InputErrors
from oorfix.inventory.core import Inventory, load_inventories
from oorfix.inventory.vault import NO_KEYS, Keyring
from oorfix.run.planner import plan_run
from oorfix.runbook.catalogfile import CATALOG_FILE, load_catalog
from oorfix.runbook.loader import LoadedRunbook, load_runbooks, runbook_files
from oorfix.runbook.yamlsource import load_file

RUNBOOK_KEYS = {"fault", "detect", "remediate"}


def _looks_like_runbook(path: Path) -> bool:
    if path.suffix not in (".yml", ".yaml"):
        return False
    try:
        data = load_file(path).data
    except InputError:
        # Unreadable: the runbook loader reports it with its line, unless it is inventory vars
        # or has a !vault value, which only inventories take.
        return path.parent.name not in ("group_vars", "host_vars") and not _has_vault_tag(path)
    return isinstance(data, dict) and bool(RUNBOOK_KEYS & set(data))


def _has_vault_tag(path: Path) -> bool:
    try:
        return "!vault" in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _is_runbook_dir(path: Path) -> bool:
    inventory_marks = ("group_vars", "host_vars")
    if any((path / mark).is_dir() for mark in inventory_marks):
        return False
    return any(_looks_like_runbook(p) for p in runbook_files(path))


def classify(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split paths into runbook paths and inventory paths."""
    runbooks: list[Path] = []
    inventories: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError("no such file or directory", path)
        is_runbook = _is_runbook_dir(path) if path.is_dir() else _looks_like_runbook(path)
        (runbooks if is_runbook else inventories).append(path)
    return runbooks, inventories


def _collect(errors: list[InputError], exc: InputError) -> None:
    errors.extend(exc.errors if isinstance(exc, InputErrors) else [exc])


def _load_all(
    runbook_paths: list[Path],
    inventory_sources: list[list[Path]],
    keyring: Keyring,
    errors: list[InputError],
) -> tuple[list[LoadedRunbook], list[Inventory]]:
    """Every runbook and inventory (each a list of sources merged); errors go to ``errors``."""
    runbooks: list[LoadedRunbook] = []
    inventories: list[Inventory] = []
    if runbook_paths:
        try:
            runbooks = load_runbooks(runbook_paths)
        except InputError as exc:
            _collect(errors, exc)
    for sources in inventory_sources:
        try:
            inventories.append(load_inventories(sources, keyring))
        except InputError as exc:
            _collect(errors, exc)
    return runbooks, inventories


def _render_all(
    runbooks: list[LoadedRunbook], inventories: list[Inventory]
) -> Iterator[InputError]:
    for inventory in inventories:
        try:
            plan_run(runbooks, inventory, {})
        except InputErrors as exc:
            yield from exc.errors
        except InputError as exc:
            yield exc


def validate_paths(
    paths: list[Path], inventory_paths: list[Path] | None = None, keyring: Keyring = NO_KEYS
) -> str:
    """Load every runbook and inventory; render runbooks per host; raise all errors found.

    Each inventory among ``paths`` stands alone; the ``-i`` sources are merged into one.
    """
    catalogs = [p for p in paths if p.name == CATALOG_FILE and p.is_file()]
    runbook_paths, inventory_args = classify([p for p in paths if p not in catalogs])
    inventory_sources = [[path] for path in inventory_args]
    if inventory_paths:
        inventory_sources.append(list(inventory_paths))
    errors: list[InputError] = []
    if catalogs:
        try:
            load_catalog(catalogs)
        except InputError as exc:
            _collect(errors, exc)
    runbooks, inventories = _load_all(runbook_paths, inventory_sources, keyring, errors)
    if not errors:
        errors.extend(_render_all(runbooks, inventories))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    hosts = sum(len(i.hosts) for i in inventories)
    found = f"{len(runbooks)} runbook(s), {len(inventories)} inventory(ies) with {hosts} host(s)"
    return f"ok: {found}" + (f", {len(catalogs)} catalogue(s)" if catalogs else "")
