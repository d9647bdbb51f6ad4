"""The console, driven with keys through Textual's headless pilot, on fast simulators."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from console_helpers import (
    OPERATOR,
    PORE_PATROL,
    SIZE,
    EventLog,
    answer_prompt,
    make_app,
    press,
    sign_in,
    wait_for,
)

from devicectl.clock import PacedSimClock, RealClock
from devicectl.console.app import ConsoleApp
from devicectl.console.backend import ConsoleBackend, ConsoleConfig
from devicectl.console.panels import render_alarms
from devicectl.console.screens import SignInScreen
from devicectl.control.events import AlarmPriority
from devicectl.modalities.rf.controller import RFController, RFState
from devicectl.modality import modality
from devicectl.records.store import RecordStore


def _rf_view(app: ConsoleApp) -> Any:
    """The RF panel's latest view (None before the first snapshot)."""
    return app.snapshot.device("rf") if app.snapshot is not None else None


def test_a_pore_patrol_session_runs_to_the_end_with_keys(tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    app = make_app(db)
    clock = app.backend.station.clock
    assert isinstance(clock, PacedSimClock)
    flashes_pressed = 0

    async def scenario() -> None:
        nonlocal flashes_pressed
        async with app.run_test(size=SIZE) as pilot:
            # Nothing happens before sign-in: no session, and an empty id is refused.
            await press(pilot, "enter")
            assert isinstance(app.screen, SignInScreen)
            # (the first snapshot can come after the key on a loaded machine)
            await wait_for(pilot, lambda: app.snapshot is not None)
            assert app.snapshot is not None and app.snapshot.session is None
            await sign_in(pilot, app)
            for _ in range(4000):  # about 200 s of app time at most
                await pilot.pause(0.05)
                snap = app.snapshot
                assert snap is not None and snap.session is not None
                session = snap.session
                if session.state == "complete":
                    break
                assert session.state not in ("faulted", "aborted", "ended"), session
                # From the IPL step on until its end, paced at 25x: an armed handpiece
                # dumps an unused charge after 30 s (and the controller then waits
                # for a charge that never comes), so a flash key must come first.
                pace = 25 if session.current == 4 else 0
                if clock.speed != pace:
                    clock.set_speed(pace)
                if session.state == "waiting_confirm" and session.awaiting:
                    await answer_prompt(pilot, app, session.awaiting)
                    continue
                ipl = snap.device("ipl")
                if ipl is not None and ipl.state == "armed":
                    # The trigger: one key per flash (a refused early press is harmless).
                    await press(pilot, "f")
                    flashes_pressed += 1
            steps = app.snapshot.session.steps if app.snapshot and app.snapshot.session else ()
            assert [s.outcome for s in steps] == ["complete"] * 7
            led = app.snapshot.device("led") if app.snapshot is not None else None
            assert led is not None and led.dose_j_cm2 > 100.0

    asyncio.run(scenario())
    assert flashes_pressed >= 40  # every flash had its own key press
    session_id = app.backend.session_id
    assert session_id is not None
    with RecordStore.open(db, readonly=True) as store:
        detail = store.session_detail(session_id)
        assert detail.session.outcome == "complete"
        assert detail.session.operator_id == OPERATOR
        actions = {
            (e.data.get("action") if isinstance(e.data, dict) else None)
            for e in detail.operator_actions
            if e.operator_id == OPERATOR
        }
        assert {"sign_in", "confirm", "arm", "start", "next_zone", "fire"} <= actions
        assert not store.verify(session_id)[0].problems


def test_an_injected_fault_shows_a_high_alarm_and_output_off_in_the_same_tick() -> None:
    app = make_app(faults={"rf": ["runaway@0s"]})
    log = EventLog()
    app.backend.station.loop.subscribe(log)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            for action in ("confirm", "confirm", "arm", "start"):
                await answer_prompt(pilot, app, action)
            await wait_for(pilot, lambda: app.alarms.oldest() is not None)
            await wait_for(pilot, lambda: getattr(_rf_view(app), "state", None) == "fault")
            oldest = app.alarms.oldest()
            assert oldest is not None and oldest.alarm.priority is AlarmPriority.HIGH
            assert oldest.alarm.device == "rf"
            shown = render_alarms(app.alarms.ordered()).plain
            assert shown.startswith(" HIGH ") and "rf:" in shown
            rf_text = modality("rf").render_panel(app.snapshot.device("rf")).plain
            assert "FAULT" in rf_text and "output off" in rf_text and "OUTPUT ON" not in rf_text

    asyncio.run(scenario())
    rf_events = [e for e in log.events if e.device == "rf"]
    on = next(e for e in rf_events if e.data.get("command") == "output_on")
    alarm = next(
        e for e in rf_events if e.kind == "alarm" and e.data["alarm"].priority is AlarmPriority.HIGH
    )
    safe = next(
        e for e in rf_events if e.data.get("command") == "safe_state" and e.t_s >= alarm.t_s
    )
    fault = next(e for e in rf_events if e.kind == "state" and e.data["state"] == "fault")
    assert on.t_s < alarm.t_s
    # Alarm, transition to fault, and output off confirmed by readback: one tick.
    assert alarm.t_s == fault.t_s == safe.t_s
    assert safe.data["confirmed"] is True


def test_without_fast_the_simulators_run_in_real_time() -> None:
    app = ConsoleApp(ConsoleBackend(ConsoleConfig(PORE_PATROL, record=False)), poll_s=0.05)
    assert isinstance(app.backend.station.clock, RealClock)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, timeout_s=5.0)
            first = app.snapshot
            assert first is not None
            await pilot.pause(1.0)
            later = app.snapshot
            rf = later.device("rf") if later is not None else None
            assert later is not None and rf is not None
            # about one second of loop time per second, at 20 ticks a second
            assert 0.5 < later.t_s - first.t_s < 3.0
            assert 10 <= later.tick - first.tick <= 60
            assert rf.output_on is False and rf.skin1_c is not None

    asyncio.run(scenario())


def test_quitting_mid_delivery_aborts_the_session_with_every_device_safe(tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    app = make_app(db)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            for action in ("confirm", "confirm", "arm", "start"):
                await answer_prompt(pilot, app, action)
            await wait_for(pilot, lambda: getattr(_rf_view(app), "output_on", None) is True)
            await press(pilot, "ctrl+q", "y")  # a session is under way: asked, then yes

    asyncio.run(scenario())
    rf = app.backend.station.loop.controllers["rf"]
    assert isinstance(rf, RFController)
    assert rf.state is RFState.IDLE and rf.reading is not None and not rf.reading.output_on
    assert app.backend.session_id is not None
    with RecordStore.open(db, readonly=True) as store:
        assert store.session_detail(app.backend.session_id).session.outcome == "aborted"
