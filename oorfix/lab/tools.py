"""The lab's hardware and package tools, behind the real tools' command-line interfaces.

A lab host's PATH holds shims (``ipmitool``, ``sensors``, ``upsc`` …) that run
``python -m oorfix.lab.tools TOOL ARGS``. Each prints what the real tool prints on a
Debian/RHEL host, close enough for a runbook's grep/awk, from the simulated state of
``oorfix.lab.hardware`` and ``oorfix.lab.power`` (``OORFIX_LAB_STATE`` names the host's
state directory, ``OORFIX_LAB_DIR`` the lab's; without it, the lab of ``hosts/NAME``).

Emulated (anything else is refused with a message and exit code 1):

- ``ipmitool [-I IF -H HOST -U USER -P PASS …] sdr [list|elist|type TYPE]``, ``sensor
  [list]``, ``chassis status``, ``raw 0x30 0x45 0x01 MODE`` (Supermicro fan mode: 0x00
  standard, 0x01 full, 0x02 optimal, 0x04 heavy IO) and ``raw 0x30 0x45 0x00`` (get).
- ``sensors [-u|-j] [-A] [CHIP…]`` (lm-sensors: coretemp and an SHT3x humidity sensor).
- ``upsc``, ``upscmd``, ``atsctl``: ``oorfix.lab.tools_power``.
- ``smartctl``, ``edac-util``: ``oorfix.lab.tools_health``.
- ``dpkg-query``, ``apt-get``: ``oorfix.lab.tools_apt``.
"""

from __future__ import annotations

import fnmatch
import getopt
import json
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from oorfix.lab import tools_apt, tools_health, tools_power
from oorfix.lab.hardware import (
    TEMPERATURE_MAX_C,
    TOOLS,
    cpu_temperature,
    fan_readings,
    load_hardware,
    set_fan_mode,
)
from oorfix.lab.power import load_power, psu_state
from oorfix.lab.statefile import HardwareError, HostPaths, Json

Tool = Callable[[HostPaths, list[str]], int]
Limits = tuple[float | None, float | None, float | None, float | None, float | None, float | None]

# Thresholds as a BMC lists them: lnr, lcr, lnc, unc, ucr, unr.
CPU_LIMITS: Limits = (None, None, None, TEMPERATURE_MAX_C, 90.0, 100.0)
INLET_LIMITS: Limits = (None, -7.0, 3.0, 42.0, 47.0, None)
FAN_LIMITS: Limits = (1500.0, 3000.0, 4500.0, 25300.0, 25400.0, 25500.0)
SDR_STATUS = {"ok": "ok", "unc": "nc", "lnc": "nc", "ucr": "cr", "lcr": "cr"}
SDR_STATUS |= {"unr": "nr", "lnr": "nr"}
PSU_EVENTS: dict[str, tuple[str, ...]] = {"ok": (), "ac_lost": ("Power Supply AC lost",)}
PSU_EVENTS["out_of_range"] = ("AC out-of-range, but present",)
PSU_BITS = {"ok": 0x01, "ac_lost": 0x09, "out_of_range": 0x21}  # presence | AC lost | out-of-range
FAN_MODE_CODES = {0x00: "standard", 0x01: "full", 0x02: "optimal", 0x04: "heavy_io"}
# ipmitool's global options (interface, remote BMC, credentials …) come before the command.
IPMI_VALUE_OPTIONS = frozenset(f"-{c}" for c in "IHUPpLACNRykftbTBmeoOz")
IPMI_FLAG_OPTIONS = frozenset({"-E", "-v", "-c", "-K", "-a"})
NA = f"| {'na':<10}"  # a threshold the sensor does not have
CORE_OFFSETS = (0.0, 1.0, 2.0, 1.0)  # cores run a little cooler than the package reading
CPU_HIGH_C, CPU_CRIT_C = TEMPERATURE_MAX_C, 100.0


@dataclass(frozen=True)
class Analog:
    """A threshold sensor of the BMC."""

    name: str
    number: int
    entity: tuple[int, int]
    value: float
    unit: str
    limits: Limits


@dataclass(frozen=True)
class Discrete:
    """A discrete sensor of the BMC (a power supply's state)."""

    name: str
    number: int
    entity: tuple[int, int]
    state: str


