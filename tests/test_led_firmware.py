"""The LED canopy firmware simulator against docs/protocols/led.md: exact RTU bytes.

Requests and expected replies are built here with the test's own bitwise
CRC-16/MODBUS, never with the simulator's, the driver's or pymodbus's code.
"""

from __future__ import annotations

import math
import statistics
import struct

import pytest

from devicectl.clock import SimClock
from devicectl_simulators.led_firmware import LEDFirmware

T0 = 100.0  # clocks start away from zero so "seconds after creation" is really tested
TAU = 0.2  # irradiance time constant (led.md)


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS, bit by bit: reflected poly 0xA001, init 0xFFFF, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu(body: bytes) -> bytes:
    """``body`` with its CRC appended, low byte first."""
    crc = crc16(body)
    return body + bytes((crc & 0xFF, crc >> 8))


def read(fc: int, address: int, count: int, unit: int = 1) -> bytes:
    return rtu(struct.pack(">BBHH", unit, fc, address, count))


def write1(address: int, value: int, unit: int = 1) -> bytes:
    return rtu(struct.pack(">BBHH", unit, 0x06, address, value))


def writen(address: int, values: list[int], unit: int = 1, byte_count: int | None = None) -> bytes:
    """Write multiple; a wrong ``byte_count`` sends that many data bytes (cut or padded)."""
    data = struct.pack(f">{len(values)}H", *values)
    count = len(data) if byte_count is None else byte_count
    data = data[:count].ljust(count, b"\0")
    return rtu(struct.pack(">BBHHB", unit, 0x10, address, len(values), count) + data)


def exc(fc: int, code: int, unit: int = 1) -> bytes:
    return rtu(bytes((unit, fc | 0x80, code)))


def regs_reply(fc: int, values: list[int], unit: int = 1) -> bytes:
    return rtu(struct.pack(f">BBB{len(values)}H", unit, fc, 2 * len(values), *values))


class Host:
    """A minimal Modbus master written for these tests."""

    def __init__(self, clock: SimClock, device: LEDFirmware, unit: int = 1) -> None:
        self.clock = clock
        self.device = device
        self.unit = unit
        self.t_last = -math.inf  # when the last request was sent

    def ask(self, request: bytes) -> bytes:
        self.t_last = self.clock.now()
        self.device.feed(request)
        return self.device.take()

    def registers(self, fc: int, address: int, count: int) -> list[int]:
        reply = self.ask(read(fc, address, count, self.unit))
        assert len(reply) == 5 + 2 * count, reply.hex()
        assert reply[:3] == bytes((self.unit, fc, 2 * count))
        assert rtu(reply[:-2]) == reply
        return list(struct.unpack(f">{count}H", reply[3:-2]))

    def inputs(self) -> list[int]:
        return self.registers(0x04, 0, 8)

    def holding(self) -> list[int]:
        return self.registers(0x03, 0, 5)

    def write(self, address: int, value: int) -> None:
        request = write1(address, value, self.unit)
        assert self.ask(request) == request  # the echo

    def write_many(self, address: int, values: list[int]) -> None:
        reply = self.ask(writen(address, values, self.unit))
        assert reply == rtu(struct.pack(">BBHH", self.unit, 0x10, address, len(values)))

    def refused(self, address: int, value: int) -> bytes:
        return self.ask(write1(address, value, self.unit))

    def heartbeat_until(self, t_end: float, period: float = 0.05) -> list[list[int]]:
        """Read inputs 0-7 every ``period`` until ``t_end`` (the control loop's tick)."""
        rows = []
        start = self.clock.now()
        k = 1
        while start + k * period <= t_end + 1e-9:
            self.clock.sleep_until(start + k * period)
            rows.append(self.inputs())
            k += 1
        self.clock.sleep_until(t_end)
        return rows

    def keepalive_until(self, t_end: float, period: float = 0.05) -> None:
        """Write the heartbeat register every ``period`` until ``t_end`` (cheap, for long runs)."""
        request = write1(3, 0x5A5A, self.unit)
        start = self.clock.now()
        k = 1
        while start + k * period <= t_end + 1e-9:
            self.clock.sleep_until(start + k * period)
            assert self.ask(request) == request
            k += 1
        self.clock.sleep_until(t_end)


