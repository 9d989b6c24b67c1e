"""The audit of a run: an intent before, and a result after, each command that may change a host.

The step executor tells its trail about every command it sends; the trail writes entries only
for mutating steps (a read-only check changes nothing worth a tamper-evident record). Runs that
send no change are given ``NoAudit``, so no run can forget its audit by omission.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from oorfix.errors import StateUnavailable
from oorfix.inventory.hosts import Host
from oorfix.run.jobs import Job
from oorfix.run.render import RenderedStep
from oorfix.safety.audit import AuditWhere, CommandAudit

log = logging.getLogger(__name__)


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
    # Why results could not be written: a change whose result is missing from the audit
    # stops the run's further changes (an intent that cannot be written stops its own step;
    # read-only checks go on).
    _broken: list[str] = field(default_factory=list)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @property
    def broken(self) -> str | None:
        """Why the audit can no longer be trusted to record this run's changes, if so."""
        with self._guard:
            return self._broken[0] if self._broken else None

    def before(self, job: Job, rendered: RenderedStep, target: Host) -> Pending | None:
        """Write the intent of a mutating step (None for a read-only one)."""
        if not rendered.mutating:
            return None
        broken = self.broken
        if broken is not None:  # no further change once one change's result went unrecorded
            raise StateUnavailable(f"{broken}; no further change is sent")
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
        if pending is None:
            return
        try:
            self.log.result(pending.where, rc, status, pending.intent_id)
        except StateUnavailable as exc:  # the step already ran: keep its result, stop the rest
            log.error("audit result of %s not written: %s", pending.where.step, exc)
            with self._guard:
                self._broken.append(f"the audit log cannot be written: {exc}")
