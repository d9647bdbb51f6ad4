"""LEDModbusDriver against a scripted port: exact RTU bytes, exceptions, retries, failures.

The fake port plays a script: a test queues the exact request bytes the driver
must write and what the "device" answers; any other write fails the test at
once. Frames are built here by :func:`adu` with this file's own bit-by-bit
CRC-16/MODBUS (no pymodbus and no driver code), checked against the standard
check value and two literal frames.

Time: the fake port keeps its own clock, which only an empty read (a port
timeout) moves, by the port's ``timeout``; ``time.sleep`` is made to fail, so a
test proves the driver never waits on wall time.
"""

from __future__ import annotations

import ast
import math
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import serial

from devicectl.devices import DeviceIdentity, LEDFault, LEDPanel, LEDReading
from devicectl.errors import (
    ConfigError,
    CRCError,
    DeviceRejected,
    DeviceTimeout,
    PortError,
    ProtocolError,
    ValidationError,
)
from devicectl_drivers.led_modbus import LEDModbusDriver
from tests.scripted_port import Chunk, ManualNow, ScriptedPort

DRIVERS = Path(__file__).resolve().parents[1] / "drivers" / "devicectl_drivers"

# ------------------------------------------------------------------ frames


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS: reflected poly 0xA001, init 0xFFFF, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def adu(body: bytes) -> bytes:
    """Body (unit, function, data) plus its CRC, low byte first."""
    return body + crc16_modbus(body).to_bytes(2, "little")


def read_req(function: int, address: int, count: int, unit: int = 1) -> bytes:
    return adu(struct.pack(">BBHH", unit, function, address, count))


def regs_reply(function: int, registers: Iterable[int], unit: int = 1) -> bytes:
    regs = list(registers)
    return adu(struct.pack(f">BBB{len(regs)}H", unit, function, 2 * len(regs), *regs))


def write_req(address: int, value: int, unit: int = 1) -> bytes:
    """0x06 request; a successful reply is the identical echo."""
    return adu(struct.pack(">BBHH", unit, 0x06, address, value))


def exc_reply(function: int, code: int, unit: int = 1) -> bytes:
    return adu(bytes([unit, function | 0x80, code]))


READ_INPUTS = read_req(0x04, 0, 8)
READ_HOLDING = read_req(0x03, 0, 2)
OUTPUT_ON = write_req(2, 1)
OUTPUT_OFF = write_req(2, 0)


def inputs(
    irradiance: int = 0,
    panel: int = 250,
    skin: int = 335,
    interlock: int = 1,
    elapsed: int = 0,
    faults: int = 0,
    status: int = 0,
    firmware: int = 0x0102,
) -> bytes:
    return regs_reply(0x04, [irradiance, panel, skin, interlock, elapsed, faults, status, firmware])


def holding(wavelength: int = 633, setpoint: int = 0) -> bytes:
    return regs_reply(0x03, [wavelength, setpoint])


def test_crc_helper_check_value_and_literal_frames() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37
    # The classic "read holding 0, count 1, unit 1" frame of the Modbus serial-line guide.
    assert read_req(0x03, 0, 1) == bytes.fromhex("01 03 00 00 00 01 84 0A")
    assert bytes.fromhex("01 04 00 00 00 08 F1 CC") == READ_INPUTS
    assert bytes.fromhex("01 06 00 02 00 01 E9 CA") == OUTPUT_ON


# ------------------------------------------------------------------ fake port


@pytest.fixture(autouse=True)
def _no_wall_clock_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"something slept {seconds} s of wall time")

    monkeypatch.setattr(time, "sleep", refuse)


def make(
    *exchanges: tuple[Chunk, ...],
    retries: int = 1,
    now: ManualNow | None = None,
    unit: int = 1,
    timeout_s: float = 0.05,
) -> tuple[LEDModbusDriver, ScriptedPort]:
    port = ScriptedPort()
    for request, *reply in exchanges:
        assert isinstance(request, bytes)
        port.expect(request, *reply)
    driver = LEDModbusDriver(
        port,
        now=now or ManualNow(),
        unit=unit,
        timeout_s=timeout_s,
        retries=retries,
    )
    return driver, port


