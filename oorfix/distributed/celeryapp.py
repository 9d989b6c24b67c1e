"""The Celery application controllers and workers share: Redis as broker and result backend.

JSON only (no pickle: a message never becomes code). Acknowledged when the task ends, with
a prefetch of one, so a worker holds only the tasks it is running: none waits, unseen, in
the memory of a worker that dies. A task that is delivered again after its worker died is
never run twice: its first start claimed it (``<prefix>:task:<id>:claimed``), and the second
delivery is dropped without a result (a fix is never silently retried). Liveness is ours,
not Celery's: a running task refreshes ``<prefix>:task:<id>:alive`` in the same Redis, and
the controller calls a task whose key expired lost. Results are kept a day.
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from oorfix.errors import InputError
from oorfix.safety.redis_client import is_redis_url, mask_url

if TYPE_CHECKING:
    from celery import Celery

TASK = "oorfix.run_host"
QUEUE = "oorfix"
PASSWORD_ENV = "OORFIX_WORKERS_PASSWORD"  # noqa: S105 - a variable name, not a password
HEARTBEAT_ENV = "OORFIX_WORKER_HEARTBEAT"
DEFAULT_HEARTBEAT = 5.0  # seconds between a running task's liveness refreshes
LOST_AFTER = 3  # heartbeats missed before a task's worker is called lost


def heartbeat() -> float:
    """Seconds between liveness refreshes (``OORFIX_WORKER_HEARTBEAT``, for tests and sites)."""
    try:
        value = float(os.environ.get(HEARTBEAT_ENV, DEFAULT_HEARTBEAT))
    except ValueError:
        raise InputError(f"{HEARTBEAT_ENV} must be a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise InputError(f"{HEARTBEAT_ENV} must be between 0.05 and 3600 seconds")
    return value


def broker_url(url: str) -> str:
    """``url`` checked to be Redis, with the password from ``OORFIX_WORKERS_PASSWORD`` if the
    URL has none; InputError naming the URL (masked) otherwise."""
    if not is_redis_url(url) or url.lower().startswith("unix:"):
        raise InputError(f"--workers {mask_url(url)}: a redis:// or rediss:// URL (Celery broker)")
    parts = urlsplit(url)
    password = os.environ.get(PASSWORD_ENV)
    if password and parts.password is None:
        user = parts.username or ""
        netloc = f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def make_app(url: str) -> Celery:
    """The Celery app for the broker at ``url``."""
    from celery import Celery  # a run without --workers never pays for the import

    full = broker_url(url)
    app = Celery("oorfix", broker=full, backend=full, set_as_current=False)
    options: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        "task_default_queue": QUEUE,
        "result_expires": 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "broker_transport_options": {"socket_timeout": 10, "socket_connect_timeout": 10},
        "redis_socket_timeout": 10,
        "redis_socket_connect_timeout": 10,
        "result_backend_transport_options": {"socket_timeout": 10},
    }
    if urlsplit(full).scheme.lower() == "rediss":
        # TLS verifies the broker's certificate unless the URL says otherwise (ssl_cert_reqs=).
        tls = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
        options |= {"broker_use_ssl": tls, "redis_backend_use_ssl": tls}
    app.conf.update(options)
    return app


def alive_key(task_id: str) -> str:
    """The key a running task refreshes."""
    return f"oorfix:task:{task_id}:alive"


def claim_key(task_id: str) -> str:
    """The key the first start of a task sets, so a second delivery never runs it."""
    return f"oorfix:task:{task_id}:claimed"


def cancel_key(task_id: str) -> str:
    """The key a controller sets on a task it took back, so no worker starts it later."""
    return f"oorfix:task:{task_id}:cancelled"


def stop_key(run_id: str) -> str:
    """The key a controller sets when its run is interrupted."""
    return f"oorfix:stop:{run_id}"
