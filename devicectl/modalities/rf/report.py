"""The RF section of the session report, from the record alone.

One plot per zone that ran (both skin sensors against the target, the alarm
and the cut-off, in session time), and the results per site for the whole
session (safety rule 8): time to target, time at target, peak, CEM43 total.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt

from devicectl.modalities.rf.limits import RFLimits
from devicectl.modalities.rf.site_dose import site_key
from devicectl.plots import is_number, legend, mmss, png, series, session_time_axis
from devicectl.records.models import EventRecord, TracePoint, dig


def rf_zones(events: list[EventRecord]) -> list[tuple[str, float, float]]:
    """(zone name, start, end) of every RF zone, from the recorded load commands and results."""
    zones: list[tuple[str, float, float]] = []
    current: tuple[str, float] | None = None
    for e in events:
        if e.device != "rf" or not isinstance(e.data, dict):
            continue
        if e.kind == "command" and e.data.get("action") == "load":
            current = (str(dig(e.data, "args", "zone", "name")), e.t_s)
        elif e.kind == "zone_result" and current is not None:
            zones.append((current[0], current[1], e.t_s))
            current = None
    return zones


SITE_COLUMNS = [
    "site",
    "time to target s",
    "at target s",
    "held s",
    "peak degC",
    "CEM43 total",
    "attempts",
]


def site_rows(events: list[EventRecord]) -> list[list[Any]]:
    """Per RF site, its session totals as the last zone result on it recorded them
    (columns :data:`SITE_COLUMNS`).

    Dose belongs to the site (safety rule 8): a zone resumed after a fault, or
    treated again in a later step, adds to the same row. Time to target is the
    first attempt's that reached it; the peak is the highest of all attempts.
    """
    sites: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.device != "rf" or e.kind != "zone_result":
            continue
        name = dig(e.data, "result", "name")
        if not isinstance(name, str):
            continue
        key = site_key(name)
        row = sites.setdefault(key, {"name": name, "attempts": 0, "to_target": None, "peak": None})
        row["attempts"] += 1
        peak = dig(e.data, "result", "peak_c")
        if is_number(peak) and not (is_number(row["peak"]) and row["peak"] >= peak):
            row["peak"] = peak
        to_target = dig(e.data, "result", "time_to_target_s")
        if row["to_target"] is None and is_number(to_target):
            row["to_target"] = to_target
        row["held"] = dig(e.data, "result", "site_held_s")
        row["at_target"] = dig(e.data, "result", "site_time_at_target_s")
        row["cem43"] = dig(e.data, "result", "site_cem43")

    def num(v: Any, digits: int = 1) -> str:
        return f"{v:.{digits}f}" if is_number(v) and not math.isnan(v) else "?"

    return [
        [
            row["name"],
            "not reached" if row["to_target"] is None else num(row["to_target"]),
            num(row["at_target"]),
            num(row["held"]),
            num(row["peak"]),
            num(row["cem43"], 2),
            row["attempts"],
        ]
        for row in sites.values()
    ]


def zone_plots(
    points: list[TracePoint], events: list[EventRecord], limits: RFLimits | None = None
) -> list[str]:
    """One panel per RF zone: both skin sensors against the target and the limits."""
    by_channel = series(points)
    limits = limits or RFLimits()
    figures = []
    for name, start, end in rf_zones(events):

        def window(channel: str, start: float = start, end: float = end) -> list[TracePoint]:
            return [p for p in by_channel.get(("rf", channel), []) if start <= p.t_s <= end]

        s1, s2, target = window("skin1_c"), window("skin2_c"), window("target_c")
        if not s1:
            continue  # no reading in the zone: nothing to draw (the table says what ran)
        fig, ax = plt.subplots(figsize=(9, 3.0))
        v1 = [(p.t_s, p.value) for p in s1 if p.value is not None]
        v2 = [(p.t_s, p.value) for p in s2 if p.value is not None]
        ax.plot([t for t, _ in v1], [v for _, v in v1], label="skin sensor 1")
        if v2:
            ax.plot([t for t, _ in v2], [v for _, v in v2], label="skin sensor 2", alpha=0.7)
        target_c = target[0].value if target else None
        if target_c is not None:
            ax.axhline(target_c, color="green", linestyle="--", label=f"target {target_c:g}")
        ax.axhline(limits.alarm_c, color="orange", linestyle=":", label=f"alarm {limits.alarm_c}")
        ax.axhline(limits.cutoff_c, color="red", linestyle=":", label=f"cut-off {limits.cutoff_c}")
        session_time_axis(ax)
        ax.set_ylabel("degC")
        ax.set_title(f"RF zone {name}: skin temperature ({mmss(start)} to {mmss(end)})")
        legend(ax, loc="lower right")
        values = [v for _, v in v1 + v2]
        peak = max(values)
        first = v1[0][1]
        reached = next((t for t, v in v1 if target_c is not None and v >= target_c), None)
        alt = (
            f"RF zone {name}: both skin sensors against the target, alarm and cut-off, "
            f"session time {mmss(start)} to {mmss(end)}. Skin sensor 1 starts at "
            f"{first:.1f} degC"
            + (
                f" and reaches the {target_c:g} degC target at {mmss(reached)}"
                if reached is not None and target_c is not None
                else " and never reaches the target"
            )
            + f"; the peak of both sensors is {peak:.1f} degC, "
            + (
                f"below the alarm ({limits.alarm_c:g} degC)"
                if peak < limits.alarm_c
                else f"at or above the alarm ({limits.alarm_c:g} degC)"
            )
            + "."
        )
        figures.append(png(fig, alt))
    return figures
