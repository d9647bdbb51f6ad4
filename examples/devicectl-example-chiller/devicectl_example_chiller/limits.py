"""The chiller's hard limits and one cooling step, with their validation.

Limits are frozen: a protocol file asks for a plate setpoint and a cooling
time, which are checked against them, but can never change them. Problem lines
start with the field they are about (the protocol-file reader's format).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devicectl.errors import ValidationError


@dataclass(frozen=True)
class ChillerLimits:
    """Hard limits the supervisor enforces on every tick; not tunable by a protocol."""

    setpoint_min_c: float = 4.0  # the plate may be asked for 4-15 degC
    setpoint_max_c: float = 15.0
    skin_min_c: float = 10.0  # skin below this under the plate: fault (cold injury)
    skin_warn_c: float = 12.0  # medium alarm; also the lowest skin a step may start on
    plate_min_c: float = 3.0  # plate below this: the regulator has failed
    duration_min_s: float = 1.0
    duration_max_s: float = 300.0  # cooling time per step
    # The supervisor's own cooling clock may run a tick ahead of the controller's.
    duration_grace_s: float = 0.5
    stale_ticks: int = 2
    plausible_min_c: float = -20.0
    plausible_max_c: float = 50.0


def _range(field: str, value: float, low: float, high: float) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [f"{field} {value!r} is not a number"]
    if value > high:
        return [f"{field} {value:g} is above the limit {high:g}"]
    if value < low:
        return [f"{field} {value:g} is below the limit {low:g}"]
    return []


@dataclass(frozen=True)
class ChillerStep:
    """Cool the skin under the plate at ``setpoint_c`` for ``duration_s`` of cooling."""

    setpoint_c: float
    duration_s: float

    def problems(self, limits: ChillerLimits) -> list[str]:
        return _range(
            "setpoint_c", self.setpoint_c, limits.setpoint_min_c, limits.setpoint_max_c
        ) + _range("duration_s", self.duration_s, limits.duration_min_s, limits.duration_max_s)

    def validate(self, limits: ChillerLimits) -> None:
        """Raise :class:`ValidationError` with every problem, before anything is cooled."""
        found = self.problems(limits)
        if found:
            raise ValidationError([f"chiller step: {p}" for p in found])
