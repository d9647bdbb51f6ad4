"""The LED section of the session report: per step, the dose delivered against the
planned dose, and the dose over session time with the irradiance."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from devicectl.plots import is_number, legend, mmss, png, series, session_time_axis, table, xy
from devicectl.records.models import EventRecord, TracePoint, dig

RESULT_COLUMNS = [
    "step",
    "wavelength nm",
    "planned J/cm2",
    "delivered J/cm2",
    "delivered / planned",
    "on time s",
    "peak skin degC",
    "outcome",
]


def _steps(events: list[EventRecord]) -> dict[int | None, dict[str, Any]]:
    """Per LED step that ran (it has a result): its plan and its result."""
    plans: dict[int | None, Any] = {}
    ran: dict[int | None, dict[str, Any]] = {}
    for e in events:
        if e.device != "led":
            continue
        if e.kind == "command" and dig(e.data, "action") == "load":
            plans[e.step_index] = dig(e.data, "args", "step")
        elif e.kind == "step_result":
            result = dig(e.data, "result")
            ran[e.step_index] = {
                "plan": plans.get(e.step_index),
                "result": result if isinstance(result, dict) else {},
            }
    return ran


def _planned(plan: Any) -> float | None:
    """Irradiance x duration, J/cm2."""
    irr, dur = dig(plan, "irradiance_mw_cm2"), dig(plan, "duration_s")
    if is_number(irr) and is_number(dur):
        return float(irr) * float(dur) / 1000.0
    return None


def step_results(events: list[EventRecord]) -> list[str]:
    rows = []
    for step, ran in _steps(events).items():
        planned = _planned(ran["plan"])
        result = ran["result"]
        dose = result.get("dose_j_cm2")

        def num(v: Any, digits: int = 1) -> str:
            return f"{v:.{digits}f}" if is_number(v) else "?"

        rows.append(
            [
                "-" if step is None else step,
                result.get("wavelength_nm", dig(ran["plan"], "wavelength_nm") or "?"),
                num(planned),
                num(dose),
                f"{dose / planned:.1%}" if is_number(dose) and planned else "?",
                num(result.get("on_time_s")),
                num(result.get("peak_skin_c")),
                result.get("outcome", "?"),
            ]
        )
    if not rows:
        return []
    return [
        "<h4>LED results per step (dose delivered and planned)</h4>",
        table(RESULT_COLUMNS, rows),
    ]


def dose_plot(points: list[TracePoint], events: list[EventRecord] | None = None) -> list[str]:
    """Per LED step that ran: dose over session time, with the measured irradiance and
    the planned dose. Without ``events``, every LED trace point counts as one step."""
    by_channel = series(points)
    dose_all = by_channel.get(("led", "dose_j_cm2"), [])
    irr_all = by_channel.get(("led", "irradiance_mw_cm2"), [])
    steps: dict[int | None, dict[str, Any]]
    if events is None:
        steps = {None: {"plan": None, "result": {}}} if dose_all else {}
    else:
        steps = _steps(events)
    figures = []
    for step, ran in steps.items():

        def in_step(p: TracePoint, step: int | None = step) -> bool:
            return events is None or p.step_index == step

        dose = [p for p in dose_all if in_step(p)]
        if not dose:
            continue
        irr = [p for p in irr_all if in_step(p)]
        planned = _planned(ran["plan"])
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.plot(*xy(dose), label="dose J/cm2")
        if planned is not None:
            ax.axhline(planned, color="green", linestyle="--", label=f"planned {planned:g} J/cm2")
        session_time_axis(ax)
        ax.set_ylabel("J/cm2")
        ax2 = ax.twinx()
        ax2.plot(
            *xy(irr),
            color="red",
            alpha=0.4,
            label="irradiance mW/cm2",
        )
        ax2.set_ylabel("mW/cm2")
        where = "" if step is None else f" (step {step})"
        ax.set_title(f"LED dose over session time{where}")
        legend(ax, ax2, loc="center right")
        final = dose[-1].value or 0.0
        irr_values = [p.value for p in irr if p.value is not None]
        alt = (
            f"LED dose over session time{where}, with the measured irradiance: from "
            f"{mmss(dose[0].t_s)} to {mmss(dose[-1].t_s)} the dose rises to {final:.1f} J/cm2"
            + (f" of {planned:g} planned" if planned is not None else "")
            + (
                f"; irradiance up to {max(irr_values):.1f} mW/cm2."
                if irr_values
                else "; no irradiance recorded."
            )
        )
        figures.append(png(fig, alt))
    return figures