def make(*faults: str, seed: int = 0, **options: str) -> tuple[SimClock, LEDFirmware, Host]:
    clock = SimClock(T0)
    device = LEDFirmware(clock, seed=seed, faults=faults, **options)
    return clock, device, Host(clock, device, int(options.get("unit", "1")))


def booted(*faults: str, seed: int = 0, **options: str) -> tuple[SimClock, LEDFirmware, Host]:
    """A device just out of its 1 s boot, spoken to at once (no watchdog trip yet)."""
    clock, device, host = make(*faults, seed=seed, **options)
    clock.sleep_until(T0 + 1.0)
    return clock, device, host


def lit(
    setpoint: int = 1000, *faults: str, wavelength: int = 633, seed: int = 0, **options: str
) -> tuple[SimClock, LEDFirmware, Host]:
    """Booted, faults cleared, output on at ``setpoint`` from T0 + 1 s."""
    clock, device, host = booted(*faults, seed=seed, **options)
    host.write(4, 1)
    host.write_many(0, [wavelength, setpoint, 1])
    return clock, device, host


def signed(register: int) -> int:
    return register - 0x10000 if register & 0x8000 else register


# --------------------------------------------------------------------------- framing


def test_the_test_crc_has_the_spec_check_value() -> None:
    assert crc16(b"123456789") == 0x4B37
    # The classic example from the Modbus serial-line guide: read 1 holding register.
    assert rtu(bytes.fromhex("010300000001")) == bytes.fromhex("010300000001840a")


def test_nothing_is_answered_during_the_1_s_boot_then_reset_state() -> None:
    clock, device, host = make()
    assert host.ask(read(0x03, 0, 5)) == b""
    clock.sleep_until(T0 + 1.0 - 1e-6)
    assert host.ask(read(0x03, 0, 5)) == b""
    clock.sleep_until(T0 + 1.0)
    assert host.ask(read(0x03, 0, 5)) == regs_reply(0x03, [633, 0, 0, 0, 0])
    values = host.inputs()
    assert values[0] == 0  # dark
    assert values[1] == 250  # panel at 25.0 degC ambient
    assert 330 <= values[2] <= 340  # skin at rest, 33.5 +- noise
    assert values[3:] == [1, 0, 0b100000, 0, 0x0100]
    assert device.output_log == []


def test_exact_bytes_of_every_function() -> None:
    _, _, host = booted()
    # 0x03 all five holding registers after boot: 633 nm, setpoint 0, off, 0, 0.
    request = rtu(bytes.fromhex("010300000005"))
    assert host.ask(request) == rtu(bytes.fromhex("01030a02790000000000000000"))
    # 0x06 echoes the request: setpoint 80.0 mW/cm2.
    request = rtu(bytes.fromhex("010600010320"))
    assert host.ask(request) == request
    assert host.ask(rtu(bytes.fromhex("010300010001"))) == rtu(bytes.fromhex("0103020320"))
    # 0x10 answers address and quantity: 830 nm, 45.0 mW/cm2.
    request = rtu(bytes.fromhex("01100000000204033e01c2"))
    assert host.ask(request) == rtu(bytes.fromhex("011000000002"))
    request = rtu(bytes.fromhex("010300000005"))
    assert host.ask(request) == rtu(bytes.fromhex("01030a033e01c2000000000000"))
    # An exception: 825 nm is not a wavelength (function | 0x80, code 03).
    request = rtu(bytes.fromhex("01100000000204033901c2"))
    assert host.ask(request) == rtu(bytes.fromhex("019003"))
    # 0x04, the host's every-tick request: every register is known but the noisy skin.
    reply = host.ask(rtu(bytes.fromhex("010400000008")))
    skin = reply[7:9]
    body = bytes.fromhex("010410000000fa") + skin + bytes.fromhex("00010000002000000100")
    assert reply == rtu(body)


