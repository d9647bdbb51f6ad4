"""``devicectl sim serve``: a simulator as a separate device, in its own process, in
real time, driven by the ordinary host stack over a pty, ``socket://`` and
``rfc2217://``.

Each test starts the installed ``devicectl`` script as a real subprocess, reads
the port from its first JSON line, connects a ``Station(RealClock())`` to it,
loads a zone, arms, starts, sees the output on at the device (from the served
simulator's JSON log), then falls silent and checks from the log that the
simulator's own watchdog turned output off 250 ms after the last frame (the
log's timestamps are the server's ``time.monotonic()``, the same clock as ours).
"""

from __future__ import annotations

import functools
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import serial

from devicectl import cli
from devicectl.clock import RealClock
from devicectl.control.events import Event
from devicectl.errors import DeviceTimeout, PortError
from devicectl.logs import configure_logging
from devicectl.modalities.ipl.controller import IPLState
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.modalities.led.controller import LEDState
from devicectl.modalities.led.limits import LEDStep
from devicectl.modalities.rf.limits import RFZone
from devicectl.plugins import SIMULATOR_GROUP, load_plugin
from devicectl.station import Station
from devicectl.transport import open_port
from devicectl_drivers.rf_scpi import RFScpiDriver
from devicectl_simulators.rf_firmware import RFFirmware
from devicectl_simulators.serve import is_loopback, parse_host_port, serve
from devicectl_simulators.tcp_server import TcpServer
from tests.served_process import Served, devicectl_script

OPERATOR = "tech-042"
WATCHDOG_S = 0.25
SLACK_S = 0.4  # scheduling slack on a loaded machine, on top of the watchdog
START_TIMEOUT_S = 15.0


