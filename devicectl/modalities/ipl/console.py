"""The IPL handpiece on the technician console: its view and its panel.

The view is copied on the loop thread (:func:`view`); the panel is a pure
function of it (:func:`render`). "ENERGY ON" means the device itself reports
charging, charged or armed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text

from devicectl.modalities.ipl.controller import IPLController
from devicectl.panel_generic import fault_of
from devicectl.panel_style import header, num, output_badge, under_treatment, with_fault


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


def step_flashes(ipl: IPLController, runner: Any) -> tuple[int, int] | None:
    """(flashes so far, flashes planned) of the session's latest IPL step begun: a step
    begun again after a fault loads only what is left of its pass, and the screen
    must still count the step's flashes, not the reloaded pass's."""
    if runner is None:
        return None
    found = None
    for progress, step in zip(runner.steps, runner.protocol.steps, strict=True):
        if progress.kind == ipl.modality and progress.outcome != "pending":
            # the latest IPL step begun: under way, stopped at a fault, or just done
            found = int(progress.detail.get("flashes_done", 0)), int(step.ipl_pass.flashes)
    return found


def view(ipl: IPLController, runner: Any = None) -> IPLView:
    r = ipl.reading
    p = ipl.ipl_pass
    done, planned = step_flashes(ipl, runner) or (
        len(ipl.flashes),
        p.flashes if p is not None else 0,
    )
    return IPLView(
        state=ipl.state.value,
        energy=ipl.reported_energy(),
        charge_pct=r.charge_pct if r is not None else None,
        crystal_c=r.crystal_temp_c if r is not None else None,
        crystal_max_c=ipl.limits.crystal_arm_max_c,
        shots=r.shot_count if r is not None else None,
        last_fluence_j_cm2=r.last_fluence_j_cm2 if r is not None else None,
        set_fluence_j_cm2=p.fluence_j_cm2 if p is not None else None,
        flashes_done=done,
        flashes_planned=planned,
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


def energy_summary(ipl: IPLController) -> str | None:
    """The pass loaded: filter, fluence, pulses a flash, and the flashes it fires."""
    p = ipl.ipl_pass
    if p is None or not under_treatment(ipl.state.value):
        return None
    pulses = (
        f"{p.pulse_count} pulses of {p.pulse_width_ms:g} ms, {p.pulse_delay_ms:g} ms apart"
        if p.pulse_count > 1
        else f"1 pulse of {p.pulse_width_ms:g} ms"
    )
    left = p.flashes - len(ipl.flashes)
    return (
        f"IPL filter {p.filter_nm} nm, {p.fluence_j_cm2:.1f} J/cm², {pulses}; "
        f"{left} flash{'es' if left != 1 else ''} to fire"
    )
