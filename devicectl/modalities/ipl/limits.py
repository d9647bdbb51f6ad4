"""IPL limits (DESIGN.md defaults) and a requested pass, with their validation."""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.limit_rules import Rules, range_problems, shown
from devicectl.errors import ValidationError


@dataclass(frozen=True)
class IPLLimits:
    """IPL hard limits (DESIGN.md): fluence, pulse width, interval, temperatures, energy check."""

    fluence_min_j_cm2: float = 5.0
    fluence_max_j_cm2: float = 25.0
    pulse_width_min_ms: float = 1.0
    pulse_width_max_ms: float = 100.0
    pulse_count_max: int = 5
    pulse_delay_min_ms: float = 5.0
    pulse_delay_max_ms: float = 500.0
    min_interval_s: float = 1.0
    crystal_arm_max_c: float = 10.0
    block_stop_c: float = 45.0
    block_warn_c: float = 40.0
    # A warning re-arms only once the reading is this far back below its threshold:
    # a thermistor dithering on the threshold must not fill the alarm list.
    warn_clear_margin_c: float = 0.5
    # The lamp block warms with every pulse (docs/protocols/ipl.md: 0.35 degC per
    # 15 J/cm2). A train that must warm it by block_stuck_min_rise_c or more, yet
    # leaves its thermistor where it was, block_stuck_trains times in a row, means a
    # frozen thermistor (which the firmware's own 45 degC stop also believes).
    block_rise_c_per_j_cm2: float = 0.35 / 15.0
    block_stuck_min_rise_c: float = 0.2
    block_stuck_trains: int = 3
    energy_tolerance: float = 0.20  # delivered vs set fluence
    flash_confirm_s: float = 0.5  # a fired train must show in the shot counter by then
    flashes_max: int = 500
    stale_ticks: int = 2
    plausible_min_c: float = -20.0
    plausible_max_c: float = 80.0
    contact_timeout_s: float = 30.0
    filters_nm: tuple[int, ...] = (515, 560, 590, 640, 695)

    def __post_init__(self) -> None:
        rules = Rules(self)
        rules.numbers()
        rules.whole("pulse_count_max", "block_stuck_trains", "flashes_max", "stale_ticks")
        rules.positive(
            "fluence_min_j_cm2",
            "pulse_width_min_ms",
            "pulse_delay_min_ms",
            "min_interval_s",
            "warn_clear_margin_c",
            "block_rise_c_per_j_cm2",
            "block_stuck_min_rise_c",
            "flash_confirm_s",
            "contact_timeout_s",
        )
        rules.fraction("energy_tolerance")
        rules.below("fluence_min_j_cm2", "fluence_max_j_cm2", equal=True)
        rules.below("pulse_width_min_ms", "pulse_width_max_ms", equal=True)
        rules.below("pulse_delay_min_ms", "pulse_delay_max_ms", equal=True)
        # The crystal limit and the block's warning and stop, inside the plausible range.
        rules.below("plausible_min_c", "crystal_arm_max_c", "plausible_max_c")
        rules.below("plausible_min_c", "block_warn_c", "block_stop_c", "plausible_max_c")
        rules.choices("filters_nm")
        rules.done()


@dataclass(frozen=True)
class IPLPass:
    """One IPL pass: ``flashes`` triggers of the handpiece with the same parameters."""

    filter_nm: int
    fluence_j_cm2: float
    pulse_width_ms: float
    flashes: int = 1
    pulse_count: int = 1
    pulse_delay_ms: float = 0.0

    def problems(self, limits: IPLLimits) -> list[str]:
        lim = limits
        found: list[str] = []
        if self.filter_nm not in lim.filters_nm:
            known = ", ".join(str(f) for f in lim.filters_nm)
            found.append(f"filter_nm {shown(self.filter_nm)} is not a known filter ({known})")
        found += range_problems(
            "fluence_j_cm2", self.fluence_j_cm2, lim.fluence_min_j_cm2, lim.fluence_max_j_cm2
        )
        found += range_problems(
            "pulse_width_ms", self.pulse_width_ms, lim.pulse_width_min_ms, lim.pulse_width_max_ms
        )
        found += range_problems("flashes", self.flashes, 1, lim.flashes_max, whole=True)

        found += range_problems("pulse_count", self.pulse_count, 1, lim.pulse_count_max, whole=True)
        if self.pulse_count == 1:
            if self.pulse_delay_ms != 0:
                found.append(f"pulse_delay_ms {self.pulse_delay_ms} must be 0 for a single pulse")
        else:
            found += range_problems(
                "pulse_delay_ms",
                self.pulse_delay_ms,
                lim.pulse_delay_min_ms,
                lim.pulse_delay_max_ms,
            )
        if not found and self.fluence_j_cm2 * self.pulse_count > lim.fluence_max_j_cm2:
            # The limit is per trigger: a train must not add up past it.
            found.append(
                f"fluence_j_cm2 {self.fluence_j_cm2} x pulse_count {self.pulse_count} = "
                f"{self.fluence_j_cm2 * self.pulse_count:g} J/cm2 per trigger is above the limit "
                f"{lim.fluence_max_j_cm2}"
            )
        return found

    def validate(self, limits: IPLLimits) -> None:
        found = self.problems(limits)
        if found:
            raise ValidationError([f"ipl pass: {p}" for p in found])


# --------------------------------------------------------------------------- LED