def threshold_status(value: float, limits: Limits) -> str:
    """``ipmitool sensor``'s status: the most severe threshold crossed, or ``ok``."""
    lnr, lcr, lnc, unc, ucr, unr = limits
    checks = [("unr", unr, 1), ("ucr", ucr, 1), ("unc", unc, 1)]
    checks += [("lnr", lnr, -1), ("lcr", lcr, -1), ("lnc", lnc, -1)]
    for name, limit, sign in checks:
        if limit is not None and (value - limit) * sign > 0:
            return name
    return "ok"


def _bmc_sensors(paths: HostPaths) -> dict[str, list[Analog | Discrete]]:
    hardware, power = load_hardware(paths.state), load_power(paths.lab)
    cpu = Analog("CPU Temp", 0x01, (3, 1), cpu_temperature(hardware), "degrees C", CPU_LIMITS)
    ambient = float(hardware["ambient_c"])
    inlet = Analog("Inlet Temp", 0x04, (7, 1), ambient, "degrees C", INLET_LIMITS)
    fans: list[Analog | Discrete] = [
        Analog(f"FAN{i}", 0x40 + i, (29, i), rpm, "RPM", FAN_LIMITS)
        for i, rpm in enumerate(fan_readings(hardware), 1)
    ]
    psus: list[Analog | Discrete] = [
        Discrete(f"{psu['name']} Status", 0xC7 + i, (10, i), psu_state(hardware, power, psu))
        for i, psu in enumerate(hardware["psu"], 1)
    ]
    return {"temperature": [cpu, inlet], "fan": fans, "power supply": psus}


def sdr_line(sensor: Analog | Discrete) -> str:
    """One line of ``ipmitool sdr``: name, number, status, entity, reading."""
    entity = f"{sensor.entity[0]:2d}.{sensor.entity[1]}"
    if isinstance(sensor, Analog):
        status = SDR_STATUS[threshold_status(sensor.value, sensor.limits)]
        reading = f"{sensor.value:.0f} {sensor.unit}"
    else:
        status, reading = "ok", ", ".join(("Presence detected", *PSU_EVENTS[sensor.state]))
    return f"{sensor.name:<16} | {sensor.number:02X}h | {status:<3} | {entity} | {reading}"


def sensor_line(sensor: Analog | Discrete) -> str:
    """One line of ``ipmitool sensor``: reading, unit, status and the six thresholds."""
    if isinstance(sensor, Analog):
        status = threshold_status(sensor.value, sensor.limits)
        head = f"{sensor.name:<16} | {sensor.value:<10.3f} | {sensor.unit:<10} | {status:<6}"
        limits = "".join(f"| {x:<10.3f}" if x is not None else NA for x in sensor.limits)
    else:
        bits = f"0x{PSU_BITS[sensor.state]:02x}00"
        head = f"{sensor.name:<16} | {'0x1':<10} | {'discrete':<10} | {bits:<6}"
        limits = NA * 6
    return (head + limits).rstrip()


def ipmitool(paths: HostPaths, args: list[str]) -> int:
    """``ipmitool``: sdr, sensor, chassis status and the Supermicro fan-mode raw command."""
    i = 0
    while i < len(args) and (args[i] in IPMI_VALUE_OPTIONS or args[i] in IPMI_FLAG_OPTIONS):
        i += 2 if args[i] in IPMI_VALUE_OPTIONS else 1  # remote-BMC options: same answers here
    command, rest = (args[i], args[i + 1 :]) if i < len(args) else ("", [])
    handlers: dict[str, Callable[[HostPaths, list[str]], int]] = {
        "sdr": _sdr,
        "sensor": _sensor,
        "chassis": _chassis,
        "raw": _raw,
    }
    handler = handlers.get(command)
    if handler is None:
        raise HardwareError(
            f"Invalid command: {command or '(none)'} (lab: sdr, sensor, chassis, raw)"
        )
    return handler(paths, rest)


def _sdr(paths: HostPaths, rest: list[str]) -> int:
    groups = _bmc_sensors(paths)
    if not rest or rest[0] in ("list", "elist"):
        chosen = [sensor for group in groups.values() for sensor in group]
    elif rest[0] == "type" and len(rest) > 1:
        kind = " ".join(rest[1:])
        if kind.lower() not in groups:
            raise HardwareError(
                f'Invalid sensor type: "{kind}" (lab: Temperature, Fan, Power Supply)'
            )
        chosen = groups[kind.lower()]
    else:
        raise HardwareError(f"Invalid sdr command: {' '.join(rest)}")
    print("\n".join(sdr_line(sensor) for sensor in chosen))
    return 0


