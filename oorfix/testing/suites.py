"""Finding and loading runbook test files, each with its runbook and its hosts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from oorfix.errors import InputError, InputErrors, RunbookError
from oorfix.inventory.core import Inventory, inventory_from_document
from oorfix.inventory.patterns import split_pattern
from oorfix.run.planner import plan_run
from oorfix.runbook.loader import TEST_SUFFIXES, LoadedRunbook, load_runbooks, runbook_steps
from oorfix.runbook.validation import validation_errors
from oorfix.runbook.yamlsource import Document, Loc, load_file
from oorfix.testing.models import Suite

DEFAULT_HOST = "test-host"
DEFAULT_RUNBOOKS = Path("runbooks")


@dataclass(frozen=True)
class LoadedSuite:
    """A test file, validated, with the runbook it tests and the inventory it runs on."""

    suite: Suite
    path: Path
    doc: Document
    runbook: LoadedRunbook
    inventory: Inventory

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` in the test file."""
        return self.doc.line_of(loc)


def suite_files(paths: Iterable[Path]) -> list[Path]:
    """Every runbook test file in ``paths`` (files or directories), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.name.endswith(TEST_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise InputError("no such file or directory", path)
    return found


def _runbook(suite: Suite, path: Path, doc: Document) -> LoadedRunbook:
    """The runbook a test names: a path relative to the test, else a name looked up in the
    test's folder, the folder above it, and `runbooks/`."""
    target = suite.runbook
    if "/" in target or target.endswith((".yml", ".yaml")):
        candidates: list[tuple[Path | str, Path | None]] = [(path.parent / target, None)]
    else:
        # Beside the test, the folder above it (runbooks/tests/ -> runbooks/), then runbooks/.
        folders = dict.fromkeys([path.parent, path.parent.parent, DEFAULT_RUNBOOKS])
        candidates = [(target, folder) for folder in folders if folder.is_dir()]
    for name, folder in candidates:
        try:
            (loaded,) = load_runbooks([name], folder)
        except RunbookError as exc:
            if exc.message.startswith("no runbook file or runbook named"):
                continue
            raise
        return loaded
    where = "beside this file, in the folder above it, or in runbooks/"
    raise RunbookError(f"runbook: no runbook {target!r} {where}", path, doc.line_of(("runbook",)))


def _sub_document(doc: Document, prefix: Loc) -> Document:
    """The part of ``doc`` under ``prefix``, with its lines, as a document of its own."""
    lines = {
        loc[len(prefix) :]: line for loc, line in doc.lines.items() if loc[: len(prefix)] == prefix
    }
    data = doc.data
    for part in prefix:
        data = data[part]
    return Document(path=doc.path, data=data, lines=lines)


def _pattern_names(pattern: str) -> set[str]:
    """The plain names in a host pattern (``payment_api:!pg-api-3`` -> both names)."""
    names = (part.lstrip("!&") for part in split_pattern(pattern))
    return {n for n in names if n and not any(c in n for c in "*?[~")}


def _default_inventory(loaded: LoadedRunbook, path: Path) -> Inventory:
    """One host in every group the runbook's host patterns name (`hosts` and each `on`)."""
    groups = _pattern_names(loaded.runbook.hosts)
    for _, step in runbook_steps(loaded.runbook):
        if step.on is not None and "{{" not in step.on:
            groups |= _pattern_names(step.on)
    children: dict[str, object] = {
        group: {"hosts": {DEFAULT_HOST: {}}} for group in sorted(groups - {"all"})
    }
    data = {"all": {"hosts": {DEFAULT_HOST: {}}, "children": children}}
    return inventory_from_document(Document(path=path, data=data))


def load_suite(path: Path) -> LoadedSuite:
    """Load and validate one test file; InputError(s) naming the file and line."""
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise RunbookError("a runbook test is a mapping (runbook, scenarios, ...)", path, 1)
    try:
        suite = Suite.model_validate(doc.data)
    except ValidationError as exc:
        errors = validation_errors(doc, exc)
        raise errors[0] if len(errors) == 1 else InputErrors(errors) from None
    runbook = _runbook(suite, path, doc)
    if suite.inventory is not None:
        inventory = inventory_from_document(_sub_document(doc, ("inventory",)))
    else:
        inventory = _default_inventory(runbook, path)
    try:  # a variable the test's hosts lack is this file's error, found before anything runs
        plan_run([runbook], inventory, suite.vars)
    except InputError as exc:
        where = ("inventory",) if suite.inventory is not None else ("runbook",)
        message = f"the runbook does not render for this test's hosts: {exc.location_message()}"
        raise RunbookError(message, path, doc.line_of(where)) from None
    return LoadedSuite(suite, path, doc, runbook, inventory)


def load_suites(paths: Iterable[Path]) -> list[LoadedSuite]:
    """Every test file in ``paths``, loaded; every error collected."""
    loaded: list[LoadedSuite] = []
    errors: list[InputError] = []
    for path in suite_files(paths):
        try:
            loaded.append(load_suite(path))
        except InputErrors as exc:
            errors.extend(exc.errors)
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return loaded
