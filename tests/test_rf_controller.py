"""The RF controller's state machine against the in-process simulator: safety rule 1
(output on only while delivering, off after every exit), guards, validation, latching,
emergency stop from every state, transient contact loss, a device that stops
answering, and the diagram drawn from the live transition table.

Timeline on the default simulator (seed 7): the simulator is created at clock 0,
the controller connects after its 1 s boot, a zone starts at about 1.3 s and
reaches 42 degC about 25 s later.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from devicectl.clock import SimClock
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.diagram import diagram
from devicectl.errors import (
    ConfigError,
    ControlError,
    DeviceTimeout,
    FaultLatched,
    ValidationError,
)
from devicectl.modalities.rf import controller as rf_controller
from devicectl.modalities.rf.controller import RFController, RFState
from devicectl.modalities.rf.limits import RFZone
from devicectl.modalities.rf.regulator import RegulatorTuning
from tests.rf_scenario import OPERATOR, RFRig

TICK_S = 0.05


@dataclass
class Recorder:
    """Every loop event but ticks, in order."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if event.kind != "tick":
            self.events.append(event)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def states(self) -> list[tuple[float, str]]:
        return [(e.t_s, e.data["state"]) for e in self.of("state")]

    def alarms(self) -> list[Alarm]:
        return [e.data["alarm"] for e in self.of("alarm")]


def make_rig(*faults: str, seed: int = 7) -> tuple[RFRig, Recorder]:
    rig = RFRig.create(seed=seed, faults=faults)
    rec = Recorder()
    rig.station.loop.subscribe(rec)
    return rig, rec


def run_until_time(rig: RFRig, t_s: float) -> None:
    rig.station.loop.run(until=lambda: rig.station.clock.now() >= t_s)


def delivering_intervals(rec: Recorder) -> list[tuple[float, float]]:
    intervals: list[tuple[float, float]] = []
    start: float | None = None
    for t, state in rec.states():
        if state == RFState.DELIVERING.value:
            assert start is None, "delivering entered twice without leaving"
            start = t
        elif start is not None:
            intervals.append((start, t))
            start = None
    if start is not None:
        intervals.append((start, math.inf))
    return intervals


def output_on_intervals(rig: RFRig) -> list[tuple[float, float]]:
    intervals: list[tuple[float, float]] = []
    on_since: float | None = None
    for t, on, _reason in rig.sim.output_log:
        if on:
            assert on_since is None
            on_since = t
        else:
            assert on_since is not None
            intervals.append((on_since, t))
            on_since = None
    if on_since is not None:
        intervals.append((on_since, math.inf))
    return intervals


def assert_output_only_while_delivering(rig: RFRig, rec: Recorder) -> None:
    """Safety rule 1, from the device's own record: every output-on span lies inside
    a span in which the controller was delivering, and only the host turns it on."""
    log = rig.sim.output_log
    assert all(reason == "host" for _t, on, reason in log if on), log
    delivering = delivering_intervals(rec)
    for a, b in output_on_intervals(rig):
        assert any(s <= a and b <= e for s, e in delivering), (
            f"output on {a}-{b} outside delivering {delivering}; log {log}"
        )


def assert_off_at_exit(rig: RFRig, rec: Recorder) -> None:
    """The last exit from delivering switched the output off in that same instant."""
    exits = [e for s, e in delivering_intervals(rec) if e != math.inf]
    assert exits, rec.states()
    t_exit = exits[-1]
    log = rig.sim.output_log
    assert log[-1][1] is False, log
    assert log[-1][0] <= t_exit, (t_exit, log)
    assert not rig.sim.output_on
    assert rig.rf.last_safe_state is not None and rig.rf.last_safe_state.confirmed


# -- safety rule 1: output off after every exit from delivering ------------------------


def _exit_by_pause(rig: RFRig) -> RFState:
    rig.run_for(5.0)
    rig.station.command("rf", "pause", OPERATOR)
    return RFState.PAUSED


def _exit_by_completion(rig: RFRig) -> RFState:
    assert rig.run_until((RFState.COMPLETE, RFState.FAULT), max_s=120.0)
    return RFState.COMPLETE


def _exit_by_abort(rig: RFRig) -> RFState:
    rig.run_for(5.0)
    rig.station.command("rf", "abort", OPERATOR)
    return RFState.IDLE


