"""The console's panels: each turns one part of a :class:`Snapshot` into text.

Rendering is a pure function of the view (``render_*``, and each device's
modality's ``render_panel``), so it is tested without a screen, and a panel
redraws only when its view changed. Output state is never colour alone (see
``style.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Sparkline

from devicectl.console.alarms import PRIORITY_LABEL, PRIORITY_STYLE, AlarmEntry
from devicectl.console.bridge import TRACE_PERIOD_S, TracePoint
from devicectl.console.snapshot import SessionView
from devicectl.modality import Modality
from devicectl.panel_style import output_badge, state_badge

__all__ = [
    "KEY_FOR",
    "TextPanel",
    "TracePanel",
    "device_renderer",
    "output_badge",
    "render_alarms",
    "render_prompt",
    "render_steps",
]

OUTCOME_MARK = {
    "pending": ("  ", "dim"),
    "running": ("▶ ", "bold reverse"),
    "complete": ("✓ ", "green"),
    "fault": ("✗ ", "bold red"),
    "aborted": ("- ", "yellow"),
}
KEY_FOR = {"confirm": "C", "arm": "A", "start": "S", "next_zone": "N"}


def device_renderer(name: str, mod: Modality) -> Callable[[Any], RenderableType]:
    """The panel of device ``name``: its modality's ``render_panel`` of its view (a
    list of lines is shown one a line), or a dim line when the station has no such
    device (the protocol does not use it)."""

    def render(view: Any) -> RenderableType:
        if view is None:
            return Text(f"{name.upper()}: not used by this protocol", style="dim")
        shown = mod.render_panel(view)
        if isinstance(shown, list | tuple):
            return Text("\n".join(str(line) for line in shown))
        return cast(RenderableType, shown)

    return render


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
    """The line that says what the console is waiting for, and which key answers;
    under it, a manual step's instructions."""
    if s is None:
        return Text("Sign in to start.", style="bold")
    out = Text("SESSION ")
    out.append_text(state_badge(s.state))
    if s.state == "waiting_confirm" and s.prompt:
        key = KEY_FOR.get(s.awaiting or "", "?")
        out.append(f"  {s.prompt}  ", style="bold")
        out.append(f" press {key} ", style="bold black on bright_white")
        if s.instructions:  # a manual step: what to do before confirming
            out.append("\n" + " ".join(s.instructions.split()))
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
    """One row an alarm: priority, time into the session (mm:ss), clock time, message."""
    if not entries:
        return Text("no alarms", style="dim")
    out = Text()
    for entry in entries[:limit]:
        a = entry.alarm
        acked = entry.acknowledged_by is not None
        label = PRIORITY_LABEL[a.priority]
        out.append(f" {label} ", style="dim" if acked else PRIORITY_STYLE[a.priority])
        count = f" x{entry.count}" if entry.count > 1 else ""
        when = f" {entry.session_time} {entry.clock_time} "
        out.append(f"{when}{a.message}{count}", style="dim" if acked else "")
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

    def __init__(self, render: Callable[[Any], RenderableType], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._render_fn = render
        self._shown: object = object()
        self._text: RenderableType = Text()

    def render(self) -> RenderableType:
        return self._text

    def show(self, view: object) -> None:
        if view != self._shown:
            self._shown = view
            self._text = self._render_fn(view)
            self.refresh()


class TracePanel(Vertical):
    """The live skin-temperature trace: the first device, in registry order, whose
    modality offers one (``Modality.console_trace``) and has readings in the window."""

    def compose(self) -> ComposeResult:
        yield TextPanel(Text, id="trace-label")
        yield Sparkline([], id="trace-line")

    def show(self, trace: list[TracePoint]) -> None:
        series: dict[str, list[float]] = {}
        for point in trace:
            for what, value in point.skin_c:
                values = series.setdefault(what, [])
                if value is not None:
                    values.append(value)
        what, values = next(((w, v) for w, v in series.items() if v), ("", []))
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
