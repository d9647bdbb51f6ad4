"""Drivers and simulators are found through entry points, including a third-party
package installed at runtime; bad names and bad sim:// URLs are clear ConfigErrors."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicectl.clock import SimClock
from devicectl.errors import ConfigError
from devicectl.plugins import DRIVER_GROUP, SIMULATOR_GROUP, PluginInfo, list_plugins, load_plugin
from devicectl.transport import open_port
from devicectl_drivers.rf_scpi import RFScpiDriver
from devicectl_simulators.rf_firmware import RFFirmware

FAKE_MODULE = "tests_fake_pkg"

FAKE_SOURCE = '''
"""A third-party simulator: echoes every line back in upper case."""


class FakeSim:
    def __init__(self, clock, seed=0, faults=(), **options):
        self.clock = clock
        self.seed = seed
        self.faults = list(faults)
        self.options = dict(options)
        self._out = b""
        self.closed = False

    def feed(self, data):
        self._out += bytes(data).upper()

    def take(self, max_bytes=-1):
        if max_bytes < 0:
            max_bytes = len(self._out)
        out, self._out = self._out[:max_bytes], self._out[max_bytes:]
        return out

    def pending(self):
        return len(self._out)

    def close(self):
        self.closed = True

    @property
    def output_on(self):
        return False
'''


@pytest.fixture
def fake_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package installed the way pip would: a module and a dist-info with entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{FAKE_MODULE}.py").write_text(FAKE_SOURCE, encoding="utf-8")
    dist_info = site / "tests_fake_pkg-1.2.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tests-fake-pkg\nVersion: 1.2.3\n", encoding="utf-8"
    )
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [devicectl.simulators]
            fake = {FAKE_MODULE}:FakeSim

            [devicectl.drivers]
            fake_drv = {FAKE_MODULE}:FakeSim
            broken = {FAKE_MODULE}_missing:Nothing
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop(FAKE_MODULE, None)


def names(group: str) -> list[str]:
    return [info.name for info in list_plugins(group)]


def test_builtin_driver_and_simulator_are_found_through_entry_points() -> None:
    drivers = {info.name: info for info in list_plugins(DRIVER_GROUP)}
    simulators = {info.name: info for info in list_plugins(SIMULATOR_GROUP)}
    assert drivers["rf_scpi"] == PluginInfo(
        DRIVER_GROUP, "rf_scpi", "devicectl_drivers.rf_scpi:RFScpiDriver", "devicectl"
    )
    assert simulators["rf"] == PluginInfo(
        SIMULATOR_GROUP, "rf", "devicectl_simulators.rf_firmware:RFFirmware", "devicectl"
    )
    assert load_plugin(DRIVER_GROUP, "rf_scpi") is RFScpiDriver
    assert load_plugin(SIMULATOR_GROUP, "rf") is RFFirmware


def test_plugins_are_listed_sorted_by_name() -> None:
    for group in (DRIVER_GROUP, SIMULATOR_GROUP):
        found = names(group)
        assert found == sorted(found)
        assert all(info.group == group for info in list_plugins(group))


def test_unknown_plugin_names_what_is_installed() -> None:
    with pytest.raises(ConfigError) as info:
        load_plugin(DRIVER_GROUP, "nosuch")
    text = str(info.value)
    assert "nosuch" in text and DRIVER_GROUP in text
    for name in names(DRIVER_GROUP):
        assert name in text
    with pytest.raises(ConfigError, match=r"installed: .*\brf\b"):
        load_plugin(SIMULATOR_GROUP, "nosuch")


def test_unknown_group_says_none_installed() -> None:
    with pytest.raises(ConfigError, match="installed: none"):
        load_plugin("devicectl.nosuch_group", "x")


def test_a_third_party_plugin_installed_at_runtime_is_found(fake_plugin: Path) -> None:
    simulators = {info.name: info for info in list_plugins(SIMULATOR_GROUP)}
    assert simulators["fake"] == PluginInfo(
        SIMULATOR_GROUP, "fake", f"{FAKE_MODULE}:FakeSim", "tests-fake-pkg"
    )
    assert "rf" in simulators  # the built-in one is still there
    assert "fake_drv" in names(DRIVER_GROUP)
    cls = load_plugin(SIMULATOR_GROUP, "fake")
    assert cls.__name__ == "FakeSim" and cls.__module__ == FAKE_MODULE
    assert load_plugin(DRIVER_GROUP, "fake_drv") is cls


def test_a_plugin_that_fails_to_import_is_a_config_error(fake_plugin: Path) -> None:
    with pytest.raises(ConfigError, match="'broken' is installed but fails to load"):
        load_plugin(DRIVER_GROUP, "broken")


def test_a_third_party_simulator_is_served_over_sim_urls(fake_plugin: Path) -> None:
    clock = SimClock()
    port = open_port("sim://fake?seed=5&fault=anything@1s&colour=blue", clock=clock)
    try:
        sim = port.simulator
        assert type(sim).__name__ == "FakeSim"
        assert (sim.seed, sim.faults, sim.options) == (5, ["anything@1s"], {"colour": "blue"})
        assert sim.clock is clock
        port.write(b"meas:all?\n")
        assert port.in_waiting == len(b"MEAS:ALL?\n")
        assert port.read(100) == b"MEAS:ALL?\n"
        # nothing to read: the read waits out its timeout in clock time
        assert port.read(1) == b""
        assert clock.now() == pytest.approx(port.timeout)
    finally:
        port.close()


def test_the_cli_lists_a_runtime_plugin(
    fake_plugin: Path, tmp_path: Path, _logging_to_file: Path
) -> None:
    from typer.testing import CliRunner

    from devicectl.cli import app
    from devicectl.logs import configure_logging

    try:
        result = CliRunner().invoke(app, ["--log-file", str(tmp_path / "l.jsonl"), "devices"])
    finally:
        configure_logging(log_file=_logging_to_file)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if "tests-fake-pkg" in line]
    assert ["│", "simulator", "│", "fake", "│", f"{FAKE_MODULE}:FakeSim"] in [r[:6] for r in rows]
    assert ["│", "driver", "│", "fake_drv", "│", f"{FAKE_MODULE}:FakeSim"] in [r[:6] for r in rows]


def test_open_port_for_an_unknown_simulator_names_the_installed_ones() -> None:
    with pytest.raises(ConfigError) as info:
        open_port("sim://nosuch", clock=SimClock())
    text = str(info.value)
    assert "nosuch" in text
    for name in names(SIMULATOR_GROUP):
        assert name in text


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("sim://rf?seed=abc", ("seed", "abc")),
        ("sim://rf?seed=1.5", ("seed", "1.5")),
        ("sim://rf?seed=1&bogus=2", ("bogus", "skin0")),
        ("sim://rf?skin0=warm", ("skin0", "warm")),
        ("sim://rf?fault=meltdown@1s", ("meltdown",)),
        ("sim://rf?fault=runaway@1s:gain=-1", ("gain",)),
    ],
)
def test_bad_sim_url_is_a_config_error_naming_the_url(url: str, words: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as info:
        open_port(url, clock=SimClock())
    text = str(info.value)
    assert url in text
    for word in words:
        assert word in text


def test_a_sim_url_without_a_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sim://NAME"):
        open_port("sim://?seed=1", clock=SimClock())


def test_a_station_opens_its_ports_with_its_reply_timeout() -> None:
    from devicectl.station import Station

    station = Station.simulated()
    slow = Station(station.clock, port_timeout_s=0.2)
    rf = slow.add_rf("sim://rf?seed=1")
    led = slow.add_led("sim://led?seed=1")
    assert rf.device is not None and rf.device._port.timeout == 0.2
    assert led.device is not None and led.device.timeout_s == 0.2
    default = station.add_rf("sim://rf?seed=2")
    assert default.device is not None and default.device._port.timeout == 0.05