def _exit_by_fault(rig: RFRig) -> RFState:
    assert rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=60.0)
    return RFState.FAULT


def _exit_by_estop(rig: RFRig) -> RFState:
    rig.run_for(5.0)
    rig.station.command("rf", "estop", OPERATOR)
    return RFState.ESTOP


def _pause_resume_complete(rig: RFRig) -> RFState:
    rig.run_for(4.0)
    rig.station.command("rf", "pause", OPERATOR)
    rig.run_for(2.0)
    rig.station.command("rf", "resume", OPERATOR)
    rig.run_for(4.0)
    rig.station.command("rf", "pause", OPERATOR)
    rig.run_for(1.0)
    rig.station.command("rf", "resume", OPERATOR)
    assert rig.run_until((RFState.COMPLETE, RFState.FAULT), max_s=120.0)
    return RFState.COMPLETE


EXITS: dict[str, tuple[tuple[str, ...], Callable[[RFRig], RFState], str | None]] = {
    # name: (faults, how to leave delivering, expected host reason for the off switch)
    "pause": ((), _exit_by_pause, "host"),
    "complete": ((), _exit_by_completion, "host"),
    "abort": ((), _exit_by_abort, "host"),
    "fault": (("runaway@8s",), _exit_by_fault, None),
    "estop": ((), _exit_by_estop, "host"),
    "pause_resume_complete": ((), _pause_resume_complete, "host"),
}


@pytest.mark.parametrize("name", sorted(EXITS))
def test_every_exit_from_delivering_turns_output_off(name: str) -> None:
    faults, leave, off_reason = EXITS[name]
    rig, rec = make_rig(*faults)
    assert not rig.sim.output_on
    rig.start_zone(hold_s=5.0)
    assert rig.rf.state is RFState.DELIVERING
    assert rig.sim.output_on  # delivering really delivers

    expected = leave(rig)

    assert rig.rf.state is expected, rig.rf.status()
    assert_off_at_exit(rig, rec)
    if off_reason is not None:
        assert rig.sim.output_log[-1][2] == off_reason, rig.sim.output_log
    assert_output_only_while_delivering(rig, rec)
    # and it stays off: nothing switches it on again outside delivering
    rig.run_for(3.0)
    assert not rig.sim.output_on
    assert_output_only_while_delivering(rig, rec)


def test_runaway_is_cut_by_the_host_before_the_firmware() -> None:
    rig, rec = make_rig("runaway@8s")
    rig.start_zone(hold_s=60.0)
    assert rig.run_until((RFState.FAULT,), max_s=30.0)
    assert rig.rf.fault_alarm is not None and rig.rf.fault_alarm.code == "rf.runaway"
    assert rig.sim.output_log[-1][2] == "host", rig.sim.output_log
    assert_off_at_exit(rig, rec)
    assert rig.sim.peak_skin_c < 45.0


def test_a_subscriber_that_stops_the_device_on_an_alarm_does_not_break_the_fault() -> None:
    """Subscribers are told of an alarm before the fault's safe state runs. One that
    reacts by calling the controller's emergency stop itself (a display wired to
    stop on any high alarm) must leave the device stopped and the loop running."""
    rig, rec = make_rig("runaway@8s")

    def stop_on_alarm(event: Event) -> None:
        if event.kind == "alarm" and event.data["alarm"].latches:
            rig.rf.emergency_stop("display")

    rig.station.loop.subscribe(stop_on_alarm)
    rig.start_zone(hold_s=60.0)
    assert rig.run_until((RFState.FAULT, RFState.ESTOP), max_s=30.0)
    assert rig.rf.state is RFState.ESTOP
    assert rig.rf.fault_alarm is not None and rig.rf.fault_alarm.code == "rf.runaway"
    assert not rig.sim.output_on
    assert rig.rf.last_safe_state is not None and rig.rf.last_safe_state.confirmed
    assert_off_at_exit(rig, rec)
    rig.run_for(2.0)  # the loop goes on ticking
    assert rig.rf.state is RFState.ESTOP and not rig.sim.output_on
    assert rig.sim.peak_skin_c < 45.0


# -- guards -------------------------------------------------------------------------


