"""The lab's component-health tools: smartmontools' ``smartctl`` and edac-utils' ``edac-util``.

Both print what the real tools print for an ATA disk and one memory controller, and exit
as they do: smartctl sets bit 3 (8) when the health check fails and bit 4 (16) when a
pre-fail attribute is at or below its threshold; edac-util exits 0 whatever it counts.
"""

from __future__ import annotations

import getopt
import sys

from oorfix.lab.hardware import load_hardware
from oorfix.lab.statefile import HardwareError, HostPaths, Json

SMART_BANNER = [
    "smartctl 7.3 2022-02-28 r5338 [x86_64-linux-oorfix-lab] (local build)",
    "Copyright (C) 2002-22, Bruce Allen, Christian Franke, www.smartmontools.org",
    "",
]
ATTRIBUTE_HEADER = (
    "ID# ATTRIBUTE_NAME          FLAG     VALUE WORST THRESH TYPE      UPDATED  WHEN_FAILED"
    " RAW_VALUE"
)
SMART_FAILED = 8  # smartctl exit bit 3: SMART status check returned "DISK FAILING"
SMART_PREFAIL = 16  # bit 4: pre-fail attributes at or below threshold
DIMMS = ("CPU_SrcID#0_MC#0_Chan#0_DIMM#0", "CPU_SrcID#0_MC#0_Chan#1_DIMM#0")
EDAC_REPORTS = ("default", "simple", "full", "ue", "ce")

Attribute = tuple[int, str, int, int, int, int]  # id, name, flags, value, threshold, raw


