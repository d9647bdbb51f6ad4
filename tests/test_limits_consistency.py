"""Limit sets check their own consistency when built: a bad field is refused by name."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

import pytest

from devicectl.errors import ConfigError
from devicectl.modalities.ipl.limits import IPLLimits
from devicectl.modalities.led.limits import LEDLimits
from devicectl.modalities.rf.limits import RFLimits

# One value of each field that the set must refuse, with the defaults of every other.
RF_BAD: dict[str, Any] = {
    "target_min_c": 14.0,  # below plausible_min_c
    "target_max_c": 43.5,  # at or above alarm_c
    "alarm_c": 44.5,  # at or above cutoff_c
    "alarm_clear_c": 43.0,  # no hysteresis: not below alarm_c
    "cutoff_c": 45.0,  # not below firmware_cutoff_c
    "firmware_cutoff_c": 44.0,  # not above cutoff_c
    "cem43_max": 0.0,
    "cem43_warn_fraction": 1.2,
    "time_at_target_max_s": -1.0,
    "power_max_w": 0.0,
    "rise_max_c_per_s": 0.5,  # below hot_rise_max_c_per_s
    "rise_window_s": 0.0,
    "hot_rise_max_c_per_s": 0.0,
    "sensor_disagree_max_c": -0.1,
    "sensor_drift_warn_c": 1.5,  # not below sensor_disagree_max_c
    "sensor_drift_warn_s": 0.0,
    "stale_ticks": 0,
    "stuck_s": 0.0,
    "plausible_min_c": 39.0,  # above target_min_c
    "plausible_max_c": 45.0,  # not above firmware_cutoff_c
    "no_rise_s": 0.0,
    "no_rise_power_w": 60.0,  # above power_max_w
    "no_rise_min_c": 0.0,
    "contact_timeout_s": 0.0,
    "hold_max_s": 0.0,
    "at_target_band_c": -0.5,
}
IPL_BAD: dict[str, Any] = {
    "fluence_min_j_cm2": 30.0,  # above fluence_max_j_cm2
    "fluence_max_j_cm2": 4.0,  # below fluence_min_j_cm2
    "pulse_width_min_ms": 0.0,
    "pulse_width_max_ms": 0.5,
    "pulse_count_max": 0,
    "pulse_delay_min_ms": 600.0,
    "pulse_delay_max_ms": 4.0,
    "min_interval_s": 0.0,
    "crystal_arm_max_c": 90.0,  # above plausible_max_c
    "block_stop_c": 39.0,  # below block_warn_c
    "block_warn_c": 46.0,  # above block_stop_c
    "warn_clear_margin_c": 0.0,
    "block_rise_c_per_j_cm2": 0.0,
    "block_stuck_min_rise_c": 0.0,
    "block_stuck_trains": 1.5,
    "energy_tolerance": 0.0,
    "flash_confirm_s": 0.0,
    "flashes_max": 0,
    "stale_ticks": 0,
    "plausible_min_c": 20.0,  # above crystal_arm_max_c
    "plausible_max_c": 44.0,  # below block_stop_c
    "contact_timeout_s": -1.0,
    "filters_nm": (),
}
LED_BAD: dict[str, Any] = {
    "irradiance_max_mw_cm2": 0.0,
    "duration_max_s": 0.0,
    "duration_grace_s": -0.5,
    "dose_max_j_cm2": 0.0,
    "skin_max_c": 39.0,  # below skin_warn_c
    "skin_warn_c": 41.0,  # not below skin_max_c
    "wavelengths_nm": (633, -830),
    "over_irradiance_fraction": 0.05,  # below irradiance_high_fraction
    "irradiance_high_fraction": 0.0,
    "irradiance_high_s": 0.0,
    "collapse_fraction": 1.0,
    "collapse_s": 0.0,
    "dark_max_mw_cm2": 0.0,
    "settle_s": 0.0,
    "stale_ticks": 0,
    "plausible_min_c": 40.5,  # above skin_warn_c
    "plausible_max_c": 41.0,  # not above skin_max_c
    "stuck_s": 0.0,
    "interlock_timeout_s": 0.0,
    "skin_fall_max_c_per_s": 0.0,
    "skin_fall_window_s": -5.0,
    "warn_clear_margin_c": 0.0,
}
CASES = [
    (kind, name, value)
    for kind, table in ((RFLimits, RF_BAD), (IPLLimits, IPL_BAD), (LEDLimits, LED_BAD))
    for name, value in table.items()
]


def test_the_defaults_are_consistent() -> None:
    RFLimits()
    IPLLimits()
    LEDLimits()


@pytest.mark.parametrize("kind", [RFLimits, IPLLimits, LEDLimits])
def test_every_field_has_a_bad_value_here(kind: type) -> None:
    table = {RFLimits: RF_BAD, IPLLimits: IPL_BAD, LEDLimits: LED_BAD}[kind]
    assert {f.name for f in fields(kind)} == set(table)


@pytest.mark.parametrize(("kind", "name", "value"), CASES, ids=lambda v: str(v))
def test_a_bad_value_of_each_field_is_refused_by_name(kind: type, name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        kind(**{name: value})
    message = str(caught.value)
    assert message.startswith(f"{kind.__name__}: ")
    assert f"{name} {value!r}" in message


NUMBER_FIELDS = [
    (kind, name) for kind, name, _ in CASES if not isinstance(getattr(kind(), name), tuple)
]


@pytest.mark.parametrize(("kind", "name"), NUMBER_FIELDS, ids=lambda v: str(v))
def test_a_number_that_is_not_finite_is_refused_by_name(kind: type, name: str) -> None:
    for value in (math.nan, math.inf, True):
        with pytest.raises(ConfigError, match=rf"\b{name} {value!r} "):
            kind(**{name: value})


def test_the_rf_temperatures_must_rise_to_the_firmware_cutoff() -> None:
    with pytest.raises(ConfigError) as caught:
        RFLimits(alarm_c=50.0, cutoff_c=44.0, firmware_cutoff_c=40.0)
    message = str(caught.value)
    assert "alarm_c 50.0 must be below cutoff_c 44.0" in message
    assert "cutoff_c 44.0 must be below firmware_cutoff_c 40.0" in message
    assert "target_max_c 42.0 must be below alarm_c 50.0" not in message  # that one holds


def test_every_problem_of_a_set_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        LEDLimits(dose_max_j_cm2=-1.0, stale_ticks=0, collapse_fraction=2.0)
    message = str(caught.value)
    for name in ("dose_max_j_cm2 -1.0", "stale_ticks 0", "collapse_fraction 2.0"):
        assert name in message


def test_limits_tighter_than_the_defaults_are_accepted() -> None:
    RFLimits(time_at_target_max_s=10.0, target_max_c=40.0, cem43_max=0.5)
    LEDLimits(dose_max_j_cm2=1.0, duration_max_s=20.0)
    IPLLimits(fluence_max_j_cm2=10.0, filters_nm=(560,))
