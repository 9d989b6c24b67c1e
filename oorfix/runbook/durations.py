"""Durations written as ``30``, ``1.5``, ``500ms``, ``3s``, ``2m`` or ``1h``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 30s, 2m, 1h)")
        seconds = float(match.group(1)) * _SCALE[match.group(2)]
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds
