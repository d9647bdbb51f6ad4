"""Limits and requested parameters for RF delivery, and their validation.

The defaults are DESIGN.md's table (sources in docs/safety.md). Limits are
frozen: a protocol file can ask for a zone's target and hold time, and those
are checked against the limits, but it can never change a limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devicectl.errors import ValidationError


@dataclass(frozen=True)
class RFLimits:
    """Hard limits the supervisor enforces on every tick; not tunable by a protocol."""

    target_min_c: float = 38.0
    target_max_c: float = 42.0
    alarm_c: float = 43.0
    cutoff_c: float = 44.0
    firmware_cutoff_c: float = 45.0
    cem43_max: float = 2.0
    cem43_warn_fraction: float = 0.8
    time_at_target_max_s: float = 300.0
    power_max_w: float = 50.0
    rise_max_c_per_s: float = 2.0
    rise_window_s: float = 1.0
    sensor_disagree_max_c: float = 1.5
    stale_ticks: int = 2
    stuck_s: float = 3.0
    plausible_min_c: float = 15.0
    plausible_max_c: float = 60.0
    no_rise_s: float = 20.0  # at >= no_rise_power_w the skin must rise no_rise_min_c
    no_rise_power_w: float = 10.0
    no_rise_min_c: float = 1.0
    contact_timeout_s: float = 10.0
    hold_max_s: float = 300.0


@dataclass(frozen=True)
class RFZone:
    """One treatment zone: heat to ``target_c``, hold it for ``hold_s``."""

    name: str
    target_c: float = 42.0
    hold_s: float = 180.0

    def problems(self, limits: RFLimits) -> list[str]:
        """Every way this zone violates ``limits``, one line each (empty if none)."""
        found: list[str] = []
        if not self.name.strip():
            found.append("name is empty")
        if not math.isfinite(self.target_c):
            found.append(f"target_c {self.target_c} is not a number")
        elif self.target_c > limits.target_max_c:
            found.append(f"target_c {self.target_c} is above the limit {limits.target_max_c}")
        elif self.target_c < limits.target_min_c:
            found.append(f"target_c {self.target_c} is below the limit {limits.target_min_c}")
        if not math.isfinite(self.hold_s) or self.hold_s <= 0:
            found.append(f"hold_s {self.hold_s} must be a positive number of seconds")
        elif self.hold_s > limits.hold_max_s:
            found.append(f"hold_s {self.hold_s} is above the limit {limits.hold_max_s}")
        return found

    def validate(self, limits: RFLimits) -> None:
        """Raise :class:`ValidationError` with every problem, before anything is armed."""
        found = self.problems(limits)
        if found:
            raise ValidationError([f"zone {self.name!r}: {p}" for p in found])


FACE_ZONES = ("forehead", "left cheek", "right cheek", "nose", "chin")
