"""The chiller on the technician console: its view, its panel, its trace.

The view is copied on the loop thread (:func:`view`), with no NaN in it (a
NaN never equals itself, so an unchanged device would redraw every tick); the
panel is a pure function of it (:func:`render`), drawn with the console's own
header, badges and fault line. Output state is the device's own report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text

from devicectl.panel_generic import fault_of
from devicectl.panel_style import ON_STYLE, mmss, num, output_badge, state_badge, with_fault
from devicectl_example_chiller.controller import ChillerController


@dataclass(frozen=True)
class ChillerView:
    state: str
    output_on: bool | None  # the device's report; None: no reading
    plate_c: float | None
    setpoint_c: float | None
    skin_c: float | None
    min_skin_c: float | None  # the lowest skin of the step so far
    skin_limit_c: float  # the supervisor's fault limit
    elapsed_s: float
    remaining_s: float
    fault: str | None


def _value(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x


def view(chiller: ChillerController) -> ChillerView:
    r = chiller.reading
    plan = chiller.step_plan
    return ChillerView(
        state=chiller.state.value,
        output_on=chiller.reported_energy(),
        plate_c=_value(r.plate_c) if r is not None else None,
        setpoint_c=plan.setpoint_c if plan is not None else None,
        skin_c=_value(r.skin_c) if r is not None else None,
        min_skin_c=_value(chiller.min_skin_c),
        skin_limit_c=chiller.limits.skin_min_c,
        elapsed_s=chiller.cooling_s,
        remaining_s=chiller.remaining_s,
        fault=fault_of(chiller),
    )


def _header(state: str, badge: Text) -> Text:
    """The console's header line, with ``cooling`` shown as the energy state it is
    (the console's state styles know only the built-in modalities' states)."""
    out = Text("CHILLER  ", style="bold")
    out.append_text(
        Text(f" {state.upper()} ", style=ON_STYLE) if state == "cooling" else state_badge(state)
    )
    out.append("  ")
    out.append_text(badge)
    return out


def render(v: ChillerView) -> Text:
    out = _header(v.state, output_badge(v.output_on, "COOLING"))
    out.append(
        f"\nplate {num(v.plate_c)} °C (set {num(v.setpoint_c)})\n"
        f"skin {num(v.skin_c)} °C (min {num(v.min_skin_c)}, limit {v.skin_limit_c:g})\n"
        f"cooling {mmss(v.elapsed_s)}  remaining {mmss(v.remaining_s)}"
    )
    return with_fault(out, v.fault)


def trace(chiller: ChillerController) -> tuple[str, float | None]:
    r = chiller.reading
    return "Chiller skin", _value(r.skin_c) if r is not None else None
