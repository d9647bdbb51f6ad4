"""RFScpiDriver against a scripted port: exact bytes on the wire, retries, and failures.

The fake port follows OpenHTF's ``usb_handle_stub``: a test queues the exact
bytes it expects the driver to write and the exact bytes the "device" answers;
any other write fails the test at once. Frames in these tests are literals
(checked against a bit-by-bit CRC in ``test_rf_codec.py``), or built by
``frame`` below, which uses ``binascii`` and no driver code.
"""

from __future__ import annotations

import ast
import binascii
import math
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import serial

from devicectl.devices import DeviceIdentity, RFGenerator, RFReading, RFStatus
from devicectl.errors import (
    DeviceRejected,
    DeviceTimeout,
    PortError,
    ProtocolError,
    SequenceError,
    ValidationError,
)
from devicectl_drivers.rf_scpi import RFScpiDriver
from tests.scripted_port import ManualNow, ScriptedPort

DRIVERS = Path(__file__).resolve().parents[1] / "drivers" / "devicectl_drivers"

# Literal frames (seq 0 unless the name says otherwise).
IDN_0 = b"0 *IDN?*66A8\n"
IDN_REPLY_0 = b"0 OK Acme Aesthetics,RF-200,SN00042,2.1.0*736B\n"
MEAS_0 = b"0 MEAS:ALL?*C381\n"
MEAS_REPLY_0 = b"0 OK 41.8,42.1,123,25.0,ON,19*FA32\n"
MEAS_1 = b"1 MEAS:ALL?*1BC8\n"
MEAS_REPLY_1_OPEN = b"1 OK NAN,39.5,OPEN,0.0,OFF,32*44A4\n"
MEAS_REPLY_1 = b"1 OK 41.8,42.1,123,25.0,ON,19*0AD4\n"
MEAS_2 = b"2 MEAS:ALL?*6332\n"
MEAS_REPLY_2 = b"2 OK 41.8,42.1,123,25.0,ON,19*0BDF\n"
POW_25_0 = b"0 SOUR:POW 25.0*26E4\n"
POW_12_3_0 = b"0 SOUR:POW 12.3*08CB\n"
OK_0 = b"0 OK*CAB2\n"
OK_1 = b"1 OK*BC06\n"
OUTP_ON_0 = b"0 OUTP ON*28B9\n"
OUTP_ON_1 = b"1 OUTP ON*C39A\n"
OUTP_OFF_0 = b"0 OUTP OFF*BDC1\n"
OUTP_OFF_1 = b"1 OUTP OFF*D284\n"
OUTP_Q_0 = b"0 OUTP?*6BA9\n"
ON_0 = b"0 OK ON*AB67\n"
OFF_0 = b"0 OK OFF*C22A\n"
CLS_0 = b"0 *CLS*1007\n"
HEART_0 = b"0 SYST:HEART*F6A8\n"
SYST_ERR_0 = b"0 SYST:ERR?*E23D\n"
SYST_ERR_REPLY_0 = b'0 OK -113,"Undefined header"*1B7E\n'
POW_Q_0 = b"0 SOUR:POW?*2AA3\n"
POW_Q_REPLY_0 = b"0 OK 25.0*9D75\n"
ERR_221_0 = b'0 ERR -221,"Settings conflict"*8EE1\n'
IDN_65535 = b"65535 *IDN?*56F1\n"
IDN_REPLY_65535 = b"65535 OK A,B,C,D*80B7\n"
IDN_REPLY_0_SHORT = b"0 OK A,B,C,D*0A15\n"


def frame(seq: int, text: str) -> bytes:
    head = f"{seq} {text}".encode("ascii")
    return head + b"*%04X\n" % binascii.crc_hqx(head, 0xFFFF)


def test_frame_helper_agrees_with_the_literals() -> None:
    assert frame(0, "*IDN?") == IDN_0
    assert frame(2, "OK 41.8,42.1,123,25.0,ON,19") == MEAS_REPLY_2
    assert frame(65535, "*IDN?") == IDN_65535


# ------------------------------------------------------------------ fake port


