"""A run: jobs and their variables, rendering and planning offline, the engine (hosts in
parallel, rolling batches, circuit breaker), one job's phases, step execution, judging, batched
checks, connections and the audit trail of a run."""
