"""The LED simulator on a real pty, spoken to by a stock pymodbus RTU client.

Nothing of ours runs on the host side: the client is pymodbus's own
``ModbusSerialClient`` opening the pty's slave path through pyserial, in real
time. This checks the simulator's hand-written RTU framing and CRC against an
independent, widely used implementation, and :class:`PtyServer` end to end.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import pytest
from pymodbus import FramerType
from pymodbus.client import ModbusSerialClient
from pymodbus.exceptions import ModbusIOException

from devicectl_simulators.led_firmware import LEDFirmware
from devicectl_simulators.pty_server import PtyServer

UNIT = 1


@pytest.fixture
def served() -> Iterator[tuple[PtyServer, ModbusSerialClient]]:
    server = PtyServer(functools.partial(LEDFirmware, seed=1))
    path = server.start()
    client = ModbusSerialClient(
        port=path, framer=FramerType.RTU, baudrate=115200, timeout=0.2, retries=1
    )
    try:
        assert client.connect()
        yield server, client
    finally:
        client.close()
        server.stop()
    assert server.error is None


def wait_for_boot(client: ModbusSerialClient) -> list[int]:
    """Read input registers 0-7 until the 1 s boot is over (no answer meanwhile)."""
    deadline = time.monotonic() + 3.0
    while True:
        try:
            response = client.read_input_registers(0, count=8, device_id=UNIT)
        except ModbusIOException:
            assert time.monotonic() < deadline, "the simulator never answered"
            continue
        assert not response.isError(), response
        return list(response.registers)


def test_stock_pymodbus_client_drives_the_led_simulator_on_a_pty(
    served: tuple[PtyServer, ModbusSerialClient],
) -> None:
    server, client = served
    values = wait_for_boot(client)
    assert values[0] == 0  # dark
    assert values[3] == 1  # interlock closed
    assert values[5] & 0b100000  # power-on reset
    assert values[6] == 0 and values[7] == 0x0100

    assert not client.write_register(4, 1, device_id=UNIT).isError()  # clear faults
    assert not client.write_registers(0, [830, 800], device_id=UNIT).isError()
    assert not client.write_register(2, 1, device_id=UNIT).isError()  # output on
    holding = client.read_holding_registers(0, count=5, device_id=UNIT)
    assert list(holding.registers) == [830, 800, 1, 0, 0]

    # Illegal addresses: exception 02, and the link keeps working.
    response = client.read_input_registers(8, count=1, device_id=UNIT)
    assert response.isError() and response.exception_code == 2
    response = client.read_holding_registers(3, count=5, device_id=UNIT)
    assert response.isError() and response.exception_code == 2
    response = client.write_register(0, 700, device_id=UNIT)
    assert response.isError() and response.exception_code == 3

    # Heartbeat by reading every 20 ms for a second: irradiance rises, output stays on.
    irradiance = []
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        t_sent = time.monotonic()
        response = client.read_input_registers(0, count=8, device_id=UNIT)
        t_answered = time.monotonic()
        assert not response.isError(), response
        irradiance.append(response.registers[0])
        assert response.registers[6] == 1
        time.sleep(0.02)
    assert irradiance[-1] >= 790  # 80.0 mW/cm2 after five time constants
    assert irradiance == sorted(irradiance)
    assert server.inspect(lambda sim: sim.output_on)

    # Silence: the firmware's 250 ms watchdog turns the output off. The last
    # frame reached the device between t_sent and t_answered (same monotonic clock).
    while server.inspect(lambda sim: sim.output_on):
        assert time.monotonic() - t_answered < 1.0, "the watchdog never fired"
        time.sleep(0.005)
    seen_off = time.monotonic()
    t_off, on, reason = server.inspect(lambda sim: sim.output_log[-1])
    assert (on, reason) == (False, "watchdog")
    assert t_sent + 0.25 <= t_off <= t_answered + 0.25
    assert seen_off - t_answered <= 0.4
    values = list(client.read_input_registers(0, count=8, device_id=UNIT).registers)
    assert values[5] == 0b1 and values[6] == 0


def test_stock_pymodbus_tcp_client_reads_the_led_over_modbus_tcp() -> None:
    """``sim serve led --modbus-tcp``: MBAP framing, for a stock ModbusTcpClient."""
    import threading

    from pymodbus.client import ModbusTcpClient

    from devicectl_simulators.serve import serve
    from devicectl_simulators.tcp_server import TcpServer

    server = TcpServer(functools.partial(LEDFirmware, seed=1), modbus_tcp=True)
    host, port = server.start()
    assert server.url == f"modbus-tcp://{host}:{port}"
    client = ModbusTcpClient(host, port=port, timeout=0.3, retries=1)
    try:
        assert client.connect()
        deadline = time.monotonic() + 3.0
        while True:  # the 1 s boot: no answer meanwhile
            try:
                response = client.read_input_registers(0, count=8, device_id=UNIT)
                if not response.isError():
                    break
            except ModbusIOException:
                pass
            assert time.monotonic() < deadline, "the simulator never answered"
        values = list(response.registers)
        assert values[0] == 0 and values[3] == 1 and values[7] == 0x0100  # per led.md
        assert not client.write_register(4, 1, device_id=UNIT).isError()  # clear faults
        assert not client.write_registers(0, [633, 500], device_id=UNIT).isError()
        holding = client.read_holding_registers(0, count=5, device_id=UNIT)
        assert list(holding.registers) == [633, 500, 0, 0, 0]
        response = client.read_input_registers(8, count=1, device_id=UNIT)
        assert response.isError() and response.exception_code == 2
    finally:
        client.close()
        server.stop()
    assert server.error is None

    # The same through serve(): other simulators are refused.
    import io

    stop = threading.Event()
    stop.set()
    with pytest.raises(ValueError, match="Modbus RTU simulators"):
        serve(
            "rf",
            LEDFirmware,
            mode="modbus-tcp",
            address="127.0.0.1:0",
            stdout=io.StringIO(),
            stop=stop,
        )
