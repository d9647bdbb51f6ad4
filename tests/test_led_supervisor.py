"""The LED supervisor, fed readings directly: every check trips when it must."""

from __future__ import annotations

import math
import random

import pytest

from devicectl.control.events import AlarmPriority
from devicectl.devices import LEDFault, LEDReading
from devicectl.modalities.led.limits import LEDLimits
from devicectl.modalities.led.supervisor import LEDContext, LEDSupervisor

ON = LEDContext(output_expected=True, setpoint_mw_cm2=100.0, step_active=True)


def reading(
    t: float,
    irr: float = 100.0,
    skin: float = 34.0,
    *,
    on: bool = True,
    interlock: bool = True,
    faults: LEDFault = LEDFault.NONE,
) -> LEDReading:
    return LEDReading(t, 633, 100.0, irr, on, 30.0, skin, interlock, t, faults)


def codes(alarms: list) -> set[str]:
    return {a.code for a in alarms}


def test_dose_counts_the_gaps_of_missed_readings() -> None:
    sup = LEDSupervisor(LEDLimits())
    for i in range(20 * 60 + 1):
        t = i * 0.05
        sup.check(t, reading(t) if i % 2 == 0 else None, ON)
    assert sup.dose_j_cm2 == pytest.approx(6.0, abs=0.01)  # 100 mW/cm2 x 60 s
    assert sup.on_time_s == pytest.approx(60.0, abs=0.01)


def test_over_irradiance_against_the_setpoint() -> None:
    sup = LEDSupervisor(LEDLimits())
    assert "led.over_irradiance" in codes(sup.check(0.0, reading(0.0, irr=123.0), ON))


def test_absolute_irradiance_limit_even_when_off() -> None:
    sup = LEDSupervisor(LEDLimits())
    off = LEDContext(False, 0.0, False)
    alarms = sup.check(0.0, reading(0.0, irr=111.0, on=False), off)
    assert "led.over_irradiance" in codes(alarms)


def test_irradiance_collapse_after_settling() -> None:
    sup = LEDSupervisor(LEDLimits())
    tripped = None
    for i in range(100):
        t = i * 0.05
        irr = 100.0 if t < 2.0 else 30.0
        if "led.irradiance_collapse" in codes(sup.check(t, reading(t, irr=irr), ON)):
            tripped = t
            break
    assert tripped is not None and 3.0 <= tripped <= 3.1


def test_dose_and_duration_limits() -> None:
    lim = LEDLimits(dose_max_j_cm2=1.0, duration_max_s=20.0)
    sup = LEDSupervisor(lim)
    found: dict[str, float] = {}
    for i in range(20 * 30):
        t = i * 0.05
        for code in codes(sup.check(t, reading(t), ON)):
            found.setdefault(code, t)
    assert found["led.dose"] == pytest.approx(10.05, abs=0.06)  # 1 J/cm2 at 100 mW/cm2
    assert found["led.duration"] == pytest.approx(20.55, abs=0.06)  # 20 s + 0.5 s grace


def test_skin_limit_and_open_sensor() -> None:
    sup = LEDSupervisor(LEDLimits())
    assert "led.skin_overtemp" in codes(sup.check(0.0, reading(0.0, skin=41.1), ON))
    sup = LEDSupervisor(LEDLimits())
    assert "led.implausible" in codes(sup.check(0.0, reading(0.0, skin=math.nan), ON))


def test_output_on_when_not_delivering_and_dropped_when_delivering() -> None:
    sup = LEDSupervisor(LEDLimits())
    assert "led.output_unexpected" in codes(
        sup.check(0.0, reading(0.0), LEDContext(False, 0.0, False))
    )
    sup = LEDSupervisor(LEDLimits())
    assert "led.output_dropped" in codes(sup.check(0.0, reading(0.0, on=False), ON))


@pytest.mark.parametrize(
    ("bit", "code"),
    [
        (LEDFault.WATCHDOG_TRIPPED, "led.firmware_watchdog"),
        (LEDFault.STRING_FAIL, "led.string_fail"),
        (LEDFault.POWER_ON_RESET, "led.device_reset"),
        (LEDFault.PANEL_OVERTEMP, "led.panel_overtemp"),
    ],
)
def test_device_fault_bits_latch(bit: LEDFault, code: str) -> None:
    sup = LEDSupervisor(LEDLimits())
    alarms = sup.check(0.0, reading(0.0, faults=bit), ON)
    assert code in codes(alarms) and all(a.latches for a in alarms if a.code == code)


def _noisy(rng: random.Random, temp: float) -> float:
    return round(temp + rng.gauss(0.0, 0.05), 1)  # the sensor: 0.05 degC noise, 0.1 resolution


def test_a_skin_sensor_drifting_low_under_the_lit_canopy_trips_in_seconds() -> None:
    rng = random.Random(2)
    sup = LEDSupervisor(LEDLimits())
    tripped = None
    for i in range(400):
        t = i * 0.05
        true_c = 35.0 + 0.01 * t
        skin = true_c if t < 10.0 else true_c - 0.3 * (t - 10.0)  # drift -0.3 degC/s from 10 s
        if "led.sensor_fall" in codes(sup.check(t, reading(t, skin=_noisy(rng, skin)), ON)):
            tripped = t
            break
    assert tripped is not None and 10.0 < tripped <= 14.0


