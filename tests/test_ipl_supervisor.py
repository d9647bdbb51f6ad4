"""The IPL supervisor's warnings: raised once, re-armed only with hysteresis."""

from __future__ import annotations

import dataclasses
import math

from devicectl.control.events import AlarmPriority
from devicectl.devices import IPLReading, IPLStatus
from devicectl.modalities.ipl.limits import IPLLimits
from devicectl.modalities.ipl.supervisor import IPLContext, IPLSupervisor

IDLE = IPLContext(energy_expected=False, set_fluence_j_cm2=None, pulses_commanded=0)


def _reading(block_c: float = 30.0, crystal_c: float = 5.0) -> IPLReading:
    return IPLReading(
        t_s=0.0,
        status=IPLStatus.FILTER_OK | IPLStatus.CONTACT_OK,
        charge_pct=0.0,
        crystal_temp_c=crystal_c,
        block_temp_c=block_c,
        shot_count=0,
        last_fluence_j_cm2=0.0,
        filter_nm=560,
    )


def _codes(supervisor: IPLSupervisor, **temps: float) -> list[str]:
    return [a.code for a in supervisor.check(_reading(**temps), IDLE)]


def test_a_block_dithering_on_the_warning_threshold_warns_once() -> None:
    supervisor = IPLSupervisor(IPLLimits())
    raised = []
    for block_c in (39.9, 40.0, 39.9, 40.0, 39.8, 40.1, 39.6, 40.0):
        raised += _codes(supervisor, block_c=block_c)
    assert raised == ["ipl.block_warm"]


def test_the_block_warning_re_arms_half_a_degree_below_it() -> None:
    supervisor = IPLSupervisor(IPLLimits())
    assert _codes(supervisor, block_c=40.0) == ["ipl.block_warm"]
    assert _codes(supervisor, block_c=39.6) == []  # still inside the hysteresis band
    assert _codes(supervisor, block_c=39.5) == []  # cleared here ...
    assert _codes(supervisor, block_c=40.0) == ["ipl.block_warm"]  # ... so it warns again


def test_crystal_warning_is_above_the_arming_limit_and_medium() -> None:
    supervisor = IPLSupervisor(IPLLimits())
    assert _codes(supervisor, crystal_c=10.0) == []  # 10.0 may still arm
    alarms = supervisor.check(_reading(crystal_c=10.1), IDLE)
    assert [(a.code, a.priority, a.latches) for a in alarms] == [
        ("ipl.crystal_warm", AlarmPriority.MEDIUM, False)
    ]
    assert _codes(supervisor, crystal_c=9.9) == []
    assert _codes(supervisor, crystal_c=10.1) == []  # 9.9 is inside the band: no re-arm
    assert _codes(supervisor, crystal_c=9.5) == []
    assert _codes(supervisor, crystal_c=10.1) == ["ipl.crystal_warm"]


def test_an_open_thermistor_is_a_fault_and_clears_the_warning() -> None:
    supervisor = IPLSupervisor(IPLLimits())
    assert _codes(supervisor, block_c=41.0) == ["ipl.block_warm"]
    assert "ipl.implausible" in _codes(supervisor, block_c=math.nan)
    assert _codes(supervisor, block_c=41.0) == ["ipl.block_warm"]


def _shots(count: int) -> IPLReading:
    return dataclasses.replace(_reading(), shot_count=count)


def test_a_shot_counter_that_goes_back_is_implausible() -> None:
    # The counter is the lamp's life count (docs/protocols/ipl.md): it never goes
    # back. Taken at its word, a drop from 100 to 40 would make the next 60 flashes
    # look commanded, so the uncommanded ones at 41 and 42 would pass unseen.
    supervisor = IPLSupervisor(IPLLimits())
    assert _codes_of(supervisor, _shots(100)) == []
    raised = _codes_of(supervisor, _shots(40))
    raised += _codes_of(supervisor, _shots(41))
    raised += _codes_of(supervisor, _shots(42))
    assert "ipl.implausible" in raised


def _codes_of(supervisor: IPLSupervisor, reading: IPLReading) -> list[str]:
    return [a.code for a in supervisor.check(reading, IDLE)]


def test_the_host_stops_the_lamp_block_at_45_c_without_the_device_flag() -> None:
    """The host's own block stop, independent of the firmware's ``BLOCK_OVERTEMP``
    flag (a firmware that failed to set it): 45.0 degC exactly is a latching fault,
    44.9 is only the warning."""
    below = IPLSupervisor(IPLLimits())
    assert _codes(below, block_c=44.9) == ["ipl.block_warm"]
    at = IPLSupervisor(IPLLimits())
    [stop] = [a for a in at.check(_reading(block_c=45.0), IDLE) if a.latches]
    assert stop.code == "ipl.block_overtemp" and stop.priority is AlarmPriority.HIGH
    assert stop.value == 45.0 and stop.limit == 45.0