def test_every_valid_input_range_reads() -> None:
    _, _, host = booted()
    full = host.inputs()
    for address in range(8):
        for count in range(1, 9 - address):
            got = host.registers(0x04, address, count)
            expected = full[address : address + count]
            if address <= 2 < address + count:  # the skin reading is noisy
                i = 2 - address
                assert abs(got[i] - expected[i]) <= 4
                got[i] = expected[i]
            assert got == expected


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        # 01: any function but 03/04/06/10 (lengths found by their CRC).
        (rtu(bytes.fromhex("010100000008")), 1),  # read coils
        (rtu(bytes.fromhex("01050000ff00")), 1),  # write single coil
        (rtu(bytes.fromhex("012b0e0100")), 1),  # read device identification (7 bytes)
        (rtu(bytes.fromhex("0107")), 1),  # read exception status (4 bytes)
        (rtu(bytes.fromhex("01170000000100000001020000")), 1),  # read/write multiple
        # 02: any register of the range outside the map.
        (read(0x03, 5, 1), 2),
        (read(0x03, 4, 2), 2),
        (read(0x03, 0, 6), 2),
        (read(0x03, 0xFFFF, 1), 2),
        (read(0x04, 8, 1), 2),
        (read(0x04, 7, 2), 2),
        (read(0x04, 0, 125), 2),
        (write1(5, 0), 2),
        (write1(0x0100, 0), 2),
        (writen(4, [1, 0]), 2),
        (writen(5, [1]), 2),
        # 03: quantity (checked before the address), byte count, values.
        (read(0x03, 0, 0), 3),
        (read(0x03, 0, 126), 3),
        (read(0x04, 0, 0), 3),
        (read(0x04, 100, 126), 3),
        (writen(0, [633] * 124), 3),
        (writen(0, [633, 0], byte_count=3), 3),
        (writen(0, [633, 0], byte_count=6), 3),
        (write1(0, 632), 3),
        (write1(0, 0), 3),
        (write1(1, 1101), 3),
        (write1(1, 0xFFFF), 3),
        (write1(2, 2), 3),
        (write1(4, 2), 3),
        (writen(0, [830, 1101]), 3),
        # 04: output on refused (setpoint 0, power-on reset bit latched).
        (write1(2, 1), 4),
        (writen(1, [500, 1]), 4),
    ],
)
def test_exception_codes(request_: bytes, code: int) -> None:
    _, device, host = booted()
    assert host.ask(request_) == exc(request_[1], code)
    assert host.ask(read(0x03, 0, 5)) == regs_reply(0x03, [633, 0, 0, 0, 0])  # nothing written
    assert not device.output_on


def test_output_on_refusals_each_cause() -> None:
    _, _, host = booted()
    assert host.refused(2, 1) == exc(0x06, 4)  # power-on reset latched and setpoint 0
    host.write(4, 1)
    assert host.inputs()[5] == 0
    assert host.refused(2, 1) == exc(0x06, 4)  # setpoint 0
    host.write(1, 300)
    host.write(2, 1)
    assert host.holding() == [633, 300, 1, 0, 0]


def test_refused_multiple_write_changes_nothing() -> None:
    _clock, _device, host = booted("contact_loss@0s")
    host.write(4, 1)
    assert host.ask(writen(0, [830, 500, 1])) == exc(0x10, 4)  # interlock open
    assert host.holding() == [633, 0, 0, 0, 0]
    assert host.inputs()[3] == 0


def test_other_units_and_broadcast_are_ignored_and_do_not_feed_the_watchdog() -> None:
    clock, device, host = lit()
    t_last = clock.now()
    for unit in (0, 2, 247):
        clock.sleep(0.05)
        assert host.ask(read(0x04, 0, 8, unit=unit)) == b""
        assert host.ask(write1(2, 0, unit=unit)) == b""
        assert host.ask(rtu(bytes((unit, 0x2B, 0x0E, 1, 0)))) == b""
    clock.sleep_until(t_last + 0.25)
    assert not device.output_on
    assert device.output_log[-1] == (t_last + 0.25, False, "watchdog")


def test_unit_option_moves_the_address() -> None:
    _, _, host = booted(unit="17")
    assert host.ask(read(0x03, 0, 1, unit=1)) == b""
    assert host.ask(read(0x03, 0, 1, unit=17)) == rtu(bytes.fromhex("1103020279"))
    assert host.ask(rtu(bytes((17, 0x01, 0, 0, 0, 1)))) == exc(0x01, 1, unit=17)
    for bad in ("0", "248", "x", "-1"):
        with pytest.raises(ValueError, match="unit"):
            LEDFirmware(SimClock(), unit=bad)