def primed(*exchanges: tuple[Chunk, ...], **kwargs: object) -> tuple[LEDModbusDriver, ScriptedPort]:
    """A driver whose holding-register cache is filled (633 nm, 50.0 mW/cm2) by a first read."""
    driver, port = make(
        (READ_INPUTS, inputs()),
        (READ_HOLDING, holding(633, 500)),
        *exchanges,
        **kwargs,  # type: ignore[arg-type]
    )
    driver.read()
    port.writes.clear()
    return driver, port


# ------------------------------------------------------- every method's bytes


def test_identify_reads_the_firmware_register() -> None:
    driver, port = make((read_req(0x04, 7, 1), regs_reply(0x04, [0x020A])))
    assert driver.identify() == DeviceIdentity(
        "unknown", "LED canopy (Modbus RTU)", "unknown", "2.10"
    )
    assert port.writes == [bytes.fromhex("01 04 00 07 00 01 80 0B")]
    port.assert_done()


def test_first_read_takes_inputs_then_holding_and_converts_units() -> None:
    now = ManualNow(12.5)
    driver, port = make(
        (
            READ_INPUTS,
            inputs(
                irradiance=1000,
                panel=0xFF9C,  # -10.0 degC
                skin=0x7FFF,  # sensor open
                interlock=1,
                elapsed=65535,
                faults=0b011001,
                status=1,
            ),
        ),
        (READ_HOLDING, holding(830, 1100)),
        now=now,
    )
    reading = driver.read()
    assert math.isnan(reading.skin_temp_c)
    assert reading == LEDReading(
        t_s=12.5,
        wavelength_nm=830,
        setpoint_mw_cm2=110.0,
        irradiance_mw_cm2=100.0,
        output_on=True,
        panel_temp_c=-10.0,
        skin_temp_c=reading.skin_temp_c,
        interlock_closed=True,
        elapsed_s=6553.5,
        faults=LEDFault.WATCHDOG_TRIPPED | LEDFault.INTERLOCK_OPEN | LEDFault.STRING_FAIL,
    )
    assert type(reading.faults) is LEDFault
    assert port.writes == [READ_INPUTS, READ_HOLDING]
    port.assert_done()


def test_steady_state_read_is_one_request_and_signed_temperatures_convert() -> None:
    now = ManualNow()
    driver, port = primed(
        (READ_INPUTS, inputs(irradiance=555, panel=612, skin=0xFFFB, interlock=0, elapsed=1234)),
        now=now,
    )
    now.t_s = 100.05
    reading = driver.read()
    assert port.writes == [READ_INPUTS]
    assert (reading.t_s, reading.wavelength_nm, reading.setpoint_mw_cm2) == (100.05, 633, 50.0)
    assert (reading.irradiance_mw_cm2, reading.panel_temp_c, reading.skin_temp_c) == (
        55.5,
        61.2,
        -0.5,
    )
    assert (reading.interlock_closed, reading.elapsed_s, reading.output_on) == (False, 123.4, False)
    assert reading.faults is LEDFault.NONE
    port.assert_done()


def test_interlock_counts_as_closed_only_when_it_reads_1() -> None:
    driver, port = primed((READ_INPUTS, inputs(interlock=2)))
    assert driver.read().interlock_closed is False
    port.assert_done()


def test_unknown_fault_bits_are_kept() -> None:
    driver, port = primed((READ_INPUTS, inputs(faults=0x41)))
    faults = driver.read().faults
    assert int(faults) == 0x41 and LEDFault.WATCHDOG_TRIPPED in faults
    port.assert_done()


def test_power_on_reset_rereads_holding_on_every_read_until_cleared() -> None:
    por = int(LEDFault.POWER_ON_RESET)
    driver, port = primed(
        (READ_INPUTS, inputs(faults=por)),
        (READ_HOLDING, holding(633, 0)),  # the reboot reset the setpoint
        (READ_INPUTS, inputs(faults=por)),
        (READ_HOLDING, holding(633, 0)),
        (write_req(4, 1), write_req(4, 1)),
        (READ_INPUTS, inputs()),
        (READ_HOLDING, holding(633, 0)),  # clear_status forgot the cache
        (READ_INPUTS, inputs()),
    )
    assert driver.read().setpoint_mw_cm2 == 0.0
    assert driver.read().faults is LEDFault.POWER_ON_RESET
    driver.clear_status()
    driver.read()
    driver.read()
    port.assert_done()


