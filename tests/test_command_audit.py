"""Every driver call a controller makes is recorded: one ``device_command`` path.

Each event names the command, its arguments, whether it completed, its result
or its error, its start and end on the controller's clock, and the driver
calls inside it; failures are recorded as well as successes.
"""

from __future__ import annotations

import contextlib
from typing import Any

from devicectl.clock import SimClock
from devicectl.control.audit import AuditedDevice, CommandAudit
from devicectl.control.events import Event
from devicectl.errors import DeviceTimeout
from devicectl.modalities.rf.controller import RFState
from devicectl.modalities.rf.limits import RFZone
from devicectl.station import Station
from tests.rf_scenario import OPERATOR, RFRig


def _commands(events: list[Event], command: str | None = None) -> list[dict[str, Any]]:
    return [
        e.data
        for e in events
        if e.kind == "device_command" and (command is None or e.data["command"] == command)
    ]


def _assert_timed(data: dict[str, Any]) -> None:
    assert isinstance(data["t_start_s"], float) and isinstance(data["t_end_s"], float)
    assert data["t_start_s"] <= data["t_end_s"]
    for call in data["calls"]:
        assert data["t_start_s"] <= call["t_start_s"] <= call["t_end_s"] <= data["t_end_s"]


def test_connect_records_clear_status_and_identify_with_their_results_and_times() -> None:
    station = Station.simulated()
    events: list[Event] = []
    station.loop.subscribe(events.append)
    station.add_rf("sim://rf?seed=7")
    [connect] = _commands(events, "connect")
    assert connect["ok"] is True and connect["error"] is None
    calls = connect["calls"]
    # the simulated device boots first: every try of the boot wait is recorded
    assert [c["call"] for c in calls[-2:]] == ["clear_status", "identify"]
    assert all(c["call"] == "clear_status" and not c["ok"] for c in calls[:-2])
    assert all(c["error"].startswith("DeviceTimeout") for c in calls[:-2])
    identify = calls[-1]
    assert identify["ok"] is True and identify["result"] == connect["result"]
    assert identify["result"].model
    _assert_timed(connect)
    # connected is told after the command that found it out
    kinds = [e.kind for e in events]
    assert kinds.index("connected") > kinds.index("device_command")


def test_clear_status_on_acknowledge_is_recorded() -> None:
    rig = RFRig.create()
    events: list[Event] = []
    rig.station.loop.subscribe(events.append)
    rig.station.command("rf", "estop", OPERATOR)
    rig.run_for(0.1)
    rig.station.command("rf", "acknowledge", OPERATOR)
    [clear] = _commands(events, "clear_status")
    assert clear["ok"] is True and clear["args"] == {}
    assert [c["call"] for c in clear["calls"]] == ["clear_status"]
    _assert_timed(clear)
    kinds = [(e.kind, e.data.get("command")) for e in events]
    assert kinds.index(("device_command", "clear_status")) < kinds.index(("acknowledged", None))


def test_output_on_and_safe_state_carry_their_driver_calls() -> None:
    rig = RFRig.create()
    events: list[Event] = []
    rig.station.loop.subscribe(events.append)
    rig.start_zone()
    rig.run_for(1.0)
    rig.station.command("rf", "pause", OPERATOR)
    [on] = _commands(events, "output_on")
    assert on["ok"] is True and on["args"] == {"power_w": on["power_w"]}
    assert [c["call"] for c in on["calls"]] == ["set_power", "output_on"]
    assert on["calls"][0]["args"] == {"power_w": on["power_w"]}
    _assert_timed(on)
    [safe] = _commands(events, "safe_state")
    assert safe["ok"] is True and safe["confirmed"] is True and safe["port_closed"] is False
    assert [c["call"] for c in safe["calls"]] == ["output_off", "output_is_on"]
    assert safe["calls"][1]["result"] is False
    _assert_timed(safe)


def test_a_failing_energy_command_is_recorded_with_its_exception() -> None:
    rig = RFRig.create()
    events: list[Event] = []
    rig.station.loop.subscribe(events.append)
    driver = rig.rf.device._device  # type: ignore[union-attr]

    def lost_reply() -> None:
        raise DeviceTimeout("no reply to OUTP ON")

    driver.output_on = lost_reply
    rig.station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 60.0))
    rig.station.command("rf", "arm", OPERATOR)
    rig.station.command("rf", "start", OPERATOR)
    assert rig.rf.state is RFState.FAULT
    assert rig.rf.fault_alarm is not None and rig.rf.fault_alarm.code == "rf.command_failed"
    [on] = _commands(events, "output_on")
    assert on["ok"] is False
    assert on["error"] == "DeviceTimeout: no reply to OUTP ON"
    failed = on["calls"][-1]
    assert failed["call"] == "output_on" and failed["ok"] is False
    assert failed["error"] == "DeviceTimeout: no reply to OUTP ON"
    _assert_timed(on)
    # recorded before the fault it caused, and the safe state follows it
    order = [(e.kind, e.data.get("command")) for e in events]
    assert order.index(("device_command", "output_on")) < order.index(("alarm", None))
    assert order.index(("alarm", None)) < order.index(("device_command", "safe_state"))


class _FlakyReads:
    def __init__(self) -> None:
        self.fail = False

    def read(self) -> str:
        if self.fail:
            raise DeviceTimeout("no reply")
        return "reading"


def test_reads_are_recorded_only_when_a_run_of_failures_starts_and_ends() -> None:
    clock = SimClock()
    emitted: list[dict[str, Any]] = []
    device: Any = AuditedDevice(
        _FlakyReads(), CommandAudit(clock, lambda kind, **d: emitted.append(d))
    )
    for _ in range(5):
        device.read()
    assert emitted == []  # a good read is a reading, not a command
    device._device.fail = True
    for _ in range(4):
        with contextlib.suppress(DeviceTimeout):
            device.read()
    assert [(d["command"], d["ok"], d["error"]) for d in emitted] == [
        ("read", False, "DeviceTimeout: no reply")
    ]
    device._device.fail = False
    device.read()
    device.read()
    assert len(emitted) == 2
    assert emitted[1]["ok"] is True and emitted[1]["failed_reads"] == 4


def test_a_read_inside_a_command_is_one_of_its_calls() -> None:
    clock = SimClock()
    emitted: list[dict[str, Any]] = []
    audit = CommandAudit(clock, lambda kind, **d: emitted.append(d))
    device: Any = AuditedDevice(_FlakyReads(), audit)
    with audit.command("safe_state") as step:
        step.fields["confirmed"] = device.read() == "reading"
    [safe] = emitted
    assert safe["confirmed"] is True
    assert [(c["call"], c["result"]) for c in safe["calls"]] == [("read", "reading")]