def test_a_regulator_tuned_above_the_power_limit_is_refused_before_any_io() -> None:
    # The regulator clamps to its own max_power_w; one above the 50 W limit would
    # command power that the supervisor only catches a tick later.
    opened: list[str] = []

    def opener() -> Any:
        opened.append("port")
        raise AssertionError("the port must not be opened")

    with pytest.raises(ConfigError, match=r"max_power_w 60.0 W is above the power limit 50.0 W"):
        RFController(opener, SimClock(), tuning=RegulatorTuning(max_power_w=60.0))
    assert opened == []


def test_arm_refused_without_a_zone() -> None:
    rig, rec = make_rig()
    with pytest.raises(ControlError):
        rig.station.command("rf", "arm", OPERATOR)
    assert rig.rf.state is RFState.IDLE
    assert rec.states() == []
    rig.run_for(1.0)
    assert rig.sim.output_log == []
    assert rec.of("command_rejected")[-1].data["action"] == "arm"


def test_arm_refused_without_electrode_contact() -> None:
    rig, rec = make_rig("contact_loss@0s")
    rig.station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 60.0))
    assert rig.rf.state is RFState.READY
    with pytest.raises(ControlError, match="contact"):
        rig.station.command("rf", "arm", OPERATOR)
    assert rig.rf.state is RFState.READY
    assert [s for _, s in rec.states()] == ["ready"]
    rig.run_for(2.0)
    assert rig.rf.state is RFState.READY
    assert rig.sim.output_log == []
    assert not rig.sim.output_on


def test_start_refused_from_ready() -> None:
    rig, _rec = make_rig()
    rig.station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 60.0))
    with pytest.raises(ControlError, match="start"):
        rig.station.command("rf", "start", OPERATOR)
    assert rig.rf.state is RFState.READY
    rig.run_for(1.0)
    assert rig.sim.output_log == []


BAD_ZONES = {
    "target 43": (RFZone("forehead", 43.0, 60.0), "target_c"),
    "target 37.9": (RFZone("forehead", 37.9, 60.0), "target_c"),
    "target NaN": (RFZone("forehead", math.nan, 60.0), "target_c"),
    "hold 0": (RFZone("forehead", 42.0, 0.0), "hold_s"),
    "hold 301": (RFZone("forehead", 42.0, 301.0), "hold_s"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZONES))
def test_bad_zone_is_rejected_naming_the_field_before_any_state_change(case: str) -> None:
    zone, field_name = BAD_ZONES[case]
    rig, rec = make_rig()
    with pytest.raises(ValidationError, match=field_name) as info:
        rig.station.command("rf", "load", OPERATOR, zone=zone)
    assert len(info.value.problems) == 1 and field_name in info.value.problems[0]
    assert rig.rf.state is RFState.IDLE
    assert rig.rf.zone is None and rig.rf.regulator is None
    assert rec.states() == []

    # from READY with a good zone loaded, the bad one changes nothing either
    good = RFZone("left cheek", 41.0, 30.0)
    rig.station.command("rf", "load", OPERATOR, zone=good)
    regulator = rig.rf.regulator
    n_states = len(rec.states())
    with pytest.raises(ValidationError, match=field_name):
        rig.station.command("rf", "load", OPERATOR, zone=zone)
    assert rig.rf.state is RFState.READY
    assert rig.rf.zone is good and rig.rf.regulator is regulator
    assert len(rec.states()) == n_states
    rig.run_for(1.0)
    assert rig.sim.output_log == []


def test_zone_with_every_field_bad_names_every_field() -> None:
    rig, _rec = make_rig()
    with pytest.raises(ValidationError) as info:
        rig.station.command("rf", "load", OPERATOR, zone=RFZone(" ", 50.0, -1.0))
    text = str(info.value)
    assert "name" in text and "target_c" in text and "hold_s" in text
    assert len(info.value.problems) == 3
    assert rig.rf.state is RFState.IDLE


# -- faults latch ------------------------------------------------------------------------


def _faulted_rig() -> tuple[RFRig, Recorder]:
    rig, rec = make_rig("runaway@8s")
    rig.start_zone(hold_s=60.0)
    assert rig.run_until((RFState.FAULT,), max_s=30.0)
    return rig, rec


LATCHED_COMMANDS: dict[str, dict[str, object]] = {
    "arm": {},
    "start": {},
    "load": {"zone": RFZone("left cheek", 42.0, 30.0)},
    "resume": {},
    "pause": {},
    "abort": {},
}


