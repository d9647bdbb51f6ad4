"""The console as a client of the station service (``devicectl console --station``).

The station service runs in its own process with the RF simulator served on a
pty (``PtyServer``), as at a chair; consoles (Textual pilots) and an API client
connect over its Unix socket. What the RF output does is read at the far end
of the pty.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from console_helpers import SIZE, answer_prompt, press, wait_for
from typer.testing import CliRunner

from devicectl.cli import app as cli_app
from devicectl.console.app import ConsoleApp
from devicectl.console.confirm import ConfirmEnergyScreen
from devicectl.console.remote import StationBackend
from devicectl.console.screens import SignInScreen
from devicectl.station.auth import Operator, OperatorStore
from tests.served_process import Served, devicectl_script
from tests.test_station_service import PIN, PROTOCOL, START_S, Rig

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("realtime")]


# The simulator stands in for hardware, whose replies do not wait for the host's
# CPU: where allowed (root, chrt present) it runs at real-time priority, so a busy
# test machine cannot make a healthy device look silent to the station.
REALTIME_PREFIX: tuple[str, ...] = (
    ("chrt", "-f", "10") if os.geteuid() == 0 and shutil.which("chrt") else ()
)


class SimRig(Rig):
    """The rig with the RF simulator in its own process (``devicectl sim serve rf --pty``):
    the consoles' rendering in the test process never delays the device's replies."""

    def __init__(self, tmp: Path, sim: Served) -> None:
        port = sim.wait_for(lambda e: e.get("event") == "serving", START_S)["port"]
        super().__init__(tmp, SimpleNamespace(path=port))  # type: ignore[arg-type]
        self.sim = sim

    def output_log(self) -> list[tuple[float, bool, str]]:
        return [(e["t"], e["on"], e["reason"]) for e in self.sim.outputs()]

    def output_on(self) -> bool:
        log = self.output_log()
        return bool(log and log[-1][1])


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[SimRig]:
    store = OperatorStore(tmp_path / "operators.json")
    store.add("sup", PIN, "supervisor")
    store.add("tech", PIN, "operator", by=Operator("sup", "supervisor"))
    (tmp_path / "rf.toml").write_text(PROTOCOL, encoding="utf-8")
    proc = subprocess.Popen(
        [*REALTIME_PREFIX, devicectl_script(), "sim", "serve", "rf", "--pty", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    sim = Served(proc, tmp_path)
    rig: SimRig | None = None
    try:
        rig = SimRig(tmp_path, sim)
        rig.start()
        yield rig
    finally:
        if rig is not None and rig.service is not None:
            rig.service.cleanup()
        sim.cleanup()


def console(rig: Rig) -> ConsoleApp:
    backend = StationBackend(str(rig.sock), protocol=rig.tmp / "rf.toml")
    return ConsoleApp(backend, poll_s=0.05)


async def sign_in(pilot: object, app: ConsoleApp) -> None:
    await press(pilot, *"tech", "enter", *PIN, "enter")  # type: ignore[arg-type]
    await wait_for(pilot, lambda: app.operator == "tech")  # type: ignore[arg-type]


def rf_state(app: ConsoleApp) -> str | None:
    snap = app.snapshot
    view = snap.device("rf") if snap is not None else None
    return None if view is None else str(view.state)


def test_an_estop_from_another_client_stops_the_rf_the_console_delivers(rig: Rig) -> None:
    app = console(rig)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            assert isinstance(app.screen, SignInScreen)
            await sign_in(pilot, app)
            await answer_prompt(pilot, app, "arm")
            await answer_prompt(pilot, app, "start")
            await wait_for(pilot, rig.output_on)
            await wait_for(pilot, lambda: rf_state(app) == "delivering")
            panel = app.screen.query_one("#device-0")
            assert "RF" in str(panel.render())
            with rig.client() as other:  # nobody signed in there: E-stop needs no sign-in
                assert other.call("estop") == {"stopped": ["rf"]}
            await wait_for(pilot, lambda: not rig.output_on(), timeout_s=1.0)
            await wait_for(pilot, lambda: rf_state(app) == "estop")
            await wait_for(
                pilot,
                lambda: any("EMERGENCY STOP" in n.alarm.message for n in app.alarms.ordered()),
            )

    asyncio.run(scenario())


def test_a_reload_during_delivery_reattaches_and_its_escape_stops_the_rf(rig: Rig) -> None:
    first = console(rig)

    async def deliver_then_leave() -> str:
        async with first.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: first.snapshot is not None)
            await sign_in(pilot, first)
            await answer_prompt(pilot, first, "arm")
            await answer_prompt(pilot, first, "start")
            await wait_for(pilot, rig.output_on)
            snap = first.snapshot
            assert snap is not None and snap.session is not None
            return snap.session.protocol
        # leaving the context closes the app: the connection drops (a page reload)

    protocol = asyncio.run(deliver_then_leave())
    left_at = time.monotonic()
    assert rig.output_on(), "a console that goes away never takes the session with it"
    second = console(rig)

    async def reattach() -> None:
        async with second.run_test(size=SIZE) as pilot:
            # the new console shows the running session before anyone signs in
            await wait_for(
                pilot,
                lambda: (
                    second.snapshot is not None
                    and second.snapshot.session is not None
                    and rf_state(second) == "delivering"
                ),
            )
            snap = second.snapshot
            assert snap is not None and snap.session is not None
            assert snap.session.protocol == protocol and snap.session.operator == "tech"
            assert snap.session.state in ("running", "waiting_confirm")
            await sign_in(pilot, second)  # no new session: the running one is shown
            assert time.monotonic() - left_at < 3.0, "slower than the unattended pause"
            assert rig.output_on()
            snap = second.snapshot
            assert snap is not None and snap.session is not None
            assert snap.session.protocol == protocol
            await press(pilot, "escape")
            await wait_for(pilot, lambda: not rig.output_on(), timeout_s=1.0)
            await wait_for(pilot, lambda: rf_state(second) == "estop")

    asyncio.run(reattach())


def test_the_station_console_shows_the_energy_and_confirms_a_resume(rig: Rig) -> None:
    app = console(rig)

    def session() -> Any:
        snap = app.snapshot
        return snap.session if snap is not None else None

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            await sign_in(pilot, app)
            await wait_for(pilot, lambda: getattr(session(), "awaiting", None) == "arm")
            energy = session().energy or ""
            assert energy.startswith("RF zone forehead: target 42.0 °C, hold 60 s")
            assert "site dose left" in energy
            assert "arm" in session().offers
            assert "RF zone forehead" in str(app.screen_stack[1].query_one("#prompt").render())
            await answer_prompt(pilot, app, "arm")
            await answer_prompt(pilot, app, "start")
            await wait_for(pilot, rig.output_on)
            await press(pilot, "p")
            await wait_for(pilot, lambda: not rig.output_on(), timeout_s=1.0)
            await wait_for(pilot, lambda: session().paused == ("rf",))
            assert "resume" in session().offers
            await press(pilot, "r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmEnergyScreen))
            assert not rig.output_on()  # nothing is sent before C
            await press(pilot, "c")
            await wait_for(pilot, rig.output_on)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: not rig.output_on(), timeout_s=1.0)

    asyncio.run(scenario())


def test_the_console_refuses_devices_and_serve_without_a_station() -> None:
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["console", "--device", "rf=/dev/ttyUSB0"])
    assert refused.exit_code != 0
    assert "devicectl station serve" in str(refused.exception) + refused.output
    refused = runner.invoke(cli_app, ["console", "--serve"])
    assert refused.exit_code != 0
    assert "--station" in str(refused.exception) + refused.output
