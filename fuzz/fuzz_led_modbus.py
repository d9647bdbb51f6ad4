"""atheris fuzzer for the LED (Modbus RTU) parsers: the driver's ``read`` and the simulator.

Not run by pytest and atheris is not a project dependency. Run with, e.g.::

    uv run --with atheris python fuzz/fuzz_led_modbus.py -max_total_time=20

The driver reads through pymodbus over a fake port that answers with fuzzed
bytes: anything but a devicectl DeviceError escaping ``read`` is a crash. The
simulator is fed fuzzed bytes that hold no CRC-valid window: any exception, any
reply, or the output switching on is a crash.
"""

from __future__ import annotations

import contextlib
import logging
import struct
import sys
from collections import deque

import atheris

with atheris.instrument_imports():
    from devicectl.clock import SimClock
    from devicectl.errors import DeviceError
    from devicectl_drivers.led_modbus import LEDModbusDriver
    from devicectl_simulators.led_firmware import LEDFirmware, crc16_modbus

logging.disable(logging.CRITICAL)


class FakePort:
    def __init__(self, replies: list[bytes]) -> None:
        self.timeout: float | None = 0.001
        self.baudrate = 115200
        self.is_open = True
        self._replies = deque(replies)
        self._rx = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def write(self, data: bytes) -> int:
        self._rx += self._replies.popleft() if self._replies else b""
        return len(data)

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def close(self) -> None:
        self.is_open = False


def _adu(body: bytes) -> bytes:
    return body + crc16_modbus(body).to_bytes(2, "little")


def _has_crc_window(stream: bytes) -> bool:
    n = len(stream)
    for i in range(n):
        for length in range(4, min(n - i, 264) + 1):
            frame = stream[i : i + length]
            if crc16_modbus(frame[:-2]) == int.from_bytes(frame[-2:], "little"):
                return True
    return False


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    replies = [fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 30)) for _ in range(2)]
    # Half the time, start from a good reply so the fuzzer gets past the CRC.
    if fdp.ConsumeBool():
        regs = struct.pack(">8H", 500, 300, 340, 1, 10, 0, 1, 0x0100)
        good = _adu(bytes((1, 4, 16)) + regs)
        replies[0] = good[: len(replies[0])] + replies[0][len(good) :] if replies[0] else good
    driver = LEDModbusDriver(FakePort(replies), now=lambda: 1.0, timeout_s=0.001, retries=1)
    with contextlib.suppress(DeviceError):
        driver.read()

    stream = fdp.ConsumeBytes(min(fdp.remaining_bytes(), 64))
    if _has_crc_window(stream):
        return
    clock = SimClock()
    sim = LEDFirmware(clock, seed=1)
    clock.sleep(1.5)
    sim.feed(stream)
    if sim.take():
        raise AssertionError(f"reply to an invalid stream {stream!r}")
    if sim.output_on:
        raise AssertionError(f"output on after {stream!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