@pytest.mark.parametrize("action", list(LATCHED_COMMANDS))
def test_fault_latches_until_acknowledged(action: str) -> None:
    rig, _rec = _faulted_rig()
    zone = rig.rf.zone
    with pytest.raises(FaultLatched):
        rig.station.command("rf", action, OPERATOR, **LATCHED_COMMANDS[action])
    assert rig.rf.state is RFState.FAULT
    assert rig.rf.zone is zone
    rig.run_for(2.0)
    assert rig.rf.state is RFState.FAULT
    assert not rig.sim.output_on


def test_acknowledge_needs_an_operator_id_and_is_logged_with_it() -> None:
    rig, rec = _faulted_rig()
    for blank in ("", "   "):
        with pytest.raises(ControlError, match="operator id"):
            rig.station.command("rf", "acknowledge", blank)
        assert rig.rf.state is RFState.FAULT
    with pytest.raises(ControlError, match="operator id"):
        rig.station.command("rf", "acknowledge", None)
    assert rig.rf.state is RFState.FAULT

    rig.run_for(10.0)  # let the skin cool below the alarm limit
    with capture_logs() as logs:
        assert rig.station.command("rf", "acknowledge", OPERATOR) is True
    assert rig.rf.state is RFState.IDLE
    acks = [e for e in logs if e["event"] == "fault_acknowledged"]
    assert len(acks) == 1, logs
    assert acks[0]["operator_id"] == OPERATOR
    assert acks[0]["fault"] == "rf.runaway"
    assert acks[0]["device"] == "rf"
    assert acks[0]["log_level"] == "info"
    assert [e.data["operator_id"] for e in rec.of("acknowledged")] == [OPERATOR]
    assert rig.rf.fault_alarm is None

    # and the zone can be delivered again
    rig.start_zone(name="forehead again", hold_s=5.0)
    assert rig.rf.state is RFState.DELIVERING


def test_start_in_the_tick_of_an_acknowledgement_waits_for_a_supervised_reading() -> None:
    """The supervisor does not run while latched, so the reading of the tick in which
    a fault is acknowledged was never checked. A load, arm and start queued behind the
    acknowledgement (one tick, as a fast front-end can) must not switch output on with
    the sensors still disagreeing: the guard needs a reading the supervisor passed."""
    rig, _rec = make_rig("sensor_drift@2s")
    assert rig.run_until((RFState.FAULT,), max_s=20.0)
    assert rig.rf.fault_alarm is not None
    assert rig.rf.fault_alarm.code == "rf.sensor_disagree"
    rig.run_for(1.0)
    reading = rig.rf.reading
    assert reading is not None and reading.contact_ok
    assert abs(reading.skin1_c - reading.skin2_c) > rig.rf.limits.sensor_disagree_max_c

    loop = rig.station.loop
    zone = RFZone("forehead", 42.0, 60.0)
    futures = [
        loop.submit(Command("rf", action, args, OPERATOR))
        for action, args in (
            ("acknowledge", {}),
            ("load", {"zone": zone}),
            ("arm", {}),
            ("start", {}),
        )
    ]
    loop.tick()
    assert all(f.done() for f in futures)
    assert futures[0].result() is True
    assert rig.rf.state is not RFState.DELIVERING
    assert not rig.sim.output_on
    assert not any(on for _t, on, _ in rig.sim.output_log), rig.sim.output_log
    # the next tick's supervisor sees the disagreement again and latches it
    rig.run_for(0.1)
    assert rig.rf.state is RFState.FAULT
    assert rig.sim.output_log == []


def test_acknowledge_refused_when_nothing_is_latched() -> None:
    rig, _rec = make_rig()
    with pytest.raises(ControlError, match="nothing to acknowledge"):
        rig.station.command("rf", "acknowledge", OPERATOR)
    assert rig.rf.state is RFState.IDLE


# -- emergency stop from every state -------------------------------------------------------


def _to_ready(rig: RFRig) -> None:
    rig.station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 2.0))


def _to_armed(rig: RFRig) -> None:
    _to_ready(rig)
    rig.station.command("rf", "arm", OPERATOR)


def _to_delivering(rig: RFRig) -> None:
    _to_armed(rig)
    rig.station.command("rf", "start", OPERATOR)
    rig.run_for(3.0)


def _to_paused(rig: RFRig) -> None:
    _to_delivering(rig)
    rig.station.command("rf", "pause", OPERATOR)