def start_served(tmp_path: Path, *args: str) -> Served:
    env = {**os.environ, "DEVICECTL_LOG": str(tmp_path / "serve-devicectl.jsonl")}
    proc = subprocess.Popen(
        [devicectl_script(), "sim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    return Served(proc, tmp_path)


def stop_served(server: Served) -> None:
    proc = server.proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        with suppress(Exception):
            stream.close()  # type: ignore[union-attr]


SERVERS = {
    "pty": ("rf", "--pty", "--seed", "3"),
    "tcp": ("rf", "--tcp", "127.0.0.1:0", "--seed", "3"),
    "rfc2217": ("rf", "--rfc2217", "127.0.0.1:0", "--seed", "3"),
    "led-log": ("led", "--tcp", "localhost:0", "--log", "{tmp}/sim.jsonl"),
    "ipl-tcp": ("ipl", "--tcp", "127.0.0.1:0", "--seed", "3"),
    "ipl-rfc2217": ("ipl", "--rfc2217", "127.0.0.1:0", "--seed", "3"),
    "led-tcp": ("led", "--tcp", "127.0.0.1:0", "--seed", "3"),
    "led-rfc2217": ("led", "--rfc2217", "127.0.0.1:0", "--seed", "3"),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Every server of this module, started at once: their start-up (about 0.5 s of
    imports) and the simulators' 1 s boot overlap instead of adding up."""
    tmp = tmp_path_factory.mktemp("sim-serve")
    started: dict[str, Served] = {}
    try:
        for name, args in SERVERS.items():
            started[name] = start_served(tmp, *(a.replace("{tmp}", str(tmp)) for a in args))
        yield started
    finally:
        for server in started.values():
            stop_served(server)


def drive_rf_until_silent(server: Served, url: str) -> None:
    """Connect, read, start a zone, see output on at the device, then fall silent and
    see the device's watchdog turn it off 250 ms after the last frame."""
    station = Station(RealClock())
    ticks: list[float] = []

    def on_event(event: Event) -> None:
        if event.kind == "tick":
            ticks.append(event.t_s)

    station.loop.subscribe(on_event)
    rf = station.add_rf(url)  # waits out the simulator's 1 s boot
    assert rf.device is not None, rf.fault_alarm
    assert station.loop.run(until=lambda: rf.reading is not None, max_duration_s=2.0)
    readings = []
    for _ in range(3):
        station.loop.run(max_duration_s=0.05)
        readings.append(rf.reading)
    assert all(r is not None and 30.0 < r.skin1_c < 37.0 for r in readings), readings

    station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 60.0))
    station.command("rf", "arm", OPERATOR)
    station.command("rf", "start", OPERATOR)

    def output_on() -> bool:
        return any(e["on"] for e in server.outputs())

    assert station.loop.run(until=output_on, max_duration_s=3.0), server.events
    station.loop.run(max_duration_s=0.3)  # deliver for a moment, frames every 50 ms
    last_tick_s = ticks[-1]  # the last frame was written during this tick...
    silent_s = time.monotonic()  # ...and before this
    assert rf.device is not None
    rf.device.close()  # stop sending: no OUTP OFF, only the device's watchdog is left

    off = server.wait_for(lambda e: e["event"] == "output" and not e["on"], timeout_s=5.0)
    outputs = server.outputs()
    assert [(e["on"], e["reason"]) for e in outputs] == [(True, "host"), (False, "watchdog")], (
        outputs
    )
    assert outputs[0]["t"] < last_tick_s
    assert off["t"] >= last_tick_s + WATCHDOG_S, (off, last_tick_s)
    assert off["t"] <= silent_s + WATCHDOG_S + SLACK_S, (off, silent_s)


def direct_rf_until_silent(server: Served, url: str) -> None:
    """The same story with the RF driver straight on a pyserial port (no Station)."""
    port = serial.serial_for_url(url, timeout=0.05)
    driver = RFScpiDriver(port)
    try:
        deadline = time.monotonic() + 3.0
        while True:  # the simulator may still be booting (it drops bytes for 1 s)
            try:
                driver.clear_status()
                break
            except DeviceTimeout:
                assert time.monotonic() < deadline, "the served simulator never answered"
        assert driver.identify().model == "RF-60"
        readings = [driver.read() for _ in range(3)]
        assert all(30.0 < r.skin1_c < 37.0 for r in readings), readings
        driver.clear_status()
        driver.set_power(10.0)
        driver.output_on()
        server.wait_for(lambda e: e["event"] == "output" and e["on"], timeout_s=3.0)
        for _ in range(4):
            time.sleep(0.05)
            driver.read()
        before_last_s = time.monotonic()
        assert driver.read().output_on
        after_last_s = time.monotonic()
    finally:
        driver.close()  # stop sending: only the device's watchdog is left
    off = server.wait_for(lambda e: e["event"] == "output" and not e["on"], timeout_s=5.0)
    outputs = server.outputs()
    assert [(e["on"], e["reason"]) for e in outputs] == [(True, "host"), (False, "watchdog")], (
        outputs
    )
    assert off["t"] >= before_last_s + WATCHDOG_S, (off, before_last_s)
    assert off["t"] <= after_last_s + WATCHDOG_S + SLACK_S, (off, after_last_s)


def serving_line(server: Served) -> dict[str, Any]:
    return server.wait_for(lambda e: e["event"] == "serving", START_TIMEOUT_S)


def test_second_controller_on_the_same_pty_gets_port_in_use(
    servers: dict[str, Served],
) -> None:
    server = servers["pty"]  # before the pty test below, which ends it
    path = serving_line(server)["port"]
    first = open_port(path)
    try:
        with pytest.raises(PortError, match="lock") as info:
            open_port(path)
        assert path in str(info.value)
    finally:
        first.close()
    open_port(path).close()  # free again once the first controller let go


def test_rf_over_a_pty_watchdog_turns_output_off(servers: dict[str, Served]) -> None:
    server = servers["pty"]
    serving = serving_line(server)
    assert serving == {**serving, "device": "rf", "mode": "pty", "seed": 3}
    assert server.events[0] is serving  # the port line comes first
    path = serving["port"]
    assert path.startswith("/dev/") and os.path.exists(path)
    drive_rf_until_silent(server, path)
    assert server.terminate() == 0
    assert server.events[-1]["event"] == "stopped"
    with pytest.raises(PortError):  # the pty is gone with the server
        open_port(path).close()


def test_rf_over_tcp_socket_url(servers: dict[str, Served]) -> None:
    server = servers["tcp"]
    serving = serving_line(server)
    port = serving["tcp_port"]
    assert port > 0 and serving["host"] == "127.0.0.1"
    assert serving["port"] == f"socket://127.0.0.1:{port}"
    drive_rf_until_silent(server, serving["port"])
    assert server.terminate() == 0
    kinds = [e["event"] for e in server.events]
    assert kinds[0] == "serving" and kinds[-1] == "stopped"
    assert "connected" in kinds and "disconnected" in kinds


def test_rf_over_rfc2217_url(servers: dict[str, Served]) -> None:
    server = servers["rfc2217"]
    serving = serving_line(server)
    port = serving["tcp_port"]
    assert serving["port"] == f"rfc2217://127.0.0.1:{port}"
    direct_rf_until_silent(server, serving["port"])
    assert server.terminate() == 0
    assert server.events[-1]["event"] == "stopped"


def flash_once(server: Served, station: Station) -> None:
    """Load a one-flash pass, arm (eye protection confirmed), fire: the served lamp is
    armed by the host, then disarmed by the train it fired, at the set fluence."""
    ipl = station.add_ipl(serving_line(server)["port"])  # waits out the 1 s boot
    assert ipl.device is not None, ipl.fault_alarm
    assert station.loop.run(until=lambda: ipl.reading is not None, max_duration_s=2.0)
    ipl_pass = IPLPass(filter_nm=560, fluence_j_cm2=10.0, flashes=1, pulse_width_ms=10.0)
    station.command("ipl", "load", OPERATOR, ipl_pass=ipl_pass)
    station.command("ipl", "arm", OPERATOR, eye_protection=True)
    assert station.loop.run(until=lambda: ipl._may_fire(), max_duration_s=5.0), ipl.status()
    assert [(e["on"], e["reason"]) for e in server.outputs()] == [(True, "host")]
    station.command("ipl", "fire", OPERATOR)
    assert station.loop.run(
        until=lambda: ipl.state in (IPLState.COMPLETE, IPLState.FAULT), max_duration_s=3.0
    )
    assert ipl.state is IPLState.COMPLETE, ipl.fault_alarm
    (flash,) = ipl.flashes
    assert flash.delivered_j_cm2 == pytest.approx(10.0, rel=0.2)
    server.wait_for(lambda e: e["event"] == "output" and not e["on"], timeout_s=2.0)
    assert [(e["on"], e["reason"]) for e in server.outputs()] == [(True, "host"), (False, "fired")]


def expose_once(server: Served, station: Station) -> None:
    """A 1 s red exposure at 50 mW/cm2: output on by the host, off by the host when the
    step's measured on-time is reached, with the dose that implies."""
    led = station.add_led(serving_line(server)["port"])  # waits out the 1 s boot
    assert led.device is not None, led.fault_alarm
    assert station.loop.run(until=lambda: led.reading is not None, max_duration_s=2.0)
    station.command("led", "load", OPERATOR, step=LEDStep(633, 50.0, 1.0))
    station.command("led", "start", OPERATOR)
    assert station.loop.run(
        until=lambda: led.state in (LEDState.COMPLETE, LEDState.FAULT), max_duration_s=4.0
    )
    assert led.state is LEDState.COMPLETE, led.fault_alarm
    assert led.on_time_s >= 1.0
    assert 0.03 < led.dose_j_cm2 <= 0.06, led.dose_j_cm2  # 50 mW/cm2 for 1 s, settling in
    server.wait_for(lambda e: e["event"] == "output" and not e["on"], timeout_s=2.0)
    outputs = server.outputs()
    assert [(e["on"], e["reason"]) for e in outputs] == [(True, "host"), (False, "host")]
    assert outputs[1]["t"] - outputs[0]["t"] == pytest.approx(1.0, abs=0.3)


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("ipl-tcp", "socket"),
        ("ipl-rfc2217", "rfc2217"),
        ("led-tcp", "socket"),
        ("led-rfc2217", "rfc2217"),
    ],
)
def test_ipl_and_led_over_tcp_and_rfc2217_with_the_real_controller(
    servers: dict[str, Served], name: str, scheme: str
) -> None:
    """The IPL and LED drivers and controllers, in real time, against a served simulator
    reached through a ``socket://`` or ``rfc2217://`` URL: output on, then off, at the
    device (its JSON log), and the session's numbers as the controller saw them."""
    server = servers[name]
    serving = serving_line(server)
    assert serving["port"].startswith(f"{scheme}://127.0.0.1:")
    station = Station(RealClock())
    try:
        (flash_once if name.startswith("ipl") else expose_once)(server, station)
    finally:
        for controller in station.loop.controllers.values():
            device = getattr(controller, "device", None)
            if device is not None:
                device.close()
    assert server.terminate() == 0
    assert server.events[-1]["event"] == "stopped"


