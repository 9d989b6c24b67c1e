"""Simulated hardware and packages of lab hosts: the state model and its physics.

Lab hosts have no BMC, sensors, disks or UPS. Their readings live in JSON files that the
tool emulations (``oorfix.lab.tools``: ipmitool, sensors, smartctl, apt-get …) print in the
real tools' formats, that ``oorfix lab inject`` pushes out of range, and that the fixes a
runbook applies (fan mode, package install; ATS transfer in ``oorfix.lab.power``, whose
API is re-exported here so that this module is the lab's one entry point) bring back.

State files (written by ``oorfix.lab.statefile``: atomically, and under a lock):

- ``$OORFIX_LAB_STATE/hardware.json``: the host's rack, PSUs and what feeds each, CPU
  package temperature under standard cooling, ambient temperature, humidity, fan RPMs in
  standard mode, fan mode, disks with their SMART state, memory error counters.
- ``$OORFIX_LAB_STATE/packages.json``: installed lab packages, ``{"pg-api": "2.4.1"}``
  (the file ``payment_api`` reads its version from).
- ``$OORFIX_LAB_DIR/repo.json``: the lab package repository, ``{"pg-api": [versions]}``.
- ``$OORFIX_LAB_DIR/power.json``: see ``oorfix.lab.power``.

Physics, deterministic and without time: the CPU reads its heat-load temperature minus the
fan mode's cooling delta (full: 25 C), so raising the cooling policy really brings an
overheating host back in range; fans read their standard RPM times the mode's factor.
Humidity has no fix on the host: it is the room's. Whether a host is in service is not
kept here: the load balancer decides. Package versions sort in Debian order (dpkg's).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cmp_to_key
from pathlib import Path

# The power side lives in oorfix.lab.power; it is re-exported so this module is the lab's
# one entry point for hardware and environment state.
from oorfix.lab.power import ats_source as ats_source
from oorfix.lab.power import init_power
from oorfix.lab.power import inject_power_fluctuation as inject_power_fluctuation
from oorfix.lab.power import inject_psu_failure as inject_psu_failure
from oorfix.lab.power import input_voltage as input_voltage
from oorfix.lab.power import power_ok as power_ok
from oorfix.lab.power import set_feed as set_feed
from oorfix.lab.power import transfer as transfer
from oorfix.lab.power import transfer_events as transfer_events
from oorfix.lab.power import ups_status as ups_status
from oorfix.lab.power import voltage_ok as voltage_ok
from oorfix.lab.statefile import HardwareError as HardwareError
from oorfix.lab.statefile import Json, read_json, updating, write_json

HARDWARE_FILE = "hardware.json"
PACKAGES_FILE = "packages.json"
REPO_FILE = "repo.json"
# The tools oorfix.lab.tools emulates: the lab puts a shim for each on a lab host's PATH.
TOOLS = (
    "ipmitool",
    "sensors",
    "upsc",
    "upscmd",
    "atsctl",
    "smartctl",
    "edac-util",
    "dpkg-query",
    "apt-get",
)
TEMPERATURE_MAX_C = 80.0  # the CPU package's "high" mark (coretemp, BMC upper non-critical)
HUMIDITY_RANGE_RH = (40.0, 60.0)

# Supermicro fan modes (ipmitool raw 0x30 0x45 0x01 MODE): cooling delta (C) and RPM factor.
FAN_MODES = {
    "standard": (0.0, 1.0),
    "full": (25.0, 1.5),
    "optimal": (0.0, 1.0),
    "heavy_io": (10.0, 1.25),
}
OVERHEAT_C = 92.0
HUMID_RH = 82.0
DUSTY_FAN_RPM = 2400  # a fan clogged by dust: well under the BMC's lower critical threshold
BAD_VERSION = "2.3.0-bad"
GOOD_VERSION = "2.4.1"
DEFAULT_REPO = {"pg-api": ["2.3.0-bad", "2.4.0", "2.4.1"]}
PACKAGES_BY_ROLE = {"api": {"pg-api": GOOD_VERSION}, "standby": {"pg-api": GOOD_VERSION}}


# --- defaults ----------------------------------------------------------------------------


def default_hardware(role: str = "api", rack: str = "r1") -> Json:
    """A healthy host: cool, dry, fans spinning, disks and memory clean."""
    return {
        "role": role,
        "rack": rack,
        "psu": [{"name": "PS1", "input": "ats"}, {"name": "PS2", "input": "ups"}],
        "temperature_c": 55.0,
        "ambient_c": 24.0,
        "humidity_rh": 45.0,
        "fans": [9000, 8900, 9100, 9000],
        "fan_mode": "standard",
        "disks": {"sda": {"smart": "PASSED", "reallocated": 0, "pending": 0}},
        "memory_errors": {"ce": 0, "ue": 0},
    }


def default_repo() -> Json:
    """The lab repository: the versions of each lab package that apt-get can install."""
    return {name: list(versions) for name, versions in DEFAULT_REPO.items()}


def init_host(state: Path, role: str, rack: str = "r1") -> None:
    """Write a healthy host: hardware in range and the role's packages at good versions."""
    write_json(state / HARDWARE_FILE, default_hardware(role, rack))
    write_json(state / PACKAGES_FILE, dict(PACKAGES_BY_ROLE.get(role, {})))


def init_lab(lab_dir: Path, racks: Iterable[str]) -> None:
    """Write the lab-wide state: healthy power for ``racks`` and the package repository."""
    init_power(lab_dir, racks)
    write_json(lab_dir / REPO_FILE, default_repo())


def load_hardware(state: Path) -> Json:
    """The host's hardware state (healthy defaults when none was written)."""
    return read_json(state / HARDWARE_FILE, default_hardware)


