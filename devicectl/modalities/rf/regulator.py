"""Closed-loop RF power, decided pulse by pulse ("flash by flash").

Every ``pulse_s`` the regulator looks at the hotter skin sensor and its rate
of rise, predicts where the skin will be ``lookahead_s`` from now (the dermis
keeps heating the surface after power drops), and sets the power for the next
pulse: a proportional term on the predicted error, an integral term that only
works near the target (so the ramp cannot wind it up), and a feed-forward of
the power that holding the target needs. Power is clamped to ``max_power_w``,
which stays well under the supervisor's 50 W limit.

The regulator owns no safety: the supervisor checks every tick, independently.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class RegulatorTuning:
    pulse_s: float = 0.5
    max_power_w: float = 25.0
    kp_w_per_c: float = 12.0
    ki_w_per_c_s: float = 0.4
    feedforward_w: float = 6.0
    lookahead_s: float = 3.0
    integral_band_c: float = 1.0
    integral_max_w: float = 15.0


RATE_WINDOW_S = 1.0


def _least_squares_slope(samples: deque[tuple[float, float]]) -> float:
    """Rate of rise over the window (0.0 until there are 5 samples); computed per pulse only."""
    n = len(samples)
    if n < 5:
        return 0.0
    t0 = samples[0][0]
    st = sy = stt = sty = 0.0
    for t, y in samples:
        x = t - t0
        st += x
        sy += y
        stt += x * x
        sty += x * y
    denom = n * stt - st * st
    return (n * sty - st * sy) / denom if denom > 1e-12 else 0.0


class PulseRegulator:
    def __init__(self, target_c: float, tuning: RegulatorTuning | None = None) -> None:
        self.target_c = target_c
        self.tuning = tuning or RegulatorTuning()
        self._history: deque[tuple[float, float]] = deque()
        self._integral_w = 0.0
        self._next_pulse_s: float | None = None
        self._last_pulse_s: float | None = None
        self.power_w = 0.0

    def reset(self) -> None:
        """Forget history: after a pause the tissue has cooled by an unknown amount."""
        self._history.clear()
        self._next_pulse_s = None
        self._last_pulse_s = None
        self.power_w = 0.0

    def update(self, now_s: float, skin_c: float) -> float | None:
        """Feed this tick's reading; return a new power when a pulse starts, else None."""
        history = self._history
        history.append((now_s, skin_c))
        if self._next_pulse_s is not None and now_s < self._next_pulse_s - 1e-9:
            return None
        horizon = now_s - RATE_WINDOW_S
        while history[0][0] < horizon:
            history.popleft()
        tune = self.tuning
        rate = _least_squares_slope(history)
        predicted = skin_c + max(rate, 0.0) * tune.lookahead_s
        error = self.target_c - skin_c
        if self._last_pulse_s is not None and abs(error) <= tune.integral_band_c:
            self._integral_w += tune.ki_w_per_c_s * error * (now_s - self._last_pulse_s)
            self._integral_w = min(max(self._integral_w, -tune.feedforward_w), tune.integral_max_w)
        power = (
            tune.feedforward_w + self._integral_w + tune.kp_w_per_c * (self.target_c - predicted)
        )
        power = min(max(power, 0.0), tune.max_power_w)
        self._last_pulse_s = now_s
        self._next_pulse_s = now_s + tune.pulse_s
        self.power_w = round(power, 1)
        return self.power_w
