"""Hardware in the loop: the port is unplugged mid-delivery.

A simulator is served in-process on a real pty (:class:`PtyServer`, real time), a
``Station(RealClock())`` drives it with its control loop on its own thread, and
the delivery is started through ``loop.submit``. Then the server is stopped: the
pty master closes, as if the cable were pulled. Within a bounded time the
controller must be in FAULT with a HIGH alarm, its port closed
(``controller.device is None``), the loop thread alive and still ticking, and
nothing may hang.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from devicectl.clock import RealClock
from devicectl.control.events import Alarm, AlarmPriority, Command, Event
from devicectl.modalities.led.limits import LEDStep
from devicectl.modalities.rf.limits import RFZone
from devicectl.station import Station
from devicectl_simulators.led_firmware import LEDFirmware
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.rf_firmware import RFFirmware

OPERATOR = "tech-u"
FAULT_WITHIN_S = 3.0
COMMAND_TIMEOUT_S = 5.0


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        time.sleep(0.01)
    return True


def submit(station: Station, device: str, action: str, **args: Any) -> Any:
    future: Future[Any] = station.loop.submit(Command(device, action, args, OPERATOR))
    return future.result(timeout=COMMAND_TIMEOUT_S)


def loop_thread(station: Station) -> threading.Thread | None:
    return station.loop._thread  # the only handle on the loop thread


SETUPS: dict[str, dict[str, Any]] = {
    "rf": {
        "firmware": RFFirmware,
        "commands": [
            ("load", {"zone": RFZone("forehead", 42.0, 60.0)}),
            ("arm", {}),
            ("start", {}),
        ],
    },
    "led": {
        "firmware": LEDFirmware,
        "commands": [
            ("load", {"step": LEDStep(633, 50.0, 60.0)}),
            ("start", {}),
        ],
    },
}


@pytest.mark.parametrize("kind", ["rf", "led"])
def test_unplugged_port_mid_delivery_faults_without_hanging(kind: str) -> None:
    setup = SETUPS[kind]
    server = PtyServer(functools.partial(setup["firmware"], seed=3))  # RealClock
    path = server.start()
    station: Station | None = None
    thread_errors: list[threading.ExceptHookArgs] = []
    previous_hook = threading.excepthook
    threading.excepthook = thread_errors.append  # the loop thread's death, if it dies
    try:
        station = Station(RealClock())
        alarms: list[Alarm] = []

        def on_event(event: Event) -> None:
            if event.kind == "alarm" and event.device == kind:
                alarms.append(event.data["alarm"])

        station.loop.subscribe(on_event)
        controller = station.add(kind, path)  # waits out the simulator's 1 s boot
        assert controller.device is not None, controller.fault_alarm
        station.loop.start()
        assert wait_until(lambda: controller.reading is not None, 3.0), controller.reading_error
        for action, args in setup["commands"]:
            assert submit(station, kind, action, **args), action
        assert wait_until(lambda: controller.state.name == "DELIVERING", 3.0), controller.state
        assert wait_until(lambda: server.inspect(lambda sim: sim.output_on), 2.0)
        time.sleep(0.2)  # deliver for a moment
        assert controller.state.name == "DELIVERING", (controller.state, alarms)

        unplugged_s = time.monotonic()
        thread = loop_thread(station)
        assert thread is not None
        server.stop()  # the pty master closes: the port is unplugged
        faulted = wait_until(
            lambda: (
                (controller.state.name == "FAULT" and controller.device is None)
                or not thread.is_alive()
            ),
            FAULT_WITHIN_S,
        )
        # (an unplugged pty raises termios.error from reset_input_buffer; the drivers
        # must turn it into PortError, or the loop thread dies here)
        assert faulted, (controller.state, controller.device, alarms, thread_errors)
        assert thread.is_alive(), thread_errors
        fault_s = time.monotonic() - unplugged_s
        fault = controller.fault_alarm
        assert fault is not None and fault.priority is AlarmPriority.HIGH, fault
        assert fault.latches, fault
        assert any(a.priority is AlarmPriority.HIGH for a in alarms), alarms
        assert fault_s < FAULT_WITHIN_S

        # the loop is alive and ticking on with the port gone
        ticks = station.loop.tick_count
        assert wait_until(lambda: station.loop.tick_count >= ticks + 5, 2.0), (
            station.loop.tick_count,
            ticks,
        )
        assert thread.is_alive()
        assert controller.state.name == "FAULT" and controller.device is None
        with pytest.raises(Exception, match="fault latched"):
            submit(station, kind, "start")
    finally:
        try:
            if station is not None:
                running = loop_thread(station)
                station.loop.stop(timeout_s=5.0)
                assert running is None or not running.is_alive(), "the loop thread hung"
            server.stop()
        finally:
            threading.excepthook = previous_hook
