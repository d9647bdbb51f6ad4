"""Rate of change over a sliding time window, by least squares, in O(1) per sample.

Used by the supervisor (runaway: rise faster than the limit) and, as a
separate instance, by the regulator (prediction). A least-squares slope over a
1 s window of 20 samples has a noise of about 0.05 degC/s with the sensors'
0.05 degC noise and 0.1 degC resolution: far below the 2 degC/s runaway limit,
so healthy heating (0.2-1.2 degC/s) never trips it.
"""

from __future__ import annotations

from collections import deque


class SlopeEstimator:
    def __init__(self, window_s: float, min_samples: int = 5) -> None:
        self.window_s = window_s
        self.min_samples = min_samples
        self._samples: deque[tuple[float, float]] = deque()
        self._base_t = 0.0
        self._n = 0
        self._st = self._sy = self._stt = self._sty = 0.0
        self._since_rebase = 0

    def clear(self) -> None:
        self._samples.clear()
        self._n = 0
        self._st = self._sy = self._stt = self._sty = 0.0

    def _rebase(self, base_t: float) -> None:
        """Recompute the sums from scratch so rounding never accumulates."""
        self._base_t = base_t
        self._st = self._sy = self._stt = self._sty = 0.0
        for t, y in self._samples:
            x = t - base_t
            self._st += x
            self._sy += y
            self._stt += x * x
            self._sty += x * y
        self._since_rebase = 0

    def add(self, t_s: float, value: float) -> None:
        samples = self._samples
        samples.append((t_s, value))
        x = t_s - self._base_t
        self._st += x
        self._sy += value
        self._stt += x * x
        self._sty += x * value
        self._n += 1
        horizon = t_s - self.window_s
        while samples[0][0] < horizon:
            t0, y0 = samples.popleft()
            x0 = t0 - self._base_t
            self._st -= x0
            self._sy -= y0
            self._stt -= x0 * x0
            self._sty -= x0 * y0
            self._n -= 1
        self._since_rebase += 1
        if self._since_rebase >= 256:
            self._rebase(samples[0][0])

    def slope(self) -> float | None:
        """Units of value per second, or None until ``min_samples`` are in the window."""
        n = self._n
        if n < self.min_samples:
            return None
        denom = n * self._stt - self._st * self._st
        if denom <= 1e-12:
            return None
        return (n * self._sty - self._st * self._sy) / denom
