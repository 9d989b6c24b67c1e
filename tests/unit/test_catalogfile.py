"""A site's catalog.yml: its fault ids and causal links, and the errors it can hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from oorfix.catalog import BUILTIN
from oorfix.errors import InputError, InputErrors
from oorfix.runbook.catalogfile import load_catalog, site_catalog
from oorfix.runbook.loader import load_runbooks

SITE = """\
faults:
  - id: database.replication_lag
    summary: the replica is behind the primary
    symptoms: stale balances
    fix: re-sync the replica
    explains: [software.service_interruption]
"""
RUNBOOK = """\
name: replica-lag
fault: database.replication_lag
hosts: all
detect:
  - run: check-lag
"""


def test_a_site_fault_joins_the_catalogue_with_its_links(tmp_path: Path) -> None:
    (tmp_path / "catalog.yml").write_text(SITE)
    catalog = site_catalog([tmp_path])
    fault = catalog.faults["database.replication_lag"]
    assert (fault.category, fault.fix, fault.source) == (
        "database",
        "re-sync the replica",
        str((tmp_path / "catalog.yml").resolve()),
    )
    assert catalog.explains("database.replication_lag", "software.service_interruption")
    assert set(BUILTIN.faults) < set(catalog.faults)


def test_runbooks_beside_it_may_name_the_site_fault_and_it_is_not_a_runbook(
    tmp_path: Path,
) -> None:
    (tmp_path / "catalog.yml").write_text(SITE)
    (tmp_path / "lag.yml").write_text(RUNBOOK)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "lag2.yml").write_text(RUNBOOK.replace("replica-lag", "replica-lag-2"))
    loaded = load_runbooks([tmp_path])
    assert sorted(item.name for item in loaded) == ["replica-lag", "replica-lag-2"]
    # A file given on its own finds the catalogue of its directory or the one above.
    assert [item.name for item in load_runbooks([tmp_path / "sub" / "lag2.yml"])] == [
        "replica-lag-2"
    ]


def test_without_the_site_catalogue_the_fault_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "lag.yml").write_text(RUNBOOK)
    with pytest.raises(InputError) as caught:
        load_runbooks([tmp_path])
    assert caught.value.location_message().endswith(
        "lag.yml:2: fault: unknown fault id 'database.replication_lag' (see `oorfix catalog`; "
        "a site declares its own in catalog.yml beside its runbooks)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "faults:\n  - id: software.crash\n",
            "catalog.yml:2: faults[0].id: 'software.crash' is a built-in fault id",
            id="built-in id",
        ),
        pytest.param(
            "faults:\n  - id: Database-Lag\n",
            "catalog.yml:2: faults[0].id: 'Database-Lag': a fault id is category.name",
            id="bad id",
        ),
        pytest.param(
            "faults:\n  - id: db.lag\n    explains: [db.nope]\n",
            "catalog.yml:3: faults[0].explains[0]: unknown fault id 'db.nope'",
            id="unknown link",
        ),
        pytest.param(
            "faults:\n  - id: db.lag\n    colour: red\n",
            "catalog.yml:3: faults[0].colour: unknown key",
            id="unknown key",
        ),
        pytest.param(
            "faults:\n  - id: db.lag\n  - id: db.lag\n",
            "catalog.yml:3: faults[1].id: 'db.lag' is also declared in",
            id="twice",
        ),
        pytest.param("- db.lag\n", "catalog.yml:1: a catalogue is a mapping", id="not a mapping"),
    ],
)
def test_a_bad_catalogue_is_an_input_error_with_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "catalog.yml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_catalog([path])
    message = caught.value.location_message()
    assert message.startswith(str(tmp_path) + "/" + expected), message


def test_every_problem_of_a_catalogue_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yml"
    path.write_text("faults:\n  - id: software.crash\n  - id: db.lag\n    colour: red\n")
    with pytest.raises(InputErrors) as caught:
        load_catalog([path])
    messages = [e.location_message() for e in caught.value.errors]
    assert messages == [
        f"{path}:2: faults[0].id: 'software.crash' is a built-in fault id (see `oorfix catalog`)",
        f"{path}:4: faults[1].colour: unknown key (check its spelling; see `oorfix schema`)",
    ]
