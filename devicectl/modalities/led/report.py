"""The LED section of the session report: dose over time, with the irradiance."""

from __future__ import annotations

import matplotlib.pyplot as plt

from devicectl.plots import png, series, xy
from devicectl.records.models import TracePoint


def dose_plot(points: list[TracePoint]) -> list[str]:
    """Dose over session time, with the measured irradiance."""
    by_channel = series(points)
    dose = by_channel.get(("led", "dose_j_cm2"), [])
    if not dose:
        return []
    irr = by_channel.get(("led", "irradiance_mw_cm2"), [])
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(*xy(dose), label="dose J/cm2")
    ax.set_xlabel("session time, s")
    ax.set_ylabel("J/cm2")
    ax2 = ax.twinx()
    ax2.plot(
        *xy(irr),
        color="red",
        alpha=0.4,
        label="irradiance mW/cm2",
    )
    ax2.set_ylabel("mW/cm2")
    ax.set_title("LED dose over time")
    return [png(fig, "LED dose over session time, with the measured irradiance")]
