"""LED limits (DESIGN.md defaults) and a requested exposure, with their validation."""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.limit_rules import Rules, range_problems
from devicectl.errors import ValidationError


@dataclass(frozen=True)
class LEDLimits:
    """LED hard limits (DESIGN.md): irradiance, duration, dose, skin temperature."""

    irradiance_max_mw_cm2: float = 110.0
    duration_max_s: float = 1200.0
    # The supervisor's own on-time clock may run a tick ahead of the controller's:
    # a step of exactly the maximum must end before the supervisor trips.
    duration_grace_s: float = 0.5
    dose_max_j_cm2: float = 130.0
    skin_max_c: float = 41.0
    skin_warn_c: float = 40.0
    wavelengths_nm: tuple[int, ...] = (633, 830)
    over_irradiance_fraction: float = 0.2  # measured above setpoint by more than this: fault
    # A driver settled a little high (under the 20 % limit) over-doses a 20-minute step
    # all the same: more than 10 % above the setpoint for 5 s is a fault too.
    irradiance_high_fraction: float = 0.10
    irradiance_high_s: float = 5.0
    collapse_fraction: float = 0.5  # measured below this fraction of setpoint ...
    collapse_s: float = 1.0  # ... for this long (after settling) is a fault
    # Measured above this for settle_s while the output should be off: still lit.
    dark_max_mw_cm2: float = 2.0
    settle_s: float = 1.0
    stale_ticks: int = 2
    plausible_min_c: float = 15.0
    plausible_max_c: float = 60.0
    stuck_s: float = 10.0
    interlock_timeout_s: float = 30.0
    # Under a lit canopy skin warms, or cools toward a lower equilibrium no faster
    # than excess / 180 s (docs/protocols/led.md): at most about 0.04 degC/s. A
    # reading falling faster than this, over the window, is a sensor drifting low
    # or lifted off the skin: with one skin sensor nothing else would notice.
    skin_fall_max_c_per_s: float = 0.15
    skin_fall_window_s: float = 5.0
    # The skin warning re-arms only once the skin is this far below skin_warn_c.
    warn_clear_margin_c: float = 0.5

    def __post_init__(self) -> None:
        rules = Rules(self)
        rules.numbers()
        rules.whole("stale_ticks")
        rules.positive(
            "irradiance_max_mw_cm2",
            "duration_max_s",
            "dose_max_j_cm2",
            "over_irradiance_fraction",
            "irradiance_high_s",
            "collapse_s",
            "dark_max_mw_cm2",
            "settle_s",
            "stuck_s",
            "interlock_timeout_s",
            "skin_fall_max_c_per_s",
            "skin_fall_window_s",
            "warn_clear_margin_c",
        )
        rules.not_negative("duration_grace_s")
        rules.fraction("collapse_fraction", one=False)
        rules.fraction("irradiance_high_fraction")
        # The slow "high" check sits under the fast over-irradiance one.
        rules.below("irradiance_high_fraction", "over_irradiance_fraction")
        rules.below("plausible_min_c", "skin_warn_c", "skin_max_c", "plausible_max_c")
        rules.below("dark_max_mw_cm2", "irradiance_max_mw_cm2")
        rules.choices("wavelengths_nm")
        rules.done()


@dataclass(frozen=True)
class LEDStep:
    """One LED exposure: a wavelength at an irradiance for a duration."""

    wavelength_nm: int
    irradiance_mw_cm2: float
    duration_s: float

    @property
    def dose_j_cm2(self) -> float:
        """The dose the step delivers if it runs to the end at its setpoint, as the
        canopy holds it (in 0.1 mW/cm2 steps, rounded): a plan just under the dose
        limit must not go over it by the rounding of its setpoint."""
        held_mw_cm2 = int(self.irradiance_mw_cm2 * 10 + 0.5) / 10  # as drivers round it
        return held_mw_cm2 * self.duration_s / 1000.0

    def problems(self, limits: LEDLimits) -> list[str]:
        found: list[str] = []
        if self.wavelength_nm not in limits.wavelengths_nm:
            known = ", ".join(str(w) for w in limits.wavelengths_nm)
            found.append(f"wavelength_nm {self.wavelength_nm} is not available ({known})")
        found += range_problems(
            "irradiance_mw_cm2", self.irradiance_mw_cm2, 0.1, limits.irradiance_max_mw_cm2
        )
        found += range_problems("duration_s", self.duration_s, 1.0, limits.duration_max_s)
        dose = self.dose_j_cm2 if not found else 0.0
        if dose > limits.dose_max_j_cm2:
            # One decimal, unless that would print a dose that looks within the limit.
            shown = f"{dose:.1f}" if round(dose, 1) > limits.dose_max_j_cm2 else f"{dose:.3f}"
            found.append(
                f"dose {shown} J/cm2 (irradiance x duration) is above the limit "
                f"{limits.dose_max_j_cm2}"
            )
        return found

    def validate(self, limits: LEDLimits) -> None:
        found = self.problems(limits)
        if found:
            raise ValidationError([f"led step: {p}" for p in found])