def _attributes(disk: Json, ambient: float) -> list[Attribute]:
    reallocated, pending = int(disk["reallocated"]), int(disk["pending"])
    # The normalised value falls as sectors are reallocated, as on a real drive.
    health = max(1, 100 - reallocated // 20) if reallocated else 100
    celsius = round(ambient + 12)
    return [
        (1, "Raw_Read_Error_Rate", 0x000F, 100, 6, 0),
        (5, "Reallocated_Sector_Ct", 0x0033, health, 36, reallocated),
        (9, "Power_On_Hours", 0x0032, 90, 0, 8760),
        (194, "Temperature_Celsius", 0x0022, celsius, 0, celsius),
        (197, "Current_Pending_Sector", 0x0012, 100, 0, pending),
        (198, "Offline_Uncorrectable", 0x0010, 100, 0, 0),
    ]


def _failing(attribute: Attribute) -> bool:
    _, _, flags, value, threshold, _ = attribute
    return bool(flags & 1) and threshold > 0 and value <= threshold


def attribute_line(attribute: Attribute) -> str:
    """One row of ``smartctl -A``, in smartctl's column layout."""
    ident, name, flags, value, threshold, raw = attribute
    kind = "Pre-fail" if flags & 1 else "Old_age"
    updated = "Always" if flags & 2 else "Offline"
    when = "FAILING_NOW" if _failing(attribute) else "    -"
    return (
        f"{ident:3d} {name:<24}0x{flags:04x}   {value:03d}   {value:03d}   {threshold:03d}    "
        f"{kind:<10}{updated:<9}{when:<12}{raw}"
    )


def _info(name: str) -> list[str]:
    return [
        "=== START OF INFORMATION SECTION ===",
        "Device Model:     LAB-SSD 480GB",
        f"Serial Number:    LAB{name.upper()}0001",
        "Firmware Version: LAB10001",
        "User Capacity:    480,103,981,056 bytes [480 GB]",
        "SMART support is: Available - device has SMART capability.",
        "SMART support is: Enabled",
        "",
    ]


def _health(disk: Json, attributes: list[Attribute]) -> tuple[list[str], int]:
    if disk["smart"] == "PASSED":
        return ["SMART overall-health self-assessment test result: PASSED", ""], 0
    lines = ["SMART overall-health self-assessment test result: FAILED!"]
    lines.append("Drive failure expected in less than 24 hours. SAVE ALL DATA.")
    failing = [attribute_line(a) for a in attributes if _failing(a)]
    if failing:
        lines += ["Failed Attributes:", ATTRIBUTE_HEADER, *failing]
    return [*lines, ""], SMART_FAILED | (SMART_PREFAIL if failing else 0)


def _attribute_table(attributes: list[Attribute]) -> tuple[list[str], int]:
    lines = ["SMART Attributes Data Structure revision number: 16"]
    lines += ["Vendor Specific SMART Attributes with Thresholds:", ATTRIBUTE_HEADER]
    lines += [attribute_line(a) for a in attributes]
    return [*lines, ""], SMART_PREFAIL if any(_failing(a) for a in attributes) else 0


def smartctl(paths: HostPaths, args: list[str]) -> int:
    """``smartctl [-i] [-H] [-A] [-a] DEVICE`` and ``smartctl --scan``."""
    try:
        opts, rest = getopt.gnu_getopt(
            args, "HAaxid:n:q:", ["health", "attributes", "all", "xall", "info", "scan",
                                   "device=", "nocheck=", "quietmode="],
        )  # fmt: skip
    except getopt.GetoptError as exc:
        raise HardwareError(f"=======> {exc}\nUse smartctl -h to get a usage summary") from None
    flags = {name for name, _ in opts}
    hardware = load_hardware(paths.state)
    if "--scan" in flags:
        print("\n".join(f"/dev/{d} -d sat # /dev/{d} [SAT], ATA device" for d in hardware["disks"]))
        return 0
    if not rest:
        raise HardwareError(
            "ERROR: smartctl requires a device name as the final command-line argument."
        )
    print("\n".join(SMART_BANNER))
    name = rest[-1].removeprefix("/dev/")
    if name not in hardware["disks"]:
        print(f"Smartctl open device: {rest[-1]} failed: No such device")
        return 2
    return _report(flags, name, hardware)


def _report(flags: set[str], name: str, hardware: Json) -> int:
    every = bool(flags & {"-a", "--all", "-x", "--xall"})
    disk = hardware["disks"][name]
    attributes = _attributes(disk, float(hardware["ambient_c"]))
    lines = _info(name) if every or flags & {"-i", "--info"} else []
    want_health = every or bool(flags & {"-H", "--health"})
    want_table = every or bool(flags & {"-A", "--attributes"})
    if want_health or want_table:
        lines.append("=== START OF READ SMART DATA SECTION ===")
    health, health_rc = _health(disk, attributes) if want_health else ([], 0)
    table, table_rc = _attribute_table(attributes) if want_table else ([], 0)
    print("\n".join(lines + health + table))
    return health_rc | table_rc


# --- edac-util ---------------------------------------------------------------------------


def _edac_lines(report: str, ce: int, ue: int, verbose: bool, quiet: bool) -> list[str]:
    rows: list[tuple[str, int]]
    if report == "ce":
        rows = [(f"CE: {ce}", ce)]
    elif report == "ue":
        rows = [(f"UE: {ue}", ue)]
    elif report == "simple":
        rows = [(f"mc0: Correctable errors:   {ce}", ce), (f"mc0: Uncorrectable errors: {ue}", ue)]
        rows += [(f"Total CE: {ce}", ce), (f"Total UE: {ue}", ue)]
    elif report == "full":
        rows = [(f"mc0:csrow0:{DIMMS[0]}:CE:{ce}", ce), (f"mc0:csrow0:{DIMMS[1]}:CE:0", 0)]
        rows += [(f"mc0:noinfo:all:UE:{ue}", ue), ("mc0:noinfo:all:CE:0", 0)]
    else:
        return _edac_default(ce, ue, verbose, quiet)
    return [text for text, count in rows if count or not quiet]


def _edac_default(ce: int, ue: int, verbose: bool, quiet: bool) -> list[str]:
    # Uncorrected errors are counted without DIMM info, corrected ones on the first DIMM.
    rows = [(f"mc0: {ue} Uncorrected Errors with no DIMM info", ue)]
    rows += [("mc0: 0 Corrected Errors with no DIMM info", 0)]
    rows += [("mc0: csrow0: 0 Uncorrected Errors", 0)]
    rows += [(f"mc0: csrow0: {DIMMS[0]}: {ce} Corrected Errors", ce)]
    rows += [(f"mc0: csrow0: {DIMMS[1]}: 0 Corrected Errors", 0)]
    lines = [text for text, count in rows if count or verbose]
    if not ce + ue and not quiet:
        lines.append("edac-util: No errors to report.")
    return lines


def _report_name(text: str) -> str:
    for name in EDAC_REPORTS:  # edac-util takes any prefix of a report's name
        if text and name.startswith(text):
            return name
    raise HardwareError(f'edac-util: Error: Invalid report: "{text}"')


def edac_util(paths: HostPaths, args: list[str]) -> int:
    """``edac-util [-s] [-v] [-q] [--report=default|simple|full|ce|ue]``."""
    # -r/--report take an optional value; getopt only knows required ones.
    args = ["--report=default" if a in ("-r", "--report") else a for a in args]
    try:
        opts, rest = getopt.getopt(args, "hqvsr:", ["quiet", "verbose", "status", "report="])
    except getopt.GetoptError as exc:
        raise HardwareError(f'edac-util: Fatal: Invalid option "{exc.opt}"') from None
    if rest:
        raise HardwareError(f'edac-util: Fatal: Unrecognized parameter "{rest[0]}"')
    flags = {name for name, _ in opts}
    quiet, verbose = bool(flags & {"-q", "--quiet"}), bool(flags & {"-v", "--verbose"})
    if flags & {"-s", "--status"}:
        if not quiet:  # edac-util logs its status line on stderr
            print("edac-util: EDAC drivers are loaded. 1 MC detected", file=sys.stderr)
        return 0
    reports = [_report_name(r) for n, v in opts if n in ("-r", "--report") for r in v.split(",")]
    errors = load_hardware(paths.state)["memory_errors"]
    ce, ue = int(errors["ce"]), int(errors["ue"])
    lines = [x for r in reports or ["default"] for x in _edac_lines(r, ce, ue, verbose, quiet)]
    if lines:
        print("\n".join(lines))
    return 0
