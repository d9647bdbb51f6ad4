"""Snapshot tests of the main screen: idle, delivering, fault.

Deterministic: the loop is not started on its own thread; the test drives it
in simulated time (SimClock, seed 7) to an exact condition, so every number,
the trace and the alarm times are the same on every run. The alarms' clock time
is from a fixed wall clock. Update with ``pytest --snapshot-update`` and look at the SVGs.

Rich names an SVG's styles after a hash of its segments' reprs, and these carry
Textual's style metadata (widget handlers and ids), which can differ between two
runs that draw the same cells in the same colours. Every snapshot is exported
with one fixed prefix instead (``_fixed_svg_prefix``), so a snapshot compares
what is drawn: every cell's text and style class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from console_helpers import SIZE, make_app, press
from rich.console import Console
from textual.pilot import Pilot

from devicectl.console.app import ConsoleApp
from devicectl.modalities.rf.controller import RFController, RFState

NINE_THIRTY = time.mktime((2026, 1, 5, 9, 30, 0, 0, 0, -1))  # local 09:30:00


@pytest.fixture(autouse=True)
def _fixed_svg_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    export_svg = Console.export_svg

    def fixed(self: Console, *args: Any, **kwargs: Any) -> str:
        kwargs["unique_id"] = "terminal-devicectl"
        return export_svg(self, *args, **kwargs)

    monkeypatch.setattr(Console, "export_svg", fixed)


def FIXED_WALL_CLOCK() -> float:
    return NINE_THIRTY


def _drive(app: ConsoleApp, until: Callable[[], bool], max_s: float = 600.0) -> None:
    """Run the loop in simulated time on this thread until ``until()``."""
    assert app.backend.station.loop.run(until=until, max_duration_s=max_s), "condition not met"


async def _show(pilot: Pilot[Any], app: ConsoleApp) -> None:
    """Make the screen show the loop as it is now (ask, tick once, show)."""
    app.refresh_from_loop()
    loop = app.backend.station.loop
    loop.run(max_duration_s=loop.period_s)
    app.refresh_from_loop()
    await pilot.pause()


async def _key(pilot: Pilot[Any], app: ConsoleApp, key: str, until: Callable[[], bool]) -> None:
    # The screen shows the loop as it is now before the key, as a person sees the
    # prompt before answering it (the console judges a key against what it shows).
    app.refresh_from_loop()
    await pilot.pause()
    await press(pilot, key)
    await pilot.pause()  # every message the key caused handled before the loop is driven
    _drive(app, until)


def _rf(app: ConsoleApp) -> RFController:
    rf = app.backend.station.loop.controllers["rf"]
    assert isinstance(rf, RFController)
    return rf


async def _to_rf_start(pilot: Pilot[Any], app: ConsoleApp) -> None:
    """Sign in and press the keys up to RF start, driving the loop between them."""
    desk = app.backend.desk
    await press(pilot, *"tech-042", "enter")
    await pilot.pause()
    _drive(app, lambda: desk.runner is not None and desk.runner.awaiting == "confirm")
    # (key, then the runner's step index and the action it waits for)
    for key, step, awaiting in (("c", 1, "confirm"), ("c", 2, "arm"), ("a", 2, "start")):
        await _key(
            pilot,
            app,
            key,
            lambda step=step, awaiting=awaiting: (
                desk.runner is not None  # type: ignore[misc]
                and (desk.runner.current, desk.runner.awaiting) == (step, awaiting)
            ),
        )
    await _key(pilot, app, "s", lambda: _rf(app).state is not RFState.ARMED)


def _delivering(snap_compare: Any, size: tuple[int, int]) -> bool:
    """The screen 30 s into an RF zone's hold, at ``size``."""
    app = make_app(wall_clock=FIXED_WALL_CLOCK, start_loop=False)

    async def before(pilot: Pilot[Any]) -> None:
        await _to_rf_start(pilot, app)
        rf = _rf(app)
        _drive(app, lambda: rf.state is RFState.DELIVERING and rf.status()["held_s"] >= 30.0)
        await _show(pilot, app)

    return bool(snap_compare(app, terminal_size=size, run_before=before))


def _faulted(snap_compare: Any, size: tuple[int, int]) -> bool:
    """The screen after a runaway fault has turned RF output off, at ``size``."""
    app = make_app(wall_clock=FIXED_WALL_CLOCK, start_loop=False, faults={"rf": ["runaway@0s"]})

    async def before(pilot: Pilot[Any]) -> None:
        await _to_rf_start(pilot, app)
        rf = _rf(app)
        _drive(app, lambda: rf.state is RFState.FAULT)
        _drive(app, lambda: rf.reading is not None and not rf.reading.output_on)
        await _show(pilot, app)

    return bool(snap_compare(app, terminal_size=size, run_before=before))


def test_main_screen_idle(snap_compare: Any) -> None:
    app = make_app(wall_clock=FIXED_WALL_CLOCK, start_loop=False)

    async def before(pilot: Pilot[Any]) -> None:
        await press(pilot, *"tech-042", "enter")
        await pilot.pause()
        desk = app.backend.desk
        _drive(app, lambda: desk.runner is not None and desk.runner.awaiting == "confirm")
        await _show(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_main_screen_delivering(snap_compare: Any) -> None:
    assert _delivering(snap_compare, SIZE)


def test_main_screen_fault(snap_compare: Any) -> None:
    assert _faulted(snap_compare, SIZE)


# The layout follows the terminal: the smallest supported (80x24, one line a device)
# and a large one (160x48, every panel).
SMALL = (80, 24)
LARGE = (160, 48)


def test_small_terminal_delivering(snap_compare: Any) -> None:
    assert _delivering(snap_compare, SMALL)


def test_small_terminal_fault(snap_compare: Any) -> None:
    assert _faulted(snap_compare, SMALL)


def test_large_terminal_delivering(snap_compare: Any) -> None:
    assert _delivering(snap_compare, LARGE)


def test_large_terminal_session_over(snap_compare: Any) -> None:
    """An aborted session: its summary in the chart's place, the alarms still listed."""
    app = make_app(wall_clock=FIXED_WALL_CLOCK, start_loop=False, faults={"rf": ["runaway@0s"]})

    async def before(pilot: Pilot[Any]) -> None:
        await _to_rf_start(pilot, app)
        rf = _rf(app)
        _drive(app, lambda: rf.state is RFState.FAULT)
        desk = app.backend.desk
        await _key(pilot, app, "x", lambda: True)
        await _key(pilot, app, "y", lambda: desk.runner is not None and desk.runner.finished)
        await _show(pilot, app)

    assert snap_compare(app, terminal_size=LARGE, run_before=before)
