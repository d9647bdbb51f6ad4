"""Thermal dose as cumulative equivalent minutes at 43 degC (Sapareto & Dewey).

CEM43 = sum over time of dt_min * R ** (43 - T), with R = 0.5 at or above
43 degC and 0.25 below. One minute held at 41/42/43/44/45 degC gives
0.0625/0.25/1/2/4 CEM43. The accumulator integrates each interval at the
hotter of its two end samples (the hotter sensor each), the conservative choice
whichever way the temperature moves; a gap with no reading is integrated the
same way once a reading comes back, never dropped.
"""

from __future__ import annotations


def cem43_rate_per_min(temp_c: float) -> float:
    """Equivalent minutes at 43 degC accrued per minute at ``temp_c``."""
    r = 0.5 if temp_c >= 43.0 else 0.25
    return float(r ** (43.0 - temp_c))


class CEM43Accumulator:
    """Dose of one zone; ``reset`` at the start of each zone."""

    def __init__(self) -> None:
        self.dose: float = 0.0
        self._last_t_s: float | None = None
        self._last_c = 0.0

    def reset(self) -> None:
        self.dose = 0.0
        self._last_t_s = None

    def add(self, t_s: float, temp_c: float) -> float:
        """Account the interval since the previous sample; return the dose so far."""
        if self._last_t_s is not None and t_s > self._last_t_s:
            hotter = temp_c if temp_c >= self._last_c else self._last_c
            self.dose += (t_s - self._last_t_s) / 60.0 * cem43_rate_per_min(hotter)
        self._last_t_s = t_s
        self._last_c = temp_c
        return self.dose

    def pause(self) -> None:
        """Forget the last sample time so a gap (output paused, no reading) adds nothing."""
        self._last_t_s = None