def test_sigint_ends_it_cleanly_and_the_log_file_gets_the_events(
    servers: dict[str, Served],
) -> None:
    server = servers["led-log"]
    serving = serving_line(server)
    assert serving["device"] == "led"
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=10) == 0
    lines = [json.loads(line) for line in (server.tmp / "sim.jsonl").read_text().splitlines()]
    assert lines[0] == serving  # the port line goes to stdout and to the log, once
    assert [e["event"] for e in lines].count("serving") == 1
    assert lines[-1]["event"] == "stopped"
    assert [e["event"] for e in server.events] == ["serving"]  # the rest: the log only


# -- in-process: bad requests, the TCP server's one-host rule, rfc2217 via open_port ---


@pytest.fixture
def restore_logging(_logging_to_file: Path) -> Iterator[None]:
    yield
    configure_logging(log_file=_logging_to_file)  # every main() run reconfigures structlog


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rf", "--tcp", "0.0.0.0:0"], "not a loopback address"),
        (["rf", "--rfc2217", "192.0.2.1:4000"], "--allow-remote"),
        (["rf", "--tcp", "nonsense"], "HOST:PORT"),
        (["rf", "--pty", "--tcp", "127.0.0.1:0"], "one of"),
        (["nosuch", "--pty"], "no devicectl.simulators plugin named 'nosuch'"),
        (["rf", "--fault", "frobnicate@1s"], "frobnicate"),
        (["rf", "--option", "colour=red"], "unknown option 'colour'"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    restore_logging: None,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["devicectl", "--log-file", str(tmp_path / "cli.jsonl"), "sim", "serve", *args]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    assert info.value.code == 2, (out, err)
    assert message in err, err
    assert err.startswith("devicectl: ") and err.count("\n") == 1, err
    assert out == ""


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    assert parse_host_port("[::1]:0") == ("::1", 0)


def test_tcp_server_serves_one_host_at_a_time() -> None:
    events: list[dict[str, Any]] = []
    with TcpServer(functools.partial(RFFirmware, seed=1), on_event=events.append) as server:
        url = server.url
        assert url is not None and url.startswith("socket://127.0.0.1:")
        first = open_port(url)
        try:
            deadline = time.monotonic() + 5.0
            while not any(e["event"] == "connected" for e in events):
                assert time.monotonic() < deadline
                time.sleep(0.01)
            second = open_port(url)  # accepted, then closed at once: the device has one port
            try:
                deadline = time.monotonic() + 5.0
                while not any(e["event"] == "refused" for e in events):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                with pytest.raises(serial.SerialException, match="disconnected"):
                    second.read(1)
            finally:
                second.close()
        finally:
            first.close()
        assert server.error is None


def test_station_opens_an_rfc2217_url() -> None:
    # open_port leaves out write_timeout for rfc2217://, which pyserial 3.5 refuses
    with TcpServer(functools.partial(RFFirmware, seed=1), rfc2217=True) as server:
        assert server.url is not None
        open_port(server.url).close()


def test_serve_in_process_until_stopped_ipl_over_a_pty() -> None:
    out = io.StringIO()
    stop = threading.Event()
    factory = load_plugin(SIMULATOR_GROUP, "ipl")
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(serve("ipl", factory, mode="pty", stdout=out, stop=stop))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 5.0
        while "serving" not in out.getvalue():
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.01)
        path = json.loads(out.getvalue().splitlines()[0])["port"]
        open_port(path).close()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert result == [0]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["device"] == "ipl" and lines[-1]["event"] == "stopped"
