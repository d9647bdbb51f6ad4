"""The console's panels: each turns one part of a :class:`Snapshot` into text.

Rendering is a pure function of the view (``render_*``, and each device's
modality's ``render_panel``), so it is tested without a screen, and a panel
redraws only when its view changed. Output state is never colour alone (see
``style.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical
from textual.widget import Widget
from textual_plotext import PlotextPlot

from devicectl.console.alarms import PRIORITY_LABEL, PRIORITY_STYLE, AlarmEntry
from devicectl.console.bridge import TRACE_PERIOD_S, TRACE_POINTS, TracePoint
from devicectl.console.offers import key_of, offers_text
from devicectl.console.snapshot import SessionView, Snapshot
from devicectl.modality import Modality
from devicectl.panel_style import mmss, num, output_badge, state_badge

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


def render_session_line(snap: Snapshot | None) -> Text:
    """Which session this is and how long it has run: its id (the record's), the
    protocol, the operator and the elapsed session time (frozen at its end)."""
    session = snap.session if snap is not None else None
    if snap is None or session is None:
        return Text("no session", style="dim")
    elapsed = session.elapsed_s(snap.t_s)
    out = Text("session ", style="bold")
    out.append(session.session_id[:8] if session.session_id else "(not recorded)", style="bold")
    out.append(f"  {mmss(elapsed) if elapsed is not None else '--:--'}", style="bold")
    out.append(f"  {session.protocol}  operator {session.operator}")
    return out


def render_summary(s: SessionView | None) -> Text:
    """A finished session's outcome: each step's result, each site's dose, the record."""
    if s is None or not s.finished:
        return Text("")
    out = Text(f"SESSION {s.state.upper()}", style="bold")
    if s.session_id:
        out.append(f"  record {s.session_id}")
    else:
        out.append("  not recorded")
    out.append("\n")
    for step in s.steps:
        mark, style = OUTCOME_MARK.get(step.outcome, ("? ", ""))
        out.append(f"{mark}{step.index}. {step.title} [{step.kind}] {step.outcome}", style=style)
        lines = step.result.splitlines()
        if lines:
            out.append(": " + "; ".join(lines))
        out.append("\n")
    for site in s.sites:
        out.append(
            f"site {site.site}: {site.time_at_target_s:.0f} s at target, "
            f"peak {num(site.peak_c)} °C, CEM43 {site.cem43:.2f}, held {site.held_s:.0f} s"
            f" ({site.attempts} attempt{'s' if site.attempts != 1 else ''})\n"
        )
    out.rstrip()
    return out


def render_alarms(entries: list[AlarmEntry], limit: int = 8) -> Text:
    """One row an alarm: priority, time into the session (mm:ss), clock time, message.

    At most ``limit`` rows; when the list is longer, the newest alarm still has a
    row (the last one), after a "... n more" line, so a small screen always shows
    what just happened."""
    if not entries:
        return Text("no alarms", style="dim")
    rows, hidden, newest = _fit(entries, max(limit, 1))
    out = Text()
    for entry in rows:
        _alarm_row(out, entry)
    if hidden:
        out.append(f"... {hidden} more\n", style="dim")
    if newest is not None:
        _alarm_row(out, newest)
    out.rstrip()
    return out


def _fit(entries: list[AlarmEntry], limit: int) -> tuple[list[AlarmEntry], int, AlarmEntry | None]:
    """(rows, how many are left out, the newest when it comes after them) in ``limit`` rows."""
    if len(entries) <= limit:
        return entries, 0, None
    newest = max(entries, key=lambda e: e.t_s)
    if limit == 1:
        return [], 0, newest
    head = entries[: limit - 1]
    if newest in head:
        return head, len(entries) - len(head), None
    head = entries[: limit - 2]
    return head, len(entries) - len(head) - 1, newest


def _alarm_row(out: Text, entry: AlarmEntry) -> None:
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


class AlarmPanel(TextPanel):
    """The alarm list, cut to the rows its height holds (the newest always one)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self._rows, **kwargs)

    def _rows(self, entries: list[AlarmEntry]) -> Text:
        return render_alarms(entries, limit=max(self.content_size.height, 1))

    def on_resize(self) -> None:
        shown, self._shown = self._shown, object()
        if isinstance(shown, list):
            self.show(shown)


@dataclass(frozen=True)
class ChartView:
    """What the trace chart draws: the readings (seconds before the latest, degC)
    and the levels across it (label, degC)."""

    label: str
    t_s: tuple[float, ...]
    skin_c: tuple[float, ...]
    lines: tuple[tuple[str, float], ...]


TRACE_WINDOW_S = TRACE_POINTS * TRACE_PERIOD_S
FOCUS_BELOW_C = 4.0
LINE_COLOURS = {"target": "green", "alarm": "orange", "cut-off": "red"}


class TraceChart(PlotextPlot):
    """The skin temperature as a chart, with the device's levels drawn across it;
    re-plotted only when what it shows changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view: ChartView | None = None

    def show(self, view: ChartView) -> None:
        if view == self.view:
            return
        self.view = view
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for label, level in view.lines:
            plt.hline(level, LINE_COLOURS.get(label, "white"))
        if view.skin_c:
            plt.plot(list(view.t_s), list(view.skin_c), marker="braille", color="cyan")
        span = y_span(view)
        if span is not None:
            plt.ylim(*span)
        # the time axis is the last TRACE_WINDOW_S, said on the label line above
        plt.xlim(-TRACE_WINDOW_S, 0)
        plt.xticks([])
        self.refresh()

    def render(self) -> RenderResult:
        view, span = self.view, y_span(self.view)
        if view is not None and span is not None:
            lo, hi = span
            wanted = sorted((v for _, v in view.lines), reverse=True)
            shown = [v for v in view.skin_c if v >= lo]
            wanted += [round(min(shown), 1)] if shown else []
            self.plt.yticks(y_ticks(wanted, lo, hi, rows=self.size.height - 2))
        return super().render()


def y_span(view: ChartView | None) -> tuple[float, float] | None:
    """The chart's temperature range: the readings and the levels, but no more than
    ``FOCUS_BELOW_C`` under the lowest level (the start of a ramp from skin
    temperature is cut), so the levels keep rows of their own; the latest reading
    is always inside."""
    if view is None:
        return None
    levels = [v for _, v in view.lines]
    values = levels + list(view.skin_c)
    if not values:
        return None
    lo, hi = min(values) - 0.5, max(values) + 0.5
    if levels:
        lo = max(lo, min(levels) - FOCUS_BELOW_C)
        if view.skin_c:
            lo = min(lo, view.skin_c[-1] - 0.5)
    return lo, hi


def y_ticks(wanted: list[float], lo: float, hi: float, rows: int) -> list[float]:
    """The ticks of ``wanted`` (first = most wanted) that each get a row of their own
    in ``rows`` rows spanning ``lo`` to ``hi``, in order: two labels on one row would
    leave the choice of which one shows to the plotting library."""
    taken: set[int] = set()
    kept: list[float] = []
    for tick in wanted:
        row = round((tick - lo) / (hi - lo) * (max(rows, 1) - 1)) if hi > lo else 0
        if row not in taken:
            taken.add(row)
            kept.append(tick)
    return sorted(kept)


def trace_series(
    trace: list[TracePoint],
) -> tuple[str, str | None, list[tuple[float, float]]]:
    """The channel the trace shows: (label, device, [(t_s, degC)]), the one measured
    most recently (a device under treatment reports its skin; an idle one reports
    nothing), so the LED step shows the LED's skin, not the RF sensors' of an earlier
    step; between equals the first channel (registry order). ("", None, []) when no
    channel has readings in the window."""
    series: dict[tuple[str, str | None], list[tuple[float, float]]] = {}
    latest: dict[tuple[str, str | None], int] = {}
    for n, point in enumerate(trace):
        for i, (what, value) in enumerate(point.skin_c):
            device = point.devices[i] if i < len(point.devices) else None
            values = series.setdefault((what, device), [])
            if value is not None:
                values.append((point.t_s, value))
                latest[(what, device)] = n
    if not latest:
        return "", None, []
    newest = max(series, key=lambda key: latest.get(key, -1))
    return newest[0], newest[1], series[newest]


class TracePanel(Vertical):
    """The live skin-temperature chart: the first device, in registry order, whose
    modality offers one (``Modality.console_trace``) and has readings in the window,
    with that device's levels (``Modality.console_trace_lines``)."""

    def __init__(self, panels: Mapping[str, Modality], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._panels = dict(panels)

    def compose(self) -> ComposeResult:
        yield TextPanel(Text, id="trace-label")
        yield TraceChart(id="trace-chart")

    def show(self, trace: list[TracePoint], snap: Snapshot | None) -> None:
        what, device, points = trace_series(trace)
        lines: tuple[tuple[str, float], ...] = ()
        mod = self._panels.get(device) if device is not None else None
        view = snap.device(device) if snap is not None and device is not None else None
        if mod is not None and view is not None:
            lines = mod.console_trace_lines(view)
        label = self.query_one("#trace-label", TextPanel)
        levels = " ".join(f"{name} {level:.1f}" for name, level in lines)
        if points:
            values = [v for _, v in points]
            label.show(
                f"{what} {values[-1]:.1f} °C ({min(values):.1f}-{max(values):.1f} "
                f"in {mmss(points[-1][0] - points[0][0])})" + (f" │ {levels}" if levels else "")
            )
        else:
            label.show("temperature trace: no reading yet")
        last = points[-1][0] if points else 0.0
        self.query_one("#trace-chart", TraceChart).show(
            ChartView(
                what,
                tuple(round(t - last, 3) for t, _ in points),
                tuple(v for _, v in points),
                lines,
            )
        )


def render_device_strip(view: tuple[tuple[str, Modality, Any], ...]) -> Text:
    """Every device on one line each: the first line of its panel (name, state, output)."""
    out = Text()
    for name, mod, device_view in view:
        first = device_renderer(name, mod)(device_view)
        text = first if isinstance(first, Text) else Text(str(first))
        out.append_text(text.split("\n")[0] if text.plain else text)
        out.append("\n")
    out.rstrip()
    return out
