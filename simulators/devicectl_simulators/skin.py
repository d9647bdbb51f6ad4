"""Lumped two-node skin thermal model with one first-order sensor lag.

States (degC): ``Td`` the dermis node, where RF deposits most of its heat, and
``Ts`` the skin surface node, which the sensors touch::

    dTd/dt = kd*P - (Td - core)/tau_perf - (Td - Ts)/tau_ds
    dTs/dt = ks*P + (Td - Ts)/tau_sd     - (Ts - ambient)/tau_amb

``P`` is the heating power in W actually entering the tissue. ``Td`` at rest
and ``tau_amb`` are derived so that (``Td_rest``, ``skin0``) is an exact steady
state with ``P = 0``. Both skin sensors follow ``Ts`` through one shared
first-order lag (a third linear state ``Tlag``), then each adds its own fixed
offset, gaussian noise drawn per query from a seeded generator (a normal
quantile table indexed by ``random.Random.getrandbits``: same distribution to
3.5 sigma, a tenth of the cost of ``random.gauss``), and is quantised to
0.1 degC.

Integration is exact, not Euler: with ``P`` constant over an interval the
system is linear, so one step is ``x' = Phi x + gamma_p P + gamma_1`` where the
coefficients come from the matrix exponential of the augmented 5x5 matrix
(states, ``P``, constant 1). They are computed in pure Python (scaling and
squaring + Taylor) once per distinct ``dt`` and cached, so the common step
(the host's 50 ms tick) costs a dozen multiply-adds.

With the defaults: 25 W from rest raises the surface about 0.55-0.6 degC/s,
50 W about 1.1-1.2 degC/s, and holding 42 degC takes about 9-10 W.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

_MAX_STEP_LENGTHS = 64  # distinct step lengths cached; a fixed host tick needs a few
_MEMO_LIMIT = 4096  # exact float step lengths remembered (jittered copies of a few lengths)
_FINE_BITS = 30  # irregular steps are composed of 2**k s pieces, k >= -30 (about 1 ns)
_NOISE_BITS = 12


def _unit_normal_table(bits: int) -> tuple[float, ...]:
    """Standard normal quantiles at the midpoints of 2**bits equal-probability bins.

    Indexing it with uniform random bits samples a normal distribution
    (stratified, tails cut at about 3.5 sigma), rescaled to unit variance; one
    ``getrandbits`` call then costs far less than ``random.gauss``.
    """
    size = 1 << bits
    quantiles = [NormalDist().inv_cdf((i + 0.5) / size) for i in range(size)]
    rms = math.sqrt(sum(z * z for z in quantiles) / size)
    return tuple(z / rms for z in quantiles)


_UNIT_NORMAL = _unit_normal_table(_NOISE_BITS)


@dataclass(frozen=True)
class SkinParams:
    """Tuned parameters of the skin model (defaults are what the controller is tuned on).

    Heating coefficients are in degC per W per s: ``kd_c_per_w_s * P`` is the
    rate at which ``P`` watts alone would heat the dermis node.
    """

    core_c: float = 37.0
    ambient_c: float = 24.0
    skin0_c: float = 33.5
    tau_perf_s: float = 30.0
    tau_ds_s: float = 6.0
    tau_sd_s: float = 3.0
    ks_c_per_w_s: float = 0.02
    kd_c_per_w_s: float = 0.03
    sensor_lag_s: float = 0.3
    sensor_offsets_c: tuple[float, float] = (0.0, 0.05)
    sensor_noise_c: float = 0.05

    def __post_init__(self) -> None:
        for name in ("tau_perf_s", "tau_ds_s", "tau_sd_s", "sensor_lag_s"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        if not (self.ambient_c < self.skin0_c < self.core_c):
            raise ValueError(
                f"skin0_c must lie strictly between ambient_c ({self.ambient_c}) and "
                f"core_c ({self.core_c}) for a steady rest state, not {self.skin0_c!r}"
            )
        if self.sensor_noise_c < 0:
            raise ValueError(f"sensor_noise_c must not be negative, not {self.sensor_noise_c!r}")
        if len(self.sensor_offsets_c) != 2:
            raise ValueError("sensor_offsets_c must hold exactly two offsets (sensor 1, sensor 2)")

    @property
    def dermis_rest_c(self) -> float:
        """Td at rest: the value for which dTd/dt = 0 with P = 0 and Ts = skin0."""
        return (self.core_c / self.tau_perf_s + self.skin0_c / self.tau_ds_s) / (
            1.0 / self.tau_perf_s + 1.0 / self.tau_ds_s
        )

    @property
    def tau_amb_s(self) -> float:
        """Surface-to-ambient time constant that makes dTs/dt = 0 at rest."""
        return (self.skin0_c - self.ambient_c) / (
            (self.dermis_rest_c - self.skin0_c) / self.tau_sd_s
        )


def _matmul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    cols = list(zip(*b, strict=True))
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in cols] for row in a]


def expm(matrix: list[list[float]]) -> list[list[float]]:
    """Matrix exponential by scaling and squaring with a Taylor series.

    The matrix is scaled by 2**-s until its infinity norm is at most 0.5, the
    Taylor series is summed until terms fall below 1e-18 relative to the sum,
    then the result is squared s times. Exact zeros stay exact zeros, which
    keeps the block structure of the skin system (Tlag never feeds back).
    """
    n = len(matrix)
    norm = max(sum(abs(x) for x in row) for row in matrix)
    squarings = 0
    while norm > 0.5:
        norm /= 2.0
        squarings += 1
    scale = 2.0**-squarings
    a = [[x * scale for x in row] for row in matrix]
    result = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    term = [row[:] for row in result]
    for k in range(1, 40):
        term = [[x / k for x in row] for row in _matmul(term, a)]
        result = [
            [r + t for r, t in zip(r_row, t_row, strict=True)]
            for r_row, t_row in zip(result, term, strict=True)
        ]
        if max(abs(x) for row in term for x in row) < 1e-18:
            break
    for _ in range(squarings):
        result = _matmul(result, result)
    return result


class SkinModel:
    """The skin under one handpiece: state, exact stepping, sensor readings.

    Guarantees: ``step`` is exact for constant power (up to float rounding,
    independent of how an interval is split); with ``P = 0`` the rest state is
    steady; sensor noise is drawn only by :meth:`noise_c`, :meth:`noise_pair_c`
    and :meth:`read_sensor_c`, so the physics never depends on how often the
    host asks.
    """

    __slots__ = (
        "_ambient_c",
        "_bits",
        "_by_key",
        "_inv_tau_amb",
        "_inv_tau_sd",
        "_ks",
        "_memo",
        "_noise",
        "_powers_of_two",
        "_seen_once",
        "_system",
        "dermis_c",
        "lag_c",
        "params",
        "surface_c",
    )

    def __init__(self, params: SkinParams | None = None, seed: int = 0) -> None:
        p = params if params is not None else SkinParams()
        self.params = p
        self.dermis_c = p.dermis_rest_c
        self.surface_c = p.skin0_c
        self.lag_c = p.skin0_c
        self._bits = random.Random(seed).getrandbits
        self._noise = tuple(p.sensor_noise_c * z for z in _UNIT_NORMAL)
        self._by_key: dict[float, tuple[float, ...]] = {}
        self._memo: dict[float, tuple[float, ...]] = {}
        self._powers_of_two: dict[int, tuple[float, ...]] = {}
        self._seen_once: set[float] = set()
        tau_amb = p.tau_amb_s
        self._ks = p.ks_c_per_w_s
        self._ambient_c = p.ambient_c
        self._inv_tau_sd = 1.0 / p.tau_sd_s
        self._inv_tau_amb = 1.0 / tau_amb
        # Rows: d/dt of [Td, Ts, Tlag, P, 1]; columns: Td, Ts, Tlag, P, 1.
        self._system = [
            [
                -(1.0 / p.tau_perf_s + 1.0 / p.tau_ds_s),
                1.0 / p.tau_ds_s,
                0.0,
                p.kd_c_per_w_s,
                p.core_c / p.tau_perf_s,
            ],
            [
                1.0 / p.tau_sd_s,
                -(1.0 / p.tau_sd_s + 1.0 / tau_amb),
                0.0,
                p.ks_c_per_w_s,
                p.ambient_c / tau_amb,
            ],
            [0.0, 1.0 / p.sensor_lag_s, -1.0 / p.sensor_lag_s, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]

    def reset_to_rest(self) -> None:
        """A fresh patch of skin under the electrode: every node at its rest temperature."""
        p = self.params
        self.dermis_c = p.dermis_rest_c
        self.surface_c = p.skin0_c
        self.lag_c = p.skin0_c

    def _compute(self, dt_s: float) -> tuple[float, ...]:
        """The 13 entries of exp(M dt) that are not structural zeros (see :meth:`step`)."""
        if not (dt_s >= 0 and math.isfinite(dt_s)):
            raise ValueError(f"step must be a finite, non-negative time, not {dt_s!r} s")
        e = expm([[x * dt_s for x in row] for row in self._system])
        return (
            e[0][0], e[0][1], e[0][3], e[0][4],
            e[1][0], e[1][1], e[1][3], e[1][4],
            e[2][0], e[2][1], e[2][2], e[2][3], e[2][4],
        )  # fmt: skip

    def _cached(self, dt_s: float) -> tuple[float, ...] | None:
        """Coefficients for ``dt_s`` rounded to 1 ns, or None for a length not worth caching.

        Up to ``_MAX_STEP_LENGTHS`` lengths are cached as they come; once full,
        a length is admitted (evicting the oldest) only when it comes back, so a
        regular tick always earns its place and one-off lengths never evict it.
        """
        key = round(dt_s, 9)
        coeffs = self._by_key.get(key)
        if coeffs is None:
            by_key = self._by_key
            if len(by_key) >= _MAX_STEP_LENGTHS:
                if key not in self._seen_once:
                    if len(self._seen_once) >= _MEMO_LIMIT:
                        self._seen_once.clear()
                    self._seen_once.add(key)
                    return None
                del by_key[next(iter(by_key))]
                self._memo.clear()  # it may hold the evicted coefficients
            coeffs = self._compute(key)
            by_key[key] = coeffs
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[dt_s] = coeffs  # float jitter of the same tick: one dict hit next time
        return coeffs

    def propagator(self, dt_s: float) -> tuple[float, ...]:
        """Step coefficients for ``dt_s``, rounded to 1 ns (cached while there is room)."""
        coeffs = self._memo.get(dt_s) or self._cached(dt_s)
        return coeffs if coeffs is not None else self._compute(round(dt_s, 9))

    def integrate(self, dt_s: float, power_w: float) -> None:
        """Advance exactly by ``dt_s`` seconds with ``power_w`` constant.

        Regular steps (a host tick, its 10 ms sub-steps) hit the cache. Once
        more than ``_MAX_STEP_LENGTHS`` different lengths have been seen (a
        wall clock: every interval differs), a step is composed from cached
        power-of-two steps down to 2**-30 s instead (the same 1 ns resolution),
        which costs microseconds instead of a matrix exponential.
        """
        coeffs = self._memo.get(dt_s)
        if coeffs is None:
            coeffs = self._cached(dt_s)
            if coeffs is None:
                self._step_in_binary_pieces(dt_s, power_w)
                return
        a, b, c, d, e, f, g, h, i, j, k, m, n = coeffs
        td = self.dermis_c
        ts = self.surface_c
        self.dermis_c = a * td + b * ts + c * power_w + d
        self.surface_c = e * td + f * ts + g * power_w + h
        self.lag_c = i * td + j * ts + k * self.lag_c + m * power_w + n

    def _step_in_binary_pieces(self, dt_s: float, power_w: float) -> None:
        if not (dt_s >= 0 and math.isfinite(dt_s)):
            raise ValueError(f"step must be a finite, non-negative time, not {dt_s!r} s")
        ticks = round(dt_s * 2.0**_FINE_BITS)
        exponent = -_FINE_BITS
        while ticks:
            if ticks & 1:
                coeffs = self._powers_of_two.get(exponent)
                if coeffs is None:
                    coeffs = self._compute(2.0**exponent)
                    self._powers_of_two[exponent] = coeffs
                a, b, c, d, e, f, g, h, i, j, k, m, n = coeffs
                td = self.dermis_c
                ts = self.surface_c
                self.dermis_c = a * td + b * ts + c * power_w + d
                self.surface_c = e * td + f * ts + g * power_w + h
                self.lag_c = i * td + j * ts + k * self.lag_c + m * power_w + n
            ticks >>= 1
            exponent += 1

    def surface_rate_c_per_s(self, power_w: float) -> float:
        """dTs/dt now, for ``power_w`` W of heating."""
        ts = self.surface_c
        return (
            self._ks * power_w
            + (self.dermis_c - ts) * self._inv_tau_sd
            - (ts - self._ambient_c) * self._inv_tau_amb
        )

    def sensor_clean_c(self, sensor: int) -> float:
        """Noise-free, unquantised value of sensor 1 or 2: lagged surface + offset."""
        return self.lag_c + self.params.sensor_offsets_c[sensor - 1]

    def noise_c(self) -> float:
        """One draw of sensor noise: gaussian, sigma ``sensor_noise_c``, seeded."""
        return self._noise[self._bits(_NOISE_BITS)]

    def noise_pair_c(self) -> tuple[float, float]:
        """Two independent draws of sensor noise (sensor 1, sensor 2) for one query."""
        bits = self._bits(2 * _NOISE_BITS)
        noise = self._noise
        return noise[bits & ((1 << _NOISE_BITS) - 1)], noise[bits >> _NOISE_BITS]

    def read_sensor_c(self, sensor: int, extra_offset_c: float = 0.0) -> float:
        """One measurement of sensor 1 or 2: clean + extra offset + noise, quantised."""
        return quantise_c(self.sensor_clean_c(sensor) + extra_offset_c + self.noise_c())


def tenths(value_c: float) -> int:
    """``value_c`` quantised to the sensor resolution (0.1 degC, the protocol's one
    decimal place), as a whole number of tenths."""
    return round(value_c * 10.0)


def quantise_c(value_c: float) -> float:
    """``value_c`` quantised to the sensor resolution (0.1 degC)."""
    return round(value_c * 10.0) / 10.0
