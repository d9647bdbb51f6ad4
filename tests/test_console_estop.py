"""Emergency stop: one key (Escape), from every screen, every device safe at once."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from console_helpers import (
    SIZE,
    EventLog,
    answer_prompt,
    make_app,
    press,
    prompt_shown,
    sign_in,
    wait_for,
)
from rich.text import Text

from devicectl.console.app import ConsoleApp
from devicectl.console.panels import TextPanel
from devicectl.console.screens import ConfirmAbortScreen, HelpScreen, MainScreen, SignInScreen


def _all_stopped(app: ConsoleApp) -> bool:
    """Every device in estop, and its next reading shows the output off."""
    snap = app.snapshot
    return (
        snap is not None
        and set(snap.device_states().values()) == {"estop"}
        and snap.device("rf") is not None
        and snap.device("rf").output_on is False
    )


async def _deliver_rf(pilot: object, app: ConsoleApp) -> None:
    """Sign in and walk the keys to RF output on (the first zone delivering)."""
    await sign_in(pilot, app)  # type: ignore[arg-type]
    for action in ("confirm", "confirm", "arm", "start"):
        await answer_prompt(pilot, app, action)  # type: ignore[arg-type]
    await wait_for(
        pilot,  # type: ignore[arg-type]
        lambda: (
            app.snapshot is not None
            and app.snapshot.device("rf") is not None
            and app.snapshot.device("rf").output_on is True
        ),
    )


@pytest.mark.parametrize("screen", ["sign-in", "main", "abort dialog", "help dialog"])
def test_escape_stops_every_device_from_every_screen(screen: str) -> None:
    app = make_app()
    log = EventLog()
    app.backend.station.loop.subscribe(log)
    expected = {
        "sign-in": SignInScreen,
        "main": MainScreen,
        "abort dialog": ConfirmAbortScreen,
        "help dialog": HelpScreen,
    }[screen]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None)
            if screen != "sign-in":
                await _deliver_rf(pilot, app)
            if screen == "abort dialog":
                await press(pilot, "x")
            elif screen == "help dialog":
                await press(pilot, "h")
            assert isinstance(app.screen, expected)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: _all_stopped(app), timeout_s=5.0)
            snap = app.snapshot
            assert snap is not None
            rf, ipl, led = (snap.device(name) for name in ("rf", "ipl", "led"))
            assert rf is not None and rf.output_on is False
            assert led is not None and led.output_on is False
            assert ipl is not None and ipl.energy is False
            # the screen the key was pressed on is still there: Escape did not dismiss it
            assert isinstance(app.screen, expected)
            oldest = app.alarms.oldest()
            assert oldest is not None and oldest.alarm.code == "console.estop"

    asyncio.run(scenario())
    estops = [e for e in log.events if e.kind == "state" and e.data["state"] == "estop"]
    assert {e.device for e in estops} == {"rf", "ipl", "led"}
    assert len({e.t_s for e in estops}) == 1  # every device in the same tick
    if screen != "sign-in":
        rf_off = [
            e
            for e in log.events
            if e.device == "rf" and e.data.get("command") == "safe_state" and e.data["confirmed"]
        ]
        assert rf_off and rf_off[-1].t_s == estops[0].t_s


def test_after_an_estop_acknowledge_and_resume_carry_the_session_on() -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await _deliver_rf(pilot, app)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: _all_stopped(app))
            await wait_for(
                pilot,
                lambda: (
                    app.snapshot is not None
                    and app.snapshot.session is not None
                    and app.snapshot.session.state == "faulted"
                ),
            )
            await press(pilot, "k")  # the E-stop alarm: every device acknowledged
            await wait_for(
                pilot,
                lambda: (
                    app.snapshot is not None
                    and set(app.snapshot.device_states().values()) == {"idle"}
                ),
            )
            await press(pilot, "r")
            await wait_for(pilot, lambda: prompt_shown(app))
            # the interrupted zone starts again, from placing the handpiece
            session = app.snapshot.session if app.snapshot else None
            assert session is not None and session.awaiting == "next_zone"
            assert session.prompt == "next zone: forehead"
            entry = app.alarms.ordered()[0]
            assert entry.acknowledged_by == "tech-042"

    asyncio.run(scenario())


def _alarms_text(app: ConsoleApp) -> Text:
    """The alarm panel's text as drawn on the screen now."""
    main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    shown = main.query_one("#alarms", TextPanel).render()
    assert isinstance(shown, Text)
    return shown


def _prompt_line(app: ConsoleApp) -> str:
    main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    shown = main.query_one("#prompt", TextPanel).render()
    assert isinstance(shown, Text)
    return shown.plain