def test_bad_crc_is_discarded_silently_and_does_not_feed_the_watchdog() -> None:
    clock, device, host = lit()
    t_last = clock.now()
    good = read(0x04, 0, 8)
    for i in range(4):
        clock.sleep(0.05)
        bad = bytearray(good)
        bad[-1 - (i % 2)] ^= 0x01 << i
        assert host.ask(bytes(bad)) == b""
    clock.sleep_until(t_last + 0.25 - 1e-9)
    assert device.output_on
    clock.sleep_until(t_last + 0.25)
    assert not device.output_on
    assert host.inputs()[5] == 0b1  # watchdog


def test_resynchronisation_on_a_byte_stream() -> None:
    _, _, host = booted()
    expected = regs_reply(0x03, [633, 0])
    request = read(0x03, 0, 2)
    # Two frames in one write.
    assert host.ask(request + request) == expected * 2
    # One frame byte by byte.
    for byte in request[:-1]:
        assert host.ask(bytes([byte])) == b""
    assert host.ask(request[-1:]) == expected
    # Noise before a frame, a frame with a bad CRC before a good one.
    assert host.ask(b"\x00\xff\x01" + request) == expected
    assert host.ask(request[:-1] + b"\x00" + request) == expected
    # A truncated frame, then (in a later write) a good one.
    assert host.ask(request[:5]) == b""
    assert host.ask(request) == expected
    # A truncated write-multiple whose byte count promises more than ever comes.
    assert host.ask(writen(0, [633, 0])[:7]) == b""
    assert host.ask(request) == expected
    # A lone byte that looks like our address and an unknown function.
    assert host.ask(b"\x01\x41") == b""
    assert host.ask(request) == expected


def test_every_valid_frame_feeds_the_watchdog_even_an_exception() -> None:
    clock, device, host = lit()
    clock.sleep(0.2)
    assert host.ask(read(0x04, 9, 1)) == exc(0x04, 2)
    t_exc = clock.now()
    clock.sleep(0.2)
    assert host.ask(rtu(bytes.fromhex("0107"))) == exc(0x07, 1)
    t_last = clock.now()
    assert t_last - t_exc < 0.25
    clock.sleep_until(t_last + 0.25 - 1e-9)
    assert device.output_on
    clock.sleep_until(t_last + 0.25)
    assert not device.output_on


# --------------------------------------------------------------------------- watchdog


def test_watchdog_turns_output_off_exactly_250_ms_after_the_last_valid_frame() -> None:
    clock, device, host = lit()
    host.heartbeat_until(T0 + 2.0)
    t_last = clock.now()
    host.write(3, 0xBEEF)  # heartbeat register: anything feeds the watchdog
    clock.sleep_until(t_last + 0.25 - 1e-6)
    assert device.output_on
    assert host.holding()[3] == 0  # the heartbeat register reads 0
    t_last = clock.now()
    clock.sleep_until(t_last + 0.25 - 1e-9)
    assert device.output_on
    clock.sleep_until(t_last + 0.25)
    assert not device.output_on
    assert device.output_log[-1] == (t_last + 0.25, False, "watchdog")
    values = host.inputs()  # a frame now gets its answer and re-arms the watchdog
    assert values[5] & 0b1 and values[6] == 0
    assert host.refused(2, 1) == exc(0x06, 4)  # latched until cleared
    host.write(4, 1)
    host.write(2, 1)
    assert device.output_on


def test_a_frame_exactly_at_the_deadline_is_too_late() -> None:
    clock, device, host = lit()
    t_last = clock.now()
    clock.sleep_until(t_last + 0.25)
    assert host.inputs()[6] == 0
    assert not device.output_on


def test_watchdog_runs_from_boot_end_with_output_off() -> None:
    clock, _, host = make()
    clock.sleep_until(T0 + 1.25 - 1e-9)
    assert host.inputs()[5] == 0b100000  # boot ended at T0 + 1, deadline T0 + 1.25
    clock, _, host = make()
    clock.sleep_until(T0 + 1.25)
    assert host.inputs()[5] == 0b100001


# --------------------------------------------------------------------------- physics


