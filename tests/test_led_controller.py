"""The LED controller against the in-process LED simulator (Modbus RTU over sim://)."""

from __future__ import annotations

import pytest

from devicectl.control.events import AlarmPriority
from devicectl.errors import ControlError, FaultLatched, ValidationError
from devicectl.modalities.led.controller import LEDState
from tests.led_scenario import OPERATOR, LEDRig


def test_a_full_step_runs_to_its_duration_and_turns_off() -> None:
    rig = LEDRig.create()
    rig.start(633, 100.0, 60.0)
    assert rig.led.state is LEDState.DELIVERING
    assert rig.run_until((LEDState.COMPLETE, LEDState.FAULT), max_s=120.0)
    assert rig.led.state is LEDState.COMPLETE, rig.led.fault_alarm
    result = rig.led.results[-1]
    assert result.outcome == "complete"
    assert result.on_time_s == pytest.approx(60.0, abs=0.06)
    # 100 mW/cm2 for 60 s is 6 J/cm2, less the 0.2 s settling at the start
    assert 5.7 <= result.dose_j_cm2 <= 6.05
    assert rig.led.supervisor.dose_j_cm2 == pytest.approx(result.dose_j_cm2, rel=0.02)
    assert not rig.sim.output_on


def test_emergency_stop_during_delivery_turns_the_canopy_off_at_once() -> None:
    rig = LEDRig.create()
    rig.start(633, 100.0, 60.0)
    rig.run_for(10.0)
    assert rig.sim.output_on
    assert rig.station.command("led", "estop", OPERATOR) is True
    assert rig.led.state is LEDState.ESTOP
    assert not rig.sim.output_on  # in the same command, not a tick later
    assert rig.led.last_safe_state is not None and rig.led.last_safe_state.confirmed
    assert rig.led.results[-1].outcome == "estop"
    with pytest.raises(FaultLatched):
        rig.station.command("led", "start", OPERATOR)
    rig.run_for(5.0)
    assert rig.led.state is LEDState.ESTOP and not rig.sim.output_on
    assert rig.station.command("led", "acknowledge", OPERATOR) is True
    assert rig.led.state is LEDState.IDLE
    rig.run_for(1.0)
    assert rig.led.state is LEDState.IDLE, rig.led.fault_alarm
    assert not rig.sim.output_on


def test_pause_and_resume_keep_the_dose() -> None:
    rig = LEDRig.create()
    rig.start(830, 80.0, 40.0)
    rig.run_for(20.0)
    dose_at_pause = rig.led.dose_j_cm2
    rig.station.command("led", "pause", OPERATOR)
    assert not rig.sim.output_on
    rig.run_for(30.0)
    assert rig.led.dose_j_cm2 == pytest.approx(dose_at_pause)
    rig.station.command("led", "resume", OPERATOR)
    assert rig.run_until((LEDState.COMPLETE, LEDState.FAULT), max_s=60.0)
    assert rig.led.state is LEDState.COMPLETE, rig.led.fault_alarm
    assert rig.led.results[-1].on_time_s == pytest.approx(40.0, abs=0.1)
    assert 3.0 <= rig.led.results[-1].dose_j_cm2 <= 3.2  # 80 mW/cm2 x 40 s = 3.2 J/cm2


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ((633, 111.0, 60.0), "irradiance_mw_cm2"),
        ((700, 50.0, 60.0), "wavelength_nm"),
        ((633, 50.0, 1201.0), "duration_s"),
        ((633, 110.0, 1200.0), "dose"),  # 132 J/cm2 over the 130 limit
    ],
)
def test_bad_steps_are_rejected_before_anything_changes(step: tuple, field: str) -> None:
    from devicectl.modalities.led.limits import LEDStep

    rig = LEDRig.create()
    with pytest.raises(ValidationError, match=field):
        rig.station.command("led", "load", OPERATOR, step=LEDStep(*step))
    assert rig.led.state is LEDState.IDLE
    assert not rig.sim.output_on


def test_start_refused_with_the_canopy_interlock_open() -> None:
    rig = LEDRig.create(faults=("contact_loss@0s",))
    from devicectl.modalities.led.limits import LEDStep

    rig.station.command("led", "load", OPERATOR, step=LEDStep(633, 50.0, 30.0))
    with pytest.raises(ControlError, match="interlock"):
        rig.station.command("led", "start", OPERATOR)
    assert rig.led.state is LEDState.READY
    assert not rig.sim.output_on


