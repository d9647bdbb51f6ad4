"""A skin observer: what the delivered RF power says the skin temperature should be.

Why: the supervisor's other checks all read the two skin sensors. Two sensors
that fail the same way (both drifting low together: a shared reference, a
film of gel, a calibration error) agree with each other and read the target,
so the regulator delivers more and more power into skin that is really
hotter. The sensor-agreement check cannot see that, and the no-rise check is
off near the target. This observer does not read the sensors' opinion of the
heating: it integrates the *delivered* power (the device's power meter) through
a lumped two-node skin model and compares its estimate with the hotter sensor.
A model that says the skin is clearly hotter than both sensors read, for long
enough, means the sensors read low (DESIGN.md rule 10).

Model (the same structure as docs/simulators.md "Skin model", in increments
from a rest state)::

    dTd/dt = kd*P - (Td - core)/tau_perf - (Td - Ts)/tau_ds
    dTs/dt = ks*P + (Td - Ts)/tau_sd     - (Ts - ambient)/tau_amb

The rest surface temperature is taken from the zone's first reading (skin at
rest under a freshly placed electrode), clamped to ``rest_max_c``; ``Td`` at
rest and ``tau_amb`` are derived so that rest is a steady state, as the skin
itself is. Conservative choices, each of which can only make the model read
*cooler* than the skin (so a healthy zone does not trip): the rest value is
the cooler sensor's reading; a warm start (a site still warm from an earlier
pass) is modelled as a surface above its rest that cools, with the dermis at
its rest value; and the heating coefficients are scaled by ``heating_scale``.

The check is time-driven, as Klipper's ``verify_heater``: the excess of
(model - hotter sensor) over ``margin_c`` is integrated while it lasts, and
reset as soon as the excess is gone; once it reaches ``max_error_c_s`` the
check fails. Guarantees: the observer never reads a skin sensor for its model
(only to initialise the rest state and to compare); its state advances only
with time and delivered power; it holds no device and raises nothing itself
(the supervisor turns a failure into a latching ``rf.implausible_heating``).

What it cannot see is listed in docs/safety.md (``rf.implausible_heating``).
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.checks import make_alarm
from devicectl.control.events import Alarm

_MAX_STEP_S = 0.1  # Euler sub-step: the fastest mode is about 3 s, so 0.1 s is accurate


@dataclass(frozen=True)
class SkinObserverParams:
    """Nominal skin parameters (docs/simulators.md) and the check's thresholds.

    ``margin_c`` is above the model's error on healthy skin and the sensor
    noise, offset and lag; ``max_error_c_s`` is the integral of the excess
    over it that fails the check (1 degC over the margin for 10 s, or
    0.25 degC for 40 s).
    """

    core_c: float = 37.0
    ambient_c: float = 24.0
    tau_perf_s: float = 30.0
    tau_ds_s: float = 6.0
    tau_sd_s: float = 3.0
    ks_c_per_w_s: float = 0.02
    kd_c_per_w_s: float = 0.03
    heating_scale: float = 1.0
    rest_max_c: float = 34.5
    rest_min_margin_c: float = 1.0  # the rest surface stays at least this above ambient
    margin_c: float = 0.5
    max_error_c_s: float = 10.0


@dataclass(frozen=True)
class ObserverVerdict:
    """One tick's comparison: model estimate, hotter sensor, and the running error."""

    model_c: float
    measured_c: float
    excess_c: float  # model - measured - margin (negative: within the margin)
    error_c_s: float  # integrated excess so far
    failed: bool