def test_irradiance_settles_with_a_0_2_s_time_constant_both_ways() -> None:
    clock, device, host = lit(1000)
    t_on = clock.now()
    host.heartbeat_until(t_on + TAU)
    assert device.irradiance_mw_cm2 == pytest.approx(100.0 * (1 - math.exp(-1)), rel=1e-9)
    assert host.inputs()[0] == 632
    host.heartbeat_until(t_on + 5 * TAU)
    assert host.inputs()[0] == round(1000 * (1 - math.exp(-5)))
    host.heartbeat_until(t_on + 3.0)
    assert host.inputs()[0] == 1000
    host.write(2, 0)
    t_off = clock.now()
    e_off = device.irradiance_mw_cm2
    host.heartbeat_until(t_off + TAU)
    assert device.irradiance_mw_cm2 == pytest.approx(e_off * math.exp(-1), rel=1e-9)
    assert host.inputs()[0] == round(10 * e_off * math.exp(-1))
    assert device.output_log == [(t_on, True, "host"), (t_off, False, "host")]


def test_setpoint_change_while_on_settles_to_the_new_value() -> None:
    _clock, device, host = lit(1000)
    host.heartbeat_until(T0 + 4.0)
    host.write(1, 400)
    host.heartbeat_until(T0 + 6.0)
    assert host.inputs()[0] == 400
    assert device.output_on


def test_wavelength_change_while_on_turns_output_off_and_channels_are_separate() -> None:
    clock, device, host = lit(800)
    host.heartbeat_until(T0 + 4.0)
    host.write(0, 633)  # the same wavelength changes nothing
    assert device.output_on
    host.write(0, 830)
    t_change = clock.now()
    assert not device.output_on
    assert device.output_log[-1] == (t_change, False, "wavelength")
    assert host.holding() == [830, 800, 0, 0, 0]
    host.write(2, 1)  # the 830 nm channel rises while the 633 nm channel falls
    clock.sleep(0.1)
    total = 80.0 * math.exp(-0.5) + 80.0 * (1 - math.exp(-0.5))
    assert device.irradiance_mw_cm2 == pytest.approx(total, abs=1e-3)
    host.heartbeat_until(T0 + 8.0)
    assert host.inputs()[0] == 800
    assert host.holding() == [830, 800, 1, 0, 0]


def test_panel_heats_15_c_above_ambient_at_110_mw() -> None:
    _clock, device, host = lit(1100)
    host.keepalive_until(T0 + 121.0)  # one time constant
    assert signed(host.inputs()[1]) == pytest.approx(250 + 150 * (1 - math.exp(-1)), abs=2)
    host.keepalive_until(T0 + 1000.0)
    assert signed(host.inputs()[1]) == 400
    assert device.panel_c == pytest.approx(40.0, abs=0.01)


def test_skin_warms_under_the_canopy_toward_rest_plus_0_03_per_mw() -> None:
    _clock, device, host = lit(1000)
    host.keepalive_until(T0 + 181.0)
    assert device.skin_true_c == pytest.approx(33.5 + 3.0 * (1 - math.exp(-1)), abs=0.01)
    host.keepalive_until(T0 + 1500.0)
    assert device.skin_true_c == pytest.approx(36.5, abs=0.01)
    readings = [signed(host.inputs()[2]) / 10 for _ in range(400)]
    assert statistics.fmean(readings) == pytest.approx(36.5, abs=0.02)
    assert 0.03 <= statistics.stdev(readings) <= 0.08  # noise 0.05 plus 0.1 resolution
    assert device.peak_skin_c == pytest.approx(36.5, abs=0.01)


def test_elapsed_counts_tenths_of_on_time_holds_when_off_restarts_on_enable() -> None:
    clock, _device, host = lit(500)
    t_on = clock.now()
    host.heartbeat_until(t_on + 2.05)
    assert host.inputs()[4] == 20
    host.heartbeat_until(t_on + 2.1)
    assert host.inputs()[4] == 21
    host.write(2, 0)
    host.heartbeat_until(clock.now() + 0.2)
    assert host.inputs()[4] == 21
    host.write(2, 1)
    assert host.inputs()[4] == 0
    host.heartbeat_until(clock.now() + 0.15)
    assert host.inputs()[4] == 1