def test_interlock_opening_pauses_then_the_operator_resumes() -> None:
    rig = LEDRig.create(faults=("contact_loss@10s%2B3s",))
    alarms = []
    rig.station.loop.subscribe(
        lambda e: alarms.append(e.data["alarm"]) if e.kind == "alarm" else None
    )
    rig.start(633, 100.0, 30.0)
    assert rig.run_until((LEDState.PAUSED, LEDState.FAULT), max_s=20.0)
    assert rig.led.state is LEDState.PAUSED
    assert any(
        a.code == "led.interlock_open" and a.priority is AlarmPriority.MEDIUM for a in alarms
    )
    assert not rig.sim.output_on
    rig.run_for(5.0)
    rig.station.command("led", "resume", OPERATOR)
    assert rig.run_until((LEDState.COMPLETE, LEDState.FAULT), max_s=40.0)
    assert rig.led.state is LEDState.COMPLETE, rig.led.fault_alarm


# kind -> codes that may legitimately latch first
LED_FAULTS = {
    "sensor_open": ("+5s", {"led.implausible", "led.firmware_skin_cutoff"}),
    "sensor_stuck": ("+20s", {"led.sensor_stuck"}),
    "sensor_drift:rate=0.5": ("", {"led.skin_overtemp", "led.firmware_skin_cutoff"}),
    "sensor_drift": ("", {"led.sensor_fall"}),  # the default drift reads low
    "no_reply": ("+3s", {"led.stale"}),
    "garble": ("+3s", {"led.stale"}),
    "contact_loss": ("+40s", {"led.interlock_timeout"}),
    "reset": ("", {"led.device_reset", "led.stale", "led.output_dropped"}),
    "led_string_fail": ("+5s", {"led.irradiance_collapse", "led.string_fail"}),
    # 19 % high at the 100 mW/cm2 step: over the 110 mW/cm2 absolute limit first
    "led_overdrive": ("+60s", {"led.over_irradiance", "led.irradiance_high"}),
}


@pytest.mark.parametrize("kind", sorted(LED_FAULTS))
def test_led_fault_ends_safe_and_recovers(kind: str) -> None:
    name, _, params = kind.partition(":")
    duration, codes = LED_FAULTS[kind]
    text = f"{name}@20s{duration.replace('+', '%2B')}" + (f":{params}" if params else "")
    rig = LEDRig.create(faults=(text,))
    rig.start(633, 100.0, 600.0)
    rig.run_for(15.0)
    assert rig.led.state is LEDState.DELIVERING and rig.sim.output_on
    assert rig.run_until((LEDState.FAULT,), max_s=120.0), rig.led.status()
    alarm = rig.led.fault_alarm
    assert alarm is not None and alarm.latches and alarm.code in codes, alarm
    rig.sim.advance()
    assert not rig.sim.output_on
    with pytest.raises(FaultLatched):
        rig.station.command("led", "resume", OPERATOR)
    rig.run_for(60.0 if name != "sensor_drift" else 1.0)
    if name == "sensor_drift":
        return  # a permanently drifting sensor cannot be recovered from
    assert rig.station.command("led", "acknowledge", OPERATOR)
    rig.run_for(1.0)
    assert rig.led.state is LEDState.IDLE, rig.led.fault_alarm
    rig.start(633, 50.0, 10.0)
    assert rig.run_until((LEDState.COMPLETE, LEDState.FAULT), max_s=30.0)
    assert rig.led.state is LEDState.COMPLETE, rig.led.fault_alarm


def test_a_step_of_the_maximum_duration_completes() -> None:
    rig = LEDRig.create()
    rig.start(633, 100.0, 1200.0)  # 120 J/cm2, 20 min: both within their limits
    assert rig.run_until((LEDState.COMPLETE, LEDState.FAULT), max_s=1300.0)
    assert rig.led.state is LEDState.COMPLETE, rig.led.fault_alarm
    assert rig.led.results[-1].on_time_s == pytest.approx(1200.0, abs=0.06)
