"""Rule 10: delivered power against the skin model catches sensors that fail together.

Both skin sensors drifting low at the same rate agree with each other and read
the target, so every sensor-based check passes while the regulator heats the
real skin past the cut-off. The skin observer (``observer.py``), composed by
the RF supervisor, must trip ``rf.implausible_heating`` before the true skin
(the simulator's surface node) reaches 44 degC, and must stay quiet on healthy
zones across skin rest temperatures. ``benchmarks/observer.py`` runs the full
sweeps; these are a real subset of them.
"""

from __future__ import annotations

import random

import pytest

from devicectl.control.events import AlarmPriority
from devicectl.modalities.rf.controller import RFState
from devicectl.modalities.rf.observer import SkinObserver
from tests.rf_scenario import RFRig

DRIFT_START_S = 30.0
ZONE_HOLD_S = 280.0  # the longest hold a zone may ask: the most time for a drift to build
TRUE_SKIN_LIMIT_C = 44.0


def drift_faults(rate_c_per_s: float) -> tuple[str, str]:
    """The same drift on both sensors: the common-mode fault agreement cannot see."""
    first, second = (
        f"sensor_drift@{DRIFT_START_S:g}s:sensor={sensor},rate={rate_c_per_s}" for sensor in (1, 2)
    )
    return first, second


def skin0_for(seed: int) -> float:
    """A seeded rest temperature of the skin surface, 32.0-34.5 degC."""
    return round(random.Random(f"skin0:{seed}").uniform(32.0, 34.5), 2)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("rate", [-0.005, -0.01, -0.02, -0.03])
def test_common_mode_drift_trips_before_true_skin_reaches_44(rate: float, seed: int) -> None:
    rig = RFRig.create(seed=seed, faults=drift_faults(rate), skin0_c=skin0_for(seed))
    rig.start_zone(target_c=42.0, hold_s=ZONE_HOLD_S)
    assert rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=ZONE_HOLD_S + 60.0)
    alarm = rig.rf.fault_alarm
    assert rig.rf.state is RFState.FAULT, f"zone ended {rig.rf.state.value}, true skin unseen"
    assert alarm is not None and alarm.code == "rf.implausible_heating", alarm
    assert alarm.latches and alarm.priority is AlarmPriority.HIGH
    assert "degC" in alarm.message and alarm.message.startswith("rf: ")
    assert alarm.value is not None and alarm.limit is not None and alarm.value > alarm.limit
    # The simulator's highest true surface temperature up to the trip.
    assert rig.sim.peak_skin_c < TRUE_SKIN_LIMIT_C
    rig.sim.advance()
    assert not rig.sim.output_on


@pytest.mark.parametrize("seed", range(101, 131))
def test_healthy_zones_raise_no_implausible_heating(seed: int) -> None:
    hold_s = ZONE_HOLD_S if seed % 5 == 0 else 120.0
    rig = RFRig.create(seed=seed, skin0_c=skin0_for(seed))
    rig.start_zone(target_c=42.0, hold_s=hold_s)
    assert rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=hold_s + 60.0)
    assert rig.rf.state is RFState.COMPLETE, rig.rf.fault_alarm
    model = rig.rf.supervisor.observer.model_c
    assert model is not None and abs(model - rig.sim.skin_true_c) < 0.5


def test_runaway_still_trips_as_a_runaway() -> None:
    rig = RFRig.create(seed=7, faults=("runaway@60s:gain=8",))
    rig.start_zone(hold_s=240.0)
    assert rig.run_until((RFState.FAULT,), max_s=90.0)
    alarm = rig.rf.fault_alarm
    assert alarm is not None and alarm.code in {"rf.runaway", "rf.overtemp"}, alarm
    assert rig.sim.peak_skin_c < 45.0


def test_a_paused_zone_keeps_cooling_in_the_model() -> None:
    # Contact lost mid-hold: output off, the model cools with the skin, so the
    # resumed zone starts from a model that matches the skin, not a stale hot one.
    rig = RFRig.create(seed=11, faults=("contact_loss@60s+5s",))
    rig.start_zone(hold_s=120.0)
    assert rig.run_until((RFState.PAUSED,), max_s=70.0)
    rig.run_for(6.0)
    observer = rig.rf.supervisor.observer
    assert observer.model_c is not None and abs(observer.model_c - rig.sim.skin_true_c) < 0.5
    rig.station.command("rf", "resume", "tech-042")
    assert rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=180.0)
    assert rig.rf.state is RFState.COMPLETE, rig.rf.fault_alarm


def test_at_rest_with_no_power_the_model_stays_at_rest() -> None:
    observer = SkinObserver()
    assert observer.update(0.0, (33.0, 33.1), 0.0) is None
    for tick in range(1, 2001):
        verdict = observer.update(tick * 0.05, (33.0, 33.1), 0.0)
        assert verdict is not None and not verdict.failed
    assert observer.model_c == pytest.approx(33.0, abs=1e-6)


def test_a_warm_site_is_modelled_cooling_not_staying_warm() -> None:
    # A site still warm from an earlier pass: the model must not hold it warm
    # (it would read hotter than the cooling skin and trip a healthy zone).
    observer = SkinObserver()
    observer.update(0.0, (40.0, 40.1), 0.0)
    for tick in range(1, 601):
        observer.update(tick * 0.05, (40.0, 40.1), 0.0)
    model = observer.model_c
    assert model is not None and model < 37.0


def test_the_check_is_time_driven_not_a_single_sample() -> None:
    # 20 W into skin whose sensors stay at rest: the model soon reads over the
    # margin, but the check fails only once the excess has lasted (its integral).
    observer = SkinObserver()
    observer.update(0.0, (33.0, 33.0), 20.0)
    over: list[float] = []
    failed_at = None
    for tick in range(1, 1201):
        verdict = observer.update(tick * 0.05, (33.0, 33.0), 20.0)
        assert verdict is not None
        if verdict.excess_c > 0:
            over.append(tick * 0.05)
        if verdict.failed:
            failed_at = tick * 0.05
            break
    assert over and failed_at is not None and failed_at - over[0] >= 2.0
    assert verdict.error_c_s >= observer.params.max_error_c_s
