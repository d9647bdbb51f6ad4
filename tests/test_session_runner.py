"""The session runner on simulated devices: steps in order, confirmations, faults, abort."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from devicectl.errors import ControlError, ProtocolFileError
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.modalities.led.limits import LEDStep
from devicectl.modalities.rf.controller import RFState
from devicectl.modalities.rf.limits import RFZone
from devicectl.session import IPLStep, LEDExposureStep, ManualStep, RFStep, SessionProtocol
from devicectl.session.api import run_protocol
from devicectl.session.runner import SessionRunner, SessionState
from devicectl.session.simulated import simulated_station

OP = "tech-042"


@dataclass(frozen=True)
class Plan:
    steps: tuple


SHORT = Plan(
    (
        ManualStep("cleanse", "Cleanse the face."),
        RFStep("rf", (RFZone("forehead", 42.0, 20.0), RFZone("chin", 42.0, 20.0))),
        IPLStep("ipl", IPLPass(560, 15.0, 10.0, flashes=3)),
        LEDExposureStep("led", LEDStep(633, 100.0, 60.0)),
        ManualStep("hydrating mask", "Apply the mask."),
    )
)


def make(plan: Plan = SHORT, auto: bool = True, faults: dict | None = None):
    station, tech = simulated_station(seed=7, faults=faults)
    runner = SessionRunner(
        station, plan, operator_id=OP, auto_confirm=auto, technician=tech, simulated=True
    )
    return station, runner


def test_an_unattended_run_walks_every_step_in_order() -> None:
    station, runner = make()
    events = []
    station.loop.subscribe(events.append)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=1200.0)
    assert runner.state is SessionState.COMPLETE
    assert [s.outcome for s in runner.steps] == ["complete"] * 5
    started = [e.data["step"] for e in events if e.kind == "step_started"]
    assert started == [1, 2, 3, 4, 5]
    confirmations = [e.data for e in events if e.kind == "operator_confirmed"]
    assert [c["operator_id"] for c in confirmations] == ["auto", "auto"]
    assert all(c["unattended"] for c in confirmations)
    assert runner.steps[1].detail["zones_done"] == ["forehead", "chin"]
    assert runner.steps[2].detail["flashes_done"] == 3
    assert runner.steps[3].detail["dose_j_cm2"] == pytest.approx(6.0, abs=0.3)


def test_a_manual_step_waits_for_an_operator_confirmation() -> None:
    station, runner = make(Plan((ManualStep("cleanse", "Cleanse the face."),)), auto=False)
    station.loop.run(max_duration_s=30.0)
    assert runner.state is SessionState.WAITING_CONFIRM
    with pytest.raises(ControlError, match="operator id"):
        station.command("session", "confirm", "")
    station.command("session", "confirm", "nurse-7")
    station.loop.run(until=lambda: runner.finished, max_duration_s=1.0)
    assert runner.state is SessionState.COMPLETE
    assert runner.steps[0].detail["confirmed_by"] == "nurse-7"


def test_a_fault_stops_the_session_at_its_step_and_it_goes_on_after_acknowledgement() -> None:
    station, runner = make(faults={"rf": ["runaway@60s%2B5s"]})
    assert station.loop.run(
        until=lambda: runner.state is SessionState.FAULTED, max_duration_s=300.0
    )
    assert runner.current == 1 and runner.steps[1].outcome == "fault"
    rf = station.loop.controllers["rf"]
    assert rf.state is RFState.FAULT
    with pytest.raises(ControlError, match="acknowledge"):
        station.command("session", "resume", OP)
    station.loop.run(max_duration_s=20.0)
    station.command("rf", "acknowledge", OP)
    station.command("session", "resume", OP)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=1200.0)
    assert runner.state is SessionState.COMPLETE
    # the zone that faulted is delivered again; the one already done is not
    assert runner.steps[1].detail["zones_done"] == ["forehead", "chin"]


def test_abort_puts_every_device_in_the_safe_state() -> None:
    station, runner = make()
    station.loop.run(
        until=lambda: station.loop.controllers["rf"].state is RFState.DELIVERING,
        max_duration_s=60.0,
    )
    station.loop.run(max_duration_s=10.0)
    station.command("session", "abort", OP)
    assert runner.state is SessionState.ABORTED
    for name in ("rf", "ipl", "led"):
        controller = station.loop.controllers[name]
        assert controller.state.value in ("idle", "estop"), (name, controller.state)
    from devicectl.urlhandlers.protocol_sim import simulator_for

    assert not simulator_for(runner.technician.urls["rf"], station.clock).output_on


@pytest.mark.parametrize("device", ["ipl", "led"])
def test_abort_with_the_lamp_armed_or_the_canopy_lit_makes_it_safe(device: str) -> None:
    # The RF case is above; an abort must disarm an armed IPL handpiece and turn a
    # lit LED canopy off the same way, with the device's safe state confirmed.
    from devicectl.urlhandlers.protocol_sim import simulator_for

    station, runner = make()
    controller = station.loop.controllers[device]
    energised = {"ipl": "armed", "led": "delivering"}[device]
    assert station.loop.run(
        until=lambda: controller.state.value == energised, max_duration_s=1200.0
    )
    sim = simulator_for(runner.technician.urls[device], station.clock)
    assert sim.armed if device == "ipl" else sim.output_on
    station.command("session", "abort", OP)
    assert runner.state is SessionState.ABORTED
    assert controller.state.value in ("idle", "estop"), controller.state
    assert controller.last_safe_state is not None and controller.last_safe_state.confirmed
    assert not (sim.armed or sim.charged) if device == "ipl" else not sim.output_on
    assert runner.steps[[s.kind for s in runner.steps].index(device)].outcome == "aborted"
    station.loop.run(max_duration_s=3.0)
    assert not (sim.armed or sim.charged) if device == "ipl" else not sim.output_on


def test_pause_and_resume_mid_zone() -> None:
    station, runner = make()
    rf = station.loop.controllers["rf"]
    station.loop.run(until=lambda: rf.state is RFState.DELIVERING, max_duration_s=60.0)
    station.loop.run(max_duration_s=30.0)
    station.command("session", "pause", OP)
    assert runner.state is SessionState.PAUSED and rf.state is RFState.PAUSED
    station.loop.run(max_duration_s=10.0)
    station.command("session", "resume", OP)
    assert rf.state is RFState.DELIVERING
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=1200.0)
    assert runner.state is SessionState.COMPLETE


def test_eye_protection_is_confirmed_by_a_person_unless_unattended_on_simulators() -> None:
    plan = Plan((IPLStep("ipl", IPLPass(560, 15.0, 10.0, flashes=1)),))
    station, tech = simulated_station(seed=7)
    # auto_confirm but not flagged as simulators: a person must confirm eye protection
    runner = SessionRunner(station, plan, operator_id=OP, auto_confirm=True, technician=tech)
    station.loop.run(max_duration_s=5.0)
    assert runner.state is SessionState.WAITING_CONFIRM
    assert runner.prompt is not None and "eye protection" in runner.prompt
    ipl = station.loop.controllers["ipl"]
    assert ipl.state.value == "ready"  # not armed, not charging
    station.command("session", "confirm", "nurse-7")
    station.loop.run(max_duration_s=5.0)
    assert ipl.eye_protection_confirmed_by == "nurse-7"
    assert runner.steps[0].detail["eye_protection_by"] == "nurse-7"
    # and nobody pulls the trigger for the operator
    station.loop.run(max_duration_s=10.0)
    assert ipl.flashes == [] and not runner.finished
    station.command("ipl", "fire", "nurse-7")
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=10.0)
    assert runner.state is SessionState.COMPLETE


def test_device_commands_are_events_for_the_record() -> None:
    station, runner = make(Plan((RFStep("rf", (RFZone("forehead", 42.0, 10.0),)),)))
    events = []
    station.loop.subscribe(events.append)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=200.0)
    commands = [e.data["command"] for e in events if e.kind == "device_command"]
    # The first tick clears the flags each device latched since connecting (rf, ipl,
    # led); then the zone starts.
    assert commands[:4] == ["clear_status"] * 3 + ["output_on"]
    assert commands.count("set_power") > 10  # one per pulse whose power changed
    assert commands[-1] == "safe_state"  # zone done: output off, confirmed
    last = [e for e in events if e.kind == "device_command"][-1]
    assert last.data["confirmed"] is True


def test_a_faulted_step_ends_as_fault_and_begins_again_on_resume() -> None:
    """The record sees the fault end the step and the resume start it again (the
    store updates the step row), so a resumed step ends 'complete' and an abandoned
    one 'fault', never 'running'."""
    station, runner = make(faults={"rf": ["runaway@60s%2B5s"]})
    events: list = []
    station.loop.subscribe(events.append)
    assert station.loop.run(
        until=lambda: runner.state is SessionState.FAULTED, max_duration_s=300.0
    )
    station.loop.run(max_duration_s=20.0)
    station.command("rf", "acknowledge", OP)
    station.command("session", "resume", OP)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=1200.0)
    rf_step = [
        (e.kind, e.data.get("outcome"))
        for e in events
        if e.kind in ("step_started", "step_ended") and e.data["step"] == 2
    ]
    assert rf_step == [
        ("step_started", None),
        ("step_ended", "fault"),
        ("step_started", None),
        ("step_ended", "complete"),
    ]


def test_run_protocol_rejects_a_protocol_built_in_python_whole_before_anything_runs(
    tmp_path: Path,
) -> None:
    """Safety rule 4 holds for the Python API too: a protocol with any bad value is
    rejected whole, naming the step and the field, with nothing delivered. It used to
    run the RF step on the skin and then die at the LED step's load."""
    bad = SessionProtocol(
        Path("scripted.toml"),
        "scripted",
        "1",
        "",
        (
            RFStep("RF", (RFZone("nose", 42.0, 10.0),)),
            LEDExposureStep("LED", LEDStep(633, 500.0, 60.0)),
        ),
    )
    db = tmp_path / "records.sqlite"
    with pytest.raises(ProtocolFileError) as caught:
        run_protocol(bad, operator_id=OP, auto_confirm=True, db=str(db))
    assert caught.value.problems == [
        "scripted.toml: step 2 (led): irradiance_mw_cm2 500.0 is above the limit 110.0"
    ]
    assert not db.exists()  # no session was begun: nothing ran
