"""What every limit set and requested parameter set shares: validation helpers.

A limit set checks itself when it is built (every number finite, every
duration, rate and limit positive, every fraction in its range, the thresholds
in the order the checks need); an inconsistent set raises :class:`ConfigError`
naming every field at fault and its value, so no supervisor ever runs with it.
Each modality's own limits live in its package (``modalities/<name>/limits.py``);
the defaults are DESIGN.md's table, sources in docs/safety.md.
"""

from __future__ import annotations

import math
from dataclasses import fields
from itertools import pairwise

from devicectl.errors import ConfigError


class Rules:
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


def shown(value: object) -> str:
    """A value as a problem line shows it: whole, unless it is a number too long to read
    (a 301-digit count helps nobody; its first digits and its size do)."""
    text = str(value)
    if isinstance(value, int | float) and len(text) > 20:
        return f"{value:.6g}"
    return text


def range_problems(
    field: str, value: float, low: float, high: float, *, whole: bool = False
) -> list[str]:
    """One problem line if ``value`` is not a number in [low, high] (or not whole)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return [f"{field} {value!r} is not a number"]
    if whole and value != int(value):
        return [f"{field} {shown(value)} must be a whole number"]
    if value > high:
        return [f"{field} {shown(value)} is above the limit {high}"]
    if value < low:
        return [f"{field} {shown(value)} is below the limit {low}"]
    return []