def test_set_wavelength_sends_holding_0_and_updates_the_cache() -> None:
    driver, port = primed(
        (bytes.fromhex("01 06 00 00 03 3E 08 EA"), write_req(0, 830)),
        (READ_INPUTS, inputs()),
    )
    assert write_req(0, 830) == bytes.fromhex("01 06 00 00 03 3E 08 EA")
    driver.set_wavelength(830)
    assert driver.read().wavelength_nm == 830
    assert port.writes == [write_req(0, 830), READ_INPUTS]
    port.assert_done()


def test_integral_float_wavelength_is_accepted() -> None:
    driver, port = make((write_req(0, 633), write_req(0, 633)))
    driver.set_wavelength(633.0)  # type: ignore[arg-type]
    port.assert_done()


@pytest.mark.parametrize(
    ("mw_cm2", "raw"),
    [(55.5, 555), (12.34, 123), (12.35, 124), (110, 1100), (110.0, 1100), (0, 0), (0.04, 0)],
)
def test_set_irradiance_sends_tenths_of_mw_cm2(mw_cm2: float, raw: int) -> None:
    driver, port = primed((write_req(1, raw), write_req(1, raw)), (READ_INPUTS, inputs()))
    driver.set_irradiance(mw_cm2)
    assert driver.read().setpoint_mw_cm2 == raw / 10
    assert port.writes == [write_req(1, raw), READ_INPUTS]
    port.assert_done()


def test_output_on_off_and_readback_bytes() -> None:
    driver, port = make(
        (OUTPUT_ON, OUTPUT_ON),
        (OUTPUT_OFF, OUTPUT_OFF),
        (read_req(0x04, 6, 1), regs_reply(0x04, [1])),
        (read_req(0x04, 6, 1), regs_reply(0x04, [0])),
        (read_req(0x04, 6, 1), regs_reply(0x04, [2])),
    )
    driver.output_on()
    driver.output_off()
    assert driver.output_is_on() is True
    assert driver.output_is_on() is False
    assert driver.output_is_on() is False
    assert port.writes[:2] == [
        bytes.fromhex("01 06 00 02 00 01 E9 CA"),
        bytes.fromhex("01 06 00 02 00 00 28 0A"),
    ]
    assert port.writes[2] == bytes.fromhex("01 04 00 06 00 01 D1 CB")
    port.assert_done()


def test_clear_status_and_heartbeat_bytes() -> None:
    driver, port = make((write_req(4, 1), write_req(4, 1)), (write_req(3, 1), write_req(3, 1)))
    driver.clear_status()
    driver.heartbeat()
    assert port.writes == [
        bytes.fromhex("01 06 00 04 00 01 09 CB"),
        bytes.fromhex("01 06 00 03 00 01 B8 0A"),
    ]
    port.assert_done()


def test_another_unit_address_is_on_every_frame() -> None:
    driver, port = make(
        (read_req(0x04, 0, 8, unit=7), inputs_for_unit(7)),
        (read_req(0x03, 0, 2, unit=7), regs_reply(0x03, [633, 0], unit=7)),
        (write_req(2, 0, unit=7), write_req(2, 0, unit=7)),
        unit=7,
    )
    driver.read()
    driver.output_off()
    port.assert_done()


def inputs_for_unit(unit: int) -> bytes:
    return regs_reply(0x04, [0, 250, 335, 1, 0, 0, 0, 0x0102], unit=unit)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("value", [700, 0, -633, 633.5, True, "633", None, math.nan])
def test_bad_wavelength_is_refused_before_sending(value: object) -> None:
    driver, port = make()
    with pytest.raises(ValidationError, match="633 or 830 nm") as info:
        driver.set_wavelength(value)  # type: ignore[arg-type]
    assert len(info.value.problems) == 1
    assert port.writes == []


@pytest.mark.parametrize("value", [-0.1, -1, 110.01, 111, 1e9, math.nan, math.inf, True, "5"])
def test_bad_irradiance_is_refused_before_sending(value: object) -> None:
    driver, port = make()
    with pytest.raises(ValidationError, match=r"0\.0-110\.0 mW/cm2"):
        driver.set_irradiance(value)  # type: ignore[arg-type]
    assert port.writes == []


# -------------------------------------------------------- exception replies


