"""Simulated lab power: two feeds, an ATS per rack, one UPS, and their physics.

Lab-wide state in ``$OORFIX_LAB_DIR/power.json``: feeds ``A`` and ``B`` (status ``ok`` or
``lost``, voltage), per rack the ATS source and the rack's own circuit from each feed (a
tripped breaker or a local sag hits one rack only), and the UPS: its NUT variables, exactly
as ``upsc`` lists them, and a transfer-event counter.

Physics, deterministic and without time:

- A rack's input from feed X is dead when feed X or the rack's circuit X is lost; its
  voltage is the rack circuit's when one is set (a local sag), else the feed's.
- A PSU on input ``ats`` follows its rack's ATS source: ``ac_lost`` when that input is
  dead, ``out_of_range`` outside the UPS transfer points. A PSU on ``ups`` sits behind the
  UPS and keeps AC (battery runtime is not modelled); ``A``/``B`` plug a PSU straight into
  one of the rack's circuits.
- The UPS is ``OB`` while any rack's selected input is dead (``OB LB`` at low charge), else
  ``OL BOOST``/``OL TRIM`` while the worst selected voltage is below/above the transfer
  points, else ``OL``. Each change away from ``OL`` counts a transfer event and sets
  ``input.transfer.reason``. Charging after a return to ``OL`` is not modelled.
- The ATS refuses to transfer a rack to a source that is lost for that rack.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from oorfix.lab.statefile import HardwareError, Json, read_json, updating, write_json

POWER_FILE = "power.json"
NOMINAL_V = 230.0
TRANSFER_LOW_V = 196.0
TRANSFER_HIGH_V = 253.0
SAG_V = 184.0  # the case study's fluctuating supply: well under the low transfer point
FLUCTUATION_SWINGS = 5  # transfers the UPS counted while the supply swung, before it settled
OUT_OF_RANGE = "input voltage out of range"


# --- state -------------------------------------------------------------------------------


def _default_rack() -> Json:
    circuit = {"status": "ok", "voltage": None}  # voltage None: the feed's
    return {"source": "A", "inputs": {"A": dict(circuit), "B": dict(circuit)}}


def default_power(racks: Iterable[str] = ("r1",)) -> Json:
    """Both feeds up at nominal voltage, every rack on feed A, the UPS online."""
    feed = {"status": "ok", "voltage": NOMINAL_V}
    ups_vars = {
        "battery.charge": "100",
        "battery.charge.low": "20",
        "battery.runtime": "1800",
        "device.mfr": "oorfix lab",
        "device.model": "Lab UPS 3000",
        "device.type": "ups",
        "driver.name": "dummy-ups",
        "input.transfer.high": f"{TRANSFER_HIGH_V:.0f}",
        "input.transfer.low": f"{TRANSFER_LOW_V:.0f}",
        "input.transfer.reason": "no transfers yet since turnon",
        "input.voltage": f"{NOMINAL_V:.1f}",
        "input.voltage.nominal": f"{NOMINAL_V:.0f}",
        "ups.load": "35",
        "ups.mfr": "oorfix lab",
        "ups.model": "Lab UPS 3000",
        "ups.status": "OL",
        "ups.test.result": "Done and passed",  # an in-service UPS has run its periodic test
    }
    return {
        "feeds": {"A": dict(feed), "B": dict(feed)},
        "racks": {rack: _default_rack() for rack in racks},
        "ups": {"name": "ups", "transfer_events": 0, "vars": ups_vars},
    }


def init_power(lab_dir: Path, racks: Iterable[str]) -> None:
    """Write healthy lab power: both feeds up, every rack on feed A, the UPS online."""
    write_json(lab_dir / POWER_FILE, default_power(racks))


def load_power(lab_dir: Path) -> Json:
    """The lab's power state (healthy defaults when none was written)."""
    return read_json(lab_dir / POWER_FILE, default_power)


# --- physics -----------------------------------------------------------------------------


def rack_state(power: Json, rack: str) -> Json:
    """A rack's ATS source and circuits; an unknown rack is a healthy one on feed A."""
    found: Json | None = power["racks"].get(rack)
    return found if found is not None else _default_rack()


def rack_input(power: Json, rack: str, source: str) -> tuple[bool, float]:
    """Whether the rack's input from feed ``source`` is alive, and its voltage."""
    feed = power["feeds"][source]
    circuit = rack_state(power, rack)["inputs"][source]
    if feed["status"] == "lost" or circuit["status"] == "lost":
        return False, 0.0
    local = circuit.get("voltage")
    return True, float(local if local is not None else feed["voltage"])


def selected_input(power: Json, rack: str) -> tuple[bool, float]:
    """The input the rack's ATS currently passes on."""
    return rack_input(power, rack, rack_state(power, rack)["source"])


def in_range(power: Json, volts: float) -> bool:
    """Whether ``volts`` lies within the UPS transfer points."""
    ups = power["ups"]["vars"]
    return float(ups["input.transfer.low"]) <= volts <= float(ups["input.transfer.high"])


def _ups_reading(power: Json) -> tuple[str, float]:
    ups = power["ups"]["vars"]
    readings = [selected_input(power, rack) for rack in power["racks"]]
    if not all(alive for alive, _ in readings):
        low = float(ups["battery.charge"]) <= float(ups["battery.charge.low"])
        return ("OB LB" if low else "OB"), 0.0
    nominal = float(ups["input.voltage.nominal"])
    worst = max((v for _, v in readings), key=lambda v: abs(v - nominal), default=nominal)
    if worst < float(ups["input.transfer.low"]):
        return "OL BOOST", worst
    if worst > float(ups["input.transfer.high"]):
        return "OL TRIM", worst
    return "OL", worst


