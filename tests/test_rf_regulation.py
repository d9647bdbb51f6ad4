"""Regulation on the default simulator: reach 42 degC, hold it within +-0.5, never 43."""

from __future__ import annotations

import pytest

from devicectl.modalities.rf.controller import RFState
from tests.rf_scenario import RFRig


@pytest.mark.parametrize("seed", [1, 2, 3, 7, 11])
def test_reaches_and_holds_target_without_crossing_alarm(seed: int) -> None:
    rig = RFRig.create(seed=seed)
    rig.start_zone(hold_s=120.0)
    assert rig.rf.state is RFState.DELIVERING
    assert rig.run_until((RFState.COMPLETE, RFState.FAULT), max_s=300.0)
    assert rig.rf.state is RFState.COMPLETE, rig.rf.fault_alarm
    result = rig.rf.results[-1]
    assert result.outcome == "complete"
    assert result.time_to_target_s is not None and 10.0 <= result.time_to_target_s <= 40.0
    assert result.held_s == pytest.approx(120.0, abs=0.06)
    # every reading from the hold start on is within +-0.5 degC of the target
    hold_start = rig.skin_trace[0][0] + result.time_to_target_s + 0.2
    held = [max(t1, t2) for t, t1, t2 in rig.skin_trace if t >= hold_start]
    assert len(held) > 20 * 100
    assert max(held) <= 42.5 and min(held) >= 41.5, (min(held), max(held))
    assert max(max(t1, t2) for _, t1, t2 in rig.skin_trace) < 43.0
    assert rig.sim.peak_skin_c < 43.0
    assert not rig.sim.output_on  # zone done: output off at the device