def _alarms_shown(app: ConsoleApp) -> str:
    return _alarms_text(app).plain


def test_an_acknowledged_alarm_is_redrawn_at_once() -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: "EMERGENCY STOP" in _alarms_shown(app))
            assert "(ack" not in _alarms_shown(app)
            assert "bold white on red" in {str(span.style) for span in _alarms_text(app).spans}
            await press(pilot, "k")
            # no other alarm arrives: the acknowledgement alone redraws the row
            await wait_for(pilot, lambda: "(ack tech-042)" in _alarms_shown(app), timeout_s=2.0)
            # the row is no longer drawn in the HIGH alarm's red
            styles = {str(span.style) for span in _alarms_text(app).spans}
            assert "bold white on red" not in styles, styles

    asyncio.run(scenario())


def test_a_repeated_alarm_is_counted_on_screen_at_once() -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: "EMERGENCY STOP" in _alarms_shown(app))
            assert " x2" not in _alarms_shown(app)
            await press(pilot, "escape")  # the same alarm again, still unacknowledged
            await wait_for(pilot, lambda: " x2" in _alarms_shown(app), timeout_s=2.0)

    asyncio.run(scenario())


def _faulted(app: ConsoleApp) -> bool:
    snap = app.snapshot
    return snap is not None and snap.session is not None and snap.session.state == "faulted"


@pytest.mark.parametrize("during", ["manual step", "RF"])
def test_an_estop_is_shown_as_the_operators_not_a_devices_fault(during: str) -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            if during == "RF":
                await _deliver_rf(pilot, app)
            else:
                await sign_in(pilot, app)
                await wait_for(pilot, lambda: prompt_shown(app))
            await press(pilot, "escape")
            await wait_for(pilot, lambda: _faulted(app))
            snap = app.snapshot
            assert snap is not None and snap.session is not None
            assert snap.session.fault is not None
            assert snap.session.fault.startswith("EMERGENCY STOP by tech-042"), snap.session
            await wait_for(pilot, lambda: "EMERGENCY STOP by tech-042" in _prompt_line(app))
            for name in ("rf", "ipl", "led"):
                assert f"{name}: estop" not in _prompt_line(app)

    asyncio.run(scenario())


def test_alarm_times_are_into_the_session_and_the_clock_time() -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)  # unpaced: the loop clock ran on before sign-in
            await wait_for(pilot, lambda: prompt_shown(app))
            before = time.time()
            await press(pilot, "escape")
            await wait_for(pilot, lambda: "EMERGENCY STOP" in _alarms_shown(app))
            after = time.time()
            snap = app.snapshot
            assert snap is not None and snap.session is not None
            row = _alarms_shown(app).splitlines()[0]
            assert "t+" not in row, row
            match = re.match(r" HIGH  (\d\d):(\d\d) (\d\d:\d\d:\d\d) EMERGENCY STOP", row)
            assert match is not None, row
            # into the session: from sign-in on the loop clock, not the machine's uptime
            oldest = app.alarms.ordered()[0]
            into_s = int(match[1]) * 60 + int(match[2])
            assert into_s == int(oldest.t_s - app.backend.desk.runner.started_s)  # type: ignore[union-attr]
            assert into_s < oldest.t_s - 1.0  # sign-in time is not counted
            # the clock time it happened
            shown = {
                time.strftime("%H:%M:%S", time.localtime(t)) for t in (before, after, before + 1)
            }
            assert match[3] in shown, (row, shown)

    asyncio.run(scenario())


def test_a_manual_step_shows_its_instructions_with_the_prompt() -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await wait_for(pilot, lambda: "Salicylic acid mask" in _prompt_line(app))
            shown = " ".join(_prompt_line(app).split())
            assert "confirm: Salicylic acid mask" in shown
            assert (
                "Cleanse and dry the face. Apply the 2 % salicylic acid mask evenly, avoiding "
                "eyes and lips. Leave 10 minutes, then remove with cool water and pat dry."
            ) in shown, shown
            # the next manual step's own instructions replace them once it is confirmed
            await answer_prompt(pilot, app, "confirm")
            await wait_for(pilot, lambda: "Microdermabrasion" in _prompt_line(app))
            shown = " ".join(_prompt_line(app).split())
            assert "Diamond-tip microdermabrasion" in shown and "Cleanse" not in shown
            # every line of the prompt panel fits on the screen
            main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
            panel = main.query_one("#prompt", TextPanel)
            text = panel.render()
            assert isinstance(text, Text)
            lines = text.wrap(app.console, panel.content_region.width)
            assert len(lines) <= panel.content_region.height, (len(lines), panel.content_region)

    asyncio.run(scenario())