@pytest.mark.parametrize(
    ("code", "text"),
    [(1, "illegal function"), (2, "illegal data address"), (3, "illegal data value")],
)
def test_exception_reply_to_a_read_is_rejected_and_not_retried(code: int, text: str) -> None:
    driver, port = make((READ_INPUTS, exc_reply(0x04, code)))
    with pytest.raises(DeviceRejected) as info:
        driver.read()
    assert (info.value.code, info.value.command) == (code, "read input registers 0-7")
    assert text in info.value.text
    assert port.writes == [READ_INPUTS]


def test_output_on_refused_with_exception_04_is_device_rejected() -> None:
    driver, port = make((OUTPUT_ON, exc_reply(0x06, 4)))
    with pytest.raises(DeviceRejected, match="interlock open") as info:
        driver.output_on()
    assert info.value.code == 4
    assert info.value.command == "write output_enable (holding 2) = 1"
    assert port.writes == [OUTPUT_ON]


def test_rejected_setpoint_keeps_the_cache() -> None:
    driver, port = primed((write_req(0, 830), exc_reply(0x06, 3)), (READ_INPUTS, inputs()))
    with pytest.raises(DeviceRejected) as info:
        driver.set_wavelength(830)
    assert info.value.code == 3
    assert driver.read().wavelength_nm == 633  # no holding re-read: the device did not change
    port.assert_done()


def test_unknown_exception_code_still_maps() -> None:
    driver, port = make((OUTPUT_OFF, exc_reply(0x06, 0x42)))
    with pytest.raises(DeviceRejected, match="unknown exception code") as info:
        driver.output_off()
    assert info.value.code == 0x42
    assert port.writes == [OUTPUT_OFF]  # a rejection is not retried, even for output_off


def test_exception_reply_for_another_function_is_a_protocol_error() -> None:
    driver, port = make((READ_INPUTS, exc_reply(0x03, 2)), (READ_INPUTS, exc_reply(0x03, 2)))
    with pytest.raises(ProtocolError, match="function 0x83"):
        driver.read()
    assert len(port.writes) == 2


# ------------------------------------------------------- timeouts and retries


def test_no_reply_is_a_timeout_after_the_configured_timeout_per_try() -> None:
    driver, port = make((READ_INPUTS,), (READ_INPUTS,), timeout_s=0.02)
    assert port.timeout == 0.02
    wall = time.perf_counter()
    with pytest.raises(
        DeviceTimeout, match=r"^no reply to read input registers 0-7 within 0\.02 s"
    ):
        driver.read()
    assert time.perf_counter() - wall < 0.5
    assert port.t_s == pytest.approx(0.04)  # two tries, one port timeout each
    assert port.writes == [READ_INPUTS, READ_INPUTS]


def test_retries_zero_means_one_try() -> None:
    driver, port = make((READ_INPUTS,), retries=0)
    with pytest.raises(DeviceTimeout) as info:
        driver.read()
    assert port.writes == [READ_INPUTS]
    assert not getattr(info.value, "__notes__", None)


def test_read_is_retried_once_after_a_timeout() -> None:
    driver, port = make((READ_INPUTS,), (READ_INPUTS, inputs()), (READ_HOLDING, holding()))
    driver.read()
    port.assert_done()


def test_output_on_is_sent_once_even_when_the_reply_is_lost() -> None:
    driver, port = make((OUTPUT_ON,))
    with pytest.raises(DeviceTimeout, match="output_enable"):
        driver.output_on()
    assert port.writes == [OUTPUT_ON]


@pytest.mark.parametrize(
    ("call", "request_bytes"),
    [
        (lambda d: d.set_wavelength(830), write_req(0, 830)),
        (lambda d: d.set_irradiance(20.0), write_req(1, 200)),
        (lambda d: d.clear_status(), write_req(4, 1)),
        (lambda d: d.heartbeat(), write_req(3, 1)),
    ],
)
def test_other_writes_are_sent_once(call: object, request_bytes: bytes) -> None:
    driver, port = make((request_bytes,))
    with pytest.raises(DeviceTimeout):
        call(driver)  # type: ignore[operator]
    assert port.writes == [request_bytes]


def test_output_off_is_retried_after_a_timeout() -> None:
    driver, port = make((OUTPUT_OFF,), (OUTPUT_OFF, OUTPUT_OFF))
    driver.output_off()
    assert port.writes == [OUTPUT_OFF, OUTPUT_OFF]


