"""Every simulator fault kind, during heating and during hold, ends in a latched fault
with output off at the simulator and the skin below 45 degC; then the operator
acknowledges and the zone can be delivered again.

Timeline on the default simulator (seed 7): the zone starts about 1.2 s after the
simulator is created (boot + first ticks) and reaches 42 degC about 25 s later,
so a fault at 8 s hits the ramp and one at 60 s hits the hold.
"""

from __future__ import annotations

import pytest

from devicectl.control.events import AlarmPriority
from devicectl.errors import ControlError
from devicectl.modalities.rf.controller import RFState
from tests.rf_scenario import OPERATOR, RFRig

HEATING_S = 8.0
HOLD_S = 60.0

# kind -> (fault duration suffix, the alarm codes that may legitimately latch first)
FAULTS: dict[str, tuple[str, set[str]]] = {
    "sensor_open": ("+5s", {"rf.implausible", "rf.sensor_fault", "rf.output_dropped"}),
    "sensor_stuck": ("+10s", {"rf.sensor_stuck", "rf.sensor_disagree", "rf.no_rise"}),
    "sensor_drift": ("+20s", {"rf.sensor_disagree"}),
    "runaway": ("+5s", {"rf.runaway", "rf.overtemp"}),
    "no_reply": ("+3s", {"rf.stale"}),
    "garble": ("+3s", {"rf.stale"}),
    "contact_loss": ("+15s", {"rf.contact_timeout"}),
    "reset": ("", {"rf.device_reset", "rf.stale", "rf.output_dropped"}),
}


def fault_at(kind: str, phase: str) -> str:
    start = HEATING_S if phase == "heating" else HOLD_S
    return f"{kind}@{start:g}s{FAULTS[kind][0]}"


@pytest.mark.parametrize("phase", ["heating", "hold"])
@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_fault_ends_safe_and_recovers(kind: str, phase: str) -> None:
    rig = RFRig.create(seed=7, faults=(fault_at(kind, phase),))
    rig.start_zone(hold_s=240.0)
    # before the fault the zone runs normally
    rig.station.loop.run(until=lambda: rig.station.clock.now() >= HEATING_S - 0.5)
    assert rig.rf.state is RFState.DELIVERING
    expected_phase = "ramp" if phase == "heating" else "hold"
    if phase == "hold":
        rig.station.loop.run(until=lambda: rig.station.clock.now() >= HOLD_S - 0.5)
        assert rig.rf.state is RFState.DELIVERING
    assert rig.rf.phase == expected_phase
    assert rig.sim.output_on

    assert rig.run_until((RFState.FAULT,), max_s=40.0), f"{kind}: no fault, {rig.rf.status()}"
    alarm = rig.rf.fault_alarm
    assert alarm is not None and alarm.latches and alarm.priority is AlarmPriority.HIGH
    assert alarm.code in FAULTS[kind][1], alarm
    rig.sim.advance()
    assert not rig.sim.output_on, "output must be off at the device"
    # the safe state holds while latched: nothing turns the output back on
    rig.run_for(5.0)
    assert rig.rf.state is RFState.FAULT
    assert not rig.sim.output_on
    assert rig.sim.peak_skin_c < 45.0

    # latched: starting again is refused until an operator acknowledges
    with pytest.raises(ControlError):
        rig.station.command("rf", "arm", OPERATOR)
    rig.run_for(20.0)  # the fault condition clears (transient faults) and skin cools
    with pytest.raises(ControlError, match="operator id"):
        rig.station.command("rf", "acknowledge", "")
    assert rig.station.command("rf", "acknowledge", OPERATOR)
    assert rig.rf.state is RFState.IDLE
    rig.run_for(1.0)
    assert rig.rf.state is RFState.IDLE, rig.rf.fault_alarm

    rig.start_zone(name="forehead resumed", hold_s=20.0)
    assert rig.run_until((RFState.COMPLETE, RFState.FAULT), max_s=120.0)
    assert rig.rf.state is RFState.COMPLETE, rig.rf.fault_alarm
    assert rig.sim.peak_skin_c < 45.0
