"""Limits and requested parameters of every modality (RF, IPL, LED), and their validation.

The defaults are DESIGN.md's table (sources in docs/safety.md). Limits are
frozen: a protocol file can ask for an RF zone's target and hold time, an IPL
pass or an LED step, and those are checked against the limits, but it can never
change a limit.

A limit set checks itself when it is built: every number finite, every duration,
rate and limit positive, every fraction in its range, and the thresholds in the
order the checks need (for RF: target < alarm < software cut-off < firmware
cut-off). An inconsistent set raises :class:`ConfigError` naming every field at
fault and its value, so no supervisor ever runs with it.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Final

from devicectl.errors import ConfigError, ValidationError


class _Rules:
    """Collects what is inconsistent in one limit set, one line per rule broken."""

    def __init__(self, limits: object) -> None:
        self.limits = limits
        self.problems: list[str] = []

    def _get(self, name: str) -> float:
        return getattr(self.limits, name)  # type: ignore[no-any-return]

    def numbers(self) -> None:
        """Every number field a real, finite number (a NaN would pass every comparison)."""
        for f in fields(self.limits):  # type: ignore[arg-type]
            value = getattr(self.limits, f.name)
            if isinstance(value, tuple):
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                self.problems.append(f"{f.name} {value!r} is not a finite number")

    def _ok(self, *names: str) -> bool:
        """The fields are numbers already (else ``numbers`` has named them)."""
        for name in names:
            value = self._get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            if not math.isfinite(value):
                return False
        return True

    def positive(self, *names: str) -> None:
        for name in names:
            if self._ok(name) and not self._get(name) > 0:
                self.problems.append(f"{name} {self._get(name)!r} must be above 0")

    def not_negative(self, *names: str) -> None:
        for name in names:
            if self._ok(name) and not self._get(name) >= 0:
                self.problems.append(f"{name} {self._get(name)!r} must be 0 or more")

    def whole(self, *names: str) -> None:
        """Counts: a whole number, at least 1."""
        for name in names:
            value = self._get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self.problems.append(f"{name} {value!r} must be a whole number of 1 or more")

    def fraction(self, name: str, *, one: bool = True) -> None:
        """In (0, 1] (or (0, 1) without ``one``)."""
        if not self._ok(name):
            return
        value = self._get(name)
        if not (0 < value <= 1 if one else 0 < value < 1):
            span = "(0, 1]" if one else "(0, 1)"
            self.problems.append(f"{name} {value!r} must be in {span}")

    def below(self, *names: str, equal: bool = False) -> None:
        """Each field below the next (or equal to it, with ``equal``)."""
        for low, high in pairwise(names):
            if not self._ok(low, high):
                continue
            a, b = self._get(low), self._get(high)
            if not (a <= b if equal else a < b):
                word = "at most" if equal else "below"
                self.problems.append(f"{low} {a!r} must be {word} {high} {b!r}")

    def choices(self, name: str) -> None:
        """A non-empty tuple of positive whole numbers (filters, wavelengths)."""
        value = getattr(self.limits, name)
        if (
            not isinstance(value, tuple)
            or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
        ):
            self.problems.append(f"{name} {value!r} must be one or more positive whole numbers")

    def done(self) -> None:
        if self.problems:
            raise ConfigError(f"{type(self.limits).__name__}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class RFLimits:
    """Hard limits the supervisor enforces on every tick; not tunable by a protocol."""

    target_min_c: float = 38.0
    target_max_c: float = 42.0
    alarm_c: float = 43.0
    alarm_clear_c: float = 42.7  # hysteresis: the alarm re-arms only below this
    cutoff_c: float = 44.0
    firmware_cutoff_c: float = 45.0
    cem43_max: float = 2.0
    cem43_warn_fraction: float = 0.8
    time_at_target_max_s: float = 300.0
    power_max_w: float = 50.0
    rise_max_c_per_s: float = 2.0
    rise_window_s: float = 1.0
    # At or above alarm_c a healthy zone is never still heating: rising faster than
    # this there is a runaway too, caught before the 2 degC/s slope builds up.
    hot_rise_max_c_per_s: float = 1.0
    sensor_disagree_max_c: float = 1.5
    stale_ticks: int = 2
    stuck_s: float = 3.0
    plausible_min_c: float = 15.0
    plausible_max_c: float = 60.0
    no_rise_s: float = 20.0  # at >= no_rise_power_w the skin must rise no_rise_min_c
    no_rise_power_w: float = 10.0
    no_rise_min_c: float = 1.0
    contact_timeout_s: float = 10.0
    # A zone's hold ends before the supervisor's 300 s at target: ramp and overshoot
    # time within at_target_band_c of target counts toward that limit too.
    hold_max_s: float = 280.0
    at_target_band_c: float = 0.5

    def __post_init__(self) -> None:
        rules = _Rules(self)
        rules.numbers()
        rules.whole("stale_ticks")
        rules.positive(
            "cem43_max",
            "time_at_target_max_s",
            "power_max_w",
            "rise_max_c_per_s",
            "rise_window_s",
            "hot_rise_max_c_per_s",
            "sensor_disagree_max_c",
            "stuck_s",
            "no_rise_s",
            "no_rise_power_w",
            "no_rise_min_c",
            "contact_timeout_s",
            "hold_max_s",
            "at_target_band_c",
        )
        rules.fraction("cem43_warn_fraction")
        # Plausible range around every threshold, and the thresholds in the order
        # the checks need: the target under the alarm, the alarm's hysteresis under
        # it, the software cut-off under the firmware's own.
        rules.below("plausible_min_c", "target_min_c")
        rules.below("target_min_c", "target_max_c", equal=True)
        rules.below("target_max_c", "alarm_c", "cutoff_c", "firmware_cutoff_c", "plausible_max_c")
        rules.below("alarm_clear_c", "alarm_c")
        rules.below("target_max_c", "alarm_clear_c", equal=True)
        # The tighter rate at the alarm level is tighter; no-rise needs real power.
        rules.below("hot_rise_max_c_per_s", "rise_max_c_per_s", equal=True)
        rules.below("no_rise_power_w", "power_max_w", equal=True)
        rules.done()


@dataclass(frozen=True)
class RFZone:
    """One treatment zone: heat to ``target_c``, hold it for ``hold_s``."""

    name: str
    target_c: float = 42.0
    hold_s: float = 180.0

    def problems(self, limits: RFLimits) -> list[str]:
        """Every way this zone violates ``limits``, one line each (empty if none)."""
        found: list[str] = zone_name_problems(self.name)
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


# --------------------------------------------------------------------------- zone names
#
# A zone name identifies a site on the face, and dose belongs to the site (safety
# rule 8). Two names that look the same are one site: "fore\u200bhead" (a zero-width
# space) and "\u0441hin" (a Cyrillic es) must not pass as two zones. Rather than
# compare confusable skeletons, a zone name may hold only what cannot look like
# something else: letters of one script, the digits 0-9, spaces and hyphens. Latin
# letters are those of the Latin alphabet, with or without accents (an accent shows),
# plus a few letters of European alphabets; lookalikes such as the dotless i are not.
# Two names are then the same zone when their ``zone_key`` is equal (NFKC, case,
# runs of spaces). Names of one protocol share one script (``zone_scripts_problem``),
# so a whole-script lookalike ("\u0441\u04bb\u0456\u043f" in Cyrillic for "chin")
# cannot stand next to the Latin name either.

_LATIN_EXTRA: Final = frozenset("\u00df\u00e6\u0153\u00f8\u0142\u0111\u00f0\u00fe")
# Letters (Lo) that show nothing: Hangul fillers.
_BLANK_LETTERS: Final = frozenset("\u115f\u1160\u3164\uffa0")
# Modifier letters that belong to words of their script: the prolonged sound mark
# (katakana words) and the iteration mark (Han). Every other modifier letter (Lm)
# looks like punctuation and is refused.
_MODIFIER_SCRIPTS: Final = {"\u30fc": "KATAKANA", "\u3005": "CJK"}
# Scripts that one language writes together: one name, or one protocol, may mix them.
_SCRIPT_SETS: Final = (frozenset({"CJK", "HIRAGANA", "KATAKANA"}), frozenset({"CJK", "HANGUL"}))
_SCRIPT_NAMES: Final = {"CJK": "Han"}


def zone_key(name: str) -> str:
    """The site a zone name stands for: equal keys are the same zone.

    NFKC (composed and compatibility forms: an accented letter typed or pasted
    as letter + combining accent, full-width letters), case folded (so "Stra\u00dfe"
    and "STRASSE" are one), and runs of spaces as one space, trimmed.
    """
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _script_label(script: str) -> str:
    return _SCRIPT_NAMES.get(script, script.title())


def _char_label(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


_ACCENTS: Final = ("\u0300", "\u036f")  # Combining Diacritical Marks (less U+034F)
_KANA_MARKS: Final = frozenset("\u3099\u309a")  # the combining (semi-)voiced sound marks


def _scan(name: str) -> tuple[str | None, frozenset[str]]:
    """(first problem, scripts) of a zone name, as typed.

    Each character is put in NFKC and decomposed (NFD), so an accented letter is
    checked as its base letter and its accents. The scripts are those of the
    letters (and of a script's own vowel signs); spaces, hyphens, digits and
    accents belong to every script.
    """
    scripts: set[str] = set()
    after_letter = False
    for position, raw in enumerate(name, 1):
        problem: str | None = None
        category = unicodedata.category(raw)
        if (category[0] in "CZ" and raw not in " \u00a0") or raw in _BLANK_LETTERS:
            problem = "is invisible or a control character"
        for ch in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", raw)):
            if problem is not None:
                break
            category = unicodedata.category(ch)
            char_name = unicodedata.name(ch, "")
            letter = False
            if ch in " -" or "0" <= ch <= "9":
                pass
            elif ch in _MODIFIER_SCRIPTS:
                scripts.add(_MODIFIER_SCRIPTS[ch])
                letter = True
            elif category in ("Mn", "Mc"):
                if char_name.startswith("VARIATION SELECTOR") or ch == "\u034f":
                    problem = "is invisible or a control character"
                elif not after_letter:
                    problem = "is an accent or mark with no letter before it"
                elif char_name.startswith("COMBINING "):
                    if not (_ACCENTS[0] <= ch <= _ACCENTS[1] or ch in _KANA_MARKS):
                        problem = "is a mark that is not an accent"
                else:
                    scripts.add(char_name.split(" ", 1)[0])  # a script's own vowel sign
                letter = after_letter and problem is None
            elif category in ("Lu", "Ll", "Lt", "Lo") and char_name:
                script = char_name.split(" ", 1)[0]
                lower = ch.lower()
                if script == "LATIN" and not ("a" <= lower <= "z" or lower in _LATIN_EXTRA):
                    problem = "is not a letter of the Latin alphabet (a lookalike?)"
                scripts.add(script)
                letter = True
            elif category == "Nd":
                problem = "is a digit other than 0-9"
            else:
                problem = "is not a letter, a digit 0-9, a space or a hyphen"
            after_letter = letter
        if problem is not None:
            return (
                f"name has {_char_label(raw)} at position {position}, which {problem}: "
                "a zone name is letters, digits 0-9, spaces and hyphens",
                frozenset(scripts),
            )
    return None, frozenset(scripts)


def zone_name_script(name: str) -> frozenset[str]:
    """The scripts of a zone name's letters (empty for digits, spaces and hyphens only)."""
    return _scan(name)[1]


def _one_script(scripts: Iterable[str]) -> bool:
    found = frozenset(scripts)
    return len(found) <= 1 or any(found <= allowed for allowed in _SCRIPT_SETS)


def zone_name_problems(name: str) -> list[str]:
    """What is wrong with a zone name, one line each starting ``name`` (empty if fine).

    Guaranteed for a name with no problem: it holds only letters of one script
    (Latin: the Latin alphabet with or without accents), the digits 0-9, spaces
    and hyphens, and nothing invisible; so no two names with no problem look the
    same unless their :func:`zone_key` is equal, within one script.
    """
    if not name.strip():
        return ["name is empty"]
    problem, scripts = _scan(name)  # the first bad character says enough
    found = [] if problem is None else [problem]
    if not _one_script(scripts):
        labels = " and ".join(sorted(_script_label(s) for s in scripts))
        found.append(f"name mixes scripts ({labels}): a zone name is written in one script")
    return found


def zone_scripts_problem(name: str, others: Iterable[str]) -> str | None:
    """A problem line if ``name`` is not in the script of the zone names ``others``
    (the zones before it in a protocol), else None. Names that do not pass
    :func:`zone_name_problems` are left to it."""
    mine = zone_name_script(name)
    if not mine or not _one_script(mine):
        return None
    before: set[str] = set()
    for other in others:
        theirs = zone_name_script(other)
        if not _one_script(theirs) or zone_name_problems(other):
            continue
        before |= theirs
        if not _one_script(before | mine):
            return (
                f"name is in {' and '.join(sorted(_script_label(s) for s in mine))} script, "
                f"zone {other!r} before it in "
                f"{' and '.join(sorted(_script_label(s) for s in theirs))}: the zone names "
                "of a protocol are written in one script, so that none can look like another"
            )
    return None


# --------------------------------------------------------------------------- IPL


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
        rules = _Rules(self)
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
            found.append(f"filter_nm {_shown(self.filter_nm)} is not a known filter ({known})")
        found += _range(
            "fluence_j_cm2", self.fluence_j_cm2, lim.fluence_min_j_cm2, lim.fluence_max_j_cm2
        )
        found += _range(
            "pulse_width_ms", self.pulse_width_ms, lim.pulse_width_min_ms, lim.pulse_width_max_ms
        )
        found += _range("flashes", self.flashes, 1, lim.flashes_max, whole=True)

        found += _range("pulse_count", self.pulse_count, 1, lim.pulse_count_max, whole=True)
        if self.pulse_count == 1:
            if self.pulse_delay_ms != 0:
                found.append(f"pulse_delay_ms {self.pulse_delay_ms} must be 0 for a single pulse")
        else:
            found += _range(
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
        rules = _Rules(self)
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
        found += _range(
            "irradiance_mw_cm2", self.irradiance_mw_cm2, 0.1, limits.irradiance_max_mw_cm2
        )
        found += _range("duration_s", self.duration_s, 1.0, limits.duration_max_s)
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


def _shown(value: object) -> str:
    """A value as a problem line shows it: whole, unless it is a number too long to read
    (a 301-digit count helps nobody; its first digits and its size do)."""
    text = str(value)
    if isinstance(value, int | float) and len(text) > 20:
        return f"{value:.6g}"
    return text


def _range(field: str, value: float, low: float, high: float, *, whole: bool = False) -> list[str]:
    """One problem line if ``value`` is not a number in [low, high] (or not whole)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [f"{field} {value!r} is not a number"]
    if whole and value != int(value):
        return [f"{field} {_shown(value)} must be a whole number"]
    if value > high:
        return [f"{field} {_shown(value)} is above the limit {high}"]
    if value < low:
        return [f"{field} {_shown(value)} is below the limit {low}"]
    return []
