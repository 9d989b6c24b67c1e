"""The audit of a run: an intent before, and a result after, each command that may change a host.

The step executor tells its trail about every command it sends; the trail writes entries only
for mutating steps (a read-only check changes nothing worth a tamper-evident record). Runs that
send no change are given ``NoAudit``, so no run can forget its audit by omission.
"""

from __future__ import annotations

from dataclasses import dataclass

from oorfix.inventory.hosts import Host
from oorfix.run.jobs import Job
from oorfix.run.render import RenderedStep
from oorfix.safety.audit import AuditWhere, CommandAudit


@dataclass(frozen=True)
class Pending:
    """An intent written for a command that is about to run."""

    where: AuditWhere
    intent_id: str


@dataclass(frozen=True)
class AuditTrail:
    """Where one run writes its intent and result entries."""

    log: CommandAudit
    run_id: str

    def before(self, job: Job, rendered: RenderedStep, target: Host) -> Pending | None:
        """Write the intent of a mutating step (None for a read-only one)."""
        if not rendered.mutating:
            return None
        where = AuditWhere(
            self.run_id,
            target.name,
            job.runbook_name,
            str(rendered.phase),
            rendered.label,
            str(rendered.command),
        )
        return Pending(where, self.log.intent(where))

    def after(self, pending: Pending | None, rc: int | None, status: str) -> None:
        """Write how the command of ``pending`` ended."""
        if pending is not None:
            self.log.result(pending.where, rc, status, pending.intent_id)
