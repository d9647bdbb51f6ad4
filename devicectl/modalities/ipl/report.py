"""The IPL section of the session report: delivered against set fluence per flash."""

from __future__ import annotations

import matplotlib.pyplot as plt

from devicectl.modalities.ipl.limits import IPLLimits
from devicectl.plots import is_number, png
from devicectl.records.models import EventRecord, dig


def fluence_plot(events: list[EventRecord], limits: IPLLimits | None = None) -> list[str]:
    """Delivered fluence per flash against the set fluence and its tolerance band."""
    pairs = [
        (dig(e.data, "record", "set_fluence_j_cm2"), dig(e.data, "record", "delivered_j_cm2"))
        for e in events
        if e.kind == "flash" and e.device == "ipl"
    ]
    # A flash whose payload was edited out of shape is left out (verify names it).
    kept = [(float(a), float(b)) for a, b in pairs if is_number(a) and is_number(b)]
    if not kept:
        return []
    set_f = [a for a, _ in kept]
    got = [b for _, b in kept]
    tol = (limits or IPLLimits()).energy_tolerance
    fig, ax = plt.subplots(figsize=(9, 3.2))
    n = range(1, len(kept) + 1)
    ax.plot(n, got, "o", label="delivered (photodiode)")
    ax.plot(n, set_f, "-", color="green", label="set")
    ax.fill_between(
        n,
        [s * (1 - tol) for s in set_f],
        [s * (1 + tol) for s in set_f],
        color="green",
        alpha=0.1,
        label=f"+-{tol:.0%}",
    )
    ax.set_xlabel("flash")
    ax.set_ylabel("J/cm2")
    ax.set_title("IPL delivered fluence per flash")
    ax.legend(loc="lower right", fontsize="small")
    return [png(fig, "IPL delivered fluence per flash against the set fluence and its band")]
