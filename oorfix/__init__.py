"""oorfix: turn an out-of-order troubleshooting guide into verified, auditable automation.

The public API is small and loaded lazily, so ``import oorfix`` (and ``oorfix --version``)
pays for nothing it does not use::

    from oorfix import load_inventory, load_runbooks, plan_run, RunMode
    planned = plan_run(load_runbooks(["runbooks/"]), load_inventory("inventory/"), {})

Entry points assemble a run through ``oorfix.app.wiring`` (see ARCHITECTURE.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "OorfixError": "oorfix.errors",
    "InputError": "oorfix.errors",
    "TransportError": "oorfix.errors",
    "Outcome": "oorfix.results",
    "ExitCode": "oorfix.results",
    "RunMode": "oorfix.results",
    "RunResult": "oorfix.results",
    "HostResult": "oorfix.results",
    "StepResult": "oorfix.results",
    "load_runbooks": "oorfix.runbook.loader",
    "load_inventory": "oorfix.inventory.core",
    "plan_run": "oorfix.run.planner",
    "Engine": "oorfix.run.engine",
    "EngineOptions": "oorfix.run.engine",
    "EngineParts": "oorfix.run.engine",
}

__all__ = [
    "Engine",
    "EngineOptions",
    "EngineParts",
    "ExitCode",
    "HostResult",
    "InputError",
    "OorfixError",
    "Outcome",
    "RunMode",
    "RunResult",
    "StepResult",
    "TransportError",
    "__version__",
    "load_inventory",
    "load_runbooks",
    "plan_run",
]

if TYPE_CHECKING:
    from oorfix.errors import InputError, OorfixError, TransportError
    from oorfix.inventory.core import load_inventory
    from oorfix.results import ExitCode, HostResult, Outcome, RunMode, RunResult, StepResult
    from oorfix.run.engine import Engine, EngineOptions, EngineParts
    from oorfix.run.planner import plan_run
    from oorfix.runbook.loader import load_runbooks


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oorfix' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
