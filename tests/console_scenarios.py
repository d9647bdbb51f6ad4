"""Short protocols and key-driving steps for the console's pilot tests.

Each protocol has the one step a test needs, so a pilot reaches the moment it
checks without walking a whole Pore Patrol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console_helpers import press, wait_for
from textual.pilot import Pilot

from devicectl.console.app import ConsoleApp
from devicectl.console.panels import TextPanel

IPL_ONLY = """\
[session]
name = "IPL only"
version = "1.0"
description = "One IPL pass of four flashes."

[[step]]
kind = "ipl"
title = "IPL pass"
filter_nm = 560
fluence_j_cm2 = 12.0
pulse_width_ms = 4.0
flashes = 4
pulse_count = 2
pulse_delay_ms = 20.0
"""

RF_THEN_LED = """\
[session]
name = "RF then LED"
version = "1.0"
description = "Two short RF zones, then a red LED exposure."

[[step]]
kind = "rf"
title = "RF"
target_c = 42.0
hold_s = 5

[[step.zones]]
name = "forehead"

[[step.zones]]
name = "chin"

[[step]]
kind = "led"
title = "Red LED"
wavelength_nm = 633
irradiance_mw_cm2 = 100.0
duration_s = 600
"""


def protocol(tmp_path: Path, text: str, name: str = "protocol.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def session(app: ConsoleApp) -> Any:
    snap = app.snapshot
    return snap.session if snap is not None else None


def device(app: ConsoleApp, name: str) -> Any:
    snap = app.snapshot
    return snap.device(name) if snap is not None else None


def shown(app: ConsoleApp, panel_id: str) -> str:
    """The text a panel of the main screen shows now."""
    panel = app.screen_stack[1].query_one(f"#{panel_id}", TextPanel)
    rendered = panel.render()
    return str(getattr(rendered, "plain", rendered))


async def wait_awaiting(pilot: Pilot[None], app: ConsoleApp, awaiting: str) -> None:
    await wait_for(pilot, lambda: getattr(session(app), "awaiting", None) == awaiting)


async def fire_one(pilot: Pilot[None], app: ConsoleApp) -> None:
    """Press F whenever the IPL is armed until the step's flash count moves (a press
    less than the minimum interval after the last flash is refused, and harmless)."""
    before = device(app, "ipl").flashes_done
    for _ in range(400):
        view = device(app, "ipl")
        if view.flashes_done > before:
            return
        if view.state == "armed":
            await press(pilot, "f")
        await pilot.pause(0.05)
    raise AssertionError(f"no flash after pressing F: {device(app, 'ipl')}")
