"""The main screen fits the terminal: at 80x24 the state of every device, the newest
alarm and the E-stop are on screen, and the chart stays inside its box."""

from __future__ import annotations

import asyncio
import re

import pytest
from console_helpers import make_app, press, screen_text
from textual.geometry import Region

from devicectl.console.alarms import AlarmEntry
from devicectl.console.panels import ChartView, render_alarms, y_span, y_ticks
from devicectl.control.events import Alarm, AlarmPriority, Event

SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_device_s_state_the_newest_alarm_and_the_estop_are_on_screen(
    size: tuple[int, int],
) -> None:
    app = make_app(start_loop=False)
    loop = app.backend.station.loop

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await press(pilot, *"tech-042", "enter")
            loop.run(max_duration_s=1.0)
            for i in range(12):  # more alarms than any screen lists, the newest last
                message = "rf: the newest alarm" if i == 11 else f"rf: an older alarm {i}"
                alarm = Alarm("rf", f"rf.test_{i}", AlarmPriority.MEDIUM, message, latches=False)
                loop.emit(Event(loop.clock.now() + i, "alarm", "rf", {"alarm": alarm}))
            app.refresh_from_loop()
            loop.run(max_duration_s=0.1)
            app.refresh_from_loop()
            await pilot.pause()
            text = screen_text(app)
            assert "EMERGENCY STOP" in text
            for device in ("RF", "IPL", "LED"):
                assert re.search(rf"\b{device}\s+IDLE\s+○ (output|energy) off", text), device
            assert "rf: the newest alarm" in text
            assert "... " in text and " more" in text  # the list says what it left out
            screen = Region(0, 0, *size)
            for selector in ("#estop", "#alarms", "#trace", "#status", "#actions"):
                region = app.screen.query_one(selector).region
                assert region.area > 0 and screen.contains_region(region), (selector, region)
            # the chart stays inside its box
            box = app.screen.query_one("#trace").region
            chart = app.screen.query_one("#trace-chart").region
            assert chart.area > 0 and box.contains_region(chart)

    asyncio.run(scenario())


def test_a_long_alarm_list_cut_to_its_rows_keeps_the_newest() -> None:
    entries = [
        AlarmEntry(float(i), Alarm("rf", f"rf.c{i}", AlarmPriority.LOW, f"alarm {i}", False))
        for i in range(10)
    ]
    assert render_alarms(entries, limit=4).plain.splitlines()[-2:] == [
        "... 7 more",
        " LOW   --:-- --:--:-- alarm 9",
    ]
    assert render_alarms(entries, limit=1).plain == " LOW   --:-- --:--:-- alarm 9"
    # the newest among the first rows: nothing repeated
    newest_first = [*entries[9:], *entries[:9]]
    lines = render_alarms(newest_first, limit=4).plain.splitlines()
    assert lines[0].endswith("alarm 9") and lines[-1] == "... 7 more"
    assert render_alarms(entries, limit=10).plain.count("\n") == 9


def test_the_chart_s_levels_each_get_a_row_and_the_latest_reading_is_inside() -> None:
    lines = (("target", 42.0), ("alarm", 43.0), ("cut-off", 44.0))
    ramp = ChartView("RF skin", (-2.0, -1.0, 0.0), (33.5, 36.0, 41.8), lines)
    lo, hi = y_span(ramp) or (0.0, 0.0)
    assert (lo, hi) == (38.0, 44.5)  # the ramp's start is cut; the levels have room
    assert y_ticks([44.0, 43.0, 42.0, 41.8], lo, hi, rows=8) == [42.0, 43.0, 44.0]
    assert y_ticks([44.0, 43.0, 42.0], lo, hi, rows=3) == [42.0, 44.0]  # one a row
    cold = ChartView("LED skin", (0.0,), (33.0,), (("alarm", 40.0), ("cut-off", 41.0)))
    assert y_span(cold) == (32.5, 41.5)  # the latest reading stays in sight
    assert y_span(ChartView("", (), (), ())) is None