class SkinObserver:
    """Estimates the skin surface temperature from delivered power alone.

    Call :meth:`reset` at a new zone (a fresh site), then :meth:`update` once
    per tick with a valid reading while the zone is active (delivering or
    paused; pass 0 W when the output is off).
    """

    def __init__(self, params: SkinObserverParams | None = None) -> None:
        self.params = params or SkinObserverParams()
        self._surface_c: float | None = None
        self._dermis_c = 0.0
        self._rest_surface_c = 0.0
        self._rest_dermis_c = 0.0
        self._inv_tau_amb = 0.0
        self._last_t_s: float | None = None
        self._last_power_w = 0.0
        self._error_c_s = 0.0

    @property
    def model_c(self) -> float | None:
        """The model's skin surface estimate (None before the zone's first reading)."""
        return self._surface_c

    @property
    def error_c_s(self) -> float:
        return self._error_c_s

    def reset(self) -> None:
        """Forget everything: the next reading starts a new site at rest."""
        self._surface_c = None
        self._last_t_s = None
        self._last_power_w = 0.0
        self._error_c_s = 0.0

    def _start(self, now_s: float, coolest_c: float, power_w: float) -> None:
        p = self.params
        rest = min(max(coolest_c, p.ambient_c + p.rest_min_margin_c), p.rest_max_c)
        rest = min(rest, p.core_c - p.rest_min_margin_c)
        inv_perf, inv_ds = 1.0 / p.tau_perf_s, 1.0 / p.tau_ds_s
        dermis_rest = (p.core_c * inv_perf + rest * inv_ds) / (inv_perf + inv_ds)
        self._rest_surface_c = rest
        self._rest_dermis_c = dermis_rest
        self._inv_tau_amb = ((dermis_rest - rest) / p.tau_sd_s) / (rest - p.ambient_c)
        self._surface_c = coolest_c
        self._dermis_c = dermis_rest
        self._last_t_s = now_s
        self._last_power_w = power_w
        self._error_c_s = 0.0

    def _advance(self, dt_s: float, power_w: float) -> None:
        p = self.params
        assert self._surface_c is not None
        ks = p.ks_c_per_w_s * p.heating_scale
        kd = p.kd_c_per_w_s * p.heating_scale
        inv_perf, inv_ds, inv_sd = 1.0 / p.tau_perf_s, 1.0 / p.tau_ds_s, 1.0 / p.tau_sd_s
        ts, td = self._surface_c, self._dermis_c
        steps = max(1, int(dt_s / _MAX_STEP_S + 0.999))
        h = dt_s / steps
        for _ in range(steps):
            d_td = kd * power_w - (td - p.core_c) * inv_perf - (td - ts) * inv_ds
            d_ts = ks * power_w + (td - ts) * inv_sd - (ts - p.ambient_c) * self._inv_tau_amb
            td += h * d_td
            ts += h * d_ts
        self._surface_c, self._dermis_c = ts, td

    def update(
        self, now_s: float, skin_c: tuple[float, float], power_w: float
    ) -> ObserverVerdict | None:
        """Advance to ``now_s`` and compare; None on the zone's first reading.

        ``power_w`` is the power delivered from now on (0 when the output is
        off); the interval just ended is integrated with the previous one.
        """
        if self._surface_c is None or self._last_t_s is None:
            self._start(now_s, min(skin_c), power_w)
            return None
        dt = now_s - self._last_t_s
        if dt > 0:
            self._advance(dt, self._last_power_w)
        self._last_t_s = now_s
        self._last_power_w = power_w
        assert self._surface_c is not None
        measured = max(skin_c)
        excess = self._surface_c - measured - self.params.margin_c
        if excess > 0 and dt > 0:
            self._error_c_s += excess * dt
        elif excess <= 0:
            self._error_c_s = 0.0
        return ObserverVerdict(
            model_c=self._surface_c,
            measured_c=measured,
            excess_c=excess,
            error_c_s=self._error_c_s,
            failed=self._error_c_s >= self.params.max_error_c_s,
        )


class Observed:
    """Delivered power, through the skin model, against the hotter sensor
    (:class:`SkinObserver`): no single sensor path is trusted alone."""

    def __init__(self, device: str, code: str, params: SkinObserverParams | None = None) -> None:
        self.device, self.code = device, code
        self.observer = SkinObserver(params)

    def reset(self) -> None:
        self.observer.reset()

    def check(self, now_s: float, skin_c: tuple[float, float], power_w: float) -> Alarm | None:
        verdict = self.observer.update(now_s, skin_c, power_w)
        if verdict is None or not verdict.failed:
            return None
        params = self.observer.params
        gap_c = verdict.model_c - verdict.measured_c
        return make_alarm(
            self.device,
            self.code,
            f"delivered power heats the skin model to {verdict.model_c:.1f} degC but the "
            f"hotter sensor reads {verdict.measured_c:.1f} degC, {gap_c:.1f} degC apart "
            f"(margin {params.margin_c} degC): both sensors reading low?",
            f"{verdict.error_c_s:.1f} degC*s over the margin",
            f"{params.max_error_c_s} degC*s",
            gap_c,
            params.margin_c,
        )
