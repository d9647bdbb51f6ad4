"""RF limits (DESIGN.md defaults) and a requested zone, with their validation;
zone names as sites (one script, no invisible or lookalike characters)."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from devicectl.control.limit_rules import Rules
from devicectl.errors import ValidationError


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
    # An early word (LOW, not latching) that the sensors are drifting apart: this
    # far apart for this long, before they reach sensor_disagree_max_c.
    sensor_drift_warn_c: float = 1.0
    sensor_drift_warn_s: float = 2.0
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
        rules = Rules(self)
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
            "sensor_drift_warn_c",
            "sensor_drift_warn_s",
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
        rules.below("sensor_drift_warn_c", "sensor_disagree_max_c")
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
