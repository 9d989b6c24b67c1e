"""Runbook files to validated models; every problem reported as ``path:line: message``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from oorfix.catalog import BUILTIN, Catalog
from oorfix.errors import InputError, InputErrors, RunbookError, TemplateError
from oorfix.runbook import actions, templating
from oorfix.runbook.catalogfile import CATALOG_FILE, site_catalog
from oorfix.runbook.models import Runbook, Step
from oorfix.runbook.validation import format_loc, validation_errors
from oorfix.runbook.yamlsource import Document, Loc, load_file

RUNBOOK_SUFFIXES = (".yml", ".yaml")
TEST_SUFFIXES = (".test.yml", ".test.yaml")  # runbook tests live beside runbooks
READ_ONLY_PHASES = ("detect", "evidence")
MAX_REPORTED_ERRORS = 25


@dataclass(frozen=True)
class LoadedRunbook:
    """A validated runbook and where each of its parts came from."""

    runbook: Runbook
    path: Path
    doc: Document

    @property
    def name(self) -> str:
        """The runbook's name."""
        return self.runbook.name

    def error(self, loc: Loc, message: str, cls: type[InputError] = RunbookError) -> InputError:
        """An input error located at ``loc`` in this runbook's file."""
        return cls(f"{format_loc(loc)}: {message}" if loc else message, self.path, self.line(loc))

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` in the file."""
        return self.doc.line_of(loc)


def runbook_steps(runbook: Runbook) -> Iterator[tuple[Loc, Step]]:
    """Every step of a runbook with its location; ``loc[0]`` names its phase."""
    for phase in ("symptoms", "detect", "evidence", "remediate", "rollback"):
        for i, step in enumerate(getattr(runbook, phase)):
            yield (phase, i), step
    for i, step in enumerate(runbook.verify.checks or []):
        yield ("verify", "checks", i), step
    if runbook.escalate is not None:
        for i, step in enumerate(runbook.escalate.steps):
            yield ("escalate", "steps", i), step


def template_fields(step: Step) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """Every template string of a step: (key path, source, is an expression)."""
    for key in ("name", "run", "on", "stdin"):
        value = getattr(step, key)
        if isinstance(value, str):
            yield (key,), value, False
    if step.when is not None:
        yield ("when",), step.when, True
    if step.expect is not None and step.expect.that is not None:
        yield ("expect", "that"), step.expect.that, True
    if step.kind != "run":
        for key, value in step.params.model_dump(exclude_none=True).items():
            if isinstance(value, str):
                yield (step.kind, key), value, False


def runbook_templates(rb: Runbook) -> Iterator[tuple[Loc, str, bool]]:
    """Every template of a runbook: (location, source, is an expression)."""
    for loc, step in runbook_steps(rb):
        for key, source, expression in template_fields(step):
            yield (*loc, *key), source, expression
    for name, value in rb.vars.items():
        if isinstance(value, str):
            yield ("vars", name), value, False
    if rb.escalate is not None:
        yield ("escalate", "message"), rb.escalate.message, False


def _template_errors(loaded: LoadedRunbook) -> Iterator[InputError]:
    for loc, source, expression in runbook_templates(loaded.runbook):
        try:
            templating.check_syntax(source, expression)
            templating.secret_names(source, expression)
        except TemplateError as exc:
            yield loaded.error(loc, exc.message, TemplateError)


def _static_errors(loaded: LoadedRunbook) -> Iterator[InputError]:
    for loc, step in runbook_steps(loaded.runbook):
        read_only = loc[0] in READ_ONLY_PHASES or loc[0] == "verify"
        if read_only and step.kind != "run" and actions.mutates(step.kind):
            yield loaded.error((*loc, step.kind), f"{loc[0]} is read-only; move it to remediate")
        for quoted in templating.quoted_expressions(step.run or ""):
            yield loaded.error(
                (*loc, "run"),
                f"{quoted} stands inside quotes, which undoes the quoting oorfix adds to "
                "every value; remove the quotes around it (or use | raw deliberately)",
                TemplateError,
            )
    yield from _template_errors(loaded)


def load_runbook(path: Path, catalog: Catalog = BUILTIN) -> LoadedRunbook:
    """Load and validate one runbook file; raises InputError(s) naming file and line."""
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise RunbookError("a runbook is a mapping of keys (name, fault, detect, ...)", path, 1)
    try:
        runbook = Runbook.model_validate(doc.data, context={"catalog": catalog})
    except ValidationError as exc:
        errors = validation_errors(doc, exc)
        raise errors[0] if len(errors) == 1 else InputErrors(errors[:MAX_REPORTED_ERRORS]) from None
    loaded = LoadedRunbook(runbook=runbook, path=path, doc=doc)
    errors = list(_static_errors(loaded))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors[:MAX_REPORTED_ERRORS])
    return loaded


def runbook_files(path: Path) -> list[Path]:
    """``path`` itself, or the runbook files inside the directory ``path``, sorted."""
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.suffix in RUNBOOK_SUFFIXES
            and p.name != CATALOG_FILE
            and not p.name.endswith(TEST_SUFFIXES)
            and p.is_file()
        )
    return [path]


def load_runbooks(
    targets: Iterable[Path | str], search_dir: Path | None = None
) -> list[LoadedRunbook]:
    """Load runbooks from files, directories or runbook names; collect every error.

    Fault ids are checked against the built-in catalogue and the ``catalog.yml`` beside the
    runbooks given.
    """
    loaded: list[LoadedRunbook] = []
    errors: list[InputError] = []
    seen: set[Path] = set()
    targets = list(targets)
    try:
        catalog = site_catalog(targets, search_dir)
    except InputErrors as exc:
        errors.extend(exc.errors)
        catalog = BUILTIN
    except InputError as exc:
        errors.append(exc)
        catalog = BUILTIN
    for target in targets:
        for path in _resolve(target, search_dir):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                loaded.append(load_runbook(path, catalog))
            except InputErrors as exc:
                errors.extend(exc.errors)
            except InputError as exc:
                errors.append(exc)
    errors.extend(_duplicate_names(loaded))
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return loaded


def _resolve(target: Path | str, search_dir: Path | None) -> list[Path]:
    path = Path(target)
    if path.exists():
        return runbook_files(path)
    if search_dir is not None and search_dir.is_dir() and "/" not in str(target):
        for candidate in runbook_files(search_dir):
            if candidate.stem == str(target) or _declared_name(candidate) == str(target):
                return [candidate]
    raise RunbookError(f"no runbook file or runbook named {str(target)!r}", path)


def _declared_name(path: Path) -> str | None:
    try:
        data = load_file(path).data
    except InputError:
        return None
    return data.get("name") if isinstance(data, dict) else None


def _duplicate_names(loaded: list[LoadedRunbook]) -> Iterator[InputError]:
    seen: dict[str, LoadedRunbook] = {}
    for item in loaded:
        first = seen.setdefault(item.name, item)
        if first is not item and first.path != item.path:
            yield item.error(("name",), f"runbook name {item.name!r} is also used by {first.path}")
