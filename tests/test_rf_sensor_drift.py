"""The RF skin sensors drifting apart: a LOW alarm before the disagreement fault.

More than 1.0 degC apart for 2 s raises ``rf.sensor_drift`` once, LOW and not
latching (the operator checks the handpiece's contact); past 1.5 degC the
supervisor's ``rf.sensor_disagree`` turns output off as before.
"""

from __future__ import annotations

from test_supervisor import DELIVERING, codes, reading

from devicectl.control.events import AlarmPriority
from devicectl.modalities.rf.limits import RFLimits
from devicectl.modalities.rf.supervisor import RFSupervisor


def _run(sup: RFSupervisor, apart_c: float, from_s: float, to_s: float) -> list:
    """Readings every 50 ms from ``from_s`` to ``to_s``, ``apart_c`` apart (with a
    live sensor's 0.1 degC flicker, so neither looks stuck); what they raised."""
    raised = []
    t = from_s
    while t <= to_s + 1e-9:
        skin1 = 40.0 + 0.1 * (round(t / 0.05) % 2)
        raised += sup.check(t, reading(t, skin1, skin1 + apart_c), DELIVERING)
        t = round(t + 0.05, 3)
    return raised


def test_sensors_apart_for_two_seconds_raise_one_low_alarm_that_does_not_latch() -> None:
    sup = RFSupervisor(RFLimits())
    assert _run(sup, 1.2, 0.0, 1.9) == []  # not yet for 2 s
    raised = _run(sup, 1.2, 1.95, 10.0)
    assert codes(raised) == {"rf.sensor_drift"} and len(raised) == 1
    alarm = raised[0]
    assert alarm.priority is AlarmPriority.LOW and not alarm.latches
    assert "drifting apart" in alarm.message and alarm.limit == 1.5


def test_the_drift_alarm_rearms_only_once_the_sensors_are_back_together() -> None:
    sup = RFSupervisor(RFLimits())
    assert codes(_run(sup, 1.2, 0.0, 3.0)) == {"rf.sensor_drift"}
    assert _run(sup, 0.9, 3.05, 4.0) == []  # closer, but not by the margin
    assert _run(sup, 1.2, 4.05, 8.0) == []
    assert _run(sup, 0.3, 8.05, 9.0) == []  # back together
    assert codes(_run(sup, 1.2, 9.05, 12.0)) == {"rf.sensor_drift"}


def test_a_jump_past_the_disagreement_limit_is_the_fault_alone() -> None:
    sup = RFSupervisor(RFLimits())
    assert codes(_run(sup, 1.6, 0.0, 3.0)) == {"rf.sensor_disagree"}


def test_close_sensors_raise_nothing() -> None:
    sup = RFSupervisor(RFLimits())
    assert _run(sup, 1.0, 0.0, 5.0) == []  # at the level, not over it