def test_skin0_and_ambient_options() -> None:
    _, device, host = booted(skin0="32.0", ambient="20")
    assert device.skin_true_c == 32.0
    assert host.inputs()[1] == 200
    assert statistics.fmean(host.inputs()[2] for _ in range(50)) == pytest.approx(320, abs=1)
    for name, value in (("skin0", "warm"), ("skin0", "42"), ("skin0", "20"), ("ambient", "60")):
        with pytest.raises(ValueError, match=name):
            LEDFirmware(SimClock(), **{name: value})
    with pytest.raises(ValueError, match=r"'warmth'.*unit, skin0, ambient"):
        LEDFirmware(SimClock(), warmth="1")


# --------------------------------------------------------------------------- protections


def test_interlock_opening_while_on_turns_output_off_and_latches() -> None:
    clock, device, host = lit(1000, "contact_loss@3s+2s")
    host.heartbeat_until(T0 + 2.95)
    assert device.output_on
    clock.sleep_until(T0 + 3.0)
    assert not device.output_on
    assert device.output_log[-1] == (T0 + 3.0, False, "interlock")
    values = host.inputs()
    assert values[3] == 0 and values[5] == 0b1000 and values[6] == 0
    host.write(4, 1)
    assert host.inputs()[5] == 0b1000  # cause still there
    assert host.refused(2, 1) == exc(0x06, 4)
    host.heartbeat_until(T0 + 5.0)
    assert host.inputs()[3] == 1
    host.write(4, 1)
    assert host.inputs()[5] == 0
    host.write(2, 1)
    assert device.output_on


def test_interlock_open_while_off_blocks_on_without_latching() -> None:
    _, _, host = booted("contact_loss@0s")
    host.write(4, 1)
    host.write(1, 500)
    assert host.refused(2, 1) == exc(0x06, 4)
    assert host.inputs()[5] == 0


def test_panel_limit_60_c_turns_output_off() -> None:
    clock, device, host = lit(1100, ambient="50")
    t_on = clock.now()
    host.heartbeat_until(t_on + 140.0)
    t_trip, on, reason = device.output_log[-1]
    assert (on, reason) == (False, "panel")
    assert t_trip - t_on == pytest.approx(120.0 * math.log(3.0), abs=0.3)
    values = host.inputs()
    assert values[5] == 0b10 and values[6] == 0
    host.heartbeat_until(t_on + 140.0 + 20.0)
    assert device.panel_c < 60.0
    host.write(4, 1)
    assert host.inputs()[5] == 0


def test_panel_fault_stays_latched_while_hot() -> None:
    clock, device, host = lit(1100, ambient="50")
    while device.output_on:
        clock.sleep(0.05)
        host.inputs()
    assert device.output_log[-1][2] == "panel"
    assert device.panel_c >= 60.0
    host.write(4, 1)
    assert host.inputs()[5] == 0b10
    host.write(1, 100)
    assert host.refused(2, 1) == exc(0x06, 4)


def test_skin_limit_42_c_turns_output_off() -> None:
    clock, device, host = lit(1100, skin0="40.0")
    t_on = clock.now()
    host.heartbeat_until(t_on + 180.0)
    t_trip, on, reason = device.output_log[-1]
    assert (on, reason) == (False, "skin")
    assert t_trip - t_on == pytest.approx(180.0 * math.log(3.3 / 1.3), abs=0.5)
    assert 42.0 <= device.peak_skin_c < 42.05
    assert host.inputs()[5] == 0b100


def test_skin_limit_acts_on_the_firmware_sensor_value() -> None:
    # The sensor drifts up 1 degC/s from 2 s: it reads 42 about 8.5 s later.
    _clock, device, host = lit(500, "sensor_drift@2s:rate=1")
    host.heartbeat_until(T0 + 12.0)
    t_trip, on, reason = device.output_log[-1]
    assert (on, reason) == (False, "skin")
    drift_at_trip = t_trip - (T0 + 2.0)
    assert 33.5 + drift_at_trip == pytest.approx(42.0, abs=0.2)
    assert device.skin_true_c < 34.0
    assert host.inputs()[5] == 0b100


# --------------------------------------------------------------------------- faults