# --- host physics ------------------------------------------------------------------------


def cpu_temperature(hardware: Json) -> float:
    """The CPU package reading: heat-load temperature minus the fan mode's cooling."""
    return float(hardware["temperature_c"]) - FAN_MODES.get(hardware["fan_mode"], (0.0, 1.0))[0]


def fan_readings(hardware: Json) -> list[int]:
    """Each fan's RPM in the current fan mode."""
    factor = FAN_MODES.get(hardware["fan_mode"], (0.0, 1.0))[1]
    return [round(rpm * factor) for rpm in hardware["fans"]]


def set_fan_mode(state: Path, mode: str) -> None:
    """Set the BMC fan mode (what the Supermicro raw command does)."""
    if mode not in FAN_MODES:
        raise HardwareError(f"unknown fan mode {mode!r}")
    with updating(state / HARDWARE_FILE, default_hardware) as hardware:
        hardware["fan_mode"] = mode


# --- packages ----------------------------------------------------------------------------


def installed_packages(state: Path) -> dict[str, str]:
    """Installed lab packages and their versions."""
    return {k: str(v) for k, v in read_json(state / PACKAGES_FILE, dict).items()}


def set_installed(state: Path, package: str, version: str | None) -> None:
    """Record ``package`` at ``version`` (None: removed) in the host's package database."""
    with updating(state / PACKAGES_FILE, dict) as packages:
        if version is None:
            packages.pop(package, None)
        else:
            packages[package] = version


def repository(lab_dir: Path) -> dict[str, list[str]]:
    """The lab repository: package name to available versions."""
    data = read_json(lab_dir / REPO_FILE, default_repo)
    return {name: [str(v) for v in versions] for name, versions in data.items()}


# --- Debian version order ----------------------------------------------------------------


def _order(char: str) -> int:
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return -1 if char == "~" else ord(char) + 256


def _digit(text: str, k: int) -> bool:
    return k < len(text) and text[k] in "0123456789"


def _verrevcmp(a: str, b: str) -> int:
    # A port of dpkg's verrevcmp: alternate non-digit runs (letters before other signs,
    # "~" before the end) and digit runs compared as numbers.
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not _digit(a, i)) or (j < len(b) and not _digit(b, j)):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while _digit(a, i) and _digit(b, j):
            first_diff = first_diff or ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if _digit(a, i) or _digit(b, j):
            return 1 if _digit(a, i) else -1
        if first_diff:
            return first_diff
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """Debian version order: negative, zero or positive as ``a`` sorts before, with, after ``b``."""
    (ea, ua, ra), (eb, ub, rb) = _split(a), _split(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def candidate(versions: list[str]) -> str:
    """The version apt would install: the highest in Debian order."""
    return max(versions, key=cmp_to_key(compare_versions))


# --- injection ---------------------------------------------------------------------------


def inject_overheat(state: Path) -> None:
    """The CPU runs at 92 C under standard cooling."""
    with updating(state / HARDWARE_FILE, default_hardware) as hardware:
        hardware["temperature_c"] = OVERHEAT_C
        hardware["fan_mode"] = "standard"


def inject_humidity(state: Path) -> None:
    """The room is humid (82 %RH) and dust has slowed the second fan."""
    with updating(state / HARDWARE_FILE, default_hardware) as hardware:
        hardware["humidity_rh"] = HUMID_RH
        hardware["fans"][1 % len(hardware["fans"])] = DUSTY_FAN_RPM


def inject_disk_failure(state: Path, disk: str = "sda", memory: bool = True) -> None:
    """The disk fails SMART with reallocated and pending sectors; EDAC counts memory errors."""
    with updating(state / HARDWARE_FILE, default_hardware) as hardware:
        hardware["disks"][disk] = {"smart": "FAILED", "reallocated": 2856, "pending": 64}
        if memory:
            hardware["memory_errors"] = {"ce": 120, "ue": 1}


def inject_memory_errors(state: Path, ce: int = 120, ue: int = 1) -> None:
    """EDAC counts corrected and uncorrected memory errors."""
    with updating(state / HARDWARE_FILE, default_hardware) as hardware:
        hardware["memory_errors"] = {"ce": ce, "ue": ue}


def inject_bad_version(state: Path, lab_dir: Path, package: str = "pg-api") -> None:
    """Install the payment-rejecting version (the caller restarts the service)."""
    with updating(lab_dir / REPO_FILE, default_repo) as repo:
        versions = repo.setdefault(package, [])
        if BAD_VERSION not in versions:
            versions.insert(0, BAD_VERSION)
    set_installed(state, package, BAD_VERSION)


# --- observation -------------------------------------------------------------------------


def temperature_c(state: Path) -> float:
    """The host's CPU package temperature as its sensors read it."""
    return cpu_temperature(load_hardware(state))


def humidity_rh(state: Path) -> float:
    """The relative humidity at the host."""
    return float(load_hardware(state)["humidity_rh"])


def fan_rpms(state: Path) -> list[int]:
    """The host's fan speeds as the BMC reads them."""
    return fan_readings(load_hardware(state))


def smart_health(state: Path, disk: str = "sda") -> str:
    """A disk's SMART overall health: PASSED or FAILED."""
    return str(load_hardware(state)["disks"][disk]["smart"])


def memory_errors(state: Path) -> tuple[int, int]:
    """EDAC's corrected and uncorrected memory error counts."""
    errors = load_hardware(state)["memory_errors"]
    return int(errors["ce"]), int(errors["ue"])


def installed(state: Path, package: str) -> str:
    """The installed version of ``package``; empty when it is not installed."""
    return installed_packages(state).get(package, "")
