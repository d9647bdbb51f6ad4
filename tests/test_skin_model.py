"""The skin model: steady rest state, exact integration, DESIGN magnitudes, sensors."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from devicectl_simulators.skin import SkinModel, SkinParams, expm, quantise_c, tenths

DEFAULTS = SkinParams()


def _derivatives(p: SkinParams, x: list[float], power_w: float) -> list[float]:
    """The model's ODE written out independently of the implementation."""
    td, ts, lag = x
    return [
        p.kd_c_per_w_s * power_w - (td - p.core_c) / p.tau_perf_s - (td - ts) / p.tau_ds_s,
        p.ks_c_per_w_s * power_w + (td - ts) / p.tau_sd_s - (ts - p.ambient_c) / p.tau_amb_s,
        (ts - lag) / p.sensor_lag_s,
    ]


def _rk4(
    p: SkinParams, x: list[float], power_w: float, duration_s: float, h_s: float
) -> list[float]:
    steps = round(duration_s / h_s)
    for _ in range(steps):
        k1 = _derivatives(p, x, power_w)
        k2 = _derivatives(p, [a + h_s / 2 * b for a, b in zip(x, k1, strict=True)], power_w)
        k3 = _derivatives(p, [a + h_s / 2 * b for a, b in zip(x, k2, strict=True)], power_w)
        k4 = _derivatives(p, [a + h_s * b for a, b in zip(x, k3, strict=True)], power_w)
        x = [
            a + h_s / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
            for a, b1, b2, b3, b4 in zip(x, k1, k2, k3, k4, strict=True)
        ]
    return x


def _state(model: SkinModel) -> list[float]:
    return [model.dermis_c, model.surface_c, model.lag_c]


def _run(model: SkinModel, power_w: float, duration_s: float, dt_s: float = 0.05) -> None:
    for _ in range(round(duration_s / dt_s)):
        model.integrate(dt_s, power_w)


def test_derived_rest_values() -> None:
    assert DEFAULTS.dermis_rest_c == pytest.approx((37 / 30 + 33.5 / 6) / (1 / 30 + 1 / 6))
    assert DEFAULTS.dermis_rest_c == pytest.approx(34.0833, abs=1e-4)
    assert DEFAULTS.tau_amb_s == pytest.approx(48.857, abs=1e-3)
    rest = [DEFAULTS.dermis_rest_c, DEFAULTS.skin0_c, DEFAULTS.skin0_c]
    assert _derivatives(DEFAULTS, rest, 0.0) == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)


@pytest.mark.parametrize("skin0_c", [32.0, 33.5, 34.0])
def test_rest_state_is_steady(skin0_c: float) -> None:
    model = SkinModel(SkinParams(skin0_c=skin0_c))
    start = _state(model)
    _run(model, 0.0, 120.0)
    model.integrate(3600.0, 0.0)
    assert _state(model) == pytest.approx(start, abs=1e-9)
    assert model.surface_c == pytest.approx(skin0_c, abs=1e-9)


def test_step_matches_an_independent_rk4_solution() -> None:
    model = SkinModel()
    x = _state(model)
    for power_w, duration_s in [(25.0, 7.0), (0.0, 3.0), (50.0, 2.5)]:
        model.integrate(duration_s, power_w)
        x = _rk4(DEFAULTS, x, power_w, duration_s, 1e-3)
        assert _state(model) == pytest.approx(x, abs=1e-8)


def test_step_is_independent_of_how_an_interval_is_split() -> None:
    one, many, fine = SkinModel(), SkinModel(), SkinModel()
    one.integrate(5.0, 30.0)
    _run(many, 30.0, 5.0, 0.05)
    _run(fine, 30.0, 5.0, 0.01)
    assert _state(many) == pytest.approx(_state(one), abs=1e-9)
    assert _state(fine) == pytest.approx(_state(one), abs=1e-9)


def test_propagator_is_cached_by_rounded_dt() -> None:
    model = SkinModel()
    first = model.propagator(0.05)
    assert model.propagator(0.05) is first
    assert model.propagator(0.05 + 1e-13) is first  # float jitter in clock sums


def test_irregular_steps_compose_exactly_and_keep_the_regular_tick_cached() -> None:
    """A wall clock gives every step a new length: they still add up exactly."""
    rng = random.Random(7)
    lengths_s = [rng.uniform(0.001, 0.06) for _ in range(500)]
    irregular, single = SkinModel(), SkinModel()
    for dt_s in lengths_s:
        irregular.integrate(dt_s, 20.0)
    single.integrate(sum(lengths_s), 20.0)
    assert _state(irregular) == pytest.approx(_state(single), abs=1e-8)
    irregular.integrate(0.05, 20.0)
    irregular.integrate(0.05, 20.0)  # seen twice: earns a cache slot despite the full cache
    assert irregular.propagator(0.05) is irregular.propagator(0.05)