def _sensor(paths: HostPaths, rest: list[str]) -> int:
    if rest and rest[0] != "list":
        raise HardwareError(f"Invalid sensor command: {rest[0]} (lab: sensor [list])")
    sensors = [sensor for group in _bmc_sensors(paths).values() for sensor in group]
    print("\n".join(sensor_line(sensor) for sensor in sensors))
    return 0


def _chassis(paths: HostPaths, rest: list[str]) -> int:
    if rest != ["status"]:
        raise HardwareError("Invalid chassis command (lab: chassis status)")
    hardware = load_hardware(paths.state)
    drive_fault = any(d["smart"] != "PASSED" for d in hardware["disks"].values())
    fan_fault = any(threshold_status(r, FAN_LIMITS) != "ok" for r in fan_readings(hardware))
    rows = [("System Power", "on"), ("Power Overload", "false"), ("Power Interlock", "inactive")]
    rows += [("Main Power Fault", "false"), ("Power Control Fault", "false")]
    rows += [("Power Restore Policy", "always-off"), ("Last Power Event", "")]
    rows += [("Chassis Intrusion", "inactive"), ("Front-Panel Lockout", "inactive")]
    rows += [("Drive Fault", str(drive_fault).lower())]
    rows += [("Cooling/Fan Fault", str(fan_fault).lower())]
    print("\n".join(f"{key:<20} : {value}".rstrip() for key, value in rows))
    return 0


def _byte(text: str) -> int:
    # ipmitool parses raw bytes with strtoul(…, 0): 0x.. hex, 0.. octal, else decimal
    base = 16 if text.lower().startswith("0x") else 10
    if base == 10 and text.startswith("0") and len(text) > 1:
        base = 8
    value = int(text, base)
    if not 0 <= value <= 0xFF:
        raise ValueError(text)
    return value


def _raw(paths: HostPaths, rest: list[str]) -> int:
    try:
        data = [_byte(x) for x in rest]
    except ValueError:
        raise HardwareError(f'Given data "{" ".join(rest)}" is invalid.') from None
    if len(data) < 2:
        raise HardwareError("Not enough parameters given.")
    netfn, cmd, payload = data[0], data[1], data[2:]
    if (netfn, cmd) != (0x30, 0x45):
        raise HardwareError(_raw_failure(netfn, cmd, 0xC1, "Invalid command"))
    if payload == [0x00]:
        mode = load_hardware(paths.state)["fan_mode"]
        print(f" {next(c for c, m in FAN_MODE_CODES.items() if m == mode):02x}")
        return 0
    if len(payload) == 2 and payload[0] == 0x01 and payload[1] in FAN_MODE_CODES:
        set_fan_mode(paths.state, FAN_MODE_CODES[payload[1]])
        print()
        return 0
    raise HardwareError(_raw_failure(netfn, cmd, 0xCC, "Invalid data field in request"))


def _raw_failure(netfn: int, cmd: int, code: int, text: str) -> str:
    return (
        f"Unable to send RAW command (channel=0x0 netfn=0x{netfn:x} lun=0x0 "
        f"cmd=0x{cmd:x} rsp=0x{code:x}): {text}"
    )


# --- sensors (lm-sensors) ----------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    """One lm-sensors feature: a temperature or a humidity reading."""

    label: str
    kind: str  # temp | humidity
    index: int
    value: float
    high: float | None = None
    crit: float | None = None

    def subfeatures(self) -> dict[str, float]:
        """The hwmon attributes ``sensors -u`` lists."""
        prefix = f"{self.kind}{self.index}"
        subs = {f"{prefix}_input": self.value}
        if self.high is not None:
            subs[f"{prefix}_max"] = self.high
        if self.crit is not None:
            subs[f"{prefix}_crit"] = self.crit
            subs[f"{prefix}_crit_alarm"] = 1.0 if self.value >= self.crit else 0.0
        return subs


