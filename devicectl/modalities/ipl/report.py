"""The IPL section of the session report: per step, the flashes, the delivered fluence
(mean, min, max) and its deviation from the set fluence, then the delivered fluence
per flash against the set fluence and its tolerance band."""

from __future__ import annotations

from collections import defaultdict

import matplotlib.pyplot as plt

from devicectl.modalities.ipl.limits import IPLLimits
from devicectl.plots import is_number, legend, mmss, png, table
from devicectl.records.models import EventRecord, dig

RESULT_COLUMNS = [
    "step",
    "flashes",
    "set J/cm2",
    "delivered mean",
    "min",
    "max",
    "mean deviation",
    "worst deviation",
]


def _flashes(events: list[EventRecord]) -> dict[int | None, list[tuple[float, float, float]]]:
    """(session time, set, delivered) of every flash, by step. A flash whose payload was
    edited out of shape is left out (verify names it)."""
    by_step: dict[int | None, list[tuple[float, float, float]]] = defaultdict(list)
    for e in events:
        if e.kind != "flash" or e.device != "ipl":
            continue
        set_f = dig(e.data, "record", "set_fluence_j_cm2")
        got = dig(e.data, "record", "delivered_j_cm2")
        if is_number(set_f) and is_number(got) and set_f > 0:
            by_step[e.step_index].append((e.t_s, float(set_f), float(got)))
    return dict(by_step)


def step_results(events: list[EventRecord]) -> list[str]:
    """One row per IPL step that flashed: flashes, delivered fluence and its deviation."""
    rows = []
    for step, flashes in _flashes(events).items():
        got = [g for _, _, g in flashes]
        devs = [(g - s) / s for _, s, g in flashes]
        set_values = sorted({s for _, s, _ in flashes})
        rows.append(
            [
                "-" if step is None else step,
                len(flashes),
                ", ".join(f"{s:g}" for s in set_values),
                f"{sum(got) / len(got):.2f}",
                f"{min(got):.2f}",
                f"{max(got):.2f}",
                f"{sum(devs) / len(devs):+.1%}",
                f"{max(devs, key=abs):+.1%}",
            ]
        )
    if not rows:
        return []
    return [
        "<h4>IPL results per step (delivered against set fluence)</h4>",
        table(RESULT_COLUMNS, rows),
    ]


def fluence_plot(events: list[EventRecord], limits: IPLLimits | None = None) -> list[str]:
    """Per IPL step that flashed: delivered fluence per flash against the set fluence
    and its tolerance band."""
    tol = (limits or IPLLimits()).energy_tolerance
    figures = []
    for step, flashes in _flashes(events).items():
        set_f = [s for _, s, _ in flashes]
        got = [g for _, _, g in flashes]
        fig, ax = plt.subplots(figsize=(9, 3.2))
        n = list(range(1, len(flashes) + 1))
        ax.plot(n, got, "o", label="delivered (photodiode)")
        ax.plot(n, set_f, "-", color="green", label="set")
        ax.fill_between(
            n,
            [s * (1 - tol) for s in set_f],
            [s * (1 + tol) for s in set_f],
            color="green",
            alpha=0.1,
            label=f"+-{tol:.0%} tolerance",
        )
        ax.set_xlabel(
            f"flash (flash 1 at {mmss(flashes[0][0])}, flash {len(n)} at "
            f"{mmss(flashes[-1][0])} session time)"
        )
        ax.set_ylabel("J/cm2")
        where = "" if step is None else f" (step {step})"
        ax.set_title(f"IPL delivered fluence per flash{where}")
        legend(ax, loc="lower right")
        inside = sum(1 for s, g in zip(set_f, got, strict=True) if abs(g - s) <= tol * s)
        alt = (
            f"IPL delivered fluence per flash{where} against the set fluence and its "
            f"+-{tol:.0%} band: {len(n)} flashes from {mmss(flashes[0][0])} to "
            f"{mmss(flashes[-1][0])} session time, delivered {min(got):.2f} to "
            f"{max(got):.2f} J/cm2 (mean {sum(got) / len(got):.2f}) against "
            f"{', '.join(f'{s:g}' for s in sorted(set(set_f)))} J/cm2 set; "
            f"{inside} of {len(n)} within the band."
        )
        figures.append(png(fig, alt))
    return figures
