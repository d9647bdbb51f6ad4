"""The console's panels: each turns one part of a :class:`Snapshot` into text.

Rendering is a pure function of the view (``render_*``), so it is tested
without a screen, and a panel redraws only when its view changed. Output state
is never colour alone: "OUTPUT ON" is a red block with the words in it, "off"
is dim green with the word "off"; no reading is a yellow "NO READING".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Sparkline

from devicectl.console.alarms import PRIORITY_LABEL, PRIORITY_STYLE, AlarmEntry
from devicectl.console.bridge import TRACE_PERIOD_S, TracePoint
from devicectl.console.snapshot import IPLView, LEDView, RFView, SessionView

ON_STYLE = "bold white on red"
OFF_STYLE = "green"
UNKNOWN_STYLE = "bold black on yellow"
STATE_STYLE = {
    "delivering": "bold white on red",
    "firing": "bold white on red",
    "armed": "bold black on dark_orange",
    "charging": "bold black on dark_orange",
    "fault": "bold white on red",
    "estop": "bold white on red",
    "paused": "bold black on yellow",
    "complete": "bold green",
}
OUTCOME_MARK = {
    "pending": ("  ", "dim"),
    "running": ("▶ ", "bold reverse"),
    "complete": ("✓ ", "green"),
    "fault": ("✗ ", "bold red"),
    "aborted": ("- ", "yellow"),
}
KEY_FOR = {"confirm": "C", "arm": "A", "start": "S", "next_zone": "N"}


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    if value is None or value != value:  # None or NaN
        return "--"
    return fmt.format(value)


def output_badge(on: bool | None, what: str = "OUTPUT") -> Text:
    if on is None:
        return Text(" ? NO READING ", style=UNKNOWN_STYLE)
    if on:
        return Text(f" ■ {what} ON ", style=ON_STYLE)
    return Text(f"○ {what.lower()} off", style=OFF_STYLE)


def state_badge(state: str) -> Text:
    return Text(f" {state.upper()} ", style=STATE_STYLE.get(state, "bold"))


def _header(title: str, state: str, badge: Text) -> Text:
    line = Text(f"{title}  ", style="bold")
    line.append_text(state_badge(state))
    line.append("  ")
    line.append_text(badge)
    return line


def _with_fault(out: Text, fault: str | None) -> Text:
    if fault:
        out.append(f"\n{fault}", style="bold red")
    return out


def render_rf(v: RFView | None) -> Text:
    if v is None:
        return Text("RF: not used by this protocol", style="dim")
    out = _header("RF", v.state, output_badge(v.output_on))
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
        out.append(f"{_num(value)} °C", style=style)
        out.append("   ")
    out.append(
        f"\ntarget {v.target_c:.1f}  alarm {v.alarm_c:.1f}  cut-off {v.cutoff_c:.1f} °C\n"
        f"held {v.held_s:.0f}/{v.hold_s:.0f} s   CEM43 {v.cem43:.2f}/{v.cem43_max:.1f}"
    )
    return _with_fault(out, v.fault)


def render_ipl(v: IPLView | None) -> Text:
    if v is None:
        return Text("IPL: not used by this protocol", style="dim")
    out = _header("IPL", v.state, output_badge(v.energy, "ENERGY"))
    out.append(
        f"\ncharge {_num(v.charge_pct, '{:.0f}')} %  "
        f"crystal {_num(v.crystal_c)} °C (arm ≤ {v.crystal_max_c:.0f})\n"
        f"flashes {v.flashes_done}/{v.flashes_planned}  shots {_num(v.shots, '{:.0f}')}\n"
        f"last delivered {_num(v.last_fluence_j_cm2)} J/cm²  set {_num(v.set_fluence_j_cm2)}"
    )
    return _with_fault(out, v.fault)


def _mmss(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def render_led(v: LEDView | None) -> Text:
    if v is None:
        return Text("LED: not used by this protocol", style="dim")
    out = _header("LED", v.state, output_badge(v.output_on))
    out.append(
        f"\nirradiance {_num(v.irradiance_mw_cm2)} mW/cm² (set {_num(v.setpoint_mw_cm2)})\n"
        f"elapsed {_mmss(v.elapsed_s)}  remaining {_mmss(v.remaining_s)}\n"
        f"dose {v.dose_j_cm2:.1f}/{v.dose_max_j_cm2:.0f} J/cm²  skin {_num(v.skin_c)} °C"
    )
    return _with_fault(out, v.fault)


def render_steps(s: SessionView | None) -> Text:
    if s is None:
        return Text("no session: sign in first", style="dim")
    out = Text(f"{s.protocol}  operator {s.operator}\n", style="bold")
    for step in s.steps:
        mark, style = OUTCOME_MARK.get(step.outcome, ("? ", ""))
        line_style = "bold reverse" if step.index == s.current else style
        out.append(f"{mark}{step.index}. {step.title} [{step.kind}]", style=line_style)
        if step.outcome not in ("pending", "running"):
            out.append(f"  {step.outcome}", style=style)
        out.append("\n")
    return out


def render_prompt(s: SessionView | None) -> Text:
    """The one line that says what the console is waiting for, and which key answers."""
    if s is None:
        return Text("Sign in to start.", style="bold")
    out = Text("SESSION ")
    out.append_text(state_badge(s.state))
    if s.state == "waiting_confirm" and s.prompt:
        key = KEY_FOR.get(s.awaiting or "", "?")
        out.append(f"  {s.prompt}  ", style="bold")
        out.append(f" press {key} ", style="bold black on bright_white")
    elif s.state == "faulted":
        out.append(f"  {s.fault or 'device fault'}  ", style="bold red")
        out.append(" K acknowledge, then R resume or E end ", style="bold black on bright_white")
    elif s.state == "paused":
        out.append("  ")
        out.append(" R resume ", style="bold black on bright_white")
    elif s.state in ("complete", "aborted", "ended"):
        out.append("  session over; ctrl+q to quit", style="bold")
    return out


def render_alarms(entries: list[AlarmEntry], limit: int = 8) -> Text:
    if not entries:
        return Text("no alarms", style="dim")
    out = Text()
    for entry in entries[:limit]:
        a = entry.alarm
        acked = entry.acknowledged_by is not None
        label = PRIORITY_LABEL[a.priority]
        out.append(f" {label} ", style="dim" if acked else PRIORITY_STYLE[a.priority])
        count = f" x{entry.count}" if entry.count > 1 else ""
        out.append(f" t+{entry.t_s:.1f}s {a.message}{count}", style="dim" if acked else "")
        if acked:
            out.append(f"  (ack {entry.acknowledged_by})", style="dim")
        out.append("\n")
    if len(entries) > limit:
        out.append(f"... {len(entries) - limit} more", style="dim")
    return out


class TextPanel(Widget):
    """Text that redraws only when the thing it shows changed.

    Not a ``Static``: its ``update`` also recomputes the screen's layout, which
    at 10 updates a second costs more than everything else the console does.
    Panels have fixed sizes, so a repaint is enough.
    """

    def __init__(self, render: Callable[[Any], Text], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._render_fn = render
        self._shown: object = object()
        self._text = Text()

    def render(self) -> Text:
        return self._text

    def show(self, view: object) -> None:
        if view != self._shown:
            self._shown = view
            self._text = self._render_fn(view)
            self.refresh()


class TracePanel(Vertical):
    """The live skin-temperature trace (the hotter RF sensor; LED skin when no RF)."""

    def compose(self) -> ComposeResult:
        yield TextPanel(Text, id="trace-label")
        yield Sparkline([], id="trace-line")

    def show(self, trace: list[TracePoint]) -> None:
        rf = [p.rf_skin_c for p in trace if p.rf_skin_c is not None]
        led = [p.led_skin_c for p in trace if p.led_skin_c is not None]
        values, what = (rf, "RF skin") if rf else (led, "LED skin")
        label = self.query_one("#trace-label", TextPanel)
        if values:
            label.show(
                f"{what} °C, last {len(values) * TRACE_PERIOD_S:.0f} s: now {values[-1]:.1f}  "
                f"min {min(values):.1f}  max {max(values):.1f}"
            )
        else:
            label.show("temperature trace: no reading yet")
        line = self.query_one("#trace-line", Sparkline)
        if values != line.data:
            line.data = values