def test_expm_of_a_known_matrix() -> None:
    # exp([[0, 1], [-1, 0]] * t) is a rotation by t.
    t = 2.0
    result = expm([[0.0, t], [-t, 0.0]])
    expected = [[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]]
    for row, expected_row in zip(result, expected, strict=True):
        assert row == pytest.approx(expected_row, abs=1e-12)


def _mean_rise_c_per_s(power_w: float, duration_s: float) -> float:
    model = SkinModel()
    _run(model, power_w, duration_s)
    return (model.surface_c - DEFAULTS.skin0_c) / duration_s


def test_25_w_from_rest_rises_about_0_6_c_per_s() -> None:
    assert 0.5 <= _mean_rise_c_per_s(25.0, 5.0) <= 0.7


def test_50_w_from_rest_rises_about_1_2_c_per_s() -> None:
    assert 1.0 <= _mean_rise_c_per_s(50.0, 5.0) <= 1.3


def test_a_healthy_power_never_looks_like_a_runaway() -> None:
    """At the host's 50 W limit the surface never rises at 2 degC/s (the supervisor's limit)."""
    model = SkinModel()
    worst = 0.0
    for _ in range(200):  # 10 s, well past the cut-off temperature
        worst = max(worst, model.surface_rate_c_per_s(50.0))
        model.integrate(0.05, 50.0)
    assert worst < 1.5


def test_runaway_power_clearly_exceeds_2_c_per_s() -> None:
    assert _mean_rise_c_per_s(25.0 * 6, 1.0) > 3.0


def test_25_w_reaches_42_c_in_10_to_40_s() -> None:
    model = SkinModel()
    elapsed_s = 0.0
    while model.surface_c < 42.0:
        model.integrate(0.05, 25.0)
        elapsed_s += 0.05
        assert elapsed_s < 60.0
    assert 10.0 <= elapsed_s <= 40.0


def test_holding_42_c_needs_about_10_w() -> None:
    # Bisect the power whose steady state is 42 degC.
    low_w, high_w = 0.0, 40.0
    for _ in range(30):
        mid_w = (low_w + high_w) / 2
        model = SkinModel()
        model.integrate(2000.0, mid_w)
        if model.surface_c < 42.0:
            low_w = mid_w
        else:
            high_w = mid_w
    assert 8.0 <= low_w <= 11.0


def test_sensor_lags_the_surface_by_about_0_3_s() -> None:
    model = SkinModel()
    _run(model, 40.0, 5.0)
    rate = model.surface_rate_c_per_s(40.0)
    lag_c = model.surface_c - model.sensor_clean_c(1)
    # A first-order lag behind a ramp trails by rate * tau.
    assert lag_c == pytest.approx(rate * 0.3, rel=0.1)
    assert model.sensor_clean_c(2) - model.sensor_clean_c(1) == pytest.approx(0.05)


def test_sensor_noise_is_gaussian_with_sigma_0_05_and_seeded() -> None:
    model = SkinModel(seed=4)
    draws = [model.noise_c() for _ in range(20000)]
    assert abs(statistics.fmean(draws)) < 0.002
    assert statistics.pstdev(draws) == pytest.approx(0.05, rel=0.03)
    within_one_sigma = sum(abs(d) <= 0.05 for d in draws) / len(draws)
    assert within_one_sigma == pytest.approx(0.683, abs=0.02)
    again = SkinModel(seed=4)
    assert [again.noise_c() for _ in range(50)] == draws[:50]
    other = SkinModel(seed=5)
    assert [other.noise_c() for _ in range(50)] != draws[:50]


def test_noise_pair_draws_two_independent_values() -> None:
    model = SkinModel(seed=1)
    pairs = [model.noise_pair_c() for _ in range(5000)]
    firsts = [a for a, _ in pairs]
    seconds = [b for _, b in pairs]
    assert statistics.pstdev(firsts) == pytest.approx(0.05, rel=0.05)
    assert abs(statistics.correlation(firsts, seconds)) < 0.05


def test_sensor_readings_are_quantised_to_a_tenth() -> None:
    model = SkinModel(seed=2)
    readings = [model.read_sensor_c(2) for _ in range(200)]
    for value in readings:
        assert value * 10 == pytest.approx(round(value * 10), abs=1e-9)
        assert 33.3 <= value <= 33.8
    assert len(set(readings)) >= 2  # noise moves the reading across quantisation steps


def test_quantise_helpers_agree() -> None:
    for value in (33.449, 33.45001, 41.96, 45.0, 0.04):
        assert quantise_c(value) == pytest.approx(tenths(value) / 10)
    assert tenths(44.96) == 450


@pytest.mark.parametrize(
    "kwargs",
    [{"skin0_c": 37.5}, {"skin0_c": 23.0}, {"tau_perf_s": 0.0}, {"sensor_noise_c": -0.1}],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SkinParams(**kwargs)  # type: ignore[arg-type]
