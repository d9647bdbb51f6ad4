"""The session runner's plan for an IPL pass: load, eye protection, one trigger a flash.

Eye protection is confirmed by a person, with their id, and every flash needs
its trigger, except in an unattended run on simulators, where the runner does
both and the record says ``auto``. Flashes are counted from the controller's
own list; a train the session cut short counts as fired (a flash is never
given twice).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from devicectl.errors import ControlError
from devicectl.modalities.ipl.controller import IPLController, IPLState
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.modalities.ipl.step import IPLStep
from devicectl.modality import Plan, PlanRun, Wait

AUTO_OPERATOR = "auto"


def plan(run: PlanRun, step: IPLStep, progress: Any) -> Plan:
    ipl: IPLController = run.device("ipl")
    planned: IPLPass = step.ipl_pass
    fired = progress.detail.get("flashes_done", 0)
    remaining = planned.flashes - fired
    if remaining <= 0:
        return
    run.do("ipl", "load", ipl_pass=replace(planned, flashes=remaining))
    # The pass's flashes are counted from the controller's list (reset by load).
    interrupted = progress.detail.get("flashes_interrupted", 0)
    run.memo(progress)["base"] = (
        fired - interrupted,
        list(progress.detail.get("delivered_j_cm2", [])),
    )
    yield lambda: ipl.reading is not None
    unattended = run.auto_confirm and run.simulated
    if unattended:
        eyes_by = AUTO_OPERATOR
    else:
        # A confirmation like every other (the console's one confirm key): its answer
        # arms the handpiece, which the prompt's energy summary says beforehand.
        yield from run.wait_confirmation(progress, "confirm: eye protection on (everyone)")
        eyes_by = run.confirmed_by() or ""
    progress.detail["eye_protection_by"] = eyes_by
    run.do("ipl", "arm", eyes_by, eye_protection=True)
    for _ in range(remaining):
        # The technician's trigger: pulled by the runner only in unattended
        # simulated runs (recorded as "auto"); otherwise the operator fires.
        if unattended:
            yield lambda: ipl.state is IPLState.ARMED and ipl._may_fire()
            run.do("ipl", "fire", AUTO_OPERATOR)
        yield _next_flash_or_latch(ipl)
        note_flashes(run, progress, ipl)
        if ipl.latched:
            raise ControlError(f"ipl: {ipl.fault_alarm.message if ipl.fault_alarm else 'fault'}")
    yield lambda: ipl.state in (IPLState.COMPLETE, IPLState.FAULT, IPLState.ESTOP)


def note_flashes(
    run: PlanRun, progress: Any, ipl: IPLController, *, interrupting: bool = False
) -> None:
    """This step's flashes so far, from the controller's list (``interrupting``: the
    session is cutting a train short; it counts as fired)."""
    base = run.memo(progress).get("base")
    if base is None:
        return
    before, delivered = base
    interrupted = progress.detail.get("flashes_interrupted", 0)
    if interrupting:
        interrupted += 1
        progress.detail["flashes_interrupted"] = interrupted
    progress.detail["flashes_done"] = before + len(ipl.flashes) + interrupted
    progress.detail["delivered_j_cm2"] = delivered + [f.delivered_j_cm2 for f in ipl.flashes]


def _next_flash_or_latch(ipl: IPLController) -> Wait:
    """A wait condition: one more flash than now, or the controller latched."""
    start = len(ipl.flashes)
    return lambda: len(ipl.flashes) > start or ipl.latched