def make(
    *exchanges: tuple[bytes, ...], read_retries: int = 2, now: ManualNow | None = None
) -> tuple[RFScpiDriver, ScriptedPort]:
    port = ScriptedPort()
    for command, *reply in exchanges:
        port.expect(command, *reply)
    driver = RFScpiDriver(port, now=now or ManualNow(), read_retries=read_retries)  # type: ignore[arg-type]
    return driver, port


# ------------------------------------------------------- every method's bytes


def test_identify_sends_idn_and_parses_the_identity() -> None:
    driver, port = make((IDN_0, IDN_REPLY_0))
    assert driver.identify() == DeviceIdentity("Acme Aesthetics", "RF-200", "SN00042", "2.1.0")
    assert port.writes == [IDN_0]
    port.assert_done()


def test_read_sends_meas_all_and_returns_a_stamped_reading() -> None:
    clock = ManualNow(12.5)
    driver, port = make((MEAS_0, MEAS_REPLY_0), (MEAS_1, MEAS_REPLY_1_OPEN), now=clock)
    reading = driver.read()
    assert reading == RFReading(
        t_s=12.5,
        skin1_c=41.8,
        skin2_c=42.1,
        impedance_ohm=123.0,
        power_w=25.0,
        output_on=True,
        status=RFStatus.OUTPUT_ON | RFStatus.CONTACT_OK | RFStatus.POWER_ON_RESET,
    )
    assert type(reading.status) is RFStatus
    clock.t_s = 12.55
    reading = driver.read()
    assert reading.t_s == 12.55
    assert math.isnan(reading.skin1_c) and reading.skin2_c == 39.5
    assert reading.impedance_ohm == math.inf
    assert (reading.power_w, reading.output_on, reading.status) == (
        0.0,
        False,
        RFStatus.SENSOR_FAULT,
    )
    assert math.isnan(reading.skin_max_c) and not reading.contact_ok
    assert port.writes == [MEAS_0, MEAS_1]
    port.assert_done()


@pytest.mark.parametrize(
    ("power_w", "wire"), [(25.0, POW_25_0), (25, POW_25_0), (12.34, POW_12_3_0)]
)
def test_set_power_sends_one_decimal(power_w: float, wire: bytes) -> None:
    driver, port = make((wire, OK_0))
    driver.set_power(power_w)
    assert port.writes == [wire]
    port.assert_done()


@pytest.mark.parametrize("power_w", [math.nan, math.inf, -math.inf])
def test_set_power_without_a_wire_form_sends_nothing(power_w: float) -> None:
    driver, port = make()
    with pytest.raises(ValidationError):
        driver.set_power(power_w)
    assert port.writes == []
    assert driver.next_seq == 0


def test_output_on_off_and_readback() -> None:
    driver, port = make((OUTP_ON_0, OK_0))
    driver.output_on()
    driver, port2 = make((OUTP_OFF_0, OK_0))
    driver.output_off()
    driver, port3 = make((OUTP_Q_0, ON_0))
    assert driver.output_is_on() is True
    driver, port4 = make((OUTP_Q_0, OFF_0))
    assert driver.output_is_on() is False
    assert (port.writes, port2.writes, port3.writes, port4.writes) == (
        [OUTP_ON_0],
        [OUTP_OFF_0],
        [OUTP_Q_0],
        [OUTP_Q_0],
    )


def test_clear_status_heartbeat_error_queue_and_setpoint() -> None:
    for command, reply, call, result in [
        (CLS_0, OK_0, RFScpiDriver.clear_status, None),
        (HEART_0, OK_0, RFScpiDriver.heartbeat, None),
        (SYST_ERR_0, SYST_ERR_REPLY_0, RFScpiDriver.next_error, (-113, "Undefined header")),
        (POW_Q_0, POW_Q_REPLY_0, RFScpiDriver.power_setpoint_w, 25.0),
    ]:
        driver, port = make((command, reply))
        assert call(driver) == result
        assert port.writes == [command]
        port.assert_done()


def test_commands_that_answer_bare_ok_reject_a_payload() -> None:
    driver, port = make((OUTP_ON_0, ON_0))
    with pytest.raises(ProtocolError, match="unexpected payload 'ON'"):
        driver.output_on()
    assert port.writes == [OUTP_ON_0]


