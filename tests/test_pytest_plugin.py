"""The devicectl pytest plugin (``pytest11`` entry point), run inline with pytester.

The HIL test below runs in real time against the RF simulator served on a pty:
the controller talks to the tty through its ordinary driver, as it would to
hardware. It takes about two seconds (the simulated generator boots in one).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Inner runs skip hypothesis's plugin (re-imported by every inline run, seconds each)
# and the snapshot plugin, which keeps its report directory in an environment
# variable: an inline run would overwrite it and delete the outer run's directory.
QUIET = (
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:textual-snapshot",
)

HIL_TEST = """
import pytest

from devicectl.modalities.rf.limits import RFZone
from devicectl.modalities.rf.controller import RFState


@pytest.mark.hil
def test_rf_zone_on_the_wire(devicectl_station, devicectl_served, devicectl_is_simulated):
    rf = devicectl_station.add("rf")
    assert rf.device is not None  # connected: identified over the pty
    devicectl_station.start()
    devicectl_station.wait_for(lambda: rf.reading is not None and rf.reading.contact_ok)
    devicectl_station.command("rf", "load", zone=RFZone("forehead", 42.0, 60.0))
    devicectl_station.command("rf", "arm")
    devicectl_station.command("rf", "start")
    assert rf.state is RFState.DELIVERING
    assert devicectl_is_simulated
    server = devicectl_served["rf"]
    devicectl_station.wait_for(lambda: server.inspect(lambda sim: sim.output_on))
    devicectl_station.command("rf", "pause")
    assert rf.state is RFState.PAUSED
    assert not server.inspect(lambda sim: sim.output_on)
    assert [on for _, on, _ in server.inspect(lambda sim: list(sim.output_log))] == [True, False]
"""


def test_a_hil_test_drives_the_rf_simulator_served_on_a_pty(pytester: pytest.Pytester) -> None:
    threads_before = set(threading.enumerate())
    pytester.makepyfile(test_hil=HIL_TEST)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)
    # teardown stopped the control loop and the pty server threads
    leftover = [
        t
        for t in set(threading.enumerate()) - threads_before
        if t.name.startswith(("pty-server", "devicectl-control-loop"))
    ]
    assert leftover == []


def test_teardown_puts_the_device_safe_and_closes_everything(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        SEEN = {}

        @pytest.fixture
        def probe(devicectl_served):
            yield SEEN
            # runs after devicectl_station's teardown, before the servers stop
            server = devicectl_served["rf"]
            SEEN["output_on"] = server.inspect(lambda sim: sim.output_on)

        def pytest_unconfigure(config):
            print("SEEN", SEEN)
        """
    )
    pytester.makepyfile(
        test_left_on="""
        from devicectl.modalities.rf.limits import RFZone

        def test_left_delivering(probe, devicectl_station, devicectl_served):
            rf = devicectl_station.add("rf")
            devicectl_station.start()
            devicectl_station.wait_for(lambda: rf.reading is not None and rf.reading.contact_ok)
            devicectl_station.command("rf", "load", zone=RFZone("cheek", 42.0, 60.0))
            devicectl_station.command("rf", "arm")
            devicectl_station.command("rf", "start")
            server = devicectl_served["rf"]
            devicectl_station.wait_for(lambda: server.inspect(lambda sim: sim.output_on))
            # no stop here: the fixture must put the device safe
        """
    )
    result = pytester.runpytest("-s", *QUIET)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["SEEN {'output_on': False}"])


def test_the_hil_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers", *QUIET)
    result.stdout.fnmatch_lines(
        ["@pytest.mark.hil: hardware-in-the-loop test: *--devicectl-device"]
    )
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.hil
        def test_marked():
            pass
        """
    )
    strict = pytester.runpytest("--strict-markers", "-m", "hil", *QUIET)
    strict.assert_outcomes(passed=1)


def test_the_plugin_is_loaded_through_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_configure(config):
            plugin = config.pluginmanager.get_plugin("devicectl")
            print("PLUGIN", config.pluginmanager.hasplugin("devicectl"), plugin.__name__)
        """
    )
    result = pytester.runpytest("-s", "--trace-config", *QUIET)
    result.stdout.fnmatch_lines(["*PLUGIN True devicectl.pytest_plugin*"], consecutive=False)
    result.stdout.fnmatch_lines(["*devicectl*devicectl/pytest_plugin.py*"])


