"""The lab's simulated hardware behind real tool interfaces: readings, injections and fixes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from oorfix.lab import hardware, payment_api, tools
from oorfix.lab.statefile import HostPaths

PSU_OK = [
    "PS1 Status       | C8h | ok  | 10.1 | Presence detected",
    "PS2 Status       | C9h | ok  | 10.2 | Presence detected",
]
PSU_LOST = "PS1 Status       | C8h | ok  | 10.1 | Presence detected, Power Supply AC lost"
PSU_SAG = "PS1 Status       | C8h | ok  | 10.1 | Presence detected, AC out-of-range, but present"
CPU_HOT = "CPU Temp         | 01h | cr  |  3.1 | 92 degrees C"
CPU_COOLED = "CPU Temp         | 01h | ok  |  3.1 | 67 degrees C"
PACKAGE_HOT = "Package id 0:  +92.0°C  (high = +80.0°C, crit = +100.0°C)"
DUSTY_FAN = "FAN2             | 42h | cr  | 29.2 | 2400 RPM"
SMART_FAILED = "SMART overall-health self-assessment test result: FAILED!"
REALLOCATED_FAILING = (
    "  5 Reallocated_Sector_Ct   0x0033   001   001   036    Pre-fail  Always   FAILING_NOW 2856"
)
NO_ALLOW = "-y was used without --allow-downgrades"
NOT_UNDERSTOOD = "is not understood in combination with the other options"
QUICK_TEST = ("-u", "admin", "-p", "pw", "ups@pwr-ctl-1", "test.battery.start.quick")


@pytest.fixture
def lab(tmp_path: Path) -> HostPaths:
    """A lab with racks r1 and r2, and one API host in r1 (in the layout the lab uses)."""
    hardware.init_lab(tmp_path, ["r1", "r2"])
    hardware.init_host(tmp_path / "hosts" / "pg-api-1", "api", rack="r1")
    hardware.init_host(tmp_path / "hosts" / "pg-api-2", "api", rack="r2")
    return HostPaths(tmp_path / "hosts" / "pg-api-1", tmp_path)


def env_of(paths: HostPaths) -> dict[str, str]:
    """The environment a lab host's shims see."""
    return {"OORFIX_LAB_STATE": str(paths.state), "OORFIX_LAB_DIR": str(paths.lab)}