def test_sequence_numbers_increment_per_command() -> None:
    driver, port = make(
        (MEAS_0, MEAS_REPLY_0),
        (OUTP_ON_1, OK_1),
        (MEAS_2, MEAS_REPLY_2),
    )
    assert driver.next_seq == 0
    driver.read()
    driver.output_on()
    driver.read()
    assert driver.next_seq == 3
    port.assert_done()


def test_seq_wraps_from_65535_to_0() -> None:
    port = ScriptedPort()
    for seq in range(65535):
        port.expect(frame(seq, "SYST:HEART"), frame(seq, "OK"))
    port.expect(IDN_65535, IDN_REPLY_65535)
    port.expect(IDN_0, IDN_REPLY_0_SHORT)
    driver = RFScpiDriver(port)  # type: ignore[arg-type]
    for _ in range(65535):
        driver.heartbeat()
    assert driver.next_seq == 65535
    assert driver.identify() == DeviceIdentity("A", "B", "C", "D")
    assert driver.next_seq == 0
    assert driver.identify() == DeviceIdentity("A", "B", "C", "D")
    assert driver.next_seq == 1
    port.assert_done()


# ------------------------------------------------------------- stale / chunks


def test_stale_bytes_are_discarded_before_each_command() -> None:
    driver, port = make((MEAS_0, MEAS_REPLY_0))
    port.inject(b"65535 OK 1.0,1.0,1,1.0,OFF,0*0000\n", b"partial")
    driver.read()
    assert port.resets == 1
    port.assert_done()


def test_reply_split_across_reads_is_reassembled() -> None:
    chunks = [MEAS_REPLY_0[i : i + 1] for i in range(len(MEAS_REPLY_0))]
    driver, port = make((MEAS_0, *chunks))
    assert driver.read().skin2_c == 42.1
    assert port.writes == [MEAS_0]


def test_reads_ask_for_what_is_waiting_not_byte_by_byte() -> None:
    class CountingPort(ScriptedPort):
        sizes: list[int]

        def read(self, size: int = 1) -> bytes:
            self.sizes.append(size)
            return super().read(size)

    port = CountingPort()
    port.sizes = []
    port.expect(MEAS_0, MEAS_REPLY_0[:10], MEAS_REPLY_0[10:])
    RFScpiDriver(port).read()  # type: ignore[arg-type]
    assert port.sizes == [10, len(MEAS_REPLY_0) - 10]


def test_bytes_after_the_lf_are_not_taken_for_the_next_reply() -> None:
    driver, port = make((MEAS_0, MEAS_REPLY_0 + MEAS_REPLY_1), (OUTP_ON_1, OK_1))
    driver.read()
    driver.output_on()  # would be a SequenceError if MEAS_REPLY_1 had been kept
    port.assert_done()


def test_a_reply_running_past_128_bytes_without_lf_is_a_protocol_error() -> None:
    driver, port = make(
        (MEAS_0, b"0 OK " + b"9" * 200), (MEAS_1, b"x" * 128), (MEAS_2, MEAS_REPLY_2)
    )
    assert driver.read().power_w == 25.0  # retried twice, third try good
    assert len(port.writes) == 3
    driver, port = make((OUTP_ON_0, b"0 OK" + b" " * 130))
    with pytest.raises(ProtocolError, match="ran past 128 bytes without an LF"):
        driver.output_on()


# ------------------------------------------------------------- read retries


def test_read_is_retried_after_a_timeout_with_a_fresh_seq() -> None:
    driver, port = make((MEAS_0,), (MEAS_1, MEAS_REPLY_1))
    assert driver.read().impedance_ohm == 123.0
    assert port.writes == [MEAS_0, MEAS_1]
    assert port.resets == 2


def test_read_is_retried_after_a_crc_error_a_stale_seq_and_a_bad_payload() -> None:
    bad_crc = MEAS_REPLY_0[:-5] + b"0000\n"
    stale = frame(0, "OK 41.8,42.1,123,25.0,ON,19")  # seq 0 answering command 1
    driver, port = make(
        (MEAS_0, bad_crc),
        (MEAS_1, stale),
        (MEAS_2, frame(2, "OK 41.8,42.1,123,25.0,MAYBE,19")),
        (frame(3, "MEAS:ALL?"), frame(3, "OK 41.8,42.1,123,25.0,ON,19")),
        read_retries=3,
    )
    assert driver.read().output_on is True
    assert len(port.writes) == 4
    port.assert_done()


