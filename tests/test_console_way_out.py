"""The console never leaves the operator at a dead end: it offers, and shows, the keys
the runner and the devices would take now, and its counts follow the session's step."""

from __future__ import annotations

import asyncio
from pathlib import Path

from console_helpers import SIZE, answer_prompt, make_app, press, prompt_shown, sign_in, wait_for
from console_scenarios import IPL_ONLY, device, fire_one, protocol, session, shown

from devicectl.clock import PacedSimClock
from devicectl.console.confirm import ConfirmEnergyScreen
from devicectl.console.panels import render_prompt
from devicectl.console.snapshot import SessionView


async def _answer(pilot: object, app: object) -> None:
    await wait_for(pilot, lambda: prompt_shown(app))  # type: ignore[arg-type]
    await answer_prompt(pilot, app, session(app).awaiting)  # type: ignore[arg-type]


def test_a_dumped_charge_offers_r_which_recharges_and_the_pass_completes(tmp_path: Path) -> None:
    app = make_app(protocol=protocol(tmp_path, IPL_ONLY))
    clock = app.backend.station.clock
    assert isinstance(clock, PacedSimClock)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await _answer(pilot, app)  # eye protection
            # Unpaced: the armed handpiece holds its charge 30 s, then dumps it.
            await wait_for(pilot, lambda: getattr(device(app, "ipl"), "state", "") == "paused")
            clock.set_speed(10)
            s = session(app)
            assert s.state == "running"
            assert s.paused == ("ipl",)
            assert "resume" in s.offers and "ipl.fire" not in s.offers
            prompt = shown(app, "prompt")
            assert "ipl paused" in prompt and "press R to resume" in prompt
            assert "X abort" in prompt and "Esc E-STOP" in prompt
            # F is refused by the device, and the status line says what would be taken.
            await press(pilot, "f")
            await wait_for(pilot, lambda: any("cannot fire" in n for n in app.notices))
            refusal = next(n for n in app.notices if "cannot fire" in n)
            assert "R resume" in refusal
            # R asks first (the handpiece charges again), then resumes it.
            await press(pilot, "r")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmEnergyScreen))
            await press(pilot, "c")
            await wait_for(
                pilot, lambda: device(app, "ipl").state in ("charging", "armed", "firing")
            )
            for _ in range(4):
                await fire_one(pilot, app)
            await wait_for(pilot, lambda: session(app).state == "complete")
            ipl = device(app, "ipl")
            assert (ipl.flashes_done, ipl.flashes_planned) == (4, 4)

    asyncio.run(scenario())


def test_after_an_estop_mid_pass_the_panel_counts_the_steps_flashes(tmp_path: Path) -> None:
    app = make_app(protocol=protocol(tmp_path, IPL_ONLY), speed=10)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await _answer(pilot, app)
            for _ in range(2):
                await fire_one(pilot, app)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: session(app).state == "faulted")
            await press(pilot, "k")
            await wait_for(pilot, lambda: device(app, "ipl").state == "idle")
            await press(pilot, "r")
            await wait_for(pilot, lambda: prompt_shown(app))
            # The pass is loaded again with what is left (2 flashes); the step has 4.
            ipl = device(app, "ipl")
            assert (ipl.flashes_done, ipl.flashes_planned) == (2, 4)
            await _answer(pilot, app)
            for _ in range(2):
                await fire_one(pilot, app)
            await wait_for(pilot, lambda: session(app).state == "complete")
            ipl = device(app, "ipl")
            assert (ipl.flashes_done, ipl.flashes_planned) == (4, 4)

    asyncio.run(scenario())


def _view(state: str, fault: str | None = None, **kw: object) -> SessionView:
    return SessionView("P", "tech", state, 1, None, None, fault, (), **kw)  # type: ignore[arg-type]


def test_every_session_state_shows_a_way_out() -> None:
    faulted = _view("faulted", fault="rf: x", offers=("end", "abort", "acknowledge"))
    assert "press K to acknowledge" in render_prompt(faulted).plain
    assert "E end" in render_prompt(faulted).plain
    paused = _view("paused", offers=("resume", "abort"), paused=("led",))
    assert "press R to resume" in render_prompt(paused).plain
    for view in (faulted, paused, _view("running", offers=("pause", "abort"))):
        assert "Esc E-STOP" in render_prompt(view).plain


def test_station_clients_see_what_is_offered_change_with_a_device(tmp_path: Path) -> None:
    """A device that pauses itself changes what the session offers without changing
    the session's state: the station sends its clients the session again."""
    from typing import Any

    from devicectl.control.events import Event
    from devicectl.session.protocol_file import loads_protocol
    from devicectl.station.service import ServeConfig, StationService

    config = ServeConfig(
        devices={"ipl": "sim://ipl?seed=7&filter=560"},
        unix=tmp_path / "station.sock",
        db=str(tmp_path / "records.sqlite"),
        operators=tmp_path / "operators.json",
    )
    service = StationService(config)
    sent: list[tuple[Any, ...]] = []

    class ServiceLoop:  # what the fan-out is handed, in order
        def call_soon_threadsafe(self, _fanout: Any, *args: Any) -> None:
            sent.append(args)

    try:
        service._aloop = ServiceLoop()  # type: ignore[assignment]
        service.desk.runner = service._make_runner(loads_protocol(IPL_ONLY), "tech")
        data = {"state": "paused", "source": "ARMED", "trigger": "pause"}
        service._on_loop_event(Event(1.0, "state", "ipl", data))
        assert [method for method, _, _ in sent] == ["state", "session"]
        session = sent[1][1]
        assert {"offers", "paused", "energy"} <= set(session)
        assert session["operator_id"] == "tech" and "abort" in session["offers"]
    finally:
        service._close_station()
