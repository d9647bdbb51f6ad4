"""The console's screens: sign-in, the main session screen, and two dialogs.

Every screen carries the EMERGENCY STOP button, and the app binds its key
(Escape) with priority, so it acts from every screen and dialog (see app.py).
Keys are single letters a gloved hand can find; every key also has a button
(for a tablet). Session times are the loop's clock, so a simulated session
and its snapshots are reproducible; the one wall-clock time shown is when each
alarm was received (the app's ``wall_clock``, fixed in the snapshot tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Static

from devicectl.console.alarms import AlarmEntry
from devicectl.console.bridge import TracePoint
from devicectl.console.keys import KeyAction
from devicectl.console.panels import (
    AlarmPanel,
    TextPanel,
    TracePanel,
    device_renderer,
    render_device_strip,
    render_prompt,
    render_session_line,
    render_steps,
    render_summary,
)
from devicectl.console.snapshot import Snapshot
from devicectl.modality import Modality
from devicectl.panel_style import mmss

ESTOP_LABEL = "EMERGENCY STOP  (Esc)"
# The grid of the steps and the device panels: two columns, the steps' row taller.
GRID_COLUMNS = 2
FIRST_ROW = 11
DEVICE_ROW = 8
# Below these the main screen is laid out for a small terminal (see MainScreen).
SHORT_ROWS = 44
NARROW_COLUMNS = 110


def estop_button() -> Button:
    return Button(ESTOP_LABEL, id="estop", classes="estop", variant="error")


class SignInScreen(Screen[tuple[str, str]]):
    """Nothing happens before an operator id is given; Enter signs in.

    On a station (``needs_pin``) the PIN is asked too: Enter in the id field
    moves to the PIN, Enter there signs in. Dismissed with (operator id, PIN);
    the PIN is "" when none is asked.
    """

    def __init__(
        self, operator: str | None, mode: str, needs_pin: bool = False, error: str = ""
    ) -> None:
        super().__init__()
        self._prefill = operator or ""
        self._mode = mode
        self._needs_pin = needs_pin
        self._error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="signin-box"):
            yield estop_button()
            yield Static("devicectl technician console", id="signin-title")
            yield Static(f"devices: {self._mode}", id="signin-mode")
            yield Static("Operator id (recorded with every action):")
            yield Input(value=self._prefill, placeholder="e.g. tech-042", id="operator")
            if self._needs_pin:
                yield Static("PIN:")
                yield Input(password=True, placeholder="PIN", id="pin")
            yield Button("Sign in (Enter)", id="signin", variant="primary")
            yield Static(self._error, id="signin-error")

    def on_mount(self) -> None:
        if self._needs_pin and self._prefill:
            self.query_one("#pin", Input).focus()
        else:
            self.query_one("#operator", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._needs_pin and event.input.id == "operator":
            self.query_one("#pin", Input).focus()
            return
        # What was in the field when Enter was pressed: a key typed after it (already
        # in the field when this message is handled) is not part of this answer.
        self._submit({event.input.id or "": event.value})

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "signin":
            self._submit()

    def _submit(self, submitted: dict[str, str] | None = None) -> None:
        typed = submitted or {}
        operator = typed.get("operator", self.query_one("#operator", Input).value).strip()
        if not operator:
            self.query_one("#signin-error", Static).update("An operator id is needed.")
            return
        pin = typed.get("pin", self.query_one("#pin", Input).value) if self._needs_pin else ""
        if self._needs_pin and not pin:
            self.query_one("#signin-error", Static).update("The PIN is needed.")
            self.query_one("#pin", Input).focus()
            return
        self.dismiss((operator, pin))


class MainScreen(Screen[None]):
    """The session at a glance: steps, devices, trace, alarms, what to do next.

    One panel per registered modality (``panels``: name -> modality, registry
    order), each drawn by its modality; the keys and buttons are ``keys``, the
    session's and the devices' own.

    The layout follows the terminal (``app.py``'s CSS): below ``SHORT_ROWS`` rows
    (``-short``) the steps and the device panels give way to one line per device
    (its state and output) and the chart gets fewer rows, so the state of every
    device, the newest alarm and the E-stop stay on screen down to 80x24; below
    ``NARROW_COLUMNS`` (``-narrow``) the buttons go in rows. Once the session is
    over (``-finished``) its summary takes the chart's place.
    """

    # Textual types these as instance variables (mypy refuses a ClassVar here).
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-narrow"),
        (NARROW_COLUMNS, "-wide"),
    ]
    VERTICAL_BREAKPOINTS = [  # noqa: RUF012
        (0, "-short"),
        (SHORT_ROWS, "-tall"),
    ]

    def __init__(self, panels: Mapping[str, Modality], keys: list[KeyAction]) -> None:
        super().__init__()
        self._panels = dict(panels)
        self._keys = list(keys)
        for k in self._keys:
            self._bindings.bind(k.key, k.action, k.label)
        self._button_action = {k.button_id: k.action for k in self._keys}

    def compose(self) -> ComposeResult:
        with Horizontal(id="top-bar"):
            yield TextPanel(render_prompt, id="prompt")
            yield estop_button()
        yield TextPanel(render_session_line, id="session-line")
        strip = TextPanel(render_device_strip, id="device-strip")
        strip.styles.height = len(self._panels)
        yield strip
        rows = -(-(1 + len(self._panels)) // GRID_COLUMNS)
        grid = Grid(id="main-grid")
        grid.styles.grid_size_rows = rows
        grid.styles.grid_rows = " ".join([str(FIRST_ROW)] + [str(DEVICE_ROW)] * (rows - 1))
        grid.styles.height = FIRST_ROW + DEVICE_ROW * (rows - 1)
        with grid:
            yield TextPanel(render_steps, id="steps", classes="box")
            for i, (name, mod) in enumerate(self._panels.items()):
                yield TextPanel(device_renderer(name, mod), id=f"device-{i}", classes="box")
        yield TextPanel(render_summary, id="summary", classes="box")
        yield TracePanel(self._panels, id="trace", classes="box")
        yield AlarmPanel(id="alarms", classes="box")
        yield TextPanel(Text, id="status")
        with Horizontal(id="actions"):
            for k in self._keys:
                yield Button(k.label, id=k.button_id, classes="action")

    def show(
        self, snap: Snapshot | None, alarms: list[AlarmEntry], trace: list[TracePoint]
    ) -> None:
        """Show the latest snapshot; a screen not (or no longer) composed shows nothing."""
        try:
            if snap is not None:
                session = snap.session
                self.query_one("#prompt", TextPanel).show(session)
                self.query_one("#session-line", TextPanel).show(snap)
                self.query_one("#steps", TextPanel).show(session)
                self.query_one("#summary", TextPanel).show(session)
                strip = tuple((n, m, snap.device(n)) for n, m in self._panels.items())
                self.query_one("#device-strip", TextPanel).show(strip)
                for i, name in enumerate(self._panels):
                    self.query_one(f"#device-{i}", TextPanel).show(snap.device(name))
                finished = session is not None and session.finished
                if finished != self.has_class("-finished"):
                    self.set_class(finished, "-finished")
                    self.query_one("#summary", TextPanel).refresh(layout=True)
            self.query_one("#alarms", AlarmPanel).show(alarms)
            self.query_one("#trace", TracePanel).show(trace, snap)
        except NoMatches:
            return

    def show_silence(self, left_s: float) -> None:
        """The alarm box's title says when the sound is paused, and for how long yet."""
        try:
            alarms = self.query_one("#alarms", AlarmPanel)
        except NoMatches:
            return
        title = f"ALARMS - sound silenced {mmss(left_s)} (M)" if left_s > 0 else "alarms"
        if alarms.border_title != title:
            alarms.border_title = title

    def say(self, text: str) -> None:
        try:
            self.query_one("#status", TextPanel).show(text)
        except NoMatches:
            return

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        action = self._button_action.get(event.button.id or "")
        if action is not None:
            event.stop()
            await self.run_action(action)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question (Y / N) in a band across the top of the screen, so the alarm
    list below stays in sight while it is asked. Escape is still the E-stop."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
    ]
    QUESTION = ""
    YES = "Yes (Y)"
    NO = "Back (N)"

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            with Horizontal(id="confirm-row"):
                yield Static(f"{self.QUESTION}\nY = yes    N = back", id="dialog-text")
                yield estop_button()
            with Horizontal(id="confirm-buttons"):
                yield Button(self.YES, id="yes", variant="warning")
                yield Button(self.NO, id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("yes", "no"):
            event.stop()
            self.dismiss(event.button.id == "yes")


class ConfirmAbortScreen(ConfirmScreen):
    """Abort ends the session: asked once more."""

    QUESTION = "Abort the session? Every device goes to its safe state and the session ends."
    YES = "Abort session (Y)"


class ConfirmQuitScreen(ConfirmScreen):
    """ctrl+q while a session is under way: asked once more, as it ends the session."""

    QUESTION = (
        "A session is under way. Quit? The session is aborted first: every device "
        "goes to its safe state."
    )
    YES = "Abort and quit (Y)"


class HelpScreen(ModalScreen[None]):
    """The keys, one per line; H or Q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def __init__(self, keys: list[KeyAction]) -> None:
        super().__init__()
        self._keys = list(keys)

    def compose(self) -> ComposeResult:
        lines = ["Esc     EMERGENCY STOP: every device to its safe state, from any screen"]
        lines += [f"{k.key.upper()}       {k.label.split(' (')[0]}" for k in self._keys]
        lines += [
            "H / F1  this help",
            "ctrl+q  quit (asked first while a session is under way, which is then aborted)",
        ]
        with Vertical(id="dialog"):
            yield estop_button()
            yield Static("\n".join(lines), id="dialog-text")
            yield Button("Close (H)", id="close")

    def action_close(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "close":
            event.stop()
            self.dismiss(None)
