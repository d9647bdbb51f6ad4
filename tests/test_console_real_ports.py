"""The console on real ports: serial ports, real time, the same keys.

The three simulators are served on real ptys (``PtyServer``, real time), opened
exactly as a clinic's USB adapters are: a RealClock, the ordinary drivers. The
technician signs in, walks the prompts to RF output on at the device, and
presses Escape: every device stops, and each device at the other end of its pty
reports its output off.

Two ways to own the ports: the in-process backend (``ConsoleBackend`` with
``devices=``), and, as at a chair, a station service in its own process
(``devicectl station serve --device ...``) that owns them, with the console its
client over the service's Unix socket (``StationBackend``, ``console --station``).
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from console_helpers import PORE_PATROL, SIZE, answer_prompt, press, sign_in, wait_for
from textual.pilot import Pilot

from devicectl.console.app import ConsoleApp
from devicectl.console.backend import ConsoleBackend, ConsoleConfig
from devicectl.console.remote import StationBackend
from devicectl.station.auth import Operator, OperatorStore
from devicectl_simulators.ipl_firmware import IPLFirmware
from devicectl_simulators.led_firmware import LEDFirmware
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.rf_firmware import RFFirmware
from tests.served_process import Served, devicectl_script

# Real time: served ptys, and a station service in its own process to start.
pytestmark = pytest.mark.timeout(180)
PIN = "2468"
SERVE_START_S = 60.0


@pytest.fixture
def served() -> Iterator[dict[str, PtyServer]]:
    servers = {
        "rf": PtyServer(functools.partial(RFFirmware, seed=7)),
        "ipl": PtyServer(functools.partial(IPLFirmware, seed=7)),
        "led": PtyServer(functools.partial(LEDFirmware, seed=7)),
    }
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
    assert all(server.error is None for server in servers.values())


async def escape_stops_every_device(
    pilot: Pilot[None], app: ConsoleApp, served: dict[str, PtyServer]
) -> None:
    """Escape: every device in the console's view in its E-stop state, and each device
    at the far end of its pty reports its output off."""
    await press(pilot, "escape")
    await wait_for(
        pilot,
        lambda: (
            app.snapshot is not None and set(app.snapshot.device_states().values()) == {"estop"}
        ),
        timeout_s=5.0,
    )
    assert not served["rf"].inspect(lambda sim: sim.output_on)
    assert not served["led"].inspect(lambda sim: sim.output_on)
    assert not served["ipl"].inspect(lambda sim: sim.armed or sim.charged)


def test_escape_stops_real_ports_from_the_console(
    served: dict[str, PtyServer], tmp_path: Path
) -> None:
    devices = {kind: str(server.path) for kind, server in served.items()}
    config = ConsoleConfig(
        PORE_PATROL, devices=devices, db=str(tmp_path / "r.sqlite"), port_timeout_s=0.2
    )
    assert config.mode == f"real devices ({', '.join(sorted(devices))})"
    app = ConsoleApp(ConsoleBackend(config), start_loop=True, poll_s=0.05)
    rf_sim_on = functools.partial(served["rf"].inspect, lambda sim: sim.output_on)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await sign_in(pilot, app)
            # two manual steps, then the RF step: arm, then start (a person answers)
            for action in ("confirm", "confirm", "arm", "start"):
                await answer_prompt(pilot, app, action)
            try:
                await wait_for(pilot, rf_sim_on, timeout_s=10.0)
            except AssertionError:
                rf = app.backend.station.loop.controllers["rf"]
                raise AssertionError(
                    f"RF output not on at the device: rf {rf.state.value}, "
                    f"fault {rf.fault_alarm}, reading error {rf.reading_error}, "
                    f"session {app.snapshot.session if app.snapshot else None}"
                ) from None
            await escape_stops_every_device(pilot, app, served)

    asyncio.run(scenario())


@pytest.fixture
def station(served: dict[str, PtyServer], tmp_path: Path) -> Iterator[Path]:
    """``devicectl station serve`` owning the three served ptys; its Unix socket."""
    store = OperatorStore(tmp_path / "operators.json")
    store.add("sup", "1357", "supervisor")
    store.add("tech", PIN, "operator", by=Operator("sup", "supervisor"))
    sock = tmp_path / "station.sock"
    devices = [f"--device={kind}={server.path}" for kind, server in served.items()]
    proc = subprocess.Popen(
        [
            *(devicectl_script(), "station", "serve", *devices, "--unix", str(sock)),
            # The longest reply timeout: a busy test machine is not a lost device.
            *("--port-timeout", "0.2"),
            *("--operators", str(tmp_path / "operators.json")),
            *("--db", str(tmp_path / "r.sqlite")),
        ],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "station.stderr", "ab"),  # noqa: SIM115 - closed with the process
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DEVICECTL_LOG": str(tmp_path / "station.jsonl")},
    )
    service = Served(proc, tmp_path)
    try:
        service.wait_for(lambda e: e.get("event") == "serving", SERVE_START_S)
        yield sock
        assert service.terminate() == 0
    finally:
        service.cleanup()


def test_escape_stops_real_ports_from_a_console_client_of_the_station(
    served: dict[str, PtyServer], station: Path
) -> None:
    app = ConsoleApp(StationBackend(str(station), protocol=PORE_PATROL), poll_s=0.05)
    rf_sim_on: Callable[[], bool] = functools.partial(
        served["rf"].inspect, lambda sim: sim.output_on
    )

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await press(pilot, *"tech", "enter", *PIN, "enter")
            await wait_for(pilot, lambda: app.operator == "tech")
            # two manual steps, then the RF step: arm, then start (a person answers)
            for action in ("confirm", "confirm", "arm", "start"):
                await answer_prompt(pilot, app, action)
            try:
                await wait_for(pilot, rf_sim_on, timeout_s=10.0)
            except AssertionError:
                snap = app.snapshot
                raise AssertionError(
                    f"RF output not on at the device: {snap.device('rf') if snap else None}, "
                    f"session {snap.session if snap else None}"
                ) from None
            await escape_stops_every_device(pilot, app, served)

    asyncio.run(scenario())
