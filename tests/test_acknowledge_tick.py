"""The tick of an acknowledgement: no energy on a reading the supervisor never checked.

The supervisor does not run while a controller is latched, so the reading taken
in the tick in which a fault is acknowledged was never checked. A front-end can
queue an acknowledge and the commands that energise behind it (one tick, as a
fast console can); if the condition that caused the fault is still there, the
energise guard must refuse and the next tick's supervisor latches it again. The
RF case is in ``test_rf_controller.py``; these are the IPL and LED cases, each
with a condition that the supervisor sees and the guard itself does not check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from devicectl.control.events import Command
from devicectl.control.loop import ControlLoop
from devicectl.devices import LEDFault
from devicectl.errors import ControlError
from devicectl.modalities.ipl.controller import IPLState
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.modalities.led.controller import LEDState
from devicectl.modalities.led.limits import LEDStep
from tests.ipl_scenario import OPERATOR, IPLRig
from tests.led_scenario import LEDRig


class _ReadsAltered:
    """The controller's own driver, whose readings pass through ``alter``: a device
    reporting a condition that only the supervisor looks at."""

    def __init__(self, inner: Any, alter: Callable[[Any], Any]) -> None:
        self._inner = inner
        self._alter = alter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read(self) -> Any:
        return self._alter(self._inner.read())


def _one_tick(loop: ControlLoop, device: str, *actions: tuple[str, dict[str, Any]]) -> list[Any]:
    """Queue ``actions`` for ``device`` and run them all in one tick."""
    futures: list[Future[Any]] = [
        loop.submit(Command(device, action, args, OPERATOR)) for action, args in actions
    ]
    loop.tick()
    assert all(f.done() for f in futures)
    return futures


def test_ipl_arm_in_the_tick_of_an_acknowledgement_waits_for_a_supervised_reading() -> None:
    rig = IPLRig.create()
    # The lamp-block thermistor reads far outside any plausible temperature; the arm
    # guard checks the crystal, the filter and contact, not the block.
    rig.ipl.device = _ReadsAltered(
        rig.ipl.device, lambda r: dataclasses.replace(r, block_temp_c=250.0)
    )
    assert rig.run_until((IPLState.FAULT,), max_s=1.0)
    assert rig.ipl.fault_alarm is not None and rig.ipl.fault_alarm.code == "ipl.implausible"
    rig.run_for(0.5)

    ipl_pass = IPLPass(filter_nm=560, fluence_j_cm2=15.0, flashes=3, pulse_width_ms=10.0)
    ack, load, arm = _one_tick(
        rig.station.loop,
        "ipl",
        ("acknowledge", {}),
        ("load", {"ipl_pass": ipl_pass}),
        ("arm", {"eye_protection": True}),
    )
    assert ack.result() is True and load.result() is True
    with pytest.raises(ControlError, match="not been checked by the supervisor"):
        arm.result()
    assert not rig.sim.charged and not rig.sim.armed
    rig.run_for(0.1)  # the next tick's supervisor sees the block again
    assert rig.ipl.state is IPLState.FAULT
    rig.run_for(3.0)
    assert not rig.sim.charged and rig.sim.flashes == []


def test_led_start_in_the_tick_of_an_acknowledgement_waits_for_a_supervised_reading() -> None:
    rig = LEDRig.create()
    # A fault bit the protocol does not define: the start guard checks the interlock
    # and the skin, not the fault register.
    rig.led.device = _ReadsAltered(
        rig.led.device, lambda r: dataclasses.replace(r, faults=LEDFault(r.faults | 0x8000))
    )
    assert rig.run_until((LEDState.FAULT,), max_s=1.0)
    assert rig.led.fault_alarm is not None and rig.led.fault_alarm.code == "led.implausible"
    rig.run_for(0.5)

    ack, load, start = _one_tick(
        rig.station.loop,
        "led",
        ("acknowledge", {}),
        ("load", {"step": LEDStep(633, 100.0, 60.0)}),
        ("start", {}),
    )
    assert ack.result() is True and load.result() is True
    with pytest.raises(ControlError, match="not been checked by the supervisor"):
        start.result()
    assert not rig.sim.output_on
    rig.run_for(0.1)
    assert rig.led.state is LEDState.FAULT
    assert not rig.sim.output_on
