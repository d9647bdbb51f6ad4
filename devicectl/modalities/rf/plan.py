"""The session runner's plan for an RF step: each zone loaded, armed, started, held.

A zone begun again (after a fault, or a pause that had to abort) holds only
what is left of its hold; the site's dose so far is the RF controller's
(safety rule 8), so its limits apply to the site's total.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from devicectl.errors import ControlError
from devicectl.modalities.rf.controller import RFController, RFState
from devicectl.modalities.rf.site_dose import site_key
from devicectl.modalities.rf.step import RFStep
from devicectl.modality import Plan, PlanRun

HOLD_LEFT_MIN_S: Final = 0.5  # a zone with less hold than this left is done


def plan(run: PlanRun, step: RFStep, progress: Any) -> Plan:
    rf: RFController = run.device("rf")
    done: list[str] = progress.detail.setdefault("zones_done", [])
    first = run.results_start(progress, "rf", rf.results)
    for zone in step.zones:
        if zone.name in done:
            continue
        site = site_key(zone.name)
        held_s = sum(r.held_s for r in rf.results[first:] if site_key(r.name) == site)
        hold_left_s = zone.hold_s - held_s
        if hold_left_s < HOLD_LEFT_MIN_S:
            done.append(zone.name)
            continue
        if done or progress.detail.get("moved"):
            yield from run.move_to_next_site("rf")
            yield from run.gate(progress, "next_zone", f"next zone: {zone.name}")
        progress.detail["moved"] = True
        run.do("rf", "load", zone=replace(zone, hold_s=hold_left_s))
        yield lambda: rf.reading is not None
        yield from run.gate(progress, "arm", f"arm RF: zone {zone.name}")
        run.do("rf", "arm", run.gated_by())
        yield from run.gate(progress, "start", f"start RF: zone {zone.name}")
        run.do("rf", "start", run.gated_by())
        yield lambda: rf.state in (RFState.COMPLETE, RFState.FAULT, RFState.ESTOP)
        if rf.state is not RFState.COMPLETE:
            raise ControlError(f"rf: zone {zone.name!r} did not complete")
        done.append(zone.name)
        result = rf.results[-1]
        progress.detail.setdefault("zones", []).append(result.__dict__)