def _chips(hardware: Json) -> list[tuple[str, str, list[Feature]]]:
    package = cpu_temperature(hardware)
    cpu = [Feature("Package id 0", "temp", 1, package, CPU_HIGH_C, CPU_CRIT_C)]
    cpu += [
        Feature(f"Core {i}", "temp", i + 2, package - off, CPU_HIGH_C, CPU_CRIT_C)
        for i, off in enumerate(CORE_OFFSETS)
    ]
    room = [Feature("temp1", "temp", 1, float(hardware["ambient_c"]))]
    room += [Feature("humidity1", "humidity", 1, float(hardware["humidity_rh"]))]
    return [
        ("coretemp-isa-0000", "ISA adapter", cpu),
        ("sht3x-i2c-1-44", "SMBus I801 adapter at efa0", room),
    ]


def _plain(feature: Feature, width: int) -> str:
    label = f"{feature.label}:".ljust(width)  # lm-sensors pads labels to the chip's widest
    if feature.kind == "humidity":
        return f"{label}{feature.value:6.1f} %RH"
    text = f"{label}{feature.value:+6.1f}°C  "
    if feature.high is not None and feature.crit is not None:
        text += f"(high = {feature.high:+5.1f}°C, crit = {feature.crit:+5.1f}°C)  "
        text += "ALARM" if feature.value >= feature.crit else ""
    return text.rstrip()


def _chip_lines(chip: tuple[str, str, list[Feature]], raw: bool, adapter: bool) -> list[str]:
    name, adapter_name, features = chip
    lines = [name] + ([f"Adapter: {adapter_name}"] if adapter else [])
    width = max(11, *(len(f.label) for f in features)) + 2
    for feature in features:
        if raw:
            lines.append(f"{feature.label}:")
            lines += [f"  {k}: {v:.3f}" for k, v in feature.subfeatures().items()]
        else:
            lines.append(_plain(feature, width))
    return [*lines, ""]


def sensors(paths: HostPaths, args: list[str]) -> int:
    """``sensors [-u|-j] [-A] [CHIP…]``: lm-sensors output for the host's chips."""
    try:
        opts, patterns = getopt.gnu_getopt(args, "ujA", ["no-adapter"])
    except getopt.GetoptError as exc:
        raise HardwareError(f"sensors: {exc}") from None
    flags = {name for name, _ in opts}
    chips = [c for c in _chips(load_hardware(paths.state)) if _wanted(c[0], patterns)]
    if not chips:
        raise HardwareError("Specified sensor(s) not found!")
    if "-j" in flags:
        data = {c[0]: {"Adapter": c[1], **{f.label: f.subfeatures() for f in c[2]}} for c in chips}
        print(json.dumps(data, indent=3))
        return 0
    adapter = not flags & {"-A", "--no-adapter"}
    print("\n".join(line for chip in chips for line in _chip_lines(chip, "-u" in flags, adapter)))
    return 0


def _wanted(chip: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(chip, p) for p in patterns)


# --- entry point -------------------------------------------------------------------------

HANDLERS: dict[str, Tool] = {
    "ipmitool": ipmitool,
    "sensors": sensors,
    "upsc": tools_power.upsc,
    "upscmd": tools_power.upscmd,
    "atsctl": tools_power.atsctl,
    "smartctl": tools_health.smartctl,
    "edac-util": tools_health.edac_util,
    "dpkg-query": tools_apt.dpkg_query,
    "apt-get": tools_apt.apt_get,
}


def run(args: list[str], env: Mapping[str, str]) -> int:
    """Run one tool; a failure is a message on stderr and an exit code, never a traceback."""
    if not args or args[0] not in HANDLERS:
        name = args[0] if args else "(none)"
        print(f"oorfix lab: unknown tool {name}; known: {', '.join(TOOLS)}", file=sys.stderr)
        return 1
    tool, rest = args[0], args[1:]
    try:
        return HANDLERS[tool](HostPaths.from_env(env), rest)
    except HardwareError as exc:
        if str(exc):
            print(exc, file=sys.stderr)
        return exc.rc
    except Exception as exc:  # a shim must behave like a tool: message and exit code
        print(f"{tool}: the lab state could not be read: {exc!r}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> None:
    """Entry point of the shims: ``python -m oorfix.lab.tools TOOL ARGS…``."""
    # Like a C tool, die quietly when the reader (head, grep -q) closes the pipe early.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(run(sys.argv[1:] if argv is None else argv, os.environ))


if __name__ == "__main__":
    main()
