"""The console on real ports (``--device``): serial ports, real time, the same keys.

The three simulators are served on real ptys (``PtyServer``, real time), so the
console opens them exactly as it opens a clinic's USB adapters: ``devices=``,
a RealClock, the ordinary drivers. The technician signs in, walks the prompts
to RF output on at the device, and presses Escape: every device stops, and the
RF generator at the other end of its pty reports its output off.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_helpers import PORE_PATROL, SIZE, answer_prompt, press, sign_in, wait_for

from devicectl.console.app import ConsoleApp
from devicectl.console.backend import ConsoleBackend, ConsoleConfig
from devicectl_simulators.ipl_firmware import IPLFirmware
from devicectl_simulators.led_firmware import LEDFirmware
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.rf_firmware import RFFirmware


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
            await press(pilot, "escape")
            await wait_for(
                pilot,
                lambda: (
                    app.snapshot is not None
                    and set(app.snapshot.device_states().values()) == {"estop"}
                ),
                timeout_s=5.0,
            )
            assert not rf_sim_on()
            assert not served["led"].inspect(lambda sim: sim.output_on)
            assert not served["ipl"].inspect(lambda sim: sim.armed or sim.charged)

    asyncio.run(scenario())