def test_output_off_gives_up_after_two_tries() -> None:
    driver, port = make((OUTPUT_OFF,), (OUTPUT_OFF,))
    with pytest.raises(DeviceTimeout) as info:
        driver.output_off()
    assert port.writes == [OUTPUT_OFF, OUTPUT_OFF]
    assert info.value.__notes__ == ["gave up after 2 tries"]


def test_identify_and_output_is_on_are_retried() -> None:
    driver, port = make(
        (read_req(0x04, 7, 1),),
        (read_req(0x04, 7, 1), regs_reply(0x04, [0x0100])),
        (read_req(0x04, 6, 1),),
        (read_req(0x04, 6, 1), regs_reply(0x04, [1])),
    )
    assert driver.identify().firmware == "1.0"
    assert driver.output_is_on()
    port.assert_done()


def test_lost_setpoint_reply_makes_the_next_read_reread_holding() -> None:
    driver, port = primed(
        (write_req(1, 200),),
        (READ_INPUTS, inputs()),
        (READ_HOLDING, holding(633, 200)),
        (READ_INPUTS, inputs()),
    )
    with pytest.raises(DeviceTimeout):
        driver.set_irradiance(20.0)
    assert driver.read().setpoint_mw_cm2 == 20.0
    assert driver.read().setpoint_mw_cm2 == 20.0
    port.assert_done()


def test_failed_holding_refresh_fails_the_read_and_is_retried() -> None:
    driver, port = make((READ_INPUTS, inputs()), (READ_HOLDING,), (READ_HOLDING,))
    with pytest.raises(DeviceTimeout, match="holding registers 0-1"):
        driver.read()
    port.assert_done()


# ------------------------------------------------------------------ bad frames


def test_reply_trickling_in_byte_by_byte_is_reassembled() -> None:
    reply = inputs(irradiance=42)
    driver, port = primed((READ_INPUTS, *[reply[i : i + 1] for i in range(len(reply))]))
    assert driver.read().irradiance_mw_cm2 == 4.2
    assert port.t_s == 0.0  # no read ever timed out


def test_the_per_tick_read_asks_for_the_whole_reply_at_once() -> None:
    driver, port = primed((READ_INPUTS, inputs()))
    port.read_sizes.clear()
    driver.read()
    assert port.read_sizes == [21]


def test_other_requests_read_5_bytes_then_what_the_header_says() -> None:
    driver, port = make(
        (OUTPUT_OFF, OUTPUT_OFF),
        (READ_INPUTS, inputs()),
        (READ_HOLDING, holding()),
        (read_req(0x04, 7, 1), regs_reply(0x04, [0x0100])),
    )
    driver.output_off()
    assert port.read_sizes == [5, 3]  # 8-byte echo
    port.read_sizes.clear()
    driver.read()
    assert port.read_sizes == [21, 5, 4]  # then holding 0-1: 9 bytes, two registers
    port.read_sizes.clear()
    driver.identify()
    assert port.read_sizes == [5, 2]  # 7 bytes: one register
    assert port.t_s == 0.0  # no read waited for the port timeout
    port.assert_done()


def test_an_exception_reply_to_a_write_is_read_without_waiting_for_more() -> None:
    driver, port = make((OUTPUT_ON, exc_reply(0x06, 4)))
    with pytest.raises(DeviceRejected):
        driver.output_on()
    assert port.read_sizes == [5]
    assert port.t_s == 0.0


def test_a_stale_reply_of_another_function_to_a_write_is_named() -> None:
    driver, port = make((OUTPUT_ON, holding(633, 0)))  # 9 bytes, sized by its byte count
    with pytest.raises(ProtocolError, match="function 0x03, not 0x06") as info:
        driver.output_on()
    assert not isinstance(info.value, CRCError)
    assert port.read_sizes == [5, 4]
    assert port.writes == [OUTPUT_ON]


def test_a_write_reply_cut_short_is_a_crc_error_after_one_timeout() -> None:
    driver, port = make((OUTPUT_ON, OUTPUT_ON[:6]))
    with pytest.raises(CRCError, match="output_enable"):
        driver.output_on()
    assert port.t_s == pytest.approx(0.05)
    assert port.writes == [OUTPUT_ON]