def shell(paths: HostPaths, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a tool as the lab's shim does: a separate Python process."""
    env = {**env_of(paths), "PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.getcwd()}
    argv = [sys.executable, "-m", "oorfix.lab.tools", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run a tool in this process: exit code, stdout, stderr."""

    def _run(paths: HostPaths, *args: str) -> tuple[int, str, str]:
        rc = tools.run(list(args), env_of(paths))
        out, err = capsys.readouterr()
        return rc, out, err

    return _run


def lines(text: str) -> list[str]:
    """Output lines without the trailing newline."""
    return text.rstrip("\n").split("\n")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ipmitool", "sdr", "type", "Power Supply"], PSU_OK),
        (["ipmitool", "sdr", "type", "Temperature"], [
            "CPU Temp         | 01h | ok  |  3.1 | 55 degrees C",
            "Inlet Temp       | 04h | ok  |  7.1 | 24 degrees C",
        ]),
        (["upsc", "ups@pwr-ctl-1", "ups.status"], ["OL"]),
        (["dpkg-query", "-W", "-f=${Version}\\n", "pg-api"], ["2.4.1"]),
    ],
)  # fmt: skip
def test_healthy_readings_through_the_shim_entry_point(
    lab: HostPaths, args: list[str], expected: list[str]
) -> None:
    done = shell(lab, *args)
    assert (done.returncode, lines(done.stdout), done.stderr) == (0, expected, "")


SENSOR_CPU = (
    "CPU Temp         | 55.000     | degrees C  | ok    | na        | na        | na        "
    "| 80.000    | 90.000    | 100.000"
)
SENSORS_CPU = [
    "coretemp-isa-0000",
    "Adapter: ISA adapter",
    "Package id 0:  +55.0°C  (high = +80.0°C, crit = +100.0°C)",
    "Core 0:        +55.0°C  (high = +80.0°C, crit = +100.0°C)",
]
SENSORS_ROOM = [
    "sht3x-i2c-1-44",
    "Adapter: SMBus I801 adapter at efa0",
    "temp1:        +24.0°C",
    "humidity1:     45.0 %RH",
]
SMART_PASSED = [
    "smartctl 7.3 2022-02-28 r5338 [x86_64-linux-oorfix-lab] (local build)",
    "Copyright (C) 2002-22, Bruce Allen, Christian Franke, www.smartmontools.org",
    "",
    "=== START OF READ SMART DATA SECTION ===",
    "SMART overall-health self-assessment test result: PASSED",
]
ATS_R1 = [
    "FEED  STATUS        VOLTAGE",
    "A     ok            230.0",
    "B     ok            230.0",
    "",
    "RACK  SOURCE  POWER         VOLTAGE  A             B",
    "r1    A       ok            230.0    ok            ok",
]
FANS = [
    f"FAN{i}             | 4{i}h | ok  | 29.{i} | {rpm} RPM"
    for i, rpm in enumerate((9000, 8900, 9100, 9000), 1)
]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ipmitool", "sdr", "type", "Fan"], FANS),
        (["ipmitool", "sensor"], [SENSOR_CPU]),
        (["sensors"], SENSORS_CPU),
        (["sensors", "sht3x-*"], SENSORS_ROOM),
        (["upsc", "ups", "input.voltage"], ["230.0"]),
        (["smartctl", "-H", "/dev/sda"], SMART_PASSED),
        (["edac-util"], ["edac-util: No errors to report."]),
        (["edac-util", "--report=ue"], ["UE: 0"]),
        (["dpkg-query", "-W", "pg-api"], ["pg-api\t2.4.1"]),
        (["atsctl", "status", "--rack", "r1"], ATS_R1),
    ],
)
def test_healthy_readings(lab: HostPaths, run: Run, args: list[str], expected: list[str]) -> None:
    rc, out, err = run(lab, *args)
    assert (rc, err) == (0, "")
    assert lines(out)[: len(expected)] == expected


def test_psu_failure_reads_ac_lost_until_the_rack_moves_to_feed_b(lab: HostPaths) -> None:
    hardware.inject_psu_failure(lab.lab, "r1")
    assert lines(shell(lab, "ipmitool", "sdr", "type", "Power Supply").stdout) == [
        PSU_LOST,
        PSU_OK[1],  # PS2 sits behind the UPS
    ]
    assert hardware.ups_status(lab.lab) == "OB"
    assert not hardware.power_ok(lab.lab, "r1")
    done = shell(lab, "atsctl", "transfer", "--rack", "r1", "--source", "B")
    assert (done.returncode, done.stdout) == (0, "rack r1: transferred from source A to source B\n")
    assert lines(shell(lab, "ipmitool", "sdr", "type", "Power Supply").stdout) == PSU_OK
    assert (hardware.ups_status(lab.lab), hardware.power_ok(lab.lab, "r1")) == ("OL", True)
    assert hardware.ats_source(lab.lab, "r1") == "B"


def test_atsctl_refuses_a_lost_feed(lab: HostPaths, run: Run) -> None:
    hardware.set_feed(lab.lab, "B", status="lost")
    hardware.inject_psu_failure(lab.lab, "r1")
    rc, out, err = run(lab, "atsctl", "transfer", "--rack", "r1", "--source", "B")
    assert (rc, out) == (1, "")
    assert err == "atsctl: refusing to transfer rack r1 to source B: feed lost\n"
    assert hardware.ats_source(lab.lab, "r1") == "A"
    assert not hardware.power_ok(lab.lab, "r1")


def test_power_fluctuation_boosts_the_ups_until_every_rack_is_on_feed_b(
    lab: HostPaths, run: Run
) -> None:
    hardware.inject_power_fluctuation(lab.lab)
    rc, out, _ = run(lab, "upsc", "ups@pwr-ctl-1")
    variables = dict(line.split(": ", 1) for line in lines(out))
    assert variables["ups.status"] == "OL BOOST"
    assert variables["input.voltage"] == "184.0"
    assert variables["input.transfer.reason"] == "input voltage out of range"
    assert hardware.transfer_events(lab.lab) == 1 + 5  # the settle, and the swings before it
    assert run(lab, "ipmitool", "sdr", "type", "Power Supply")[1].startswith(PSU_SAG)
    assert not hardware.voltage_ok(lab.lab)
    rc, out, _ = run(lab, "atsctl", "transfer", "--rack", "all", "--source", "B")
    assert rc == 0
    assert lines(out) == [f"rack {r}: transferred from source A to source B" for r in ("r1", "r2")]
    assert (hardware.ups_status(lab.lab), hardware.input_voltage(lab.lab)) == ("OL", 230.0)
    assert hardware.voltage_ok(lab.lab)


def test_a_sag_on_one_rack_leaves_the_other_racks_hosts_alone(lab: HostPaths, run: Run) -> None:
    hardware.inject_power_fluctuation(lab.lab, rack="r2")
    other = HostPaths(lab.lab / "hosts" / "pg-api-2", lab.lab)
    assert lines(run(lab, "ipmitool", "sdr", "type", "Power Supply")[1]) == PSU_OK
    assert lines(run(other, "ipmitool", "sdr", "type", "Power Supply")[1])[0] == PSU_SAG
    assert run(lab, "atsctl", "transfer", "--rack", "r2", "--source", "B")[0] == 0
    assert hardware.voltage_ok(lab.lab)


def test_overheat_is_brought_back_in_range_by_full_fan_mode(lab: HostPaths, run: Run) -> None:
    hardware.inject_overheat(lab.state)
    assert lines(run(lab, "ipmitool", "sdr", "type", "Temperature")[1])[0] == CPU_HOT
    assert PACKAGE_HOT in lines(run(lab, "sensors")[1])
    assert hardware.temperature_c(lab.state) > hardware.TEMPERATURE_MAX_C
    assert run(lab, "ipmitool", "raw", "0x30", "0x45", "0x01", "0x01") == (0, "\n", "")
    assert run(lab, "ipmitool", "raw", "0x30", "0x45", "0x00") == (0, " 01\n", "")
    assert lines(run(lab, "ipmitool", "sdr", "type", "Temperature")[1])[0] == CPU_COOLED
    assert hardware.temperature_c(lab.state) <= hardware.TEMPERATURE_MAX_C


def test_humidity_and_dust_have_no_fix_on_the_host(lab: HostPaths, run: Run) -> None:
    hardware.inject_humidity(lab.state)
    assert "humidity1:     82.0 %RH" in lines(run(lab, "sensors")[1])
    assert lines(run(lab, "ipmitool", "sdr", "type", "Fan")[1])[1] == DUSTY_FAN
    assert "Cooling/Fan Fault    : true" in lines(run(lab, "ipmitool", "chassis", "status")[1])
    run(lab, "ipmitool", "raw", "0x30", "0x45", "0x01", "0x01")
    assert hardware.humidity_rh(lab.state) == 82.0
    assert hardware.fan_rpms(lab.state)[1] == 3600  # faster, still under the BMC's "nc" mark
    assert lines(run(lab, "ipmitool", "sdr", "type", "Fan")[1])[1].split("|")[2].strip() == "nc"


def test_disk_failure_fails_smart_and_counts_memory_errors(lab: HostPaths, run: Run) -> None:
    hardware.inject_disk_failure(lab.state)
    rc, out, _ = run(lab, "smartctl", "-H", "/dev/sda")
    assert rc == 8 | 16  # bit 3: health check failed; bit 4: a pre-fail attribute failing
    assert SMART_FAILED in lines(out)
    assert REALLOCATED_FAILING in lines(out)
    assert run(lab, "edac-util", "--report=ue")[1] == "UE: 1\n"
    assert hardware.smart_health(lab.state) == "FAILED"
    assert hardware.memory_errors(lab.state) == (120, 1)


def test_bad_version_is_fixed_by_installing_the_good_one(lab: HostPaths) -> None:
    hardware.inject_bad_version(lab.state, lab.lab)
    assert shell(lab, "dpkg-query", "-W", "-f=${Version}", "pg-api").stdout == "2.3.0-bad"
    assert payment_api.installed_version(lab.state) in payment_api.BAD_VERSIONS
    done = shell(lab, "apt-get", "install", "-y", "-q", "--", "pg-api=2.4.1")
    assert done.returncode == 0, done.stderr
    assert "Unpacking pg-api (2.4.1) over (2.3.0-bad) ..." in lines(done.stdout)
    assert lines(done.stdout)[-1] == "Setting up pg-api (2.4.1) ..."
    assert hardware.installed(lab.state, "pg-api") == payment_api.installed_version(lab.state)
    assert hardware.installed(lab.state, "pg-api") == "2.4.1"


@pytest.mark.parametrize(
    ("args", "rc", "error"),
    [
        (["install", "-y", "pg-api=9.9"], 100, "E: Version '9.9' for 'pg-api' was not found"),
        (["install", "-y", "nginx"], 100, "E: Unable to locate package nginx"),
        (["install", "-y", "pg-api=2.4.0"], 100, f"E: Packages were downgraded and {NO_ALLOW}."),
        (["install", "pg-api=2.4.0"], 1, ""),  # apt's prompt meets no terminal: "Abort."
        (["-s", "install", "pg-api=2.4.0"], 0, ""),
        (["frob"], 100, "E: Invalid operation frob"),
        (["--frob", "install", "pg-api"], 100, f"E: Command line option --frob {NOT_UNDERSTOOD}"),
    ],
)  # fmt: skip
def test_apt_get_refusals_change_nothing(
    lab: HostPaths, run: Run, args: list[str], rc: int, error: str
) -> None:
    assert run(lab, "apt-get", *args)[::2] == (rc, error + "\n" if error else "")
    assert hardware.installed(lab.state, "pg-api") == "2.4.1"


def test_apt_get_downgrades_when_allowed_and_removes(lab: HostPaths, run: Run) -> None:
    rc, out, err = run(lab, "apt-get", "install", "-y", "--allow-downgrades", "pg-api=2.4.0")
    assert (rc, err) == (0, "dpkg: warning: downgrading pg-api from 2.4.1 to 2.4.0\n")
    assert "The following packages will be DOWNGRADED:" in lines(out)
    assert run(lab, "apt-get", "install", "-y", "--only-upgrade", "pg-api")[0] == 0
    assert hardware.installed(lab.state, "pg-api") == "2.4.1"
    removed = run(lab, "apt-get", "remove", "-y", "pg-api")[1]
    assert lines(removed)[-1] == "Removing pg-api (2.4.1) ..."
    rc, _, err = run(lab, "dpkg-query", "-W", "pg-api")
    assert (rc, err) == (1, "dpkg-query: no packages found matching pg-api\n")


def test_ups_self_test(lab: HostPaths, run: Run) -> None:
    assert run(lab, "upscmd", *QUICK_TEST)[1] == "OK\n"
    assert run(lab, "upsc", "ups", "ups.test.result")[1] == "Done and passed\n"
    hardware.inject_psu_failure(lab.lab, "r2")
    run(lab, "upscmd", *QUICK_TEST)
    assert run(lab, "upsc", "ups", "ups.test.result")[1] == "Aborted\n"  # not while on battery


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["ipmitool", "sel", "list"],
        ["ipmitool", "raw", "0x06", "0x01"],
        ["ipmitool", "sdr", "type", "Voltage"],
        ["upsc", "other@pwr-ctl-1"],
        ["upsc", "ups", "no.such.var"],
        ["upscmd", "-u", "a", "-p", "b", "ups", "shutdown.return"],
        ["atsctl", "frob"],
        ["atsctl", "transfer", "--rack", "r9", "--source", "B"],
        ["sensors", "-Z"],
        ["smartctl", "--frob", "/dev/sda"],
        ["edac-util", "-x"],
        ["dpkg-query", "-l"],
    ],
)
def test_usage_errors_are_a_message_and_rc_1(lab: HostPaths, run: Run, args: list[str]) -> None:
    rc, out, err = run(lab, *args)
    assert (rc, out) == (1, "")
    assert err.strip()
    assert "Traceback" not in err


def test_corrupt_state_is_reported_not_raised(lab: HostPaths) -> None:
    (lab.state / "hardware.json").write_text("{not json")
    done = shell(lab, "ipmitool", "sdr")
    assert done.returncode == 1
    assert "ipmitool: the lab state could not be read" in done.stderr
    assert "Traceback" not in done.stderr


def test_sensors_json_and_the_shim_names(lab: HostPaths, run: Run) -> None:
    data = json.loads(run(lab, "sensors", "-j")[1])
    assert data["coretemp-isa-0000"]["Package id 0"]["temp1_input"] == 55.0
    assert data["sht3x-i2c-1-44"]["humidity1"]["humidity1_input"] == 45.0
    assert set(tools.HANDLERS) == set(hardware.TOOLS)


def test_lab_dir_defaults_to_the_lab_of_the_host_state(lab: HostPaths) -> None:
    found = HostPaths.from_env({"OORFIX_LAB_STATE": str(lab.state)})
    assert found.lab == lab.lab.resolve()


@pytest.mark.parametrize(
    ("a", "b", "sign"),
    [
        ("2.3.0-bad", "2.4.0", -1),
        ("2.4.1", "2.4.0", 1),
        ("1.10", "1.9", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0a", "1.0", 1),
        ("1:1.0", "2.0", 1),
        ("1.0-1", "1.0-2", -1),
        ("2.4.1", "2.4.1", 0),
    ],
)
def test_debian_version_order(a: str, b: str, sign: int) -> None:
    result = hardware.compare_versions(a, b)
    assert (result > 0) - (result < 0) == sign
    assert hardware.candidate(["2.3.0-bad", "2.4.1", "2.4.0"]) == "2.4.1"
