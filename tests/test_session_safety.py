"""Session-level safety (DESIGN rules 7, 8, 9 and 12) on simulated devices.

Each device on its own goes safe when it faults; these tests are about what the
devices do together: one fault makes the whole session safe, dose follows the
site across attempts, a pause means no energy anywhere, a session resume
carries on whatever paused, and every action names its author.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from devicectl.control.events import Command
from devicectl.errors import ControlError
from devicectl.modalities.ipl.controller import IPLState
from devicectl.modalities.ipl.limits import IPLPass
from devicectl.modalities.led.limits import LEDStep
from devicectl.modalities.rf.controller import RFState
from devicectl.modalities.rf.limits import RFZone
from devicectl.session import IPLStep, LEDExposureStep, RFStep
from devicectl.session.api import run_protocol
from devicectl.session.runner import SessionRunner, SessionState
from devicectl.session.simulated import simulated_station
from devicectl.urlhandlers.protocol_sim import simulator_for

OP = "tech-042"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Any, ...]
    name: str = "session-safety"


def make(plan: Plan, *, auto: bool = True, faults: dict[str, list[str]] | None = None):
    station, tech = simulated_station(seed=7, faults=faults)
    runner = SessionRunner(
        station,
        plan,
        operator_id=OP,
        auto_confirm=auto,
        technician=tech,
        simulated=True,
    )
    return station, runner


def sim(runner: SessionRunner, device: str) -> Any:
    return simulator_for(runner.technician.urls[device], runner.station.clock)  # type: ignore[union-attr]


def energy_at_device(runner: SessionRunner, device: str) -> bool:
    """What the simulator itself says: output on, or a lamp charged or armed."""
    s = sim(runner, device)
    if device == "ipl":
        return bool(s.armed or s.charged)
    return bool(s.output_on)


def go_deaf(runner: SessionRunner, device: str) -> None:
    """The device stops answering from now on (a cable pulled), as the simulator's
    ``no_reply`` fault does; set directly so the moment is chosen by the test."""
    s = sim(runner, device)
    s.advance()
    s._deaf = True
    s._no_reply = True


RF_THEN_LED = Plan(
    (
        RFStep("rf", (RFZone("forehead", 42.0, 40.0), RFZone("chin", 42.0, 40.0))),
        LEDExposureStep("led", LEDStep(633, 90.0, 120.0)),
    )
)


def test_a_fault_on_an_idle_device_turns_off_the_device_that_is_delivering() -> None:
    # The LED stops answering at 30 s while the RF delivers the forehead.
    station, runner = make(RF_THEN_LED, faults={"led": ["no_reply@30s%2B1s"]})
    rf = station.loop.controllers["rf"]
    led = station.loop.controllers["led"]
    assert station.loop.run(until=lambda: led.latched, max_duration_s=60.0)
    # The same tick: the session faulted and RF is off, confirmed at the device.
    assert runner.state is SessionState.FAULTED
    assert rf.state is not RFState.DELIVERING
    assert rf.last_safe_state is not None and rf.last_safe_state.confirmed
    assert not energy_at_device(runner, "rf")
    # ... and energy commands are refused while the session is faulted.
    with pytest.raises(ControlError, match="session is faulted"):
        station.command("rf", "start", OP)
    station.loop.run(max_duration_s=5.0)
    assert not energy_at_device(runner, "rf")


def test_run_protocol_records_every_device_made_safe_before_the_outcome(tmp_path: Any) -> None:
    from pathlib import Path

    from devicectl.records.store import RecordStore
    from devicectl.session import SessionProtocol

    protocol = SessionProtocol(Path("two.toml"), "two devices", "1", "RF, LED", RF_THEN_LED.steps)
    db = str(tmp_path / "record.sqlite")
    outcome = run_protocol(
        protocol,
        operator_id=OP,
        auto_confirm=True,
        faults={"led": ["no_reply@30s%2B1s"]},
        db=db,
    )
    assert outcome.outcome == "fault"
    # The RF step was cut short by the LED's fault, not left delivering past it.
    assert outcome.steps[0]["outcome"] == "fault"
    assert outcome.steps[1]["outcome"] == "pending"
    # The --json summary carries the site's totals, the interrupted attempt included.
    sites = outcome.as_dict()["sites"]
    assert [s["site"] for s in sites] == ["forehead"]
    assert sites[0]["attempts"] == 1 and 0.0 < sites[0]["cem43"] < 2.0
    store = RecordStore.open(db)
    try:
        events = store.events(outcome.session_id)
    finally:
        store.close()
    kinds = [(e.kind, e.device) for e in events]
    led_latch = next(
        i
        for i, e in enumerate(events)
        if e.kind == "state" and e.device == "led" and e.data.get("state") == "fault"
    )
    rf_off = [
        i
        for i, e in enumerate(events)
        if i > led_latch
        and e.kind == "device_command"
        and e.device == "rf"
        and e.data.get("command") == "safe_state"
        and e.data.get("confirmed") is True
    ]
    assert rf_off, kinds[led_latch:]
    secured = [i for i, (k, _) in enumerate(kinds) if k == "session_secured"]
    ended = [
        i
        for i, e in enumerate(events)
        if e.kind == "session_state" and e.data.get("state") in ("faulted", "ended")
    ]
    assert secured and ended and rf_off[0] < ended[0] and secured[0] < ended[0]


def test_a_resumed_zone_holds_only_what_is_left_and_the_site_dose_adds_up() -> None:
    plan = Plan((RFStep("rf", (RFZone("forehead", 42.0, 280.0),)),))
    station, runner = make(plan, auto=False, faults={"rf": ["no_reply@270s%2B300ms"]})
    rf = station.loop.controllers["rf"]
    assert station.loop.run(
        until=lambda: runner.state is SessionState.FAULTED, max_duration_s=400.0
    )
    first = rf.results[-1]
    assert first.outcome == "fault" and first.held_s > 200.0
    station.loop.run(max_duration_s=2.0)
    station.command("rf", "acknowledge", OP)
    station.command("session", "resume", OP)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=400.0)
    assert runner.state is SessionState.COMPLETE
    second = rf.results[-1]
    assert second.outcome == "complete"
    # The hold carried on: 280 s in all, not 280 more.
    assert first.held_s + second.held_s == pytest.approx(280.0, abs=0.2)
    assert second.held_s < 280.0 - 200.0
    site = rf.sites.get("forehead")
    assert site is not None and site.attempts == 2
    assert site.held_s == pytest.approx(280.0, abs=0.2)
    # The site's dose is the sum of both attempts, and within the limit.
    assert site.cem43 == pytest.approx(first.cem43 + second.cem43, rel=1e-6)
    assert second.site_cem43 == pytest.approx(site.cem43)
    assert site.cem43 <= rf.limits.cem43_max
    assert site.time_at_target_s <= rf.limits.time_at_target_max_s


def test_a_site_at_its_limit_is_refused_with_its_dose_named() -> None:
    # Two steps on one site: the time at target is the site's, not the step's.
    plan = Plan(
        (
            RFStep("rf 1", (RFZone("forehead", 42.0, 250.0),)),
            RFStep("rf 2", (RFZone("Forehead", 42.0, 250.0),)),
        )
    )
    station, runner = make(plan, auto=False)
    rf = station.loop.controllers["rf"]
    assert station.loop.run(
        until=lambda: runner.state is SessionState.FAULTED, max_duration_s=900.0
    )
    assert rf.fault_alarm is not None and rf.fault_alarm.code == "rf.time_at_target"
    site = rf.sites.get("forehead")
    assert site is not None
    # Supervised against the total: tripped at the limit, one tick's slack at most.
    assert site.time_at_target_s <= rf.limits.time_at_target_max_s + 0.06
    station.command("rf", "acknowledge", OP)
    station.command("session", "resume", OP)
    station.loop.run(max_duration_s=10.0)  # the technician moves the handpiece first
    assert runner.state is SessionState.FAULTED
    assert runner.fault_message is not None
    assert "site 'forehead'" in runner.fault_message
    assert "s at target of 300" in runner.fault_message
    assert rf.state is not RFState.DELIVERING and not energy_at_device(runner, "rf")


TRAIN = IPLPass(560, 12.0, 4.0, flashes=10, pulse_count=2, pulse_delay_ms=20.0)


def test_pause_during_a_train_aborts_it_disarms_and_no_trigger_fires() -> None:
    station, runner = make(Plan((IPLStep("ipl", TRAIN),)))
    ipl = station.loop.controllers["ipl"]
    assert station.loop.run(until=lambda: len(ipl.flashes) >= 3, max_duration_s=60.0)
    assert station.loop.run(until=lambda: ipl.state is IPLState.FIRING, max_duration_s=5.0)
    station.command("session", "pause", OP)
    assert runner.state is SessionState.PAUSED
    assert ipl.state not in (IPLState.CHARGING, IPLState.ARMED, IPLState.FIRING)
    assert not energy_at_device(runner, "ipl")
    shots = sim(runner, "ipl")._shots if hasattr(sim(runner, "ipl"), "_shots") else None
    for action in ("fire", "arm", "resume"):
        with pytest.raises(ControlError):
            station.command("ipl", action, OP, eye_protection=True)
    station.loop.run(max_duration_s=35.0)  # well past a 30 s charge hold
    assert not energy_at_device(runner, "ipl")
    if shots is not None:
        assert sim(runner, "ipl")._shots == shots
    station.command("session", "resume", OP)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=120.0)
    assert runner.state is SessionState.COMPLETE
    detail = runner.steps[0].detail
    # The interrupted train counts as fired: never more than the planned flashes.
    assert detail["flashes_done"] == TRAIN.flashes
    assert detail.get("flashes_interrupted", 0) == 1
    assert len(detail["delivered_j_cm2"]) == TRAIN.flashes - 1


@pytest.mark.parametrize("device", ["rf", "led"])
def test_a_session_pause_turns_the_output_off_and_refuses_energy(device: str) -> None:
    plan = RF_THEN_LED
    station, runner = make(plan)
    controller = station.loop.controllers[device]
    assert station.loop.run(
        until=lambda: controller.state.value == "delivering", max_duration_s=300.0
    )
    station.loop.run(max_duration_s=3.0)
    station.command("session", "pause", OP)
    assert not energy_at_device(runner, device)
    with pytest.raises(ControlError, match="session is paused"):
        station.command(device, "resume", OP)
    station.loop.run(max_duration_s=5.0)
    assert not energy_at_device(runner, device)
    station.command("session", "resume", OP)
    assert controller.state.value == "delivering"
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=600.0)
    assert runner.state is SessionState.COMPLETE


def test_the_session_resume_carries_on_a_zone_paused_by_contact_loss() -> None:
    plan = Plan((RFStep("rf", (RFZone("forehead", 42.0, 60.0),)),))
    station, runner = make(plan, faults={"rf": ["contact_loss@30s%2B2s"]})
    rf = station.loop.controllers["rf"]
    assert station.loop.run(until=lambda: rf.state is RFState.PAUSED, max_duration_s=60.0)
    assert runner.state is SessionState.RUNNING
    station.loop.run(max_duration_s=3.0)  # contact is back
    station.command("session", "resume", OP)
    assert rf.state is RFState.DELIVERING
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=200.0)
    assert runner.state is SessionState.COMPLETE


def test_a_session_resume_with_nothing_paused_says_so() -> None:
    plan = Plan((RFStep("rf", (RFZone("forehead", 42.0, 60.0),)),))
    station, _runner = make(plan)
    station.loop.run(max_duration_s=5.0)
    with pytest.raises(ControlError, match="nothing to resume while running"):
        station.command("session", "resume", OP)


def test_unattended_flashes_are_recorded_as_auto() -> None:
    station, runner = make(Plan((IPLStep("ipl", IPLPass(560, 15.0, 10.0, flashes=3)),)))
    events: list[Any] = []
    station.loop.subscribe(events.append)
    assert station.loop.run(until=lambda: runner.finished, max_duration_s=60.0)
    actions = [
        (e.data["action"], e.data["operator_id"])
        for e in events
        if e.kind == "command" and e.device == "ipl"
    ]
    fires = [op for action, op in actions if action == "fire"]
    assert fires == ["auto"] * 3
    assert {op for _, op in actions} == {"auto"}


# -- the matrix: each device faults while another is in each of its energy states ----

ENERGY_CASES = [
    ("rf", "delivering"),
    ("ipl", "charging"),
    ("ipl", "armed"),
    ("ipl", "firing"),
    ("led", "delivering"),
]
STEPS = {
    "rf": RFStep("rf", (RFZone("forehead", 42.0, 60.0),)),
    "ipl": IPLStep("ipl", TRAIN),
    "led": LEDExposureStep("led", LEDStep(633, 90.0, 120.0)),
}
MATRIX = [
    (device, state, other, how, attended)
    for device, state in ENERGY_CASES
    for other in ("rf", "ipl", "led")
    if other != device
    for how in ("comms_lost", "estop")
    for attended in (False, True)
]


@pytest.mark.parametrize(("device", "state", "other", "how", "attended"), MATRIX)
def test_one_fault_one_safe_session(
    device: str, state: str, other: str, how: str, attended: bool
) -> None:
    station, runner = make(Plan((STEPS[device],)), auto=not attended)
    ctl = station.loop.controllers[device]
    faulting = station.loop.controllers[other]
    pending: list[Any] = []

    def reach() -> bool:
        # The operator at the chair: answers each prompt, pulls the trigger.
        if attended and runner.state is SessionState.WAITING_CONFIRM and not pending:
            pending.append(
                station.loop.submit(Command("session", runner.awaiting or "confirm", {}, OP))
            )
        if attended and device == "ipl" and ctl.state is IPLState.ARMED and ctl._may_fire():
            station.loop.submit(Command("ipl", "fire", {}, OP))
        if pending and pending[0].done():
            pending.clear()
        return bool(ctl.state.value == state)

    assert station.loop.run(until=reach, max_duration_s=120.0), ctl.state
    assert energy_at_device(runner, device) or state in ("charging",)
    if how == "estop":
        station.command(other, "estop", OP)
        ticks = 0
    else:
        go_deaf(runner, other)
        ticks = 0
        while not faulting.latched and ticks < 10:
            station.loop.tick()
            ticks += 1
        # Stale is no valid reading for 2 ticks: latched on the 2nd or 3rd.
        assert faulting.latched and ticks <= 3, (ticks, faulting.state)
    # At the latch's tick (the runner runs last in it) or at most one tick later.
    if runner.state is not SessionState.FAULTED:
        station.loop.tick()
    assert runner.state is SessionState.FAULTED, runner.state
    assert ctl.state.value not in ("delivering", "charging", "armed", "firing")
    assert not energy_at_device(runner, device), (device, ctl.state)
    for action in ("start", "arm", "fire", "resume"):
        if action in ctl.OPERATOR_ACTIONS:
            with pytest.raises(ControlError):
                station.command(device, action, OP, eye_protection=True)
    station.loop.run(max_duration_s=2.0)
    assert not energy_at_device(runner, device)


# -- the same rule over real ptys: each device served by its simulator on a pty ------

PTY_CASES = [
    # (delivering device and its step, the device that stops answering, when)
    ("rf", "led", "no_reply@12s"),
    ("rf", "ipl", "no_reply@12s"),
    ("led", "rf", "no_reply@12s"),
    ("ipl", "led", "no_reply@8s"),
]


@pytest.mark.parametrize(("device", "other", "fault"), PTY_CASES)
def test_one_fault_one_safe_session_on_served_ptys(device: str, other: str, fault: str) -> None:
    import functools

    from devicectl.clock import SimClock
    from devicectl.plugins import SIMULATOR_GROUP, load_plugin
    from devicectl.station import Station
    from devicectl_simulators.pty_server import PtyServer
    from tests.pty_rig import BOOT_S, DEFAULT_OPTIONS

    # A generous wall-clock port timeout: on this path it costs no simulated time.
    station = Station(SimClock(), port_timeout_s=0.2)
    servers: dict[str, PtyServer] = {}
    try:
        for name in ("rf", "ipl", "led"):
            factory = load_plugin(SIMULATOR_GROUP, name)
            faults = (fault,) if name == other else ()
            server = PtyServer(
                functools.partial(factory, seed=3, faults=faults, **DEFAULT_OPTIONS[name]),
                clock=station.clock,
            )
            servers[name] = server
            server.start()
        station.clock.sleep(BOOT_S)
        for name, server in servers.items():
            getattr(station, f"add_{name}")(server.path)
        runner = SessionRunner(
            station, Plan((STEPS[device],)), operator_id=OP, auto_confirm=True, simulated=True
        )
        ctl = station.loop.controllers[device]
        faulting = station.loop.controllers[other]
        seen: list[str] = []

        def latched() -> bool:
            seen.append(ctl.state.value)
            return bool(faulting.latched)

        assert station.loop.run(until=latched, max_duration_s=30.0)
        # In the tick before, the device was delivering energy ...
        assert seen[-2] in ("delivering", "charging", "armed", "firing"), seen[-5:]
        # ... and the latch's tick ran the runner last: the whole session is safe already.
        assert runner.state is SessionState.FAULTED
        assert ctl.state.value not in ("delivering", "charging", "armed", "firing")

        def energy() -> bool:
            sim = servers[device].simulator
            return (
                bool(
                    servers[device].inspect(
                        lambda s: (s.armed or s.charged) if device == "ipl" else s.output_on
                    )
                )
                if sim is not None
                else False
            )

        assert not energy(), (device, ctl.state)
        station.loop.run(max_duration_s=1.0)
        assert not energy()
    finally:
        for server in servers.values():
            server.stop()


def test_the_report_gives_each_sites_dose_for_the_whole_session(tmp_path: Any) -> None:
    from pathlib import Path

    from devicectl.records.store import RecordStore
    from devicectl.report import render_report
    from devicectl.session import SessionProtocol

    steps = (
        RFStep("rf 1", (RFZone("forehead", 42.0, 30.0), RFZone("chin", 42.0, 30.0))),
        RFStep("rf 2", (RFZone("Forehead", 42.0, 30.0),)),
    )
    protocol = SessionProtocol(Path("sites.toml"), "sites", "1", "one site twice", steps)
    db = str(tmp_path / "record.sqlite")
    outcome = run_protocol(protocol, operator_id=OP, auto_confirm=True, db=db)
    assert outcome.outcome == "complete"
    sites = {s["site"]: s for s in outcome.sites}
    assert set(sites) == {"forehead", "chin"}
    assert sites["forehead"]["attempts"] == 2 and sites["chin"]["attempts"] == 1
    assert sites["forehead"]["held_s"] == pytest.approx(60.0, abs=0.2)
    store = RecordStore.open(db)
    try:
        page = render_report(store, outcome.session_id)
    finally:
        store.close()
    assert "RF results per site (whole session)" in page
    section = page.split("RF results per site (whole session)")[1].split("</table>")[0]
    assert section.count("<tr>") == 3  # header, forehead, chin
    forehead = section.split("forehead")[1].split("</tr>")[0]
    assert f"{sites['forehead']['cem43']:.2f}" in forehead and ">2<" in forehead


def test_a_second_session_on_the_same_station_is_not_held_by_the_first() -> None:
    plan = Plan((RFStep("rf", (RFZone("forehead", 42.0, 10.0),)),))
    station, first = make(plan)
    assert station.loop.run(until=lambda: first.finished, max_duration_s=120.0)
    rf = station.loop.controllers["rf"]
    assert rf.session_hold == "complete"  # the ended session still forbids energy
    del station.loop.controllers[first.name]  # as the station service does between sessions
    second = SessionRunner(
        station,
        Plan((RFStep("rf", (RFZone("chin", 42.0, 10.0),)),)),
        operator_id=OP,
        auto_confirm=True,
        technician=first.technician,
        simulated=True,
    )
    assert rf.session_hold is None
    assert station.loop.run(until=lambda: second.finished, max_duration_s=120.0)
    assert second.state is SessionState.COMPLETE


def test_a_site_that_has_had_its_thermal_dose_is_refused_at_load() -> None:
    # The CEM43 limit is the site's: a site at it is refused before anything is armed,
    # and the refusal names the dose; a site just under it may still be treated.
    from tests.rf_scenario import RFRig

    rig = RFRig.create()
    rf = rig.rf
    limit = rf.limits.cem43_max
    rf.sites.record(
        "forehead", cem43_total=limit, time_at_target_total_s=30.0, held_s=30.0, peak_c=42.6
    )
    rf.sites.record(
        "chin", cem43_total=limit - 0.01, time_at_target_total_s=30.0, held_s=30.0, peak_c=42.6
    )
    with pytest.raises(ControlError, match=rf"site 'forehead' has had {limit:.2f} CEM43 of"):
        rig.station.command("rf", "load", OP, zone=RFZone("Forehead", 42.0, 60.0))
    assert rf.zone is None and rf.state is RFState.IDLE
    with pytest.raises(ControlError):
        rig.station.command("rf", "arm", OP)
    rig.run_for(2.0)
    assert not rig.sim.output_on
    rig.station.command("rf", "load", OP, zone=RFZone("chin", 42.0, 60.0))
    assert rf.zone is not None and rf.zone.name == "chin"