def test_a_real_device_url_is_given_back_without_serving_anything(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_real="""
        import pytest

        def test_real_rf(devicectl_port, devicectl_served, devicectl_is_simulated):
            assert devicectl_port("rf") == "/dev/null"
            assert devicectl_port("rf") == "/dev/null"  # same device for the whole test
            assert devicectl_served == {}
            assert not devicectl_is_simulated
            assert not devicectl_port.is_simulated("rf")
            assert devicectl_port.is_simulated("led")

        def test_faults_need_a_simulator(devicectl_port):
            devicectl_port("rf", faults=["runaway@5s"])
            raise AssertionError("not reached: skipped")
        """
    )
    result = pytester.runpytest("--devicectl-device", "rf=/dev/null", "-rs", *QUIET)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*fault injection needs a served simulator*"])
    result.stdout.fnmatch_lines(["devicectl: real devices rf=/dev/null*"])


def test_served_ports_honour_seed_and_faults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_served="""
        import os

        def test_served(devicectl_port, devicectl_served, devicectl_is_simulated):
            path = devicectl_port("led", seed=3, faults=["led_string_fail@5s"])
            assert os.path.exists(path) and devicectl_is_simulated
            server = devicectl_served["led"]
            assert server.path == path and server.simulator is not None
            assert devicectl_port("led", seed=3, faults=["led_string_fail@5s"]) == path
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("rf", "expected KIND=URL"),
        ("=/dev/ttyUSB0", "expected KIND=URL"),
        ("fr=/dev/ttyUSB0", "unknown device kind 'fr'"),
    ],
)
def test_a_malformed_device_option_is_a_usage_error(
    pytester: pytest.Pytester, value: str, message: str
) -> None:
    result = pytester.runpytest("--devicectl-device", value, *QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_a_kind_given_twice_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--devicectl-device", "rf=/dev/ttyUSB0", "--devicectl-device", "rf=/dev/ttyUSB1", *QUIET
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'rf' is given twice*"])


def test_the_readme_example_passes(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Hardware-in-the-loop tests", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    pytester.makepyfile(test_readme=match.group(1))
    result = pytester.runpytest("--strict-markers", *QUIET)
    result.assert_outcomes(passed=1)


STATION_TEST = """
def test_through_the_station(devicectl_station_client, devicectl_station):
    assert devicectl_station.remote
    assert devicectl_station.add("rf") == "rf"
    assert devicectl_station_client.operator_id == "tech"
    devicectl_station_client.call("load_protocol", toml=PROTOCOL)
    devicectl_station_client.call("start_session")
    devicectl_station.wait_for(
        lambda: (devicectl_station.state.get("session") or {}).get("awaiting") == "confirm",
        timeout_s=20,
    )
    devicectl_station.command("session", "confirm")
    # left under way: the fixture aborts it at teardown
"""


def test_station_option_routes_the_fixtures_through_a_running_service(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_station_clients import PIN, PROTOCOL, Rig, rig_for

    with rig_for(tmp_path) as rig:
        service = rig.start()
        monkeypatch.setenv("DEVICECTL_PIN", PIN)
        pytester.makepyfile(test_station=f"PROTOCOL = {PROTOCOL!r}\n" + STATION_TEST)
        result = pytester.runpytest(
            "--devicectl-station", f"unix:{rig.sock}", "--devicectl-operator", "tech", *QUIET
        )
        result.assert_outcomes(passed=1)
        assert isinstance(rig, Rig)
        assert service.terminate() == 0
    from devicectl.records.store import RecordStore

    with RecordStore.open(rig.db) as store:
        sessions = store.list_sessions()
        assert [s.outcome for s in sessions] == ["aborted"]
        assert sessions[0].operator_id == "tech"


def test_without_a_station_the_client_fixture_skips(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skip="""
        def test_needs_station(devicectl_station_client):
            raise AssertionError("not reached")
        """
    )
    result = pytester.runpytest("-rs", *QUIET)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no station service given*"])
