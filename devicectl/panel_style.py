"""How the console draws a state, an output and a number: shared by every panel.

Pure functions of values to rich ``Text``, with no Textual import, so a
modality's own panel (``devicectl/modalities/<name>/console.py``) draws its
header, badges and fault line exactly as the others do. Output state is never
colour alone: "OUTPUT ON" is a red block with the words in it, "off" is dim
green with the word "off"; no reading is a yellow "NO READING".
"""

from __future__ import annotations

from rich.text import Text

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


def num(value: float | None, fmt: str = "{:.1f}") -> str:
    """``value`` formatted, or "--" for no value (None or NaN)."""
    if value is None or value != value:  # None or NaN
        return "--"
    return fmt.format(value)


def under_treatment(state: str) -> bool:
    """A device with a plan loaded or under way: its sensors read a treated site
    (an idle or finished handpiece's read the room)."""
    return state not in ("idle", "complete")


def mmss(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def output_badge(on: bool | None, what: str = "OUTPUT") -> Text:
    if on is None:
        return Text(" ? NO READING ", style=UNKNOWN_STYLE)
    if on:
        return Text(f" ■ {what} ON ", style=ON_STYLE)
    return Text(f"○ {what.lower()} off", style=OFF_STYLE)


def state_badge(state: str, energised: bool = False) -> Text:
    """The state in capitals; red for an energy state (a third party's own too)."""
    style = STATE_STYLE["delivering"] if energised else STATE_STYLE.get(state, "bold")
    return Text(f" {state.upper()} ", style=style)


def header(title: str, state: str, badge: Text, *, energised: bool = False) -> Text:
    """A device panel's first line: its name, its state (``energised``: shown as an
    energy state whatever its name) and its output badge."""
    line = Text(f"{title}  ", style="bold")
    line.append_text(state_badge(state, energised))
    line.append("  ")
    line.append_text(badge)
    return line


def with_fault(out: Text, fault: str | None) -> Text:
    """``out`` with the device's fault, if any, on a last red line."""
    if fault:
        out.append(f"\n{fault}", style="bold red")
    return out