def _to_complete(rig: RFRig) -> None:
    _to_armed(rig)
    rig.station.command("rf", "start", OPERATOR)
    assert rig.run_until((RFState.COMPLETE, RFState.FAULT), max_s=60.0)


def _to_fault(rig: RFRig) -> None:
    _to_armed(rig)
    rig.station.command("rf", "start", OPERATOR)
    assert rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=30.0)


ESTOP_FROM: dict[RFState, tuple[tuple[str, ...], Callable[[RFRig], None]]] = {
    RFState.IDLE: ((), lambda rig: None),
    RFState.READY: ((), _to_ready),
    RFState.ARMED: ((), _to_armed),
    RFState.DELIVERING: ((), _to_delivering),
    RFState.PAUSED: ((), _to_paused),
    RFState.COMPLETE: ((), _to_complete),
    RFState.FAULT: (("runaway@4s",), _to_fault),
}


@pytest.mark.parametrize("state", list(ESTOP_FROM), ids=lambda s: s.value)
def test_emergency_stop_from_every_state(state: RFState) -> None:
    faults, reach = ESTOP_FROM[state]
    rig, rec = make_rig(*faults)
    reach(rig)
    assert rig.rf.state is state, rig.rf.status()
    t_stop = rig.station.clock.now()

    assert rig.station.command("rf", "estop", OPERATOR) is True

    assert rig.rf.state is RFState.ESTOP
    assert rec.states()[-1][1] == "estop"
    assert not rig.sim.output_on
    assert rig.rf.last_safe_state is not None and rig.rf.last_safe_state.confirmed
    assert_output_only_while_delivering(rig, rec)
    # a second stop is harmless; nothing is delivered while stopped
    assert rig.station.command("rf", "estop", OPERATOR) is True
    with pytest.raises(FaultLatched):
        rig.station.command("rf", "arm", OPERATOR)
    rig.run_for(5.0)
    assert rig.rf.state is RFState.ESTOP
    assert not rig.sim.output_on
    assert all(t <= t_stop + TICK_S for t, on, _ in rig.sim.output_log if on)

    assert rig.station.command("rf", "acknowledge", OPERATOR) is True
    assert rig.rf.state is RFState.IDLE
    rig.run_for(1.0)
    assert rig.rf.state is RFState.IDLE, rig.rf.fault_alarm
    assert not rig.sim.output_on


def test_an_acknowledgement_queued_before_an_emergency_stop_does_not_clear_it() -> None:
    """One operator acknowledges a fault; within the same tick another presses the
    emergency stop. The loop runs the stop first; the acknowledgement, meant for the
    earlier fault, must not then take the controller out of the stop it never saw."""
    rig, rec = _faulted_rig()
    rig.run_for(10.0)  # cooled: the acknowledgement alone would succeed
    loop = rig.station.loop
    ack = loop.submit(Command("rf", "acknowledge", {}, "tech-A"))
    stop = loop.submit(Command("rf", "estop", {}, "tech-B"))
    loop.tick()

    assert stop.result() is True
    assert rig.rf.state is RFState.ESTOP
    assert isinstance(ack.exception(), ControlError)
    assert rec.of("acknowledged") == []
    assert not rig.sim.output_on
    # the stop is left only by an acknowledgement given after it
    assert rig.station.command("rf", "acknowledge", "tech-B") is True
    assert rig.rf.state is RFState.IDLE


