"""The console's alarm sound, its silence, and the questions that must leave the alarms in sight.

IEC 60601-1-8: a HIGH and a MEDIUM alarm sound distinct bursts; a silence is
time-limited and recorded; the abort question does not hide the alarm list;
ctrl+q during a session is asked first, and a yes leaves every device safe.
The sounder is driven with a clock the test moves; the app's bells are counted
by replacing ``bell`` and ``set_timer`` (a headless app makes no sound).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from console_helpers import EventLog, answer_prompt, make_app, press, sign_in, wait_for
from textual.geometry import Region

from devicectl.console.app import ConsoleApp
from devicectl.console.audible import PATTERNS, SILENCE_S, AlarmSounder
from devicectl.console.desk import DESK
from devicectl.console.screens import ConfirmAbortScreen, ConfirmQuitScreen, MainScreen
from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.modalities.rf.controller import RFController, RFState
from devicectl.records.store import RecordStore
from devicectl.station.service import SILENCE_MAX_S

HIGH, MEDIUM, LOW = AlarmPriority.HIGH, AlarmPriority.MEDIUM, AlarmPriority.LOW


def _bursts(sounder: AlarmSounder, priority: AlarmPriority | None, until_s: float) -> list[float]:
    """When bursts start, updating every 0.1 s from 0 to ``until_s``."""
    starts = []
    for i in range(round(until_s * 10) + 1):
        t = i / 10
        if sounder.update(t, priority) is not None:
            starts.append(t)
    return starts


def test_high_and_medium_bursts_are_distinct_and_low_has_its_own() -> None:
    high, medium, low = PATTERNS[HIGH], PATTERNS[MEDIUM], PATTERNS[LOW]
    assert len(high.pulses_s) == 10 and len(medium.pulses_s) == 3 and len(low.pulses_s) == 2
    # HIGH is 3 + 2, a pause, 3 + 2: the gaps after pulses 3, 5 and 8 are longer
    gaps = [b - a for a, b in zip(high.pulses_s, high.pulses_s[1:], strict=False)]
    assert gaps[2] > gaps[0] and gaps[4] > gaps[2] and gaps[7] > gaps[0]
    assert high.repeat_s is not None and medium.repeat_s is not None
    assert high.repeat_s < medium.repeat_s and low.repeat_s is None


def test_the_highest_pending_priority_sounds_at_once_and_repeats_at_its_interval() -> None:
    assert _bursts(AlarmSounder(), HIGH, 25.0) == [0.0, 10.0, 20.0]
    assert _bursts(AlarmSounder(), MEDIUM, 45.0) == [0.0, 20.0, 40.0]
    assert _bursts(AlarmSounder(), LOW, 60.0) == [0.0]  # once
    assert _bursts(AlarmSounder(), None, 60.0) == []  # nothing pending: silent
    sounder = AlarmSounder()
    assert sounder.update(0.0, MEDIUM) is MEDIUM
    assert sounder.update(1.0, HIGH) is HIGH  # a higher priority: its burst at once
    assert sounder.update(2.0, HIGH) is None


def test_a_silence_is_time_limited_and_the_sound_comes_back_after_it() -> None:
    sounder = AlarmSounder()
    assert sounder.update(0.0, HIGH) is HIGH
    end = sounder.silence(1.0, seconds=3600.0)  # asked for an hour: given SILENCE_S
    assert end == 1.0 + SILENCE_S == 1.0 + SILENCE_MAX_S
    assert sounder.silenced_for_s(61.0) == SILENCE_S - 60.0
    assert all(sounder.update(t, HIGH) is None for t in (10.0, 11.0, 60.0, 120.9))
    assert sounder.update(121.0, HIGH) is HIGH  # the silence is over: at once
    assert sounder.silenced_for_s(121.0) == 0.0


def test_a_new_alarm_sounds_at_once_and_ends_a_silence() -> None:
    sounder = AlarmSounder()
    assert sounder.update(0.0, HIGH) is HIGH
    assert sounder.update(2.0, HIGH) is None  # the same alarms: on its interval
    sounder.new_alarm()
    assert sounder.update(2.1, HIGH) is HIGH  # a new one: at once
    sounder.silence(3.0)
    assert sounder.update(4.0, HIGH) is None
    sounder.new_alarm()
    assert sounder.silenced_until_s is None and sounder.update(4.1, HIGH) is HIGH


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def _counting(app: ConsoleApp) -> list[float]:
    """Pulses the app plays, as offsets from the burst's start (0: rung at once)."""
    played: list[float] = []

    def set_timer(delay: float, callback: Any, *args: Any, **kwargs: Any) -> None:
        played.append(delay)

    app.bell = lambda: played.append(0.0)  # type: ignore[method-assign]
    app.set_timer = set_timer  # type: ignore[method-assign, assignment]
    return played


def _raise(app: ConsoleApp, priority: AlarmPriority, code: str) -> None:
    """An alarm on the loop, as a controller emits it."""
    loop = app.backend.station.loop
    alarm = Alarm("rf", code, priority, f"rf: {code}", latches=False)
    loop.emit(Event(loop.clock.now(), "alarm", "rf", {"alarm": alarm}))