@pytest.mark.parametrize("seed", range(5))
def test_skin_cooling_toward_a_lower_equilibrium_is_not_a_fall(seed: int) -> None:
    # The fastest physical cooling under a lit canopy: 7.5 degC above the equilibrium
    # with the spec's 180 s time constant (about 0.04 degC/s), for two minutes.
    rng = random.Random(seed)
    sup = LEDSupervisor(LEDLimits())
    for i in range(2400):
        t = i * 0.05
        skin = 34.0 + 7.5 * math.exp(-t / 180.0)
        assert "led.sensor_fall" not in codes(sup.check(t, reading(t, skin=_noisy(rng, skin)), ON))


def test_a_fall_while_dark_is_skin_cooling_not_a_fault() -> None:
    sup = LEDSupervisor(LEDLimits())
    off = LEDContext(False, 0.0, False)
    for i in range(200):
        t = i * 0.05
        dark = reading(t, irr=0.0, skin=40.0 - 0.5 * t, on=False)
        assert "led.sensor_fall" not in codes(sup.check(t, dark, off))


def test_light_measured_long_after_the_output_reads_off_is_a_fault() -> None:
    # The safe state is confirmed by the status bit alone. A canopy whose status
    # reads "off" while its photodiode still sees 100 mW/cm2 (an LED driver stuck
    # on) was never alarmed: below the 110 mW/cm2 absolute limit, and the dose and
    # output checks trust the status bit. The light decays with 0.2 s after a real
    # off (docs/protocols/led.md), so after a second it must be gone.
    sup = LEDSupervisor(LEDLimits())
    off = LEDContext(False, 0.0, True)  # paused: the step is open, output expected off
    tripped = None
    for i in range(60):
        t = i * 0.05
        alarms = sup.check(t, reading(t, irr=100.0, on=False), off)
        if any(a.latches for a in alarms):
            tripped = t
            break
    assert tripped is not None and tripped <= 1.1


def test_a_fault_bit_the_protocol_does_not_define_is_a_fault() -> None:
    # fault_bits (input 5) defines bits 0-5; the driver keeps any other bit so that
    # the host sees it. A device reporting a fault the host does not know must not
    # be treated as healthy while the canopy is lit.
    sup = LEDSupervisor(LEDLimits())
    alarms = sup.check(0.0, reading(0.0, faults=LEDFault(1 << 6)), ON)
    assert any(a.latches for a in alarms)


# -- irradiance more than 10 % above the setpoint for 5 s (a drifted driver) ---------


def test_irradiance_19_percent_high_latches_irradiance_high_on_the_simulator() -> None:
    # The driver settles 19 % high (90 set, about 107 measured): under the 20 %
    # over-irradiance limit, yet 20 minutes of it is 128 J/cm2 against 108 planned.
    from devicectl.modalities.led.controller import LEDState
    from tests.led_scenario import LEDRig

    rig = LEDRig.create(seed=3, faults=("led_overdrive@5s:gain=1.19",))
    rig.start(irradiance=90.0, duration_s=600.0)
    assert rig.run_until((LEDState.FAULT,), max_s=30.0), rig.led.status()
    alarm = rig.led.fault_alarm
    assert alarm is not None and alarm.code == "led.irradiance_high", alarm
    assert alarm.latches and alarm.priority is AlarmPriority.HIGH
    assert alarm.value is not None and 106.0 < alarm.value < 108.0
    assert "mW/cm2" in alarm.message and "90.0" in alarm.message
    # 5 s over the limit, after the fault starts at 5 s (and 0.2 s of lag).
    assert 10.0 <= rig.station.clock.now() <= 11.0
    rig.sim.advance()
    assert not rig.sim.output_on


def test_irradiance_high_needs_5_s_over_10_percent() -> None:
    sup = LEDSupervisor(LEDLimits())
    ctx = LEDContext(output_expected=True, setpoint_mw_cm2=90.0, step_active=True)
    t = 0.0
    for _ in range(40):  # settle at the setpoint
        assert not codes(sup.check(t, reading(t, 90.0, 34.0 + 0.1 * (t % 2 < 1)), ctx))
        t += 0.05
    for _ in range(100):  # 99.5 mW/cm2: 10.6 % high, for 4.95 s
        high = reading(t, 99.5, 34.0 + 0.1 * (t % 2 < 1))
        assert "led.irradiance_high" not in codes(sup.check(t, high, ctx))
        t += 0.05
    high = reading(t, 99.5, 34.0)
    assert "led.irradiance_high" in codes(sup.check(t, high, ctx))


def test_irradiance_just_under_10_percent_high_is_not_a_fault() -> None:
    sup = LEDSupervisor(LEDLimits())
    ctx = LEDContext(output_expected=True, setpoint_mw_cm2=90.0, step_active=True)
    for i in range(2000):
        t = i * 0.05
        found = codes(sup.check(t, reading(t, 99.0, 34.0 + 0.1 * (i % 40 < 20)), ctx))
        assert "led.irradiance_high" not in found, found