# -- transient contact loss ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault_start_s", "hold_s"),
    [(8.0, 20.0), (35.0, 30.0)],
    ids=["during-ramp", "during-hold"],
)
def test_transient_contact_loss_pauses_then_operator_resumes(
    fault_start_s: float, hold_s: float
) -> None:
    rig, rec = make_rig(f"contact_loss@{fault_start_s:g}s%2B2s")
    rig.start_zone(hold_s=hold_s)
    assert rig.run_until((RFState.PAUSED, RFState.FAULT, RFState.COMPLETE), max_s=60.0)

    assert rig.rf.state is RFState.PAUSED, rig.rf.status()
    assert rig.rf.pause_reason == "contact lost"
    t_pause = rig.station.clock.now()
    assert fault_start_s <= t_pause <= fault_start_s + 2 * TICK_S
    alarms = rec.alarms()
    assert [a.code for a in alarms] == ["rf.contact_lost"]
    assert alarms[0].priority is AlarmPriority.MEDIUM and not alarms[0].latches
    assert rig.rf.fault_alarm is None
    assert not rig.sim.output_on
    assert any(t == fault_start_s and not on for t, on, _ in rig.sim.output_log)
    held_at_pause = rig.rf.status()["held_s"]

    # the operator cannot resume while the handpiece is still off the skin
    with pytest.raises(ControlError, match="contact"):
        rig.station.command("rf", "resume", OPERATOR)
    assert rig.rf.state is RFState.PAUSED

    # contact returns; the zone stays paused (no auto-resume) and no time is held
    run_until_time(rig, fault_start_s + 3.0)
    assert rig.rf.state is RFState.PAUSED
    assert rig.rf.reading is not None and rig.rf.reading.contact_ok
    assert rig.rf.status()["held_s"] == held_at_pause
    assert not rig.sim.output_on

    rig.station.command("rf", "resume", OPERATOR)
    assert rig.rf.state is RFState.DELIVERING
    assert rig.sim.output_on
    assert rig.run_until((RFState.COMPLETE, RFState.FAULT), max_s=120.0)
    assert rig.rf.state is RFState.COMPLETE, rig.rf.fault_alarm
    t_done = rig.station.clock.now()

    result = rig.rf.results[-1]
    assert result.outcome == "complete"
    assert hold_s <= result.held_s <= hold_s + TICK_S + 1e-6
    # from target to done takes the hold time plus the time spent paused (when the
    # pause fell inside the hold), plus at most the tick in which contact was lost
    (reached,) = rec.of("target_reached")
    (t_paused, t_resumed) = [t for t, s in rec.states() if s in ("paused", "delivering")][1:]
    assert t_paused == t_pause
    paused_in_hold = t_resumed - t_paused if reached.t_s < t_paused else 0.0
    assert paused_in_hold == 0.0 or paused_in_hold > 2.0
    extra = t_done - reached.t_s - hold_s - paused_in_hold
    assert -1e-6 <= extra <= 2 * TICK_S + 1e-6, extra
    assert [a.code for a in rec.alarms()] == ["rf.contact_lost"]
    assert_output_only_while_delivering(rig, rec)
    assert not rig.sim.output_on


# -- an energy command that fails -----------------------------------------------------------


def test_an_output_on_whose_reply_is_lost_latches_before_the_next_queued_command() -> None:
    """``OUTP ON`` reached the device but its reply was lost: the device is on and the
    host does not know it. That is rf.command_failed, and it must latch before any
    other command of the same tick runs; a pause and resume queued behind the start
    must not send the energy command a second time."""
    rig, rec = make_rig()
    station = rig.station
    station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 60.0))
    station.command("rf", "arm", OPERATOR)
    device = rig.rf.device
    assert device is not None
    really_on = device.output_on
    sent: list[float] = []

    def reply_lost() -> None:
        really_on()
        sent.append(station.clock.now())
        raise DeviceTimeout("no reply to 'OUTP ON' (test: the reply was lost)")

    device.output_on = reply_lost  # type: ignore[method-assign]
    loop = station.loop
    futures = [loop.submit(Command("rf", a, {}, OPERATOR)) for a in ("start", "pause", "resume")]
    loop.tick()

    assert len(sent) == 1, sent
    assert [on for _t, on, _ in rig.sim.output_log] == [True, False], rig.sim.output_log
    assert not rig.sim.output_on
    assert rig.rf.state is RFState.FAULT
    assert rig.rf.fault_alarm is not None and rig.rf.fault_alarm.code == "rf.command_failed"
    for future in futures[1:]:
        assert isinstance(future.exception(), FaultLatched)
    assert rig.rf.last_safe_state is not None and rig.rf.last_safe_state.confirmed
    assert_output_only_while_delivering(rig, rec)


# -- a device that stops answering ------------------------------------------------------


