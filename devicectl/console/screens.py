"""The console's screens: sign-in, the main session screen, and two dialogs.

Every screen carries the EMERGENCY STOP button, and the app binds its key
(Escape) with priority, so it acts from every screen and dialog (see app.py).
Keys are single letters a gloved hand can find; every key also has a button
(for a tablet). No screen shows wall-clock time: the session clock is the
loop's, so a simulated session and its snapshots are reproducible.
"""

from __future__ import annotations

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
from devicectl.console.panels import (
    TextPanel,
    TracePanel,
    render_alarms,
    render_ipl,
    render_led,
    render_prompt,
    render_rf,
    render_steps,
)
from devicectl.console.snapshot import Snapshot

ESTOP_LABEL = "EMERGENCY STOP  (Esc)"

# (key, action, button label); the action names are ConsoleApp's action_* methods.
ACTIONS = [
    ("c", "confirm", "Confirm (C)"),
    ("a", "arm", "Arm (A)"),
    ("s", "start", "Start (S)"),
    ("f", "flash", "Flash (F)"),
    ("n", "next_zone", "Next zone (N)"),
    ("p", "pause", "Pause (P)"),
    ("r", "resume", "Resume (R)"),
    ("k", "acknowledge", "Acknowledge (K)"),
    ("x", "abort", "Abort (X)"),
    ("e", "end", "End (E)"),
]


def estop_button() -> Button:
    return Button(ESTOP_LABEL, id="estop", classes="estop", variant="error")


class SignInScreen(Screen[str]):
    """Nothing happens before an operator id is given; Enter signs in."""

    def __init__(self, operator: str | None, mode: str) -> None:
        super().__init__()
        self._prefill = operator or ""
        self._mode = mode

    def compose(self) -> ComposeResult:
        with Vertical(id="signin-box"):
            yield estop_button()
            yield Static("devicectl technician console", id="signin-title")
            yield Static(f"devices: {self._mode}", id="signin-mode")
            yield Static("Operator id (recorded with every action):")
            yield Input(value=self._prefill, placeholder="e.g. tech-042", id="operator")
            yield Button("Sign in (Enter)", id="signin", variant="primary")
            yield Static("", id="signin-error")

    def on_mount(self) -> None:
        self.query_one("#operator", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "signin":
            self._submit()

    def _submit(self) -> None:
        operator = self.query_one("#operator", Input).value.strip()
        if not operator:
            self.query_one("#signin-error", Static).update("An operator id is needed.")
            return
        self.dismiss(operator)


class MainScreen(Screen[None]):
    """The session at a glance: steps, devices, trace, alarms, what to do next."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(key, f"app.{action}", label) for key, action, label in ACTIONS
    ]

    def compose(self) -> ComposeResult:
        with Horizontal(id="top-bar"):
            yield TextPanel(render_prompt, id="prompt")
            yield estop_button()
        with Grid(id="main-grid"):
            yield TextPanel(render_steps, id="steps", classes="box")
            yield TextPanel(render_rf, id="rf", classes="box")
            yield TextPanel(render_ipl, id="ipl", classes="box")
            yield TextPanel(render_led, id="led", classes="box")
        yield TracePanel(id="trace", classes="box")
        yield TextPanel(render_alarms, id="alarms", classes="box")
        yield TextPanel(Text, id="status")
        with Horizontal(id="actions"):
            for _key, action, label in ACTIONS:
                yield Button(label, id=f"do-{action}", classes="action")

    def show(
        self, snap: Snapshot | None, alarms: list[AlarmEntry], trace: list[TracePoint]
    ) -> None:
        """Show the latest snapshot; a screen not (or no longer) composed shows nothing."""
        try:
            if snap is not None:
                self.query_one("#prompt", TextPanel).show(snap.session)
                self.query_one("#steps", TextPanel).show(snap.session)
                self.query_one("#rf", TextPanel).show(snap.rf)
                self.query_one("#ipl", TextPanel).show(snap.ipl)
                self.query_one("#led", TextPanel).show(snap.led)
            self.query_one("#alarms", TextPanel).show(alarms)
            self.query_one("#trace", TracePanel).show(trace)
        except NoMatches:
            return

    def say(self, text: str) -> None:
        try:
            self.query_one("#status", TextPanel).show(text)
        except NoMatches:
            return

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        if button_id.startswith("do-"):
            event.stop()
            await self.run_action(f"app.{button_id.removeprefix('do-')}")


class ConfirmAbortScreen(ModalScreen[bool]):
    """Abort ends the session: asked once more (Y / N). Escape is still the E-stop."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Abort"),
        Binding("n", "answer(False)", "Back"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield estop_button()
            yield Static(
                "Abort the session? Every device goes to its safe state and the "
                "session ends.\n\nY = abort    N = back",
                id="dialog-text",
            )
            with Horizontal():
                yield Button("Abort session (Y)", id="yes", variant="warning")
                yield Button("Back (N)", id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id in ("yes", "no"):
            event.stop()
            self.dismiss(event.button.id == "yes")


class HelpScreen(ModalScreen[None]):
    """The keys, one per line; H or Q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "close", "Close"),
        Binding("q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        lines = ["Esc     EMERGENCY STOP: every device to its safe state, from any screen"]
        lines += [f"{key.upper()}       {label.split(' (')[0]}" for key, _a, label in ACTIONS]
        lines += ["H / F1  this help", "ctrl+q  quit (a running session is aborted first)"]
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
