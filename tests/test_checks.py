"""The supervisors' checks, one kind at a time, and their one alarm message format."""

from __future__ import annotations

import math

from devicectl.control.checks import (
    DeviceBits,
    Dose,
    Rate,
    Stale,
    Stuck,
    Sustained,
    Threshold,
    make_alarm,
)
from devicectl.control.events import AlarmPriority
from devicectl.devices import LEDFault, RFStatus


def test_one_message_format_names_device_condition_value_limit_and_doc() -> None:
    alarm = make_alarm("rf2", "rf.runaway", "skin rising", "2.18 degC/s", "2.0 degC/s", 2.18, 2.0)
    assert alarm.message == (
        "rf2: skin rising: 2.18 degC/s, limit 2.0 degC/s; see docs/safety.md#rf-runaway"
    )
    assert alarm.doc == "docs/safety.md#rf-runaway"
    assert alarm.latches and alarm.priority is AlarmPriority.HIGH


def test_stale_trips_on_the_nth_missed_tick_and_a_reading_resets_it() -> None:
    stale = Stale("rf", "rf.stale", 2)
    assert stale.check(False) is None
    assert stale.check(True) is None
    assert stale.check(False) is None
    alarm = stale.check(False)
    assert alarm is not None and alarm.value == 2 and "2 ticks, limit 2 ticks" in alarm.message


def test_device_bits_name_each_bit_and_undefined_ones() -> None:
    bits = DeviceBits(
        "led",
        "fault",
        [(LEDFault.STRING_FAIL, "led.string_fail", "LED string failure")],
        defined=int(LEDFault.STRING_FAIL | LEDFault.INTERLOCK_OPEN),
        undefined_code="led.implausible",
    )
    assert bits.check(int(LEDFault.INTERLOCK_OPEN)) == []
    alarms = bits.check(int(LEDFault.STRING_FAIL) | 0x40)
    assert [a.code for a in alarms] == ["led.string_fail", "led.implausible"]
    assert "fault bit STRING_FAIL set" in alarms[0].message and "0x0040" in alarms[1].message
    rf = DeviceBits("rf", "status", [(RFStatus.SENSOR_FAULT, "rf.sensor_fault", "sensor")])
    assert rf.check(int(RFStatus.OUTPUT_ON)) == []  # no undefined check asked for


def test_latching_threshold_trips_on_every_tick_over() -> None:
    over = Threshold("rf", "rf.overtemp", "skin at the cut-off", 44.0, "degC")
    assert over.check(43.9) is None
    assert over.check(44.0) is not None and over.check(44.0) is not None
    strict = Threshold("rf", "rf.power", "power", 50.0, "W", inclusive=False)
    assert strict.check(50.0) is None and strict.check(50.1) is not None


def test_warning_hysteresis_inclusive_and_strict_clear() -> None:
    warn = Threshold(
        "ipl",
        "ipl.block_warm",
        "block",
        40.0,
        "degC",
        latching=False,
        priority=AlarmPriority.MEDIUM,
        clear=39.5,
    )
    first = warn.check(40.0)
    assert first is not None and not first.latches and first.priority is AlarmPriority.MEDIUM
    assert warn.check(41.0) is None  # once
    assert warn.check(39.6) is None and warn.check(40.0) is None  # inside the band
    assert warn.check(39.5) is None and warn.check(40.0) is not None  # cleared at 39.5
    assert warn.check(math.nan) is None and warn.check(40.0) is not None  # NaN clears
    strict = Threshold(
        "led",
        "led.skin_warm",
        "skin",
        40.0,
        "degC",
        latching=False,
        clear=39.5,
        clear_inclusive=False,
        limit=41.0,
    )
    alarm = strict.check(40.0)
    assert alarm is not None and alarm.limit == 41.0  # names the limit it approaches
    assert strict.check(39.5) is None and strict.check(40.0) is None  # 39.5 does not clear
    assert strict.check(39.4) is None and strict.check(40.0) is not None


def test_dose_faults_over_its_limit_and_warns_once() -> None:
    dose = Dose(
        "rf", "rf.dose", "site dose", 2.0, "CEM43", warn_code="rf.dose_warn", warn_fraction=0.8
    )
    dose.add(1.5)
    assert dose.check() == []
    dose.add(0.1)
    assert [a.code for a in dose.check()] == ["rf.dose_warn"]
    assert dose.check() == []
    dose.add(0.5)
    assert [a.code for a in dose.check()] == ["rf.dose"]
    timed = Dose("led", "led.duration", "exposure", 20.0, "s", level=20.5)
    timed.add(20.5)
    assert timed.check() == []
    timed.add(0.01)
    assert timed.check()[0].limit == 20.0


def test_stuck_needs_the_value_unchanged_for_its_time_while_active() -> None:
    stuck = Stuck("led", "led.sensor_stuck", "skin sensor", 1.0, "degC")
    assert stuck.check(0.0, 36.0, True) is None
    assert stuck.check(0.9, 36.0, True) is None
    assert stuck.check(1.0, 36.0, True) is not None
    assert stuck.check(1.1, 36.0, False) is None  # inactive forgets
    assert stuck.check(1.2, 36.0, True) is None
    assert stuck.check(2.1, 36.1, True) is None  # moved: starts again


def test_rate_rising_and_falling() -> None:
    rise = Rate("rf", "rf.runaway", "skin rising", 2.0, 1.0, 5)
    fall = Rate("led", "led.sensor_fall", "falling", 0.15, 1.0, 5, falling=True)
    raised = fell = None
    for i in range(21):
        t = i * 0.05
        raised = rise.check(t, 35.0 + 3.0 * t)
        fell = fall.check(t, 35.0 - 0.5 * t)
    assert raised is not None and raised.value is not None and raised.value > 2.0
    assert fell is not None and fell.limit == -0.15 and "0.50 degC/s" in fell.message
    assert rise.beyond(5.0, "faster") is None


def test_sustained_counts_from_the_first_tick_it_holds() -> None:
    held = Sustained(1.0)
    assert held.check(0.0, True) is None
    assert held.check(0.95, True) is None
    assert held.check(1.0, True) == 1.0
    assert held.check(1.05, False) is None and held.check(1.1, True) is None
