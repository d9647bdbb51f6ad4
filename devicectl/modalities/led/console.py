"""The LED canopy on the technician console: its view, its panel, its trace.

The view is copied on the loop thread (:func:`view`); the panel is a pure
function of it (:func:`render`). Output state is the device's own report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text

from devicectl.modalities.led.controller import LEDController
from devicectl.panel_generic import fault_of
from devicectl.panel_style import header, mmss, num, output_badge, under_treatment, with_fault


@dataclass(frozen=True)
class LEDView:
    state: str
    output_on: bool | None
    irradiance_mw_cm2: float | None
    setpoint_mw_cm2: float | None
    elapsed_s: float
    remaining_s: float
    dose_j_cm2: float
    dose_max_j_cm2: float
    skin_c: float | None
    skin_warn_c: float  # the skin warning (an alarm)
    skin_max_c: float  # the skin limit: output off (the cut-off)
    fault: str | None


def view(led: LEDController) -> LEDView:
    r = led.reading
    plan = led.step_plan
    return LEDView(
        state=led.state.value,
        output_on=led.reported_energy(),
        irradiance_mw_cm2=r.irradiance_mw_cm2 if r is not None else None,
        setpoint_mw_cm2=plan.irradiance_mw_cm2 if plan is not None else None,
        elapsed_s=led.on_time_s,
        remaining_s=led.remaining_s,
        dose_j_cm2=led.dose_j_cm2,
        dose_max_j_cm2=led.limits.dose_max_j_cm2,
        skin_c=r.skin_temp_c if r is not None else None,
        skin_warn_c=led.limits.skin_warn_c,
        skin_max_c=led.limits.skin_max_c,
        fault=fault_of(led),
    )


def render(v: LEDView) -> Text:
    out = header("LED", v.state, output_badge(v.output_on))
    out.append(
        f"\nirradiance {num(v.irradiance_mw_cm2)} mW/cm² (set {num(v.setpoint_mw_cm2)})\n"
        f"elapsed {mmss(v.elapsed_s)}  remaining {mmss(v.remaining_s)}\n"
        f"dose {v.dose_j_cm2:.1f}/{v.dose_max_j_cm2:.0f} J/cm²  skin {num(v.skin_c)} °C"
    )
    return with_fault(out, v.fault)


def trace(led: LEDController) -> tuple[str, float | None]:
    """The skin under the canopy while an exposure is loaded or lit (None when idle)."""
    r = led.reading
    return "LED skin", r.skin_temp_c if r is not None and under_treatment(led.state.value) else None


def energy_summary(led: LEDController) -> str | None:
    """The exposure loaded: irradiance, the time and the dose still to give."""
    plan = led.step_plan
    if plan is None or not under_treatment(led.state.value):
        return None
    remaining_s = led.remaining_s
    left = replace(plan, duration_s=remaining_s) if remaining_s > 0 else None
    dose_left = left.dose_j_cm2 if left is not None else 0.0
    return (
        f"LED {plan.wavelength_nm} nm: {plan.irradiance_mw_cm2:.1f} mW/cm² for "
        f"{mmss(remaining_s)} (of {mmss(plan.duration_s)}), dose {dose_left:.1f} J/cm² "
        f"(given {led.dose_j_cm2:.1f})"
    )


def trace_lines(v: LEDView) -> tuple[tuple[str, float], ...]:
    """No skin target under a canopy: the skin warning and the skin limit."""
    return (("alarm", v.skin_warn_c), ("cut-off", v.skin_max_c))
