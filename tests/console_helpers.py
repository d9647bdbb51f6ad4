"""Shared set-up of the console tests: a backend on fast simulators, key-driving helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual import events
from textual.pilot import Pilot

from devicectl.console.app import ConsoleApp
from devicectl.console.backend import ConsoleBackend, ConsoleConfig
from devicectl.console.panels import KEY_FOR
from devicectl.control.events import Event
from devicectl.session.api import builtin_protocol

PORE_PATROL = builtin_protocol("pore-patrol.toml")
SIZE = (130, 50)
OPERATOR = "tech-042"


def make_app(
    db: Path | None = None,
    faults: dict[str, list[str]] | None = None,
    *,
    start_loop: bool = True,
    protocol: Path = PORE_PATROL,
    speed: float = 0,
    wall_clock: Callable[[], float] = time.time,
) -> ConsoleApp:
    """A console on fast simulators; unpaced (``speed=0``) unless asked."""
    config = ConsoleConfig(
        protocol,
        fast=True,
        speed=speed,
        seed=7,
        faults=faults,
        db=str(db) if db is not None else None,
        record=db is not None,
    )
    return ConsoleApp(
        ConsoleBackend(config), start_loop=start_loop, poll_s=0.05, wall_clock=wall_clock
    )


class EventLog:
    """A loop subscriber for the tests (it only appends, as a subscriber must)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        if event.kind != "tick":
            self.events.append(event)


async def press(pilot: Pilot[None], *keys: str) -> None:
    """Press keys as the terminal driver delivers them (an ``events.Key`` to the app).

    ``Pilot.press`` also waits for the whole process to go idle (up to 1 s a
    key), which never happens while the control loop runs on its own thread;
    this waits only for the screen to have handled the key.
    """
    app = pilot.app
    for key in keys:
        char = key if len(key) == 1 else None
        app.post_message(events.Key(key, char))
        await pilot.pause(0.01)


async def wait_for(
    pilot: Pilot[None], cond: Callable[[], bool], timeout_s: float = 20.0, step_s: float = 0.05
) -> None:
    """Let the app run until ``cond()``; AssertionError after ``timeout_s`` of app time."""
    waited = 0.0
    while not cond():
        if waited > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {cond}")
        await pilot.pause(step_s)
        waited += step_s


async def sign_in(pilot: Pilot[None], app: ConsoleApp, operator: str = OPERATOR) -> None:
    await press(pilot, *operator, "enter")
    await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.session is not None)


def prompt_shown(app: ConsoleApp) -> bool:
    """The session is waiting for an operator's answer to a prompt."""
    snap = app.snapshot
    return snap is not None and snap.session is not None and snap.session.awaiting is not None


async def answer_prompt(pilot: Pilot[None], app: ConsoleApp, awaiting: str) -> None:
    """Wait for the prompt, check it asks for ``awaiting``, press its key, and
    wait until the loop has taken it."""
    await wait_for(pilot, lambda: prompt_shown(app))
    snap = app.snapshot
    assert snap is not None and snap.session is not None
    assert snap.session.awaiting == awaiting, snap.session
    asked = (snap.session.current, snap.session.prompt)
    await press(pilot, KEY_FOR[awaiting].lower())

    def taken() -> bool:
        s = app.snapshot
        return (
            s is not None
            and s.session is not None
            and (s.session.current, s.session.prompt) != asked
        )

    await wait_for(pilot, taken)


def screen_text(app: ConsoleApp) -> str:
    """What the terminal shows now, one line a row (the screen's composed strips)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
