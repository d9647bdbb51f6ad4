"""Asked before energy goes back on: what a resume will deliver, confirmed with C.

A prompt that arms or starts a device already shows what will be delivered (the
session's ``energy``) and is answered by its key. A resume has no prompt: a
paused LED would light again at once, an IPL whose charge was dumped would
charge again. So the console asks first, with the same summary, and the same
confirm key as every other confirmation (C); N goes back. Escape is still the
emergency stop (the app's priority binding).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from devicectl.console.screens import ConfirmScreen, estop_button

CONFIRM_KEY = "c"  # the console's one confirm key (keys.py: Confirm (C))


class ConfirmEnergyScreen(ConfirmScreen, inherit_bindings=False):
    """``what`` energy goes on if confirmed; dismissed with True (C) or False (N).

    The answer and its buttons are :class:`ConfirmScreen`'s; its keys are C and N only
    (not Y: one confirm key)."""

    # At the top, as small as its text: the alarm list below stays in sight.
    DEFAULT_CSS = """
    ConfirmEnergyScreen { align: center top; }
    ConfirmEnergyScreen Horizontal { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(CONFIRM_KEY, "answer(True)", "Confirm"),
        Binding("n", "answer(False)", "Back"),
    ]

    def __init__(self, title: str, what: str) -> None:
        super().__init__()
        self._title = title
        self._what = what

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield estop_button()
            yield Static(
                f"{self._title}\n\n{self._what}\n\nC = confirm    N = back", id="dialog-text"
            )
            with Horizontal():
                yield Button("Confirm (C)", id="yes", variant="warning")
                yield Button("Back (N)", id="no")