def test_a_write_reply_from_another_unit_is_no_valid_frame() -> None:
    driver, port = make((OUTPUT_ON, write_req(2, 1, unit=2)))
    with pytest.raises(ProtocolError, match="no valid reply frame for unit 1") as info:
        driver.output_on()
    assert not isinstance(info.value, CRCError)
    assert port.writes == [OUTPUT_ON]


def test_stale_bytes_are_discarded_before_each_request() -> None:
    driver, port = primed((READ_INPUTS, inputs(irradiance=7)))
    port.inject(inputs(irradiance=999))  # a late reply to an earlier timed-out read
    assert driver.read().irradiance_mw_cm2 == 0.7
    assert port.resets >= 1


def test_bad_crc_is_retried_then_a_crc_error() -> None:
    bad = bytearray(inputs())
    bad[-1] ^= 0xFF
    driver, port = make((READ_INPUTS, bytes(bad)), (READ_INPUTS, bytes(bad)))
    with pytest.raises(CRCError, match="bad CRC"):
        driver.read()
    assert port.writes == [READ_INPUTS, READ_INPUTS]


def test_bad_crc_then_good_reply_succeeds() -> None:
    bad = bytearray(inputs())
    bad[5] ^= 0x01
    driver, port = primed((READ_INPUTS, bytes(bad)), (READ_INPUTS, inputs(irradiance=3)))
    assert driver.read().irradiance_mw_cm2 == 0.3
    assert port.writes == [READ_INPUTS, READ_INPUTS]


def test_reply_from_another_unit_is_not_ours() -> None:
    other = inputs_for_unit(2)
    driver, port = make((READ_INPUTS, other), (READ_INPUTS, other))
    with pytest.raises(ProtocolError, match="no valid reply frame for unit 1") as info:
        driver.read()
    assert not isinstance(info.value, CRCError)
    port.assert_done()


def test_reply_of_another_function_is_a_protocol_error_and_retried() -> None:
    driver, port = primed(
        (READ_INPUTS, regs_reply(0x03, [0] * 8)),
        (READ_INPUTS, inputs(irradiance=1)),
    )
    assert driver.read().irradiance_mw_cm2 == 0.1
    assert port.writes == [READ_INPUTS, READ_INPUTS]


def test_wrong_register_count_is_a_protocol_error() -> None:
    short = regs_reply(0x04, [0] * 7)
    driver, port = make((READ_INPUTS, short), (READ_INPUTS, short))
    with pytest.raises(ProtocolError, match="7 registers, not 8"):
        driver.read()
    port.assert_done()


def test_unknown_function_code_with_good_crc_is_a_protocol_error() -> None:
    junk = adu(bytes([1, 0x41, 0, 0]))
    driver, port = make((READ_INPUTS, junk), (READ_INPUTS, junk))
    with pytest.raises(ProtocolError, match="no valid reply frame"):
        driver.read()
    port.assert_done()


def test_write_echo_mismatch_is_a_protocol_error_and_output_on_not_retried() -> None:
    driver, port = make((OUTPUT_ON, write_req(2, 0)))
    with pytest.raises(ProtocolError, match="echoes register 2 = \\[0\\], not 2 = 1"):
        driver.output_on()
    assert port.writes == [OUTPUT_ON]


def test_write_echo_mismatch_on_a_setpoint_invalidates_the_cache() -> None:
    driver, port = primed(
        (write_req(1, 200), write_req(1, 201)),
        (READ_INPUTS, inputs()),
        (READ_HOLDING, holding(633, 201)),
    )
    with pytest.raises(ProtocolError):
        driver.set_irradiance(20.0)
    assert driver.read().setpoint_mw_cm2 == 20.1
    port.assert_done()


# ------------------------------------------------------------------ port failures


@pytest.mark.parametrize("exc", [serial.SerialException("gone"), OSError(5, "EIO")])
def test_port_failure_on_read_is_a_port_error_and_not_retried(exc: BaseException) -> None:
    driver, port = make((OUTPUT_OFF, exc))
    with pytest.raises(PortError, match="receiving"):
        driver.output_off()
    assert port.writes == [OUTPUT_OFF]
    assert port.is_open and port.closes == 0  # the driver does not close the caller's port


def test_port_failure_on_write_is_a_port_error() -> None:
    port = ScriptedPort().expect(OUTPUT_ON, write_error=serial.SerialTimeoutException("stuck"))
    driver = LEDModbusDriver(port)
    with pytest.raises(PortError, match="stuck"):
        driver.output_on()