def test_read_gives_up_after_read_retries_and_raises_the_last_error() -> None:
    driver, port = make((MEAS_0,), (MEAS_1,), (MEAS_2, b"2 OK 1*"))
    with pytest.raises(DeviceTimeout, match="no reply to 'MEAS:ALL\\?' \\(seq 2\\)") as info:
        driver.read()
    assert port.writes == [MEAS_0, MEAS_1, MEAS_2]
    assert "got only b'2 OK 1*'" in str(info.value)
    assert any("gave up after 3 tries" in note for note in info.value.__notes__)
    port.assert_done()


def test_read_retries_zero_means_one_try() -> None:
    driver, port = make((MEAS_0,), read_retries=0)
    with pytest.raises(DeviceTimeout, match="MEAS:ALL"):
        driver.read()
    assert port.writes == [MEAS_0]


def test_identify_and_output_is_on_are_retried() -> None:
    driver, port = make((IDN_0,), (frame(1, "*IDN?"), frame(1, "OK A,B,C,D")))
    assert driver.identify().serial == "C"
    assert len(port.writes) == 2
    driver, port = make((OUTP_Q_0, b"garbage\n"), (frame(1, "OUTP?"), frame(1, "OK OFF")))
    assert driver.output_is_on() is False
    assert len(port.writes) == 2


def test_output_off_is_retried_after_a_timeout() -> None:
    driver, port = make((OUTP_OFF_0,), (OUTP_OFF_1, OK_1))
    driver.output_off()
    assert port.writes == [OUTP_OFF_0, OUTP_OFF_1]
    port.assert_done()


def test_output_off_gives_up_after_read_retries() -> None:
    driver, port = make(
        (OUTP_OFF_0,), (OUTP_OFF_1,), (frame(2, "OUTP OFF"),), (frame(3, "OUTP OFF"),)
    )
    with pytest.raises(DeviceTimeout, match="OUTP OFF"):
        driver.output_off()
    assert len(port.writes) == 3  # read_retries=2: the fourth is never sent
    assert driver.next_seq == 3


# ----------------------------------------------------- energy: sent once only


@pytest.mark.parametrize(
    ("call", "command"),
    [
        (lambda d: d.set_power(25.0), POW_25_0),
        (RFScpiDriver.output_on, OUTP_ON_0),
        (RFScpiDriver.clear_status, CLS_0),
        (RFScpiDriver.heartbeat, HEART_0),
        (RFScpiDriver.next_error, SYST_ERR_0),
    ],
)
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ((), DeviceTimeout),
        ((b"0 OK*0000\n",), ProtocolError),  # CRC error
        ((frame(9, "OK"),), SequenceError),
    ],
)
def test_non_idempotent_commands_are_never_retried(
    call: object, command: bytes, reply: tuple[bytes, ...], error: type[Exception]
) -> None:
    port = ScriptedPort()
    port.expect(command, *reply)
    driver = RFScpiDriver(port, read_retries=5)  # type: ignore[arg-type]
    with pytest.raises(error):
        call(driver)  # type: ignore[operator]
    assert port.writes == [command]  # exactly one write
    port.assert_done()
    assert driver.next_seq == 1


def test_output_on_timeout_names_the_command() -> None:
    driver, port = make((OUTP_ON_0,))
    with pytest.raises(
        DeviceTimeout, match=re.escape("no reply to 'OUTP ON' (seq 0) within 0.05 s")
    ):
        driver.output_on()
    assert port.writes == [OUTP_ON_0]


# ------------------------------------------------------------- error replies


def test_err_reply_is_device_rejected_with_code_text_and_command() -> None:
    driver, port = make((OUTP_ON_0, ERR_221_0))
    with pytest.raises(DeviceRejected) as info:
        driver.output_on()
    assert (info.value.code, info.value.text, info.value.command) == (
        -221,
        "Settings conflict",
        "OUTP ON",
    )
    assert port.writes == [OUTP_ON_0]


