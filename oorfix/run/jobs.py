"""Jobs: one runbook to run against one host, with the host's variables resolved."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from oorfix.inventory.core import Inventory
from oorfix.inventory.hosts import Host
from oorfix.redact import Redactor
from oorfix.results import Phase
from oorfix.run.variables import build_context, job_redactor
from oorfix.runbook.loader import LoadedRunbook
from oorfix.runbook.models import Runbook, Step
from oorfix.runbook.yamlsource import Loc


@dataclass(frozen=True)
class Job:
    """One runbook to run against one host, with the host's variables resolved."""

    loaded: LoadedRunbook
    host: Host
    context: Mapping[str, Any]
    redactor: Redactor

    @property
    def runbook(self) -> Runbook:
        """The runbook."""
        return self.loaded.runbook

    @property
    def runbook_name(self) -> str:
        """The runbook's name."""
        return self.loaded.name

    @property
    def host_name(self) -> str:
        """The name of the host the job runs on."""
        return self.host.name


def make_job(
    loaded: LoadedRunbook,
    host: Host,
    inventory: Inventory,
    extra_vars: Mapping[str, Any],
    site_secrets: Sequence[Any] = (),
) -> Job:
    """A job with its context and the redactor for its secrets."""
    context = build_context(loaded, host, inventory, extra_vars)
    redactor = job_redactor(loaded, context, site_secrets)
    return Job(loaded=loaded, host=host, context=context, redactor=redactor)


def phase_steps(job: Job) -> Iterator[tuple[Phase, Loc, Step]]:
    """Every step of the job's runbook in phase order, with its location in the file."""
    rb = job.runbook
    for phase, loc, steps in (
        (Phase.SYMPTOMS, ("symptoms",), rb.symptoms),
        (Phase.DETECT, ("detect",), rb.detect),
        (Phase.EVIDENCE, ("evidence",), rb.evidence),
        (Phase.REMEDIATE, ("remediate",), rb.remediate),
        (Phase.VERIFY, ("verify", "checks"), rb.verify.checks or []),
        (Phase.ROLLBACK, ("rollback",), rb.rollback),
        (Phase.ESCALATE, ("escalate", "steps"), rb.escalate.steps if rb.escalate else []),
    ):
        for i, step in enumerate(steps):
            yield phase, (*loc, i), step


def registered_names(job: Job) -> frozenset[str]:
    """The names the job's steps register results under."""
    return frozenset(s.register_as for _, _, s in phase_steps(job) if s.register_as)
