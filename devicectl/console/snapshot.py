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
from devicectl.session.summary import session_ended_s, site_totals, step_result

FINISHED_STATES = frozenset({"complete", "aborted", "ended"})


@dataclass(frozen=True)
class StepView:
    index: int
    title: str
    kind: str
    outcome: str  # pending, running, complete, fault, aborted
    result: str = ""  # what it delivered (``session.summary.step_result``), once it ran


@dataclass(frozen=True)
class SiteView:
    """One treated site's dose for the whole session (safety rule 8)."""

    site: str
    time_at_target_s: float
    held_s: float
    peak_c: float | None
    cem43: float
    attempts: int


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
    session_id: str | None = None  # the record's id (None: the session is not recorded)
    ended_s: float | None = None  # the loop clock when its last step ended, once finished
    sites: tuple[SiteView, ...] = ()

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def elapsed_s(self, now_s: float) -> float | None:
        """Seconds since the session began: to ``now_s``, or to its end once finished."""
        if self.started_s is None:
            return None
        end = self.ended_s if self.finished and self.ended_s is not None else now_s
        return max(0.0, end - self.started_s)


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


def site_views(sites: list[dict[str, Any]]) -> tuple[SiteView, ...]:
    """Sites from their plain totals (``session.summary.site_totals``, or the station's)."""
    return tuple(
        SiteView(
            site=str(s["site"]),
            time_at_target_s=float(s.get("time_at_target_s") or 0.0),
            held_s=float(s.get("held_s") or 0.0),
            peak_c=float(s["peak_c"]) if s.get("peak_c") is not None else None,
            cem43=float(s.get("cem43") or 0.0),
            attempts=int(s.get("attempts") or 0),
        )
        for s in sites
    )


def session_view(
    runner: Any, session_id: str | None = None, controllers: dict[str, Any] | None = None
) -> SessionView:
    current = runner.current + 1 if runner.current < len(runner.steps) else 0
    return SessionView(
        protocol=str(runner.protocol.name),
        operator=str(runner.operator_id),
        state=runner.state.value,
        current=current,
        prompt=runner.prompt,
        awaiting=runner.awaiting,
        fault=runner.fault_message,
        steps=tuple(
            StepView(s.index, s.title, s.kind, s.outcome, step_result(s.kind, s.outcome, s.detail))
            for s in runner.steps
        ),
        started_s=float(runner.started_s),
        instructions=runner.instructions,
        offers=runner.offers(),
        paused=tuple(runner.paused_devices()),
        energy=runner.energy_summary(),
        session_id=session_id,
        ended_s=session_ended_s(runner),
        sites=site_views(site_totals((controllers or {}).values())),
    )


def take_snapshot(
    t_s: float,
    tick: int,
    controllers: dict[str, Any],
    runner: Any,
    session_id: str | None = None,
) -> Snapshot:
    """Copy what the screen shows; call only on the loop thread, between ticks."""
    return Snapshot(
        t_s=t_s,
        tick=tick,
        session=session_view(runner, session_id, controllers) if runner is not None else None,
        devices=tuple(
            (name, mod.console_view(controllers[name], runner))
            for name, mod in modalities().items()
            if name in controllers
        ),
    )
