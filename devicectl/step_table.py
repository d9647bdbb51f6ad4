"""One table of a protocol file being read: typed getters that record problems.

Shared by the session's protocol-file reader and every modality's step reader
(``Modality.read_step``), so a problem line has one format whatever the step
kind: ``<file>: step <n> (<kind>): <field> <problem>``. A getter that finds a
problem records the line and returns None; it never raises.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Final

MISSING: Final = object()
INT_RULE: Final = "TOML integers are 64-bit"
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_SHOW_MAX: Final = 40


class StepTable:
    """One TOML table being read: typed getters that record a problem line and
    return None instead of raising. Unknown keys are reported on construction."""

    def __init__(
        self, data: Mapping[str, object], where: str, out: list[str], known: tuple[str, ...]
    ) -> None:
        self.data = data
        self.where = where
        self.out = out
        self.bad: set[str] = set()  # keys with a missing/type problem: no limit lines for them
        for key in data:
            if key not in known:
                self.problem(unknown_key(key, known))

    def problem(self, text: str) -> None:
        self.out.append(f"{self.where}: {text}")

    def field_problem(self, key: str, text: str) -> None:
        self.bad.add(key)
        self.problem(f"{key} {text}")

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: str | None = None, *, blank_ok: bool = False) -> str | None:
        """Text; required when ``default`` is None; not blank unless ``blank_ok``."""
        value = self.data.get(key, MISSING)
        if value is MISSING:
            if default is None:
                self.field_problem(key, "is missing")
            return default
        if not isinstance(value, str):
            self.field_problem(key, f"must be text, not {describe(value)}")
            return None
        if not blank_ok and not value.strip():
            self.field_problem(key, "is empty")
            return None
        return value

    def number(self, key: str, default: float | None = None) -> float | None:
        """A number (integer or float; nan and inf are left to the limits)."""
        value = self.data.get(key, MISSING)
        if value is MISSING:
            if default is None:
                self.field_problem(key, "is missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.field_problem(key, f"must be a number, not {describe(value)}")
            return None
        if too_large(value):
            self.field_problem(key, f"is too large ({INT_RULE})")
            return None
        return float(value)

    def whole(self, key: str, default: int | None = None) -> int | None:
        """A whole number (an integer, or a float with nothing after the point)."""
        value = self.data.get(key, MISSING)
        if value is MISSING:
            if default is None:
                self.field_problem(key, "is missing")
            return default
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.field_problem(key, f"must be a whole number, not {describe(value)}")
            return None
        if too_large(value):
            self.field_problem(key, f"is too large ({INT_RULE})")
            return None
        return value

    def flag(self, key: str, default: bool) -> bool | None:
        value = self.data.get(key, MISSING)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.field_problem(key, f"must be true or false, not {describe(value)}")
            return None
        return value

    def limit_lines(self, lines: list[str], skip: AbstractSet[str] = frozenset()) -> None:
        """Record the limits' problem lines, except for fields already reported."""
        for line in lines:
            if field_of(line) not in self.bad | skip:
                self.problem(line)


def too_large(value: int | float) -> bool:
    """An integer outside TOML's 64-bit range (tomllib reads any length): no float
    holds one past 1.8e308, and the limits' checks cannot compare it."""
    return isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX


def field_of(line: str) -> str:
    """The field a limits' problem line is about: its first word."""
    return line.split(" ", 1)[0]


def one_line(text: str) -> str:
    """Free text as it may appear inside a one-line problem."""
    shown = text if text.isprintable() else repr(text)
    return shown if len(shown) <= _SHOW_MAX else shown[: _SHOW_MAX - 3] + "..."


def show(text: str) -> str:
    return one_line(repr(text))


def show_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else show(key)


def unknown_key(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}?" if close else "known keys: " + ", ".join(known)
    return f"{show_key(key)} is not a known key ({hint})"


def describe(value: object) -> str:
    """A TOML value as a problem line names it: its kind, and a short form of it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"the date/time {one_line(str(value))}"