def test_sensor_open_reads_7fff_turns_output_off_and_blocks_on() -> None:
    _clock, device, host = lit(500, "sensor_open@3s+1s")
    host.heartbeat_until(T0 + 3.0)
    assert not device.output_on
    assert device.output_log[-1] == (T0 + 3.0, False, "sensor")
    values = host.inputs()
    assert values[2] == 0x7FFF and values[5] == 0b100
    host.write(4, 1)
    assert host.refused(2, 1) == exc(0x06, 4)
    host.heartbeat_until(T0 + 4.0)
    assert host.inputs()[2] != 0x7FFF
    host.write(4, 1)
    host.write(2, 1)
    assert device.output_on


def test_sensor_stuck_freezes_the_reading_without_noise() -> None:
    _clock, device, host = lit(1100, "sensor_stuck@2s")
    rows = host.heartbeat_until(T0 + 60.0)  # row i at T0 + 1 + 0.05 (i + 1)
    before = [row[2] for row in rows[:18]]
    after = [row[2] for row in rows[20:]]
    assert len(set(before)) > 1  # noise before the fault
    assert set(after) == {335}  # the noise-free value at 2 s, 33.52 degC, repeated exactly
    assert device.skin_true_c > 34.0  # the skin warmed, the sensor did not follow
    assert device.output_on


def test_sensor_drift_offsets_the_reading_at_its_rate() -> None:
    _clock, device, host = lit(300, "sensor_drift@2s+10s")  # default rate -0.3 degC/s
    host.heartbeat_until(T0 + 11.0)
    low = statistics.fmean(signed(host.inputs()[2]) for _ in range(100)) / 10
    assert low == pytest.approx(device.skin_true_c - 2.7, abs=0.03)
    host.heartbeat_until(T0 + 12.5)
    back = statistics.fmean(signed(host.inputs()[2]) for _ in range(100)) / 10
    assert back == pytest.approx(device.skin_true_c, abs=0.03)
    assert device.output_on


def test_led_string_fail_sets_bit_4_after_1_s_below_half_the_setpoint() -> None:
    _clock, device, host = lit(1000, "led_string_fail@3s")  # factor 0.2
    e_start = 100.0 * (1 - math.exp(-2.0 / TAU))  # on at T0 + 1
    crossing = TAU * math.log((e_start - 20.0) / (50.0 - 20.0))
    host.heartbeat_until(T0 + 4.0)
    assert device.output_on
    assert host.inputs()[5] == 0
    host.heartbeat_until(T0 + 5.0)
    t_trip, on, reason = device.output_log[-1]
    assert (on, reason) == (False, "led_string")
    assert t_trip == pytest.approx(T0 + 3.0 + crossing + 1.0, abs=1e-9)
    assert host.inputs()[5] == 0b10000
    host.write(4, 1)
    assert host.inputs()[5] == 0b10000  # the string is still open
    assert host.refused(2, 1) == exc(0x06, 4)


def test_led_string_fail_above_half_is_not_a_fault_and_turn_on_is_not_one() -> None:
    _clock, device, host = lit(1000, "led_string_fail@3s+5s:factor=0.6")
    host.heartbeat_until(T0 + 7.0)
    assert host.inputs()[0] == 600
    host.heartbeat_until(T0 + 10.0)
    assert host.inputs()[0] == 1000
    assert host.inputs()[5] == 0
    assert device.output_log == [(T0 + 1.0, True, "host")]


def test_led_string_fail_before_enable_trips_1_s_after_enable() -> None:
    _clock, device, host = lit(1000, "led_string_fail@0s+10s:factor=0.1")
    host.heartbeat_until(T0 + 2.5)
    assert device.output_log[-1] == (T0 + 2.0, False, "led_string")
    host.heartbeat_until(T0 + 10.0)
    host.write(4, 1)
    assert host.inputs()[5] == 0  # the string works again
    host.write(2, 1)
    host.heartbeat_until(T0 + 13.0)
    assert host.inputs()[0] == 1000 and device.output_on


