"""LEDModbusDriver over ``sim://led`` in simulated time: boot, refusal, on, settle, off.

The driver and the simulator are independent implementations of
docs/protocols/led.md (pymodbus on the host side, the simulator's own RTU on
the device side), so this is the first place the two meet. The simulator is
reached only through its URL (``open_port``), never imported.

Everything runs on one :class:`SimClock`: a read that finds no reply advances it
by the port timeout, and the loop below sleeps it to each 50 ms tick deadline.
"""

from __future__ import annotations

import importlib.util
import math
import time

import pytest

from devicectl.clock import SimClock
from devicectl.devices import LEDFault
from devicectl.errors import DeviceRejected, DeviceTimeout
from devicectl.transport import open_port
from devicectl.urlhandlers.protocol_sim import simulator_for
from devicectl_drivers.led_modbus import LEDModbusDriver

URL = "sim://led?seed=1"
TICK_S = 0.05

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("devicectl_simulators.led_firmware") is None,
    reason="simulators/devicectl_simulators/led_firmware.py (the LED simulator) does not exist yet",
)


def booted() -> tuple[LEDModbusDriver, SimClock]:
    """A driver on a fresh simulator, past its 1 s boot, faults cleared."""
    clock = SimClock()
    port = open_port(URL, clock=clock)
    driver = LEDModbusDriver(port, now=clock.now)
    for _ in range(20):  # each failed try costs 2 x 50 ms of simulated time
        try:
            driver.identify()
            break
        except DeviceTimeout:
            continue
    else:
        pytest.fail(f"no answer from {URL} within {clock.now():.2f} s of simulated time")
    assert 1.0 <= clock.now() < 1.2
    assert LEDFault.POWER_ON_RESET in driver.read().faults
    driver.clear_status()
    assert driver.read().faults is LEDFault.NONE
    return driver, clock


def run(driver: LEDModbusDriver, clock: SimClock, seconds: float) -> list[float]:
    """Read once per 50 ms tick (which also feeds the watchdog); measured irradiances."""
    measured = []
    deadline = clock.now()
    for _ in range(round(seconds / TICK_S)):
        deadline += TICK_S
        clock.sleep_until(deadline)
        measured.append(driver.read().irradiance_mw_cm2)
    return measured


def test_boot_is_silent_for_one_second_of_simulated_time() -> None:
    wall = time.perf_counter()
    driver, clock = booted()
    assert time.perf_counter() - wall < 1.0 <= clock.now()  # a simulated second, not a real one
    identity = driver.identify()
    assert identity.firmware.count(".") == 1
    driver.close()


def test_output_on_is_refused_with_a_zero_setpoint() -> None:
    driver, clock = booted()
    with pytest.raises(DeviceRejected) as info:
        driver.output_on()
    assert info.value.code == 4
    assert driver.output_is_on() is False
    assert simulator_for(URL, clock).output_on is False
    driver.close()


def test_full_on_settle_off_cycle_in_simulated_time() -> None:
    driver, clock = booted()
    driver.set_wavelength(830)
    driver.set_irradiance(50.0)
    reading = driver.read()
    assert (reading.wavelength_nm, reading.setpoint_mw_cm2, reading.output_on) == (830, 50.0, False)

    t_on = clock.now()
    driver.output_on()
    assert driver.output_is_on() is True
    assert simulator_for(URL, clock).output_on is True

    rising = run(driver, clock, 2.0)  # ten 0.2 s time constants
    assert rising[0] < 50.0 * 0.5  # first tick: about 1 - e^-0.25 of the way
    assert rising[-1] == pytest.approx(50.0, abs=1.0)
    reading = driver.read()
    assert reading.output_on and reading.interlock_closed
    assert reading.faults is LEDFault.NONE
    assert reading.elapsed_s == pytest.approx(clock.now() - t_on, abs=0.15)
    assert reading.panel_temp_c > 25.0 - 0.5 and not math.isnan(reading.skin_temp_c)

    driver.output_off()
    assert driver.output_is_on() is False
    assert simulator_for(URL, clock).output_on is False
    falling = run(driver, clock, 1.5)
    assert falling[-1] == pytest.approx(0.0, abs=0.5)
    assert driver.read().faults is LEDFault.NONE  # the reads fed the watchdog throughout
    driver.close()
    assert simulator_for(URL, clock).output_on is False


def test_watchdog_turns_output_off_when_the_host_goes_silent() -> None:
    driver, clock = booted()
    driver.set_irradiance(20.0)
    driver.output_on()
    run(driver, clock, 0.5)
    clock.sleep(0.3)  # longer than the 250 ms watchdog
    reading = driver.read()
    assert not reading.output_on
    assert LEDFault.WATCHDOG_TRIPPED in reading.faults
    with pytest.raises(DeviceRejected):  # latched fault: refused until cleared
        driver.output_on()
    driver.clear_status()
    driver.output_on()
    assert driver.output_is_on()
    driver.output_off()
    driver.close()
