"""What the console shows, copied out of the controllers on the loop thread.

Every value the screen needs is read here, in one go, at the end of a tick,
into frozen dataclasses: the UI thread then renders a consistent picture and
never reads a controller (whose state only the loop thread may touch). Two
snapshots of an unchanged station compare equal, so a panel can skip redrawing.

Each device's view is its modality's (``Modality.console_view``, the generic
view for a modality without one), in registry order; the console names no
modality. Output state comes from the device's own reading (what it reports,
not what we asked), so "OUTPUT ON" on screen means the device says its output
is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devicectl.modality import modalities


@dataclass(frozen=True)
class StepView:
    index: int
    title: str
    kind: str
    outcome: str  # pending, running, complete, fault, aborted


@dataclass(frozen=True)
class SessionView:
    protocol: str
    operator: str
    state: str  # a SessionState value
    current: int  # 1-based index of the current step; 0 once past the last
    prompt: str | None
    awaiting: str | None  # the action that answers the prompt
    fault: str | None
    steps: tuple[StepView, ...]
    started_s: float | None = None  # the loop clock when the session began (sign-in)
    instructions: str | None = None  # what the prompt's step says to do (manual steps)
    # What the runner and the devices would take now (``session/offers.py``): the
    # session's actions, "acknowledge", and devices' own as "device.action".
    offers: tuple[str, ...] = ()
    paused: tuple[str, ...] = ()  # devices a resume would resume (through their guards)
    energy: str | None = None  # what the current step's device delivers when energy goes on


@dataclass(frozen=True)
class Snapshot:
    t_s: float  # the loop clock's time at the end of the tick
    tick: int
    session: SessionView | None
    # (device name, its modality's view) for every device of the station, in
    # registry order; each view a frozen dataclass with a ``state`` field.
    devices: tuple[tuple[str, Any], ...] = ()

    def device(self, name: str) -> Any | None:
        """The view of device ``name``; None if the station has no such device."""
        for device, view in self.devices:
            if device == name:
                return view
        return None

    def device_states(self) -> dict[str, str]:
        return {name: str(view.state) for name, view in self.devices}


def session_view(runner: Any) -> SessionView:
    current = runner.current + 1 if runner.current < len(runner.steps) else 0
    return SessionView(
        protocol=str(runner.protocol.name),
        operator=str(runner.operator_id),
        state=runner.state.value,
        current=current,
        prompt=runner.prompt,
        awaiting=runner.awaiting,
        fault=runner.fault_message,
        steps=tuple(StepView(s.index, s.title, s.kind, s.outcome) for s in runner.steps),
        started_s=float(runner.started_s),
        instructions=runner.instructions,
        offers=runner.offers(),
        paused=tuple(runner.paused_devices()),
        energy=runner.energy_summary(),
    )


def take_snapshot(t_s: float, tick: int, controllers: dict[str, Any], runner: Any) -> Snapshot:
    """Copy what the screen shows; call only on the loop thread, between ticks."""
    return Snapshot(
        t_s=t_s,
        tick=tick,
        session=session_view(runner) if runner is not None else None,
        devices=tuple(
            (name, mod.console_view(controllers[name], runner))
            for name, mod in modalities().items()
            if name in controllers
        ),
    )
