"""Runs spread over Celery workers: the controller keeps the run, workers run its hosts.

``oorfix run|diagnose --workers URL`` sends each host's jobs as one signed task
(``payload.py``) through Celery with Redis as broker and result backend (``celeryapp.py``).
``oorfix worker`` (``worker.py``) plans that host again from its own copy of the runbooks and
inventory, checks the plan is the one the controller showed (same digest), and runs it with
the same engine, gate and audit (shared through ``--state redis://``). The controller
(``dispatch.py``) keeps the console, the record, rolling batches and the circuit breaker,
and turns a worker that stops answering into ``error: worker lost``, never a silent retry.
"""
