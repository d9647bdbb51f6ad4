"""The IPL controller against the in-process IPL simulator (COBS frames over sim://)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from structlog.testing import capture_logs

from devicectl.control.events import AlarmPriority, Event
from devicectl.devices import IPLStatus
from devicectl.errors import ControlError, DeviceTimeout, FaultLatched, ValidationError
from devicectl.modalities.ipl.controller import IPLState
from devicectl.modalities.ipl.limits import IPLPass
from tests.ipl_scenario import OPERATOR, IPLRig


def test_a_pass_fires_one_checked_flash_per_trigger_and_ends_disarmed() -> None:
    rig = IPLRig.create()
    rig.load(flashes=3, fluence=15.0)
    rig.arm()
    for _ in range(3):
        rig.flash()
        rig.run_until((IPLState.CHARGING, IPLState.COMPLETE, IPLState.FAULT), 3.0)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm
    assert len(rig.ipl.flashes) == 3 == len(rig.sim.flashes)
    for record in rig.ipl.flashes:
        assert abs(record.delivered_j_cm2 - 15.0) / 15.0 <= 0.2
    # flashes at least 1 s apart at the device
    times = [t for t, _, _ in rig.sim.flashes]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    rig.run_for(0.5)
    assert not rig.sim.armed and not rig.sim.charged
    status = rig.ipl.status()
    assert status["shots"] == 3 and status["lamp_life_pct"] == 99.0  # rounded down


def test_lamp_life_is_reported_from_the_device() -> None:
    rig = IPLRig.create(options="filter=560&shots=60000")
    assert rig.ipl.status()["lamp_life_pct"] == 40.0


def test_no_flash_without_a_trigger() -> None:
    rig = IPLRig.create()
    rig.load(flashes=2)
    rig.arm()
    assert rig.wait_armed()
    rig.run_for(10.0)  # armed and waiting: the lamp never fires by itself
    assert rig.sim.flashes == []


def test_arming_needs_eye_protection_confirmed_with_an_operator_id() -> None:
    rig = IPLRig.create()
    rig.load()
    with pytest.raises(ControlError, match="eye protection"):
        rig.station.command("ipl", "arm", OPERATOR)
    with pytest.raises(ControlError, match="eye protection"):
        rig.station.command("ipl", "arm", "", eye_protection=True)
    assert rig.ipl.state is IPLState.READY
    with capture_logs() as logs:
        rig.arm()
    assert any(
        e["event"] == "eye_protection_confirmed" and e["operator_id"] == OPERATOR for e in logs
    )


def test_abort_during_a_train_stops_it_at_once() -> None:
    # A train of 5 pulses 400 ms apart lasts 1.6 s; abort must not wait for it (nor
    # be refused, leaving only the emergency stop).
    rig = IPLRig.create()
    rig.load(flashes=2, fluence=5.0, pulse_count=5, pulse_delay_ms=400.0)
    rig.arm()
    assert rig.wait_armed()
    rig.station.loop.run(until=lambda: rig.ipl._may_fire(), max_duration_s=5.0)
    shots_before = rig.sim.shots
    rig.station.command("ipl", "fire", OPERATOR)
    assert rig.ipl.state is IPLState.FIRING
    rig.station.loop.run(until=lambda: rig.sim.shots > shots_before, max_duration_s=1.0)
    pulses = rig.sim.shots - shots_before
    assert 1 <= pulses < 5
    assert rig.station.command("ipl", "abort", OPERATOR) is True
    assert rig.ipl.state is IPLState.IDLE
    assert rig.ipl.last_safe_state is not None and rig.ipl.last_safe_state.confirmed
    assert not rig.sim.armed and not rig.sim.charged
    rig.run_for(3.0)
    assert rig.sim.shots - shots_before == pulses  # the rest of the train never came
    assert len(rig.sim.flashes) == 1  # one train, cut short
    assert rig.ipl.state is IPLState.IDLE, rig.ipl.fault_alarm


def test_a_refused_arm_records_no_eye_protection_confirmation() -> None:
    # The record must name who confirmed eye protection for the arming that took
    # place: an arm refused (here: no skin contact) confirms nothing and does not
    # replace the operator recorded for an earlier one.
    rig = IPLRig.create(faults=("contact_loss@0.5s",))
    rig.load()
    rig.run_for(1.0)
    events: list[Event] = []
    rig.station.loop.subscribe(events.append)
    with capture_logs() as logs, pytest.raises(ControlError, match="contact"):
        rig.station.command("ipl", "arm", "tech-B", eye_protection=True)
    assert rig.ipl.eye_protection_confirmed_by is None
    assert not any(e["event"] == "eye_protection_confirmed" for e in logs)
    assert not any(e.kind == "eye_protection_confirmed" for e in events)
    assert rig.ipl.state is IPLState.READY and not rig.sim.charged


def test_arming_refused_when_the_inserted_filter_is_not_the_planned_one() -> None:
    rig = IPLRig.create(options="filter=640")
    with pytest.raises(ControlError, match="filter"):
        rig.load(filter_nm=560)  # the device refuses parameters for another filter
    assert rig.ipl.state is IPLState.IDLE
    assert not rig.sim.armed and not rig.sim.charged


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fluence_j_cm2": 26.0}, "fluence_j_cm2"),
        ({"fluence_j_cm2": 4.9}, "fluence_j_cm2"),
        ({"pulse_width_ms": 0.5}, "pulse_width_ms"),
        ({"filter_nm": 600}, "filter_nm"),
        ({"pulse_count": 6}, "pulse_count"),
        ({"pulse_count": 2, "pulse_delay_ms": 1.0}, "pulse_delay_ms"),
    ],
)
def test_bad_parameters_are_rejected_before_anything_is_sent(kwargs: dict, field: str) -> None:
    rig = IPLRig.create()
    base = {"filter_nm": 560, "fluence_j_cm2": 15.0, "pulse_width_ms": 10.0}
    with pytest.raises(ValidationError, match=field):
        rig.station.command("ipl", "load", OPERATOR, ipl_pass=IPLPass(**{**base, **kwargs}))
    assert rig.ipl.state is IPLState.IDLE


def test_a_second_trigger_within_one_second_is_refused() -> None:
    rig = IPLRig.create()
    rig.load(flashes=3, fluence=5.0)  # 5 J/cm2 recharges in 0.72 s: armed again within 1 s
    rig.arm()
    rig.flash()
    assert rig.run_until((IPLState.ARMED,), 3.0)
    assert rig.station.clock.now() - rig.ipl.flashes[-1].t_s < 0.99
    with pytest.raises(ControlError, match=r"1\.0 s"):
        rig.station.command("ipl", "fire", OPERATOR)
    assert len(rig.sim.flashes) == 1


def test_emergency_stop_while_armed_disarms_and_dumps() -> None:
    rig = IPLRig.create()
    rig.load(flashes=3)
    rig.arm()
    assert rig.wait_armed() and rig.sim.armed
    rig.station.command("ipl", "estop", OPERATOR)
    assert rig.ipl.state is IPLState.ESTOP
    assert not rig.sim.armed and not rig.sim.charged
    assert rig.ipl.last_safe_state is not None and rig.ipl.last_safe_state.confirmed
    with pytest.raises(FaultLatched):
        rig.station.command("ipl", "fire", OPERATOR)


def test_a_frozen_crystal_thermistor_is_caught_within_three_flashes() -> None:
    rig = IPLRig.create(faults=("sensor_stuck@0s:sensor=1",))
    rig.load(flashes=10)
    rig.arm()
    for _ in range(3):
        if rig.ipl.state is IPLState.FAULT:
            break
        rig.flash()
        rig.run_until((IPLState.CHARGING, IPLState.FAULT), 3.0)
    assert rig.ipl.state is IPLState.FAULT
    assert rig.ipl.fault_alarm is not None and rig.ipl.fault_alarm.code == "ipl.crystal_stuck"
    assert len(rig.sim.flashes) == 3
    assert not rig.sim.armed and not rig.sim.charged


def test_misfire_is_a_fault_with_the_delivered_energy_named() -> None:
    rig = IPLRig.create(faults=("misfire@0s",))
    rig.load(flashes=3)
    rig.arm()
    rig.flash()
    assert rig.run_until((IPLState.FAULT,), 3.0)
    alarm = rig.ipl.fault_alarm
    assert alarm is not None and alarm.code == "ipl.energy_mismatch"
    assert alarm.priority is AlarmPriority.HIGH and "J/cm2" in alarm.message
    assert not rig.sim.armed and not rig.sim.charged
    assert len(rig.sim.flashes) == 1


def test_a_frozen_lamp_block_thermistor_is_caught_within_three_trains() -> None:
    # Before this check nothing caught it: the firmware's own 45 degC stop believes
    # the same thermistor (test_stuck_block_thermistor_that_recovers_reveals_overtemp).
    rig = IPLRig.create(faults=("sensor_stuck@0s:sensor=2",))
    rig.load(flashes=20, fluence=15.0)
    rig.arm()
    run_pass(rig, 20)
    assert rig.ipl.state is IPLState.FAULT
    assert rig.ipl.fault_alarm is not None and rig.ipl.fault_alarm.code == "ipl.block_stuck"
    assert len(rig.sim.flashes) == 3
    assert not rig.sim.armed and not rig.sim.charged


@pytest.mark.parametrize(
    ("fluence", "pulses", "trains"),
    [(5.0, 1, 60), (8.0, 1, 60), (9.0, 1, 60), (12.0, 2, 40), (25.0, 1, 60)],
)
def test_long_healthy_passes_never_look_like_a_frozen_block(
    fluence: float, pulses: int, trains: int
) -> None:
    # Trains at the 1 s minimum interval: the block heats toward its equilibrium and
    # cools between trains; light trains (under the 0.2 degC the check needs) are
    # not counted, heavy ones always move a live thermistor. 40 trains of 2 x 12
    # J/cm2 is Pore Patrol's pass (60 of them would reach the 45 degC block stop).
    rig = IPLRig.create()
    delay = {"pulse_delay_ms": 20.0} if pulses > 1 else {}
    rig.load(flashes=trains, fluence=fluence, pulse_count=pulses, **delay)
    rig.arm()
    run_pass(rig, trains)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm
    assert len(rig.ipl.flashes) == trains


IPL_FAULTS = {
    "no_reply": ("+3s", {"ipl.stale"}),
    "garble": ("+3s", {"ipl.stale"}),
    "reset": ("", {"ipl.device_reset", "ipl.stale", "ipl.energy_unexpected"}),
    "sensor_open": ("+5s", {"ipl.implausible", "ipl.sensor_fault"}),
    "contact_loss": ("+40s", {"ipl.contact_timeout"}),
}


@pytest.mark.parametrize("kind", sorted(IPL_FAULTS))
def test_ipl_fault_ends_disarmed_and_recovers(kind: str) -> None:
    duration, codes = IPL_FAULTS[kind]
    rig = IPLRig.create(faults=(f"{kind}@8s{duration.replace('+', '%2B')}",))
    rig.load(flashes=50)
    rig.arm()
    rig.flash()
    assert rig.run_until((IPLState.FAULT,), max_s=60.0), rig.ipl.status()
    alarm = rig.ipl.fault_alarm
    assert alarm is not None and alarm.code in codes, alarm
    rig.sim.advance()
    assert not rig.sim.armed and not rig.sim.charged
    rig.run_for(45.0)
    assert rig.station.command("ipl", "acknowledge", OPERATOR)
    rig.run_for(1.0)
    assert rig.ipl.state is IPLState.IDLE, rig.ipl.fault_alarm
    rig.load(flashes=1)
    rig.arm()
    rig.flash()
    assert rig.run_until((IPLState.COMPLETE, IPLState.FAULT), 5.0)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm


def run_pass(rig: IPLRig, flashes: int) -> None:
    for _ in range(flashes):
        if rig.ipl.state in (IPLState.FAULT, IPLState.COMPLETE):
            return
        rig.flash()
        rig.run_until((IPLState.CHARGING, IPLState.COMPLETE, IPLState.FAULT), 3.0)


def test_a_long_healthy_pass_has_no_false_trip() -> None:
    rig = IPLRig.create()
    rig.load(flashes=40, fluence=20.0)
    rig.arm()
    run_pass(rig, 40)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm
    assert len(rig.ipl.flashes) == 40


def test_lamp_block_heating_warns_then_stops_the_pass() -> None:
    rig = IPLRig.create()
    alarms = []
    rig.station.loop.subscribe(
        lambda e: alarms.append(e.data["alarm"]) if e.kind == "alarm" else None
    )
    rig.load(flashes=200, fluence=25.0)
    rig.arm()
    run_pass(rig, 200)
    codes = [a.code for a in alarms]
    assert "ipl.block_warm" in codes
    assert rig.ipl.state is IPLState.FAULT
    assert rig.ipl.fault_alarm is not None
    assert rig.ipl.fault_alarm.code == "ipl.block_overtemp"
    assert codes.index("ipl.block_warm") < codes.index("ipl.block_overtemp")
    assert not rig.sim.armed and not rig.sim.charged
    assert rig.sim.block_temp_c < 46.0


def test_a_pulse_train_is_checked_once_the_whole_train_is_delivered() -> None:
    rig = IPLRig.create()
    rig.load(flashes=2, fluence=8.0, pulse_count=3, pulse_delay_ms=100.0)  # 24 J/cm2 a trigger
    rig.arm()
    run_pass(rig, 2)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm
    assert [r.shot_count for r in rig.ipl.flashes] == [3, 6]
    assert all(abs(r.delivered_j_cm2 - 8.0) <= 1.6 for r in rig.ipl.flashes)


def test_a_long_valid_pulse_train_is_not_taken_for_a_lost_flash() -> None:
    rig = IPLRig.create()
    # 5 pulses x 100 ms with 500 ms between: a 2.5 s train, 5 x 5 = 25 J/cm2 per trigger
    rig.load(flashes=1, fluence=5.0, pulse_count=5, pulse_delay_ms=500.0, pulse_width_ms=100.0)
    rig.arm()
    run_pass(rig, 1)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm
    assert rig.ipl.flashes[-1].shot_count == 5


def test_fluence_is_limited_per_trigger_not_per_pulse() -> None:
    rig = IPLRig.create()
    with pytest.raises(ValidationError, match="per trigger"):
        rig.load(flashes=1, fluence=15.0, pulse_count=2, pulse_delay_ms=20.0)


def test_a_charge_the_handpiece_dumped_pauses_the_pass_until_resumed() -> None:
    # The handpiece dumps a charge held unused for 30 s and disarms (docs/protocols/ipl.md);
    # the controller must not stay "armed" with every trigger refused.
    rig = IPLRig.create()
    alarms: list[Any] = []
    rig.station.loop.subscribe(
        lambda e: alarms.append(e.data["alarm"]) if e.kind == "alarm" else None
    )
    rig.load(flashes=2)
    rig.arm()
    assert rig.wait_armed()
    assert rig.run_until((IPLState.PAUSED, IPLState.FAULT), 40.0)
    assert rig.ipl.state is IPLState.PAUSED and rig.ipl.pause_reason == "charge dumped"
    assert [(a.code, a.priority, a.latches) for a in alarms] == [
        ("ipl.charge_dumped", AlarmPriority.MEDIUM, False)
    ]
    assert not rig.sim.armed and not rig.sim.charged
    rig.station.command("ipl", "resume", OPERATOR)
    run_pass(rig, 2)
    assert rig.ipl.state is IPLState.COMPLETE, rig.ipl.fault_alarm
    assert len(rig.sim.flashes) == 2


class _ReplyLostAfterSending:
    """The controller's own driver, except that the named commands reach the device
    and act there, but their reply is lost (a ``DeviceTimeout`` after sending)."""

    def __init__(self, inner: Any, *lost: str) -> None:
        self._inner = inner
        self._lost = set(lost)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in self._lost:
            return attr

        def sent_then_lost(*args: Any, **kwargs: Any) -> Any:
            attr(*args, **kwargs)
            self._lost.discard(name)
            raise DeviceTimeout(f"reply to {name} lost")

        return sent_then_lost


def test_a_pass_whose_parameters_may_not_have_reached_the_device_cannot_be_armed() -> None:
    # A SET_PARAMS whose reply is lost may have acted: the device may now hold the
    # new pass (20 J/cm2) while the controller kept the old one (10 J/cm2). Arming
    # the old pass would flash the patient with parameters nobody armed.
    rig = IPLRig.create()
    rig.load(flashes=3, fluence=10.0)
    rig.ipl.device = _ReplyLostAfterSending(rig.ipl.device, "set_params")
    with pytest.raises(ControlError, match="parameters"):
        rig.load(flashes=3, fluence=20.0)
    with pytest.raises(ControlError):
        rig.arm()
    rig.run_for(3.0)
    assert rig.sim.flashes == []
    assert not rig.sim.armed and not rig.sim.charged


class _ReadsAltered:
    """The controller's own driver, whose status readings pass through ``alter`` once
    ``on`` is set, while the handpiece stays armed: a firmware whose own interlock did
    not act (layer 1 failed), which layer 3 must not rely on."""

    def __init__(self, inner: Any, alter: Any) -> None:
        self._inner = inner
        self._alter = alter
        self.on = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def read(self) -> Any:
        reading = self._inner.read()
        return self._alter(reading) if self.on else reading


def _contact_lost(reading: Any) -> Any:
    return dataclasses.replace(reading, status=reading.status & ~IPLStatus.CONTACT_OK)


def _filter_swapped(reading: Any) -> Any:
    return dataclasses.replace(reading, filter_nm=640)


@pytest.mark.parametrize(
    ("alter", "refusal"),
    [
        # H13: "L3 and L1: ARM and FIRE need skin contact".
        (_contact_lost, "no skin contact"),
        # Arm checks the filter; one swapped after arming stops the trigger at the
        # host too, not only by the firmware dumping the charge.
        (_filter_swapped, "filter 640 nm inserted, 560 nm planned"),
    ],
    ids=["contact", "filter"],
)
def test_fire_is_refused_on_a_reading_that_no_longer_allows_it(alter: Any, refusal: str) -> None:
    # The command runs in the tick whose reading shows the change, before that
    # tick's step phase pauses the pass: the fire guard itself must refuse.
    rig = IPLRig.create()
    rig.load(flashes=2)
    rig.arm()
    assert rig.wait_armed()
    rig.station.loop.run(until=lambda: rig.ipl._may_fire(), max_duration_s=5.0)
    device = _ReadsAltered(rig.ipl.device, alter)
    rig.ipl.device = device
    device.on = True
    with pytest.raises(ControlError, match=refusal):
        rig.station.command("ipl", "fire", OPERATOR)
    assert rig.sim.flashes == []
