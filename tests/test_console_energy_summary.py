"""Before energy goes on, the console shows what will be delivered and asks for it:
the prompt that arms or starts a device carries its modality's energy summary, and
a resume that would relight a paused device is confirmed with that summary first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from console_helpers import SIZE, answer_prompt, make_app, press, sign_in, wait_for
from console_scenarios import (
    IPL_ONLY,
    RF_THEN_LED,
    device,
    protocol,
    session,
    shown,
    wait_awaiting,
)

from devicectl.clock import PacedSimClock
from devicectl.console.confirm import ConfirmEnergyScreen
from devicectl.modality import Modality, modalities


def _energy(app: object) -> str:
    return str(session(app).energy or "")


def test_rf_arm_prompt_shows_zone_setpoint_hold_and_site_dose_left(tmp_path: Path) -> None:
    app = make_app(protocol=protocol(tmp_path, RF_THEN_LED))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await wait_awaiting(pilot, app, "arm")
            energy = _energy(app)
            assert energy.startswith("RF zone forehead: target 42.0 °C, hold 5 s")
            assert "site dose left CEM43 2.00 of 2" in energy
            assert "300 of 300 s at target" in energy
            prompt = shown(app, "prompt")
            assert "press A" in prompt and "RF zone forehead" in prompt
            for action in ("arm", "start"):
                await answer_prompt(pilot, app, action)
            # Moving to the next site: the zone just done is not what comes next.
            await wait_awaiting(pilot, app, "next_zone")
            assert session(app).energy is None
            await answer_prompt(pilot, app, "next_zone")
            await wait_awaiting(pilot, app, "arm")
            assert _energy(app).startswith("RF zone chin: target 42.0 °C, hold 5 s")

    asyncio.run(scenario())


def test_ipl_eye_protection_prompt_shows_filter_fluence_pulses_and_flashes(
    tmp_path: Path,
) -> None:
    app = make_app(protocol=protocol(tmp_path, IPL_ONLY))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await wait_awaiting(pilot, app, "confirm")
            assert _energy(app) == (
                "IPL filter 560 nm, 12.0 J/cm², 2 pulses of 4 ms, 20 ms apart; 4 flashes to fire"
            )
            assert "IPL filter 560 nm" in shown(app, "prompt")

    asyncio.run(scenario())


def test_led_start_shows_the_exposure_and_a_paused_led_resumes_only_once_confirmed(
    tmp_path: Path,
) -> None:
    app = make_app(protocol=protocol(tmp_path, RF_THEN_LED))
    clock = app.backend.station.clock
    assert isinstance(clock, PacedSimClock)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            for action in ("arm", "start", "next_zone", "arm", "start"):
                await answer_prompt(pilot, app, action)
            await wait_for(
                pilot, lambda: session(app).awaiting == "start" and session(app).current == 2
            )
            clock.set_speed(1)  # the exposure in real time: it must still run when paused
            assert _energy(app) == (
                "LED 633 nm: 100.0 mW/cm² for 10:00 (of 10:00), dose 60.0 J/cm² (given 0.0)"
            )
            assert "LED 633 nm" in shown(app, "prompt")
            await answer_prompt(pilot, app, "start")
            await wait_for(pilot, lambda: device(app, "led").state == "delivering")
            await press(pilot, "p")
            await wait_for(pilot, lambda: session(app).state == "paused")
            assert session(app).paused == ("led",)
            assert _energy(app).startswith("LED 633 nm: 100.0 mW/cm² for ")
            # R asks first; N sends nothing: the LED stays paused, output off.
            await press(pilot, "r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmEnergyScreen))
            dialog = str(app.screen.query_one("#dialog-text").render())
            assert "Resume led?" in dialog and "LED 633 nm: 100.0 mW/cm²" in dialog
            await press(pilot, "n")
            await wait_for(pilot, lambda: "resume not confirmed: nothing sent" in app.notices)
            assert session(app).state == "paused" and device(app, "led").state == "paused"
            # R, then C: the exposure goes on again.
            await press(pilot, "r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmEnergyScreen))
            await press(pilot, "c")
            await wait_for(pilot, lambda: device(app, "led").state == "delivering")
            assert session(app).state == "running"

    asyncio.run(scenario())


def test_every_built_in_modality_summarises_its_energy_in_its_own_hook() -> None:
    for name in ("rf", "ipl", "led"):
        mod = modalities()[name]
        assert type(mod).energy_summary is not Modality.energy_summary, name
