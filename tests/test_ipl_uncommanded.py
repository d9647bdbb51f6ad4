"""Energy the IPL controller never asked for: a flash, a charge.

The handpiece is driven behind the controller's back through its own driver,
as a stuck trigger, a firmware fault or a second host on the port would. The
simulator, the wire, the driver and the controller are the real ones; only the
extra command comes from the test. The supervisor must notice from the status
alone: the shot counter past the pulses commanded (``ipl.unexpected_flash``),
charge or arm bits while the controller believes the lamp is safe
(``ipl.energy_unexpected``). Either latches, and the lamp ends disarmed and
dumped, confirmed by readback.
"""

from __future__ import annotations

import pytest

from devicectl.control.events import AlarmPriority
from devicectl.errors import ControlError, FaultLatched
from devicectl.modalities.ipl.controller import IPLState
from tests.ipl_scenario import OPERATOR, IPLRig


def assert_latched_safe(rig: IPLRig, code: str) -> None:
    assert rig.ipl.state is IPLState.FAULT, rig.ipl.status()
    alarm = rig.ipl.fault_alarm
    assert alarm is not None and alarm.code == code, alarm
    assert alarm.priority is AlarmPriority.HIGH
    assert rig.ipl.latched
    safe = rig.ipl.last_safe_state
    assert safe is not None and safe.confirmed, safe
    rig.sim.advance()
    assert not rig.sim.armed and not rig.sim.charged
    # latched: no energy command is taken until an operator acknowledges
    with pytest.raises((FaultLatched, ControlError)):
        rig.station.command("ipl", "arm", OPERATOR, eye_protection=True)
    rig.run_for(2.0)
    assert rig.ipl.state is IPLState.FAULT and rig.ipl.fault_alarm is alarm
    assert not rig.sim.armed and not rig.sim.charged


def test_one_flash_nobody_commanded_latches_unexpected_flash() -> None:
    rig = IPLRig.create()
    rig.load(flashes=3, fluence=10.0)
    rig.arm()
    assert rig.wait_armed() and rig.sim.armed
    shots = rig.sim.shots
    assert rig.ipl.device is not None
    rig.ipl.device.fire()  # the lamp flashes once with no trigger from the operator
    assert rig.run_until((IPLState.FAULT,), 0.5), rig.ipl.status()
    assert rig.sim.shots == shots + 1  # exactly one extra flash, and no more
    assert_latched_safe(rig, "ipl.unexpected_flash")
    alarm = rig.ipl.fault_alarm
    assert alarm is not None and alarm.value == 1 and "1 flash" in alarm.message
    assert rig.ipl.flashes == []  # the controller never took it for one of its own


def test_one_extra_pulse_in_a_commanded_train_latches_unexpected_flash() -> None:
    """The count is exact: a train that flashes one pulse more than commanded is
    caught, not only a flash out of nowhere."""
    rig = IPLRig.create()
    rig.load(flashes=2, fluence=5.0)
    rig.arm()
    rig.flash()
    assert rig.run_until((IPLState.CHARGING, IPLState.FAULT), 3.0)
    assert rig.ipl.state is IPLState.CHARGING and len(rig.ipl.flashes) == 1
    assert rig.wait_armed()
    rig.run_for(1.0)  # past the device's 1 s interval, so it accepts the extra FIRE
    assert rig.ipl.state is IPLState.ARMED
    assert rig.ipl.device is not None
    rig.ipl.device.fire()
    assert rig.run_until((IPLState.FAULT,), 0.5), rig.ipl.status()
    assert len(rig.sim.flashes) == 2
    assert_latched_safe(rig, "ipl.unexpected_flash")


@pytest.mark.parametrize("when", ["ready", "complete"])
def test_a_charge_nobody_commanded_latches_energy_unexpected(when: str) -> None:
    rig = IPLRig.create()
    rig.load(flashes=1, fluence=10.0)
    if when == "complete":
        rig.arm()
        rig.flash()
        assert rig.run_until((IPLState.COMPLETE, IPLState.FAULT), 3.0)
    rig.run_for(0.5)
    expected = IPLState.READY if when == "ready" else IPLState.COMPLETE
    assert rig.ipl.state is expected, rig.ipl.status()
    assert not rig.sim.charged and not rig.sim.armed
    assert rig.ipl.device is not None
    rig.ipl.device.charge()  # the capacitor starts charging while the lamp should be safe
    assert rig.run_until((IPLState.FAULT,), 0.5), rig.ipl.status()
    assert_latched_safe(rig, "ipl.energy_unexpected")
    alarm = rig.ipl.fault_alarm
    assert alarm is not None and alarm.value  # the charge/arm bits it saw