def test_err_reply_to_a_read_is_not_retried() -> None:
    driver, port = make((MEAS_0, frame(0, 'ERR -113,"Undefined header"')))
    with pytest.raises(DeviceRejected) as info:
        driver.read()
    assert info.value.code == -113 and info.value.command == "MEAS:ALL?"
    assert port.writes == [MEAS_0]
    port.assert_done()


def test_err_reply_to_set_power_names_the_whole_command() -> None:
    driver, port = make((POW_25_0, frame(0, 'ERR -222,"Data out of range"')))
    with pytest.raises(DeviceRejected, match=re.escape("'SOUR:POW 25.0': -222 Data out of range")):
        driver.set_power(25.0)
    assert port.writes == [POW_25_0]


def test_err_with_another_seq_is_a_sequence_error_first() -> None:
    driver, port = make((OUTP_ON_0, frame(7, 'ERR -221,"Settings conflict"')))
    with pytest.raises(SequenceError, match="carries seq 7, expected 0"):
        driver.output_on()
    assert port.writes == [OUTP_ON_0]


# --------------------------------------------------------------- port errors


@pytest.mark.parametrize(
    "exc", [serial.SerialException("device disconnected"), OSError(5, "Input/output error")]
)
def test_port_failure_on_read_is_a_port_error_and_not_retried(exc: BaseException) -> None:
    driver, port = make((MEAS_0, b"0 OK 4", exc))
    with pytest.raises(PortError, match="during 'MEAS:ALL\\?'") as info:
        driver.read()
    assert info.value.__cause__ is exc
    assert port.writes == [MEAS_0]


def test_port_failure_on_write_is_a_port_error() -> None:
    port = ScriptedPort()
    port.expect(OUTP_OFF_0, write_error=serial.SerialTimeoutException("Write timeout"))
    driver = RFScpiDriver(port)  # type: ignore[arg-type]
    with pytest.raises(PortError, match="Write timeout"):
        driver.output_off()
    assert port.writes == [OUTP_OFF_0]


def test_short_write_is_a_port_error() -> None:
    class ShortWritePort(ScriptedPort):
        def write(self, data: bytes) -> int:
            return super().write(data) - 1

    port = ShortWritePort()
    port.expect(OUTP_ON_0, OK_0)
    with pytest.raises(PortError, match="wrote 14 of 15 bytes"):
        RFScpiDriver(port).output_on()  # type: ignore[arg-type]


def test_against_a_real_pyserial_port() -> None:
    """pyserial's loop:// echoes the command back: not a reply, so every try fails."""
    port = serial.serial_for_url("loop://", timeout=0.01)
    driver = RFScpiDriver(port, read_retries=1)
    with pytest.raises(ProtocolError, match="neither 'OK"):
        driver.read()
    port.close()  # closed under the driver's feet: pyserial raises PortNotOpenError
    with pytest.raises(PortError):
        driver.read()
    driver.close()


# ------------------------------------------------------------ construction


def test_driver_satisfies_the_rf_generator_protocol_and_declares_itself() -> None:
    driver, _ = make()
    assert isinstance(driver, RFGenerator)
    assert RFScpiDriver.modality == "rf"
    assert RFScpiDriver.default_simulator == "rf"


def test_the_entry_point_loads_this_class() -> None:
    from devicectl.plugins import DRIVER_GROUP, load_plugin

    assert load_plugin(DRIVER_GROUP, "rf_scpi") is RFScpiDriver


def _imported_modules(path: Path) -> Iterable[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("name", ["rf_codec.py", "rf_scpi.py"])
def test_driver_imports_only_devices_errors_pyserial_and_the_stdlib(name: str) -> None:
    allowed = {
        "devicectl.devices",
        "devicectl.errors",
        "devicectl_drivers.rf_codec",
        "devicectl_drivers.port_errors",
        "devicectl_drivers.retry",
        "devicectl_drivers.sequenced_port",
        "serial",
    }
    for module in _imported_modules(DRIVERS / name):
        top = module.split(".")[0]
        assert module in allowed or top in sys.stdlib_module_names or module == "__future__", (
            f"{name} imports {module}"
        )
