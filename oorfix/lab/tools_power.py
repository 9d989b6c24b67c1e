"""The lab's power tools: NUT's ``upsc`` and ``upscmd``, and the ATS controller ``atsctl``.

``upsc``/``upscmd`` behave as Network UPS Tools' clients do against the lab's one UPS
(named ``ups``; any ``@host[:port]`` is accepted, since every lab host sees the same UPS).
``upscmd`` accepts any user and password: the lab has no ``upsd.users``.

``atsctl`` is a lab stand-in: real rack ATSes are driven over SNMP. On an APC AP44xx the
transfer to feed B is ``snmpset -v2c -c COMMUNITY ATS .1.3.6.1.4.1.318.1.1.8.4.2.0 i 2``
(``atsConfigPreferredSource`` = sourceB) and the selected source is read with
``snmpget -v2c -c COMMUNITY ATS .1.3.6.1.4.1.318.1.1.8.5.1.2.0``
(``atsStatusSelectedSource``). A runbook for real racks puts those commands where the
lab's runbook says::

    atsctl status [--rack RACK]
    atsctl transfer --rack RACK|all --source A|B
"""

from __future__ import annotations

import getopt

from oorfix.lab.power import in_range, load_power, rack_input, transfer, ups_self_test
from oorfix.lab.statefile import HardwareError, HostPaths, Json

INSTANT_COMMANDS = {
    "beeper.mute": "Temporarily mute the UPS beeper",
    "test.battery.start.deep": "Start a deep battery test",
    "test.battery.start.quick": "Start a quick battery test",
    "test.battery.stop": "Stop the battery test",
}
ATS_USAGE = "usage: atsctl status [--rack RACK] | atsctl transfer --rack RACK|all --source A|B"


def _ups(paths: HostPaths, target: str, unknown: str) -> Json:
    power = load_power(paths.lab)
    if target.split("@", 1)[0] != power["ups"]["name"]:
        raise HardwareError(unknown)
    ups: Json = power["ups"]
    return ups


def upsc(paths: HostPaths, args: list[str]) -> int:
    """``upsc UPS[@HOST] [VAR]``, ``upsc -l|-L [HOST]``: the UPS's variables."""
    if args and args[0] in ("-l", "-L"):
        ups = load_power(paths.lab)["ups"]
        print(ups["name"] + (f": {ups['vars']['device.model']}" if args[0] == "-L" else ""))
        return 0
    if not args or args[0].startswith("-"):
        raise HardwareError(
            "Error: invalid UPS definition.\nRequired format: upsname[@hostname[:port]]"
        )
    variables = _ups(paths, args[0], "Error: Unknown UPS")["vars"]
    if len(args) > 1:
        if args[1] not in variables:
            raise HardwareError("Error: Variable not supported by UPS")
        print(variables[args[1]])
        return 0
    print("\n".join(f"{key}: {variables[key]}" for key in sorted(variables)))
    return 0


def upscmd(paths: HostPaths, args: list[str]) -> int:
    """``upscmd [-l] [-u USER -p PASS] UPS [COMMAND]``: list or run an instant command."""
    try:
        opts, rest = getopt.getopt(args, "lu:p:wt:h")
    except getopt.GetoptError as exc:
        raise HardwareError(f"upscmd: {exc}") from None
    flags = dict(opts)
    if not rest:
        raise HardwareError("usage: upscmd [-l] [-u USER] [-p PASS] [-w] UPS [COMMAND [VALUE]]")
    ups = _ups(paths, rest[0], "Unexpected response from upsd: ERR UNKNOWN-UPS")
    if "-l" in flags:
        print(f"Instant commands supported on UPS [{ups['name']}]:\n")
        print("\n".join(f"{name} - {text}" for name, text in INSTANT_COMMANDS.items()))
        return 0
    if len(rest) < 2:
        raise HardwareError("upscmd: no command given")
    if "-u" not in flags or "-p" not in flags:  # the real one prompts; a runbook has no tty
        raise HardwareError("upscmd: no terminal to ask for credentials: give -u USER -p PASS")
    if rest[1] not in INSTANT_COMMANDS:
        raise HardwareError("Unexpected response from upsd: ERR CMD-NOT-SUPPORTED")
    if rest[1].startswith("test.battery.start"):
        ups_self_test(paths.lab)  # the lab's test finishes at once; a real one takes seconds
    print("OK")
    return 0


def _input_state(power: Json, rack: str, source: str) -> tuple[str, float]:
    alive, volts = rack_input(power, rack, source)
    if not alive:
        return "lost", volts
    return ("ok" if in_range(power, volts) else "out-of-range"), volts


def _ats_status(paths: HostPaths, rack: str | None) -> int:
    power = load_power(paths.lab)
    racks = sorted(power["racks"]) if rack in (None, "all") else [rack]
    if rack not in (None, "all") and rack not in power["racks"]:
        raise HardwareError(f"atsctl: unknown rack {rack!r}")
    lines = [f"{'FEED':<6}{'STATUS':<14}VOLTAGE"]
    feeds = sorted(power["feeds"].items())
    lines += [f"{name:<6}{feed['status']:<14}{feed['voltage']:.1f}" for name, feed in feeds]
    lines += ["", f"{'RACK':<6}{'SOURCE':<8}{'POWER':<14}{'VOLTAGE':<9}{'A':<14}B"]
    for name in racks:
        source = power["racks"][name]["source"]
        state, volts = _input_state(power, name, source)
        inputs = [_input_state(power, name, s)[0] for s in ("A", "B")]
        lines.append(f"{name:<6}{source:<8}{state:<14}{volts:<9.1f}{inputs[0]:<14}{inputs[1]}")
    print("\n".join(lines))
    return 0


def _ats_transfer(paths: HostPaths, rack: str | None, source: str | None) -> int:
    if not rack or not source:
        raise HardwareError(f"atsctl transfer: --rack and --source are required\n{ATS_USAGE}")
    racks = sorted(load_power(paths.lab)["racks"]) if rack == "all" else [rack]
    for name in racks:
        try:
            previous = transfer(paths.lab, name, source)
        except HardwareError as exc:
            raise HardwareError(f"atsctl: {exc}") from None
        if previous is None:
            print(f"rack {name}: already on source {source}")
        else:
            print(f"rack {name}: transferred from source {previous} to source {source}")
    return 0


def atsctl(paths: HostPaths, args: list[str]) -> int:
    """The lab power controller's ATS CLI: ``status`` and ``transfer`` (a stand-in for SNMP)."""
    if not args or args[0] not in ("status", "transfer"):
        raise HardwareError(f"atsctl: unknown command {args[0] if args else '(none)'}\n{ATS_USAGE}")
    try:
        opts, rest = getopt.gnu_getopt(args[1:], "", ["rack=", "source="])
    except getopt.GetoptError as exc:
        raise HardwareError(f"atsctl: {exc}\n{ATS_USAGE}") from None
    if rest:
        raise HardwareError(f"atsctl: unexpected argument {rest[0]!r}\n{ATS_USAGE}")
    flags = dict(opts)
    if args[0] == "status":
        return _ats_status(paths, flags.get("--rack"))
    return _ats_transfer(paths, flags.get("--rack"), flags.get("--source"))
