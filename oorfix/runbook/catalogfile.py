"""A site's own fault ids: ``catalog.yml`` beside its runbooks, merged into the built-in
catalogue.

    faults:
      - id: database.replication_lag
        summary: the replica is behind the primary
        symptoms: stale balances, replication delay above threshold
        fix: re-sync the replica
        explains: [software.service_interruption]

An id is ``category.name`` in lower case; a built-in id or a ``maintenance.`` id cannot be
declared again, and every ``explains`` entry must name a known fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oorfix.catalog import BUILTIN, Catalog, FaultType, is_maintenance
from oorfix.errors import InputError, InputErrors, RunbookError
from oorfix.runbook.validation import format_loc, validation_errors
from oorfix.runbook.yamlsource import Document, load_file

CATALOG_FILE = "catalog.yml"
_FAULT_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")


class SiteFault(BaseModel):
    """One fault id a site declares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="category.name, e.g. database.replication_lag")
    summary: str = ""
    symptoms: str = Field("", description="what the fault looks like from outside")
    fix: str = ""
    explains: list[str] = Field(
        default_factory=list, description="fault ids whose checks this fault sets off"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _FAULT_ID.match(value):
            raise ValueError(f"{value!r}: a fault id is category.name in lower case")
        if is_maintenance(value):
            raise ValueError(f"{value!r}: maintenance ids need no declaration")
        if value in BUILTIN.faults:
            raise ValueError(f"{value!r} is a built-in fault id (see `oorfix catalog`)")
        return value


class SiteCatalog(BaseModel):
    """The schema of a ``catalog.yml`` file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[SiteFault] = Field(default_factory=list)


def _error(doc: Document, loc: tuple[str | int, ...], message: str) -> InputError:
    return RunbookError(f"{format_loc(loc)}: {message}", doc.path, doc.line_of(loc))


def _load(path: Path) -> tuple[Document, SiteCatalog]:
    doc = load_file(path)
    if not isinstance(doc.data, dict):
        raise RunbookError("a catalogue is a mapping with the key 'faults'", path, 1)
    try:
        return doc, SiteCatalog.model_validate(doc.data)
    except ValidationError as exc:
        errors = validation_errors(doc, exc)
        raise errors[0] if len(errors) == 1 else InputErrors(errors) from None


def catalog_files(targets: Iterable[Path | str], search_dir: Path | None = None) -> list[Path]:
    """The ``catalog.yml`` of each runbook directory given (or holding a file given)."""
    found: dict[Path, None] = {}
    for target in [*targets, *([search_dir] if search_dir else [])]:
        path = Path(target)
        folder = path if path.is_dir() else path.parent
        for candidate in (folder / CATALOG_FILE, folder.parent / CATALOG_FILE):
            if candidate.is_file() and (candidate.parent == folder or not path.is_dir()):
                found.setdefault(candidate.resolve())
    return list(found)


def load_catalog(files: Iterable[Path]) -> Catalog:
    """The built-in catalogue extended by each site file; InputError(s) naming file and line."""
    declared: list[tuple[Document, int, SiteFault]] = []
    errors: list[InputError] = []
    for path in files:
        try:
            doc, site = _load(path)
        except InputErrors as exc:
            errors.extend(exc.errors)
            continue
        except InputError as exc:
            errors.append(exc)
            continue
        declared += [(doc, i, fault) for i, fault in enumerate(site.faults)]
    seen: dict[str, Path] = {}
    for doc, i, fault in declared:
        if fault.id in seen:
            errors.append(
                _error(
                    doc, ("faults", i, "id"), f"{fault.id!r} is also declared in {seen[fault.id]}"
                )
            )
        seen.setdefault(fault.id, doc.path)
    catalog = BUILTIN.extended(
        FaultType(f.id, f.symptoms, f.fix, tuple(f.explains), f.summary, str(doc.path))
        for doc, _, f in declared
    )
    for doc, i, fault in declared:
        for j, effect in enumerate(fault.explains):
            if effect not in catalog.faults:
                errors.append(
                    _error(doc, ("faults", i, "explains", j), f"unknown fault id {effect!r}")
                )
    if errors:
        raise errors[0] if len(errors) == 1 else InputErrors(errors)
    return catalog


def site_catalog(targets: Iterable[Path | str], search_dir: Path | None = None) -> Catalog:
    """The catalogue that applies to runbooks loaded from ``targets``."""
    return load_catalog(catalog_files(targets, search_dir))


def schema() -> dict[str, Any]:
    """The JSON Schema of ``catalog.yml``."""
    return SiteCatalog.model_json_schema()
