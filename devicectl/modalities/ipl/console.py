"""The IPL handpiece on the technician console: its view and its panel.

The view is copied on the loop thread (:func:`view`); the panel is a pure
function of it (:func:`render`). "ENERGY ON" means the device itself reports
charging, charged or armed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

from devicectl.modalities.ipl.controller import IPLController
from devicectl.panel_generic import fault_of
from devicectl.panel_style import header, num, output_badge, with_fault


@dataclass(frozen=True)
class IPLView:
    state: str
    energy: bool | None  # the device reports charging, charged or armed
    charge_pct: float | None
    crystal_c: float | None
    crystal_max_c: float
    shots: int | None
    last_fluence_j_cm2: float | None
    set_fluence_j_cm2: float | None
    flashes_done: int
    flashes_planned: int
    fault: str | None


def view(ipl: IPLController) -> IPLView:
    r = ipl.reading
    p = ipl.ipl_pass
    return IPLView(
        state=ipl.state.value,
        energy=ipl.reported_energy(),
        charge_pct=r.charge_pct if r is not None else None,
        crystal_c=r.crystal_temp_c if r is not None else None,
        crystal_max_c=ipl.limits.crystal_arm_max_c,
        shots=r.shot_count if r is not None else None,
        last_fluence_j_cm2=r.last_fluence_j_cm2 if r is not None else None,
        set_fluence_j_cm2=p.fluence_j_cm2 if p is not None else None,
        flashes_done=len(ipl.flashes),
        flashes_planned=p.flashes if p is not None else 0,
        fault=fault_of(ipl),
    )


def render(v: IPLView) -> Text:
    out = header("IPL", v.state, output_badge(v.energy, "ENERGY"))
    out.append(
        f"\ncharge {num(v.charge_pct, '{:.0f}')} %  "
        f"crystal {num(v.crystal_c)} °C (arm ≤ {v.crystal_max_c:.0f})\n"
        f"flashes {v.flashes_done}/{v.flashes_planned}  shots {num(v.shots, '{:.0f}')}\n"
        f"last delivered {num(v.last_fluence_j_cm2)} J/cm²  set {num(v.set_fluence_j_cm2)}"
    )
    return with_fault(out, v.fault)