def test_the_console_plays_each_priority_s_burst_and_acknowledging_stops_it() -> None:
    clock = FakeClock()
    app = ConsoleApp(make_app(start_loop=False).backend, start_loop=False, audio_clock=clock)

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await press(pilot, *"tech-042", "enter")
            await pilot.pause()
            played = _counting(app)
            _raise(app, MEDIUM, "rf.contact_lost")
            app.refresh_from_loop()
            assert sorted(played) == list(PATTERNS[MEDIUM].pulses_s)
            played.clear()
            _raise(app, HIGH, "rf.alarm_temp")
            app.refresh_from_loop()
            assert sorted(played) == list(PATTERNS[HIGH].pulses_s)
            played.clear()
            clock.now_s += 9.0
            app.refresh_from_loop()
            assert played == []  # not yet the HIGH burst's interval
            clock.now_s += 1.0
            app.refresh_from_loop()
            assert len(played) == len(PATTERNS[HIGH].pulses_s)
            played.clear()
            await press(pilot, "k")  # the HIGH: the MEDIUM, still pending, sounds again
            app.refresh_from_loop()
            assert sorted(played) == list(PATTERNS[MEDIUM].pulses_s)
            await press(pilot, "k")  # both acknowledged: nothing left to sound
            played.clear()
            clock.now_s += 60.0
            app.refresh_from_loop()
            assert played == []

    asyncio.run(scenario())


def test_silence_is_recorded_with_the_operator_and_a_new_alarm_ends_it(tmp_path: Path) -> None:
    clock = FakeClock()
    backend = make_app(tmp_path / "records.sqlite", start_loop=False).backend
    app = ConsoleApp(backend, start_loop=False, audio_clock=clock)
    log = EventLog()
    backend.station.loop.subscribe(log)

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            app.action_silence()  # nobody signed in (the key would type in the id field)
            assert app.sounder.silenced_until_s is None and app.notices[-1] == "sign in first"
            await press(pilot, *"tech-042", "enter")
            await pilot.pause()
            played = _counting(app)
            _raise(app, HIGH, "rf.alarm_temp")
            app.refresh_from_loop()
            assert played
            played.clear()
            await press(pilot, "m")
            assert app.sounder.silenced_for_s(clock.now_s) == SILENCE_S
            backend.station.loop.run(max_duration_s=0.2)  # the loop takes the command
            clock.now_s += 5.0
            app.refresh_from_loop()
            assert played == []  # silenced, though the HIGH alarm is still pending
            main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
            assert "silenced 01:55" in str(main.query_one("#alarms").border_title)
            clock.now_s += 1.0  # before the HIGH burst's interval: the new alarm sounds anyway
            _raise(app, MEDIUM, "rf.contact_lost")  # a new alarm: the silence ends
            app.refresh_from_loop()
            assert app.sounder.silenced_until_s is None
            assert sorted(played) == list(PATTERNS[HIGH].pulses_s)

    asyncio.run(scenario())
    silences = [
        e
        for e in log.events
        if e.device == DESK and e.kind == "command" and e.data.get("action") == "alarm_silence"
    ]
    assert len(silences) == 1
    assert silences[0].data["operator_id"] == "tech-042"
    assert silences[0].data["args"] == {"seconds": SILENCE_S}
    assert backend.session_id is not None
    with RecordStore.open(tmp_path / "records.sqlite", readonly=True) as store:
        actions = [
            e.data.get("action")
            for e in store.session_detail(backend.session_id).operator_actions
            if isinstance(e.data, dict)
        ]
    assert "alarm_silence" in actions


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_the_abort_question_leaves_the_alarm_list_in_sight(size: tuple[int, int]) -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await sign_in(pilot, app)
            await press(pilot, "escape")  # an alarm to see
            await wait_for(pilot, lambda: app.alarms.oldest() is not None)
            await press(pilot, "x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmAbortScreen))
            await pilot.pause()
            dialog = app.screen.query_one("#confirm-dialog").region
            main = next(s for s in app.screen_stack if isinstance(s, MainScreen))
            alarms = main.query_one("#alarms").region
            assert alarms.height >= 3 and not dialog.overlaps(alarms), (dialog, alarms)
            assert Region(0, 0, *size).contains_region(dialog)
            await press(pilot, "n")

    asyncio.run(scenario())


def _rf(app: ConsoleApp) -> RFController:
    rf = app.backend.station.loop.controllers["rf"]
    assert isinstance(rf, RFController)
    return rf


def test_ctrl_q_during_delivery_asks_first_and_yes_leaves_every_device_safe(
    tmp_path: Path,
) -> None:
    db = tmp_path / "records.sqlite"
    app = make_app(db)
    exited_while_asking: list[bool] = []

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await sign_in(pilot, app)
            for action in ("confirm", "confirm", "arm", "start"):
                await answer_prompt(pilot, app, action)
            await wait_for(pilot, lambda: _rf(app).state is RFState.DELIVERING)
            await press(pilot, "ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
            exited_while_asking.append(not app.is_running)
            await press(pilot, "n")  # back: the session carries on
            await wait_for(pilot, lambda: isinstance(app.screen, MainScreen))
            assert _rf(app).state is RFState.DELIVERING
            await press(pilot, "ctrl+q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
            await press(pilot, "y")
            await wait_for(pilot, lambda: "quitting: every device to its safe state" in app.notices)

    asyncio.run(scenario())
    assert exited_while_asking == [False]
    rf = _rf(app)
    assert rf.state is RFState.IDLE and rf.reading is not None and not rf.reading.output_on
    with RecordStore.open(db, readonly=True) as store:
        assert app.backend.session_id is not None
        assert store.session_detail(app.backend.session_id).session.outcome == "aborted"


def test_ctrl_q_with_no_session_quits_at_once() -> None:
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            await press(pilot, "ctrl+q")
            await wait_for(pilot, lambda: app._exit)  # no question: quitting

    asyncio.run(scenario())
    assert not isinstance(app.screen_stack[-1] if app.screen_stack else None, ConfirmQuitScreen)