def test_short_write_is_a_port_error() -> None:
    class ShortPort(ScriptedPort):
        def write(self, data: bytes) -> int:
            super().write(data)
            return 3

    port = ShortPort().expect(OUTPUT_OFF)
    driver = LEDModbusDriver(port, retries=0)
    with pytest.raises(PortError, match="wrote 3 of 8"):
        driver.output_off()


def test_port_closed_under_the_driver_is_a_port_error() -> None:
    driver, port = make()
    port.is_open = False
    with pytest.raises(PortError, match="not open"):
        driver.output_off()
    assert port.writes == []


def test_against_a_real_pyserial_loop_port() -> None:
    """pyserial's loop:// echoes the request: never a valid reply, and no pymodbus error escapes."""
    port = serial.serial_for_url("loop://", timeout=0.01)
    driver = LEDModbusDriver(port, timeout_s=0.01)
    with pytest.raises(ProtocolError):
        driver.read()
    port.close()
    with pytest.raises(PortError):
        driver.read()
    driver.close()


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("unit", [0, 248, -1, True, 1.0])
def test_bad_unit_is_refused(unit: int) -> None:
    with pytest.raises(ConfigError, match="unit"):
        LEDModbusDriver(ScriptedPort(), unit=unit)


@pytest.mark.parametrize("timeout_s", [0, -1, math.inf, math.nan, True])
def test_bad_timeout_is_refused(timeout_s: float) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        LEDModbusDriver(ScriptedPort(), timeout_s=timeout_s)


@pytest.mark.parametrize(
    ("port_timeout_s", "used_s"), [(0.2, 0.2), (0.05, 0.05), (None, 0.05), (0, 0.05)]
)
def test_the_reply_timeout_is_the_ports_unless_given(
    port_timeout_s: float | None, used_s: float
) -> None:
    # Every driver takes its reply timeout from the port the station opened; the LED
    # driver sets it back on the port, since pymodbus reads it from there.
    port = ScriptedPort(timeout=port_timeout_s)
    driver = LEDModbusDriver(port)  # type: ignore[arg-type]
    assert driver.timeout_s == used_s and port.timeout == used_s
    explicit = LEDModbusDriver(ScriptedPort(timeout=0.2), timeout_s=0.1)  # type: ignore[arg-type]
    assert explicit.timeout_s == 0.1


@pytest.mark.parametrize("retries", [-1, 2, 1.0, True])
def test_bad_retries_is_refused(retries: int) -> None:
    with pytest.raises(ConfigError, match="retries"):
        LEDModbusDriver(ScriptedPort(), retries=retries)


def test_the_driver_sets_the_port_timeout() -> None:
    port = ScriptedPort()
    LEDModbusDriver(port, timeout_s=0.03)
    assert port.timeout == 0.03


def test_driver_satisfies_the_led_panel_protocol_and_declares_itself() -> None:
    driver, _ = make()
    assert isinstance(driver, LEDPanel)
    assert LEDModbusDriver.implements == "led"
    assert LEDModbusDriver.modality == "led"
    assert LEDModbusDriver.default_simulator == "led"


def test_the_entry_point_loads_this_class() -> None:
    from devicectl.plugins import DRIVER_GROUP, load_plugin

    assert load_plugin(DRIVER_GROUP, "led_modbus") is LEDModbusDriver


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_driver_uses_only_pymodbus_public_message_modules() -> None:
    """The framer and PDU modules of pymodbus's library reference; no client, whose
    members a subclass would have to override."""
    public = {
        "pymodbus.exceptions",
        "pymodbus.framer",
        "pymodbus.pdu",
        "pymodbus.pdu.register_message",
    }
    used = {m for m in _imported_modules(DRIVERS / "led_modbus.py") if m.startswith("pymodbus")}
    assert used and used <= public, used - public


def test_driver_imports_only_devices_errors_pyserial_pymodbus_and_the_stdlib() -> None:
    allowed = {"devicectl.devices", "devicectl.errors", "devicectl_drivers.port_errors", "serial"}
    for module in _imported_modules(DRIVERS / "led_modbus.py"):
        top = module.split(".")[0]
        assert (
            module in allowed
            or top == "pymodbus"
            or top in sys.stdlib_module_names
            or module == "__future__"
        ), f"led_modbus.py imports {module}"
