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
from devicectl.console.offers import key_of, offers_text
from devicectl.console.snapshot import SessionView
from devicectl.modality import Modality
from devicectl.panel_style import output_badge, state_badge

__all__ = [
    "KEY_FOR",
    "TextPanel",
    "TracePanel",
    "current_series",
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
KEY_STYLE = "bold black on bright_white"
FAULT_CHARS = 48  # a fault on the prompt line; the alarm list has the whole message


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


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def render_prompt(s: SessionView | None) -> Text:
    """What the console is waiting for and the key that answers it; what that key
    puts on (the step's energy summary); every other key that would be taken now
    (``offers``: never a dead end); under them, a manual step's instructions."""
    if s is None:
        return Text("Sign in to start.", style="bold")
    out = Text("SESSION ")
    out.append_text(state_badge(s.state))
    answer: str | None = None  # the offer the first line already shows
    if s.state == "waiting_confirm" and s.prompt:
        key = KEY_FOR.get(s.awaiting or "", "?")
        answer = s.awaiting
        out.append(f"  {s.prompt}  ", style="bold")
        out.append(f" press {key} ", style=KEY_STYLE)
    elif s.state == "faulted":
        # The whole message is in the alarm list; here it must leave room for the keys.
        out.append(f"  {shorten(s.fault or 'device fault', FAULT_CHARS)}  ", style="bold red")
        # The way on: acknowledge the fault, then resume (or end).
        answer = next((a for a in ("acknowledge", "resume") if a in s.offers), None)
        way_on = key_of(answer) if answer is not None else None
        if way_on is not None:
            out.append(f" press {way_on[0]} to {way_on[1]} ", style=KEY_STYLE)
    elif s.state == "paused" or (s.paused and "resume" in s.offers):
        answer = "resume"
        what = "session paused" if s.state == "paused" else f"{', '.join(s.paused)} paused"
        out.append(f"  {what}  ", style="bold")
        out.append(" press R to resume ", style=KEY_STYLE)
    elif s.state in ("complete", "aborted", "ended"):
        out.append("  session over; ctrl+q to quit", style="bold")
    if s.energy:
        out.append("\n" + "; ".join(s.energy.splitlines()), style="bold")
    if s.offers:
        out.append("\n" + offers_text(s.offers, skip=(answer,) if answer else ()))
    if s.instructions and s.state == "waiting_confirm":  # a manual step: what to do first
        out.append("\n" + " ".join(s.instructions.split()))
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


def current_series(trace: list[TracePoint]) -> tuple[str, list[float]]:
    """The channel to show and its values: the one measured most recently (a device
    under treatment reports its skin; an idle one reports nothing), so the LED
    step shows the LED's skin, not the RF sensors' of an earlier step."""
    series: dict[str, list[float]] = {}
    latest: dict[str, int] = {}
    for i, point in enumerate(trace):
        for what, value in point.skin_c:
            values = series.setdefault(what, [])
            if value is not None:
                values.append(value)
                latest[what] = i
    if not latest:
        return "", []
    # the newest reading wins; between equals, the first channel (registry order)
    what = max(series, key=lambda w: latest.get(w, -1))
    return what, series[what]


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
        what, values = current_series(trace)
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
