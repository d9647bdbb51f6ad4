"""The RF step of a protocol file: zones heated one after another to a target.

``[[step]] kind = "rf"`` with ``zones`` (names, or tables with their own
``target_c``/``hold_s``) and step-level defaults. Values are checked by
:meth:`RFZone.problems` (the limits live in one place); this module adds the
file's shape and the rules across zones: a site once per step, and one script
for every zone name of the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from devicectl.modalities.rf.limits import (
    RFLimits,
    RFZone,
    zone_key,
    zone_name_problems,
    zone_scripts_problem,
)
from devicectl.step_table import MISSING, StepTable, describe, field_of, one_line

KEYS: Final = ("kind", "title", "target_c", "hold_s", "zones")
ZONE_KEYS: Final = ("name", "target_c", "hold_s")
ONCE: Final = "each zone is treated once per step"
_DEFAULT: Final = RFZone("default")
# Rough-duration figures (progress display only, never control): resting skin
# 32-34 degC and a rise of 0.2-1 degC/s at normal power (DESIGN.md).
START_C: Final = 33.0
RISE_C_PER_S: Final = 0.4


@dataclass(frozen=True)
class RFStep:
    """RF heating of ``zones`` one after another, each to its target for its hold time."""

    kind: ClassVar[str] = "rf"
    title: str
    zones: tuple[RFZone, ...]


def zone_label(i: int, name: str) -> str:
    """``zone <i> (<name>)``; a name that breaks the name rule is shown escaped
    (``'\\u0441hin'``), so the problem line shows what the eye cannot."""
    if not name.strip():
        return f"zone {i}"
    shown = one_line(ascii(name)) if zone_name_problems(name) else one_line(name)
    return f"zone {i} ({shown})"


def read_step(t: StepTable, lim: RFLimits, memo: dict[str, Any]) -> RFStep | None:
    """An :class:`RFStep` from its table, or None with every problem recorded."""
    names: list[str] = memo.setdefault("zone_names", [])
    title = t.text("title", default="RF")
    target_c = t.number("target_c", default=_DEFAULT.target_c)
    hold_s = t.number("hold_s", default=_DEFAULT.hold_s)
    entries = t.data.get("zones", MISSING)
    zones: list[RFZone] = []
    inherited: set[str] = set()
    failed = False
    if entries is MISSING:
        t.field_problem("zones", "is missing: list the zones to treat")
        failed = True
    elif not isinstance(entries, list):
        t.field_problem(
            "zones",
            f"must be an array (zones = [...] or [[step.zones]]), not {describe(entries)}",
        )
        failed = True
    elif not entries:
        t.field_problem("zones", "is empty: list at least one zone")
        failed = True
    else:
        seen: dict[str, int] = {}
        for i, entry in enumerate(entries, 1):
            zone = _zone(t, lim, names, i, entry, target_c, hold_s, inherited, seen)
            if zone is None:
                failed = True
            else:
                zones.append(zone)
    # Step-level target_c/hold_s are checked once here, when written in the file
    # or used by a zone; the zones report only the values they set themselves.
    checked = {key for key in ("target_c", "hold_s") if t.has(key) or key in inherited}
    probe = RFZone(
        "step",
        _DEFAULT.target_c if target_c is None else target_c,
        _DEFAULT.hold_s if hold_s is None else hold_s,
    )
    t.limit_lines([p for p in probe.problems(lim) if field_of(p) in checked])
    if failed or title is None:
        return None
    return RFStep(title, tuple(zones))


def _zone(
    step: StepTable,
    lim: RFLimits,
    names: list[str],
    i: int,
    entry: object,
    step_target_c: float | None,
    step_hold_s: float | None,
    inherited: set[str],
    seen: dict[str, int],
) -> RFZone | None:
    data: Mapping[str, object]
    if isinstance(entry, str):
        data = {"name": entry}
    elif isinstance(entry, dict):
        data = entry
    else:
        step.problem(f"zone {i} must be a name or a table, not {describe(entry)}")
        return None
    raw_name = data.get("name")
    label = zone_label(i, raw_name if isinstance(raw_name, str) else "")
    z = StepTable(data, f"{step.where}: {label}", step.out, ZONE_KEYS)
    name = z.text("name")
    own = {key for key in ("target_c", "hold_s") if z.has(key)}
    inherited.update({"target_c", "hold_s"} - own)
    target_c = z.number("target_c") if "target_c" in own else step_target_c
    hold_s = z.number("hold_s") if "hold_s" in own else step_hold_s
    if name is not None:
        # One zone however its name was typed: case, Unicode forms that look the
        # same (e + combining accent vs the accented letter; NFKC), and runs of
        # spaces. Lookalike letters and invisible characters are refused by the
        # name rule (zone_name_problems), so they cannot make a second name.
        key = zone_key(name)
        if key in seen:
            z.problem(f"name repeats zone {seen[key]}: {ONCE}")
        elif key:
            seen[key] = i
        script = zone_scripts_problem(name, names)
        if script is not None:
            z.problem(script)
        names.append(name)
    probe = RFZone(
        name or "zone",
        lim.target_min_c if target_c is None else target_c,
        lim.hold_max_s if hold_s is None else hold_s,
    )
    checked = own if name is None else own | {"name"}
    z.limit_lines([p for p in probe.problems(lim) if field_of(p) in checked])
    if name is None or target_c is None or hold_s is None:
        return None
    return RFZone(name, target_c, hold_s)


def step_problems(step: RFStep, lim: RFLimits, memo: dict[str, Any]) -> list[str]:
    """Every problem of an RF step built in Python: each zone's values, then the
    zones together (no site twice in the step; one script for every zone name
    of the protocol, ``memo`` holding the earlier steps' names)."""
    if not step.zones:
        return ["zones is empty"]
    names: list[str] = memo.setdefault("zone_names", [])
    found: list[str] = []
    for i, zone in enumerate(step.zones, 1):
        found += [f"{zone_label(i, zone.name)}: {p}" for p in zone.problems(lim)]
    seen: dict[str, int] = {}
    for i, zone in enumerate(step.zones, 1):
        label = zone_label(i, zone.name)
        key = zone_key(zone.name)
        if key and key in seen:
            found.append(f"{label}: name repeats zone {seen[key]}: {ONCE}")
        elif key:
            seen[key] = i
        script = zone_scripts_problem(zone.name, names)
        if script is not None:
            found.append(f"{label}: {script}")
        names.append(zone.name)
    return found


def planned_s(step: RFStep) -> float:
    """Per zone, the ramp from resting skin at a typical rate plus the hold."""
    return sum(
        max(0.0, zone.target_c - START_C) / RISE_C_PER_S + zone.hold_s for zone in step.zones
    )