def test_no_reply_silences_the_device_and_its_watchdog_fires() -> None:
    clock, device, host = lit(500, "no_reply@3s+1s")
    host.heartbeat_until(T0 + 2.95)
    t_last = host.t_last
    clock.sleep_until(T0 + 3.0)
    assert host.ask(read(0x04, 0, 8)) == b""
    clock.sleep_until(t_last + 0.25)
    assert not device.output_on
    assert device.output_log[-1] == (t_last + 0.25, False, "watchdog")
    clock.sleep_until(T0 + 3.999)
    assert host.ask(read(0x04, 0, 8)) == b""
    clock.sleep_until(T0 + 4.0)
    assert host.inputs()[5] == 0b1


def test_garble_corrupts_bytes_both_ways_while_it_lasts() -> None:
    clock, _device, host = booted("garble@2s+2s:rate=0.05", seed=2)
    good = regs_reply(0x03, [633, 0, 0, 0, 0])
    replies = []
    while clock.now() < T0 + 3.95:
        clock.sleep(0.01)
        replies.append(host.ask(read(0x03, 0, 5)))
    during = replies[100:]
    assert all(reply == good for reply in replies[:99])
    assert any(reply == good for reply in during)
    assert any(reply != good for reply in during)
    clock.sleep_until(T0 + 4.0)
    assert host.ask(read(0x03, 0, 5)) == good


def test_garble_at_rate_1_lets_no_frame_through() -> None:
    clock, device, host = lit(500, "garble@2s:rate=1")
    host.heartbeat_until(T0 + 1.95)
    t_last = host.t_last
    clock.sleep_until(T0 + 2.0)
    for _ in range(40):
        clock.sleep(0.01)
        reply = host.ask(read(0x04, 0, 8))
        assert reply[:3] != bytes((1, 4, 16)) or rtu(reply[:-2]) != reply
    assert not device.output_on
    assert device.output_log[-1] == (t_last + 0.25, False, "watchdog")


def test_reset_reboots_the_device() -> None:
    clock, device, host = lit(700, "reset@3s", wavelength=830)
    host.heartbeat_until(T0 + 2.95)
    assert host.holding() == [830, 700, 1, 0, 0]
    clock.sleep_until(T0 + 3.0)
    assert not device.output_on
    assert device.output_log[-1] == (T0 + 3.0, False, "reset")
    assert host.ask(read(0x03, 0, 5)) == b""
    clock.sleep_until(T0 + 4.0 - 1e-6)
    assert host.ask(read(0x03, 0, 5)) == b""
    clock.sleep_until(T0 + 4.0)
    assert host.holding() == [633, 0, 0, 0, 0]
    values = host.inputs()
    assert values[4] == 0 and values[5] == 0b100000 and values[6] == 0


def test_bad_fault_text_is_rejected_at_creation() -> None:
    with pytest.raises(ValueError, match="unknown kind 'runaway' for the led simulator"):
        LEDFirmware(SimClock(), faults=["runaway@1s"])


def test_closed_device_refuses_io() -> None:
    _, device, _ = booted()
    device.close()
    with pytest.raises(ValueError):
        device.feed(read(0x04, 0, 8))
    with pytest.raises(ValueError):
        device.take()


# --------------------------------------------------------------------------- determinism


def _session(seed: int) -> tuple[bytes, list[tuple[float, bool, str]]]:
    clock, device, _host = lit(900, "garble@3s+1s:rate=0.02", "sensor_drift@1s", seed=seed)
    out = []
    while clock.now() < T0 + 6.0:
        clock.sleep(0.05)
        device.feed(read(0x04, 0, 8))
        out.append(device.take())
    return b"".join(out), list(device.output_log)


def test_same_seed_same_bytes_different_seed_different_noise() -> None:
    first = _session(3)
    assert len(first[0]) > 1500
    assert _session(3) == first
    assert _session(4)[0] != first[0]


def test_served_through_a_sim_url() -> None:
    from devicectl.transport import open_port

    clock = SimClock()
    port = open_port("sim://led?seed=5&unit=3&fault=contact_loss@0s&skin0=33", clock=clock)
    try:
        clock.sleep(1.0)
        port.write(read(0x04, 3, 1, unit=3))
        assert port.read(64) == regs_reply(0x04, [0], unit=3)
        port.write(read(0x04, 7, 1, unit=3))
        assert port.read(64) == regs_reply(0x04, [0x0100], unit=3)
    finally:
        port.close()
