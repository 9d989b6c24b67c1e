"""``serial``: how many hosts a rolling batch holds, as runbooks and ``--serial`` write it."""

from __future__ import annotations

import re

_SERIAL = re.compile(r"^\s*(\d+)\s*(%?)\s*$")


def parse_serial(value: int | str) -> int | float:
    """``3`` hosts, or ``"25%"`` as the fraction 0.25; ValueError otherwise."""
    match = _SERIAL.match(str(value))
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"serial {value!r}: use a number of hosts (2) or a percentage (25%)")
    number = int(match.group(1))
    if match.group(2):
        if number > 100:
            raise ValueError(f"serial {value!r}: a percentage is at most 100%")
        return number / 100
    return number
