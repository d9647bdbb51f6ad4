"""The RF handpiece on the technician console: its view, its panel, its trace.

The view is copied on the loop thread (:func:`view`); the panel is a pure
function of it (:func:`render`). Output state is the device's own report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text

from devicectl.modalities.rf.controller import RFController
from devicectl.panel_generic import fault_of
from devicectl.panel_style import header, num, output_badge, under_treatment, with_fault


@dataclass(frozen=True)
class RFView:
    state: str
    output_on: bool | None  # None: no reading from the device
    zone: str | None
    zones_done: int
    zones_total: int
    phase: str
    skin1_c: float | None
    skin2_c: float | None
    target_c: float
    alarm_c: float
    cutoff_c: float
    held_s: float
    hold_s: float
    cem43: float
    cem43_max: float
    power_w: float
    fault: str | None


def view(rf: RFController, runner: Any) -> RFView:
    r = rf.reading
    zone = rf.zone
    status = rf.status()
    done, total = 0, 0
    if runner is not None:
        for progress, step in zip(runner.steps, runner.protocol.steps, strict=True):
            if progress.kind == "rf" and progress.outcome in ("running", "fault"):
                done = len(progress.detail.get("zones_done", []))
                total = len(step.zones)
    return RFView(
        state=rf.state.value,
        output_on=rf.reported_energy(),
        zone=zone.name if zone is not None else None,
        zones_done=done,
        zones_total=total,
        phase=rf.phase,
        skin1_c=r.skin1_c if r is not None else None,
        skin2_c=r.skin2_c if r is not None else None,
        target_c=zone.target_c if zone is not None else rf.limits.target_max_c,
        alarm_c=rf.limits.alarm_c,
        cutoff_c=rf.limits.cutoff_c,
        held_s=float(status["held_s"]),
        hold_s=zone.hold_s if zone is not None else 0.0,
        cem43=float(status["cem43"]),
        cem43_max=rf.limits.cem43_max,
        power_w=rf.commanded_power_w,
        fault=fault_of(rf),
    )


def render(v: RFView) -> Text:
    out = header("RF", v.state, output_badge(v.output_on))
    zone = v.zone or "-"
    count = f" ({v.zones_done}/{v.zones_total} done)" if v.zones_total else ""
    out.append(f"\nzone {zone}{count}  phase {v.phase}  power {v.power_w:.1f} W\n")
    for label, value in (("skin 1", v.skin1_c), ("skin 2", v.skin2_c)):
        style = ""
        if value is not None and value >= v.cutoff_c:
            style = "bold white on red"
        elif value is not None and value >= v.alarm_c:
            style = "bold black on yellow"
        out.append(f"{label} ")
        out.append(f"{num(value)} °C", style=style)
        out.append("   ")
    out.append(
        f"\ntarget {v.target_c:.1f}  alarm {v.alarm_c:.1f}  cut-off {v.cutoff_c:.1f} °C\n"
        f"held {v.held_s:.0f}/{v.hold_s:.0f} s   CEM43 {v.cem43:.2f}/{v.cem43_max:.1f}"
    )
    return with_fault(out, v.fault)


def trace(rf: RFController) -> tuple[str, float | None]:
    """The hotter of the two skin sensors, while a zone is loaded or delivered: an
    idle handpiece's sensors read the room, not a treated site (None then)."""
    r = rf.reading
    return "RF skin", r.skin_max_c if r is not None and under_treatment(rf.state.value) else None


def energy_summary(rf: RFController) -> str | None:
    """The zone loaded, its setpoint and hold, and the dose its site has left."""
    zone = rf.zone
    if zone is None or not under_treatment(rf.state.value):
        return None
    lim = rf.limits
    prior = rf.sites.get(zone.name)
    cem43_left = lim.cem43_max - (prior.cem43 if prior is not None else 0.0)
    at_target_left_s = lim.time_at_target_max_s - (
        prior.time_at_target_s if prior is not None else 0.0
    )
    return (
        f"RF zone {zone.name}: target {zone.target_c:.1f} °C, hold {zone.hold_s:.0f} s; "
        f"site dose left CEM43 {max(cem43_left, 0.0):.2f} of {lim.cem43_max:g}, "
        f"{max(at_target_left_s, 0.0):.0f} of {lim.time_at_target_max_s:g} s at target"
    )


def trace_lines(v: RFView) -> tuple[tuple[str, float], ...]:
    """The zone's target, the alarm level and the software cut-off."""
    return (("target", v.target_c), ("alarm", v.alarm_c), ("cut-off", v.cutoff_c))
