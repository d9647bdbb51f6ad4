"""While a fault or e-stop is latched the device must stay safe (safety rule 2).

Each test latches an e-stop (a host-side latch: the firmware itself is fine and
would accept commands), then switches the device's energy on behind the
controller's back through the very driver object it holds, as a second host
or a firmware that turned itself on would. The next tick must raise the high
``<modality>.energy_while_latched`` alarm, put the device back in its safe
state, and leave the latch in place.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from devicectl.control.events import AlarmPriority, Event
from devicectl.devices import IPLParams, IPLStatus
from devicectl.modalities.ipl.controller import IPLState
from devicectl.modalities.led.controller import LEDState
from devicectl.modalities.rf.controller import RFState
from devicectl.station import Station
from tests.ipl_scenario import OPERATOR, IPLRig
from tests.led_scenario import LEDRig
from tests.rf_scenario import RFRig

ENERGY_BITS = int(IPLStatus.ARMED | IPLStatus.CHARGED | IPLStatus.CHARGING)


def _alarms(station: Station) -> list[Any]:
    seen: list[Any] = []

    def on_event(event: Event) -> None:
        if event.kind == "alarm":
            seen.append(event.data["alarm"])

    station.loop.subscribe(on_event)
    return seen


def _codes(alarms: list[Any]) -> list[str]:
    return [a.code for a in alarms]


def test_rf_output_switched_on_while_latched_is_switched_off_again() -> None:
    rig = RFRig.create()
    alarms = _alarms(rig.station)
    rig.station.command("rf", "estop", OPERATOR)
    assert rig.rf.state is RFState.ESTOP
    rig.run_for(0.5)
    assert "rf.energy_while_latched" not in _codes(alarms)  # a quiet latch raises nothing

    rig.rf.device.set_power(10.0)  # the rogue host
    rig.rf.device.output_on()
    assert rig.sim.output_on
    rig.run_for(0.1)  # two ticks: sample, watch

    assert not rig.sim.output_on
    assert rig.rf.state is RFState.ESTOP
    raised = [a for a in alarms if a.code == "rf.energy_while_latched"]
    assert len(raised) == 1
    assert raised[0].priority is AlarmPriority.HIGH
    assert rig.rf.last_safe_state is not None and rig.rf.last_safe_state.confirmed
    rig.run_for(1.0)
    assert _codes(alarms).count("rf.energy_while_latched") == 1  # once per episode
    assert not rig.sim.output_on


def test_rf_output_on_is_seen_while_latched_even_if_only_its_status_bit_says_so() -> None:
    """A reading whose ON/OFF field says OFF while status bit 0 says the output is on:
    the watch must not take the field's word for it."""
    rig = RFRig.create()
    alarms = _alarms(rig.station)
    rig.station.command("rf", "estop", OPERATOR)
    device = rig.rf.device
    really_read = device.read
    device.read = lambda: replace(really_read(), output_on=False)  # type: ignore[method-assign]
    device.set_power(10.0)  # the rogue host
    device.output_on()
    assert rig.sim.output_on
    rig.run_for(0.1)

    assert not rig.sim.output_on
    assert rig.rf.state is RFState.ESTOP
    assert "rf.energy_while_latched" in _codes(alarms)


def test_led_output_switched_on_while_latched_is_switched_off_again() -> None:
    rig = LEDRig.create()
    alarms = _alarms(rig.station)
    rig.station.command("led", "estop", OPERATOR)
    assert rig.led.state is LEDState.ESTOP

    rig.led.device.set_irradiance(50.0)
    rig.led.device.output_on()
    assert rig.sim.output_on
    rig.run_for(0.1)

    assert not rig.sim.output_on
    assert rig.led.state is LEDState.ESTOP
    assert _codes(alarms).count("led.energy_while_latched") == 1


def test_ipl_charged_while_latched_is_dumped_again() -> None:
    rig = IPLRig.create()
    alarms = _alarms(rig.station)
    rig.station.command("ipl", "estop", OPERATOR)
    assert rig.ipl.state is IPLState.ESTOP

    rig.ipl.device.set_params(IPLParams(560, 15.0, 10.0))
    rig.ipl.device.charge()
    assert int(rig.ipl.device.read().status) & ENERGY_BITS
    rig.run_for(0.1)

    assert not int(rig.ipl.device.read().status) & ENERGY_BITS
    assert rig.ipl.state is IPLState.ESTOP
    assert _codes(alarms).count("ipl.energy_while_latched") == 1


def test_a_watch_that_cannot_confirm_off_closes_the_port() -> None:
    rig = RFRig.create()
    rig.station.command("rf", "estop", OPERATOR)
    device = rig.rf.device
    device.set_power(10.0)
    device.output_on()
    # The device now ignores OFF: the readback keeps saying ON.
    device.output_off = lambda: None  # type: ignore[method-assign]
    rig.run_for(0.1)
    assert rig.rf.device is None  # port closed: the firmware watchdog takes over
    assert rig.rf.last_safe_state is not None and rig.rf.last_safe_state.port_closed
    rig.run_for(0.3)  # past the 250 ms watchdog of the simulator
    assert not rig.sim.output_on
    assert rig.rf.state is RFState.ESTOP


def test_reported_energy_trusts_the_safe_state_readback_over_an_older_reading() -> None:
    rig = RFRig.create()
    rig.start_zone()
    rig.run_for(1.0)
    assert rig.rf.reading is not None and rig.rf.reading.output_on
    assert rig.rf.reported_energy() is True
    rig.station.command("rf", "estop", OPERATOR)  # between ticks: the reading is older
    assert rig.rf.reading.output_on  # what the tick's sample said
    assert rig.rf.reported_energy() is False  # what the readback since says
    rig.run_for(0.05)
    assert rig.rf.reading is not None and not rig.rf.reading.output_on
    assert rig.rf.reported_energy() is False
    # A newer reading that shows energy again wins over the old readback.
    rig.rf.device.set_power(10.0)
    rig.rf.device.output_on()
    rig.rf.sample(rig.station.clock.now() + 0.05)
    assert rig.rf.reported_energy() is True