def settle(power: Json) -> None:
    """Recompute the UPS status and input voltage; count a transfer when it leaves OL."""
    ups = power["ups"]
    before = ups["vars"]["ups.status"]
    status, volts = _ups_reading(power)
    ups["vars"]["ups.status"] = status
    ups["vars"]["input.voltage"] = f"{volts:.1f}"
    if status not in (before, "OL"):
        ups["transfer_events"] += 1
        ups["vars"]["input.transfer.reason"] = OUT_OF_RANGE


def psu_state(hardware: Json, power: Json, psu: Json) -> str:
    """One PSU's input: ``ok``, ``ac_lost`` or ``out_of_range``."""
    source, rack = psu["input"], hardware["rack"]
    if source == "ups":  # behind the UPS: AC as long as the battery lasts, and it does here
        return "ok"
    alive, volts = (
        selected_input(power, rack) if source == "ats" else rack_input(power, rack, source)
    )
    if not alive:
        return "ac_lost"
    return "ok" if in_range(power, volts) else "out_of_range"


# --- operations (what the ATS and the UPS do when told) ----------------------------------


def transfer(lab_dir: Path, rack: str, source: str) -> str | None:
    """Switch a rack's ATS to ``source``; the previous source, None if it was already there."""
    with updating(lab_dir / POWER_FILE, default_power) as power:
        state = _known_rack(power, rack)
        if source not in power["feeds"]:
            raise HardwareError(f"unknown source {source!r}: the lab has feeds A and B")
        if not rack_input(power, rack, source)[0]:
            raise HardwareError(f"refusing to transfer rack {rack} to source {source}: feed lost")
        previous: str = state["source"]
        state["source"] = source
        settle(power)
    return None if previous == source else previous


def _known_rack(power: Json, rack: str) -> Json:
    if rack not in power["racks"]:
        known = ", ".join(sorted(power["racks"])) or "none"
        raise HardwareError(f"unknown rack {rack!r} (racks: {known})")
    found: Json = power["racks"][rack]
    return found


def set_feed(
    lab_dir: Path, feed: str, status: str | None = None, voltage: float | None = None
) -> None:
    """Set a lab-wide feed's status (``ok``/``lost``) and/or voltage."""
    with updating(lab_dir / POWER_FILE, default_power) as power:
        if status is not None:
            power["feeds"][feed]["status"] = status
        if voltage is not None:
            power["feeds"][feed]["voltage"] = voltage
        settle(power)


def ups_self_test(lab_dir: Path) -> str:
    """Run the UPS quick battery test and record its result (aborted while on battery)."""
    with updating(lab_dir / POWER_FILE, default_power) as power:
        ups = power["ups"]["vars"]
        result = "Aborted" if ups["ups.status"].startswith("OB") else "Done and passed"
        ups["ups.test.result"] = result
    return result


# --- injection ---------------------------------------------------------------------------


def inject_psu_failure(lab_dir: Path, rack: str) -> None:
    """The rack's circuit from its current source dies: PSUs read AC lost, the UPS is on battery."""
    with updating(lab_dir / POWER_FILE, default_power) as power:
        state = _known_rack(power, rack)
        state["inputs"][state["source"]]["status"] = "lost"
        settle(power)


def inject_power_fluctuation(lab_dir: Path, rack: str | None = None) -> None:
    """The supply sags to 184 V (feed A, or only ``rack``'s current input): UPS boosts."""
    with updating(lab_dir / POWER_FILE, default_power) as power:
        if rack is None:
            power["feeds"]["A"]["voltage"] = SAG_V
        else:
            state = _known_rack(power, rack)
            state["inputs"][state["source"]]["voltage"] = SAG_V
        settle(power)
        power["ups"]["transfer_events"] += FLUCTUATION_SWINGS
        power["ups"]["vars"]["input.transfer.reason"] = OUT_OF_RANGE


# --- observation -------------------------------------------------------------------------


def power_ok(lab_dir: Path, rack: str) -> bool:
    """Whether the rack's selected input is alive and within the UPS transfer points."""
    power = load_power(lab_dir)
    alive, volts = selected_input(power, rack)
    return alive and in_range(power, volts)


def voltage_ok(lab_dir: Path) -> bool:
    """Whether the UPS is online on utility power within its transfer points."""
    power = load_power(lab_dir)
    ups = power["ups"]["vars"]
    return ups["ups.status"] == "OL" and in_range(power, float(ups["input.voltage"]))


def ats_source(lab_dir: Path, rack: str) -> str:
    """The feed the rack's ATS passes on."""
    return str(rack_state(load_power(lab_dir), rack)["source"])


def ups_status(lab_dir: Path) -> str:
    """The UPS status flags, as ``upsc ups ups.status`` prints them."""
    return str(load_power(lab_dir)["ups"]["vars"]["ups.status"])


def input_voltage(lab_dir: Path) -> float:
    """The UPS input voltage."""
    return float(load_power(lab_dir)["ups"]["vars"]["input.voltage"])


def transfer_events(lab_dir: Path) -> int:
    """How many times the UPS has transferred away from utility power."""
    return int(load_power(lab_dir)["ups"]["transfer_events"])
