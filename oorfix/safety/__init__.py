"""Safety controls a run answers to: the gate (maintenance windows, approvals, host locks,
remediation budgets), the hash-chained audit log, and the state directory they keep."""
