"""The RF section of the session report, from the record alone.

One plot per zone (both skin sensors against the target, the alarm and the
cut-off), and the dose per site for the whole session (safety rule 8).
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt

from devicectl.modalities.rf.limits import RFLimits
from devicectl.modalities.rf.site_dose import site_key
from devicectl.plots import is_number, png, series
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


def site_rows(events: list[EventRecord]) -> list[list[Any]]:
    """Per RF site, its session totals as the last zone result on it recorded them.

    Dose belongs to the site (safety rule 8): a zone resumed after a fault, or
    treated again in a later step, adds to the same row.
    """
    sites: dict[str, list[Any]] = {}
    for e in events:
        if e.device != "rf" or e.kind != "zone_result":
            continue
        name = dig(e.data, "result", "name")
        if not isinstance(name, str):
            continue
        key = site_key(name)
        attempts = (sites[key][5] + 1) if key in sites else 1
        peak = dig(e.data, "result", "peak_c")
        prior_peak = sites[key][3] if key in sites else None
        if is_number(prior_peak) and (not is_number(peak) or prior_peak > peak):
            peak = prior_peak
        sites[key] = [
            sites[key][0] if key in sites else name,
            dig(e.data, "result", "site_held_s"),
            dig(e.data, "result", "site_time_at_target_s"),
            peak,
            dig(e.data, "result", "site_cem43"),
            attempts,
        ]
    return [
        [
            row[0],
            *(f"{v:.1f}" if is_number(v) and not math.isnan(v) else "?" for v in row[1:4]),
            f"{row[4]:.2f}" if is_number(row[4]) else "?",
            row[5],
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
            continue
        fig, ax = plt.subplots(figsize=(9, 3.0))
        shift = [
            ([p.t_s - start for p in pts], [p.value for p in pts if p.value is not None])
            for pts in (s1, s2)
        ]
        ax.plot(*shift[0], label="skin sensor 1")
        ax.plot(*shift[1], label="skin sensor 2", alpha=0.7)
        if target and target[0].value is not None:
            ax.axhline(target[0].value, color="green", linestyle="--", label="target")
        ax.axhline(limits.alarm_c, color="orange", linestyle=":", label=f"alarm {limits.alarm_c}")
        ax.axhline(limits.cutoff_c, color="red", linestyle=":", label=f"cut-off {limits.cutoff_c}")
        ax.set_xlabel("time in zone, s")
        ax.set_ylabel("degC")
        ax.set_title(f"RF zone {name}: skin temperature")
        ax.legend(loc="lower right", fontsize="small")
        figures.append(
            png(fig, f"RF zone {name}: both skin sensors against the target, alarm and cut-off")
        )
    return figures