def test_device_that_stops_answering_ends_with_the_port_closed_and_watchdog_off() -> None:
    fault_s = 8.0
    rig, rec = make_rig(f"no_reply@{fault_s:g}s")
    sim = rig.sim
    feeds: list[float] = []
    real_feed = sim.feed
    clock = rig.station.clock

    def recording_feed(data: bytes) -> None:
        feeds.append(clock.now())
        real_feed(data)

    sim.feed = recording_feed  # the port looks it up on the simulator per call
    rig.start_zone(hold_s=60.0)
    assert rig.run_until((RFState.FAULT,), max_s=20.0)

    assert rig.rf.fault_alarm is not None
    assert rig.rf.fault_alarm.code == "rf.stale"
    result = rig.rf.last_safe_state
    assert result is not None and not result.confirmed and result.port_closed
    assert rig.rf.device is None
    unconfirmed = [a for a in rec.alarms() if a.code == "rf.safe_state_unconfirmed"]
    assert len(unconfirmed) == 1
    assert unconfirmed[0].priority is AlarmPriority.HIGH and unconfirmed[0].latches

    # the device's own watchdog cut output, 250 ms after the last frame it took
    sim.advance()
    assert not sim.output_on
    last_on = [t for t, on, _ in sim.output_log if on][-1]
    off = sim.output_log[-1]
    assert off[1] is False and off[2] == "watchdog", sim.output_log
    last_valid = max(t for t in feeds if t < fault_s)
    assert last_on <= last_valid < off[0]
    assert off[0] - last_valid <= 0.25 + 1e-9
    # the host kept asking after the fault started (the frames the device dropped)
    assert any(t >= fault_s for t in feeds)

    # latched and closed: nothing turns output on again
    rig.run_for(3.0)
    assert rig.rf.state is RFState.FAULT
    assert not sim.output_on
    assert_output_only_while_delivering(rig, rec)


def test_acknowledging_while_the_device_still_does_not_answer_keeps_the_fault() -> None:
    """The port was closed; acknowledge reconnects, and the reconnection fails (the
    device is still silent). That failure must not be lost: either the acknowledgement
    is refused, or the controller is back in FAULT on the very next tick with the
    connection failure as its fault."""
    rig, _rec = make_rig("no_reply@8s")
    rig.start_zone(hold_s=60.0)
    assert rig.run_until((RFState.FAULT,), max_s=20.0)
    assert rig.rf.device is None
    refused = False
    try:
        rig.station.command("rf", "acknowledge", OPERATOR)
    except ControlError:
        refused = True
    rig.station.loop.tick()
    assert rig.rf.state is RFState.FAULT, (refused, rig.rf.status())
    assert rig.rf.fault_alarm is not None
    assert refused or rig.rf.fault_alarm.code == "rf.connect", rig.rf.fault_alarm
    assert not rig.sim.output_on


# -- the diagram is the live table ---------------------------------------------------------


@pytest.fixture(scope="module")
def live_edges() -> set[tuple[str, str, str]]:
    """(source, dest, trigger) of every transition of a running controller's machine."""
    machine = RFRig.create().rf.machine
    edges = set()
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                edges.add((source, transition.dest, trigger))
    return edges


def _table_edges() -> set[tuple[str, str, str]]:
    edges = set()
    for row in rf_controller.TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            edges.add((source.name, row["dest"].name, row["trigger"]))
    return edges


def test_live_machine_is_the_transition_table(live_edges: set[tuple[str, str, str]]) -> None:
    assert live_edges == _table_edges()
    assert len(_table_edges()) > 20


def test_mermaid_diagram_matches_the_live_machine(
    live_edges: set[tuple[str, str, str]],
) -> None:
    text = diagram("rf")
    assert "stateDiagram" in text
    edge_re = re.compile(r"^\s*(\w+) --> (\w+): (\w+)")
    drawn = {m.groups() for m in map(edge_re.match, text.splitlines()) if m}
    assert drawn == live_edges
    for row in rf_controller.TRANSITIONS:
        assert row["trigger"] in text
        assert row["dest"].name in text
    for state in RFState:
        assert re.search(rf"state \"{state.name}\" as {state.name}\b", text), state
    assert re.search(r"\[\*\] --> IDLE", text)
    # guards are shown on the guarded edges
    for trigger in ("arm", "start", "resume"):
        assert re.search(rf"--> \w+: {trigger} \[_may_energise\]", text), trigger


def test_dot_diagram_matches_the_live_machine(live_edges: set[tuple[str, str, str]]) -> None:
    text = diagram("rf", "dot")
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    edge_re = re.compile(r'^\s*"(\w+)" -> "(\w+)" \[label="(\w+)')
    drawn = {m.groups() for m in map(edge_re.match, text.splitlines()) if m}
    assert drawn == live_edges
    assert '"start" -> "IDLE"' in text
