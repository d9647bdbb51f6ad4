"""The chiller's section of the session report: step results and a temperature plot."""

from __future__ import annotations

import matplotlib.pyplot as plt

from devicectl.plots import png, series, table, xy
from devicectl.records.models import EventRecord, TracePoint
from devicectl_example_chiller.limits import ChillerLimits


def _cell(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


def cooling_parts(
    points: list[TracePoint], events: list[EventRecord], limits: ChillerLimits
) -> list[str]:
    """A table of the cooling results, and plate and skin over session time."""
    parts: list[str] = []
    rows = [
        [
            f"{e.t_s:.1f}",
            str(e.data["result"].get("outcome")),
            _cell(e.data["result"].get("setpoint_c")),
            _cell(e.data["result"].get("cooling_s")),
            _cell(e.data["result"].get("min_skin_c")),
        ]
        for e in events
        if e.device == "chiller"
        and e.kind == "step_result"
        and isinstance(e.data, dict)
        and isinstance(e.data.get("result"), dict)
    ]
    if rows:
        parts.append(table(["t s", "outcome", "setpoint degC", "cooling s", "skin min degC"], rows))
    by_channel = series(points)
    skin = by_channel.get(("chiller", "skin_c"), [])
    if not skin:
        return parts
    plate = by_channel.get(("chiller", "plate_c"), [])
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(*xy(plate), label="plate degC")
    ax.plot(*xy(skin), label="skin degC")
    ax.axhline(limits.skin_min_c, color="red", linestyle="--", label="skin minimum")
    ax.set_xlabel("session time, s")
    ax.set_ylabel("degC")
    ax.legend(loc="upper right")
    ax.set_title("Skin cooling")
    parts.append(
        png(fig, "Chiller plate and skin temperature over session time, with the skin minimum")
    )
    return parts
