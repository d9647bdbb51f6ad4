"""IPLCobsDriver against a scripted port: exact bytes on the wire, retries, and failures.

The fake port follows OpenHTF's ``usb_handle_stub`` (as the RF driver tests
do): a test queues the exact bytes it expects the driver to write and the
exact bytes the "device" answers; any other write fails the test at once.
Frames in these tests are hex literals (checked below against ``frame``, a
plain COBS + ``binascii`` CRC written here, and in ``test_ipl_codec.py``
against a bit-by-bit CRC), never built by driver code.
"""

from __future__ import annotations

import ast
import binascii
import math
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

from devicectl.devices import DeviceIdentity, IPLParams, IPLReading, IPLSource, IPLStatus
from devicectl.errors import (
    CRCError,
    DeviceRejected,
    DeviceTimeout,
    PortError,
    ProtocolError,
    SequenceError,
    ValidationError,
)
from devicectl_drivers.ipl_cobs import IPLCobsDriver
from devicectl_drivers.ipl_codec import parse_status_reply
from tests.scripted_port import Chunk, ManualNow, ScriptedPort

DRIVERS = Path(__file__).resolve().parents[1] / "drivers" / "devicectl_drivers"

# Message ids, from the spec's tables.
HEARTBEAT, IDENTIFY, SET_PARAMS, CHARGE, ARM, FIRE, DISARM, STATUS, CLEAR = (
    0x01, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21,
)  # fmt: skip
ACK, NAK, IDENTITY, STATUS_REPLY = 0x80, 0x81, 0x82, 0xA0

# Literal frames, COBS-encoded with their 0x00 (seq 0 unless the name says otherwise).
HEARTBEAT_0 = bytes.fromhex("02 01 04 01 eb 8d 00")
ACK_HEARTBEAT_0 = bytes.fromhex("02 01 05 80 01 f9 cd 00")
IDENTIFY_0 = bytes.fromhex("02 01 04 02 db ee 00")
IDENTITY_0 = bytes.fromhex(
    "02 01 29 82 41 63 6d 65 20 41 65 73 74 68 65 74 69 63 73 2c 49 50 4c 2d 35 30 30 2c"
    "53 4e 30 30 30 30 37 2c 31 2e 34 2e 32 09 f2 00"
)  # "Acme Aesthetics,IPL-500,SN00007,1.4.2"
STATUS_0 = bytes.fromhex("02 01 04 20 df ce 00")
STATUS_1 = bytes.fromhex("06 01 01 20 ec ff 00")
STATUS_2 = bytes.fromhex("06 01 02 20 b9 ac 00")
STATUS_255 = bytes.fromhex("06 01 ff 20 dc 31 00")
# flags 0x1F, charge 100, crystal 5.2, block 29.1, 12345 shots, 14.87 J/cm2, 560 nm, 88 %, 3
STATUS_REPLY_0 = bytes.fromhex(
    "02 01 03 a0 1f 03 64 34 05 23 01 39 30 01 07 cf 05 30 02 58 03 03 d4 3f 00"
)
STATUS_REPLY_1 = bytes.fromhex(
    "05 01 01 a0 1f 03 64 34 05 23 01 39 30 01 07 cf 05 30 02 58 03 03 e1 8c 00"
)
STATUS_REPLY_2 = bytes.fromhex(
    "05 01 02 a0 1f 03 64 34 05 23 01 39 30 01 07 cf 05 30 02 58 03 03 bf 59 00"
)
# flags 0x1C8 (FILTER_OK, WATCHDOG_TRIPPED, POWER_ON_RESET, SENSOR_FAULT), thermistors open
STATUS_REPLY_1_OPEN = bytes.fromhex(
    "06 01 01 a0 c8 01 05 ff 7f ff 7f 01 01 01 01 01 01 01 02 64 01 03 04 59 00"
)
# filter 560, 12.50 J/cm2, 10.0 ms, 3 pulses, 40 ms apart
SET_PARAMS_0 = bytes.fromhex("02 01 07 10 30 02 e2 04 64 03 03 28 03 50 da 00")
ACK_SET_PARAMS_0 = bytes.fromhex("02 01 05 80 10 fb dd 00")
CHARGE_0 = bytes.fromhex("02 01 04 11 f9 bc 00")
ACK_CHARGE_0 = bytes.fromhex("02 01 05 80 11 eb fc 00")
ARM_0 = bytes.fromhex("02 01 04 12 c9 df 00")
ACK_ARM_0 = bytes.fromhex("02 01 05 80 12 db 9f 00")
FIRE_0 = bytes.fromhex("02 01 04 13 d9 fe 00")
ACK_FIRE_0 = bytes.fromhex("02 01 05 80 13 cb be 00")
DISARM_0 = bytes.fromhex("02 01 04 14 a9 19 00")
ACK_DISARM_0 = bytes.fromhex("02 01 05 80 14 bb 59 00")
DISARM_1 = bytes.fromhex("06 01 01 14 9a 28 00")
ACK_DISARM_1 = bytes.fromhex("07 01 01 80 14 8c 69 00")
CLEAR_0 = bytes.fromhex("02 01 04 21 cf ef 00")
ACK_CLEAR_0 = bytes.fromhex("02 01 05 80 21 dd af 00")
NAK_ARM_3_0 = bytes.fromhex("02 01 06 81 12 03 e2 45 00")

PARAMS = IPLParams(filter_nm=560, fluence_j_cm2=12.5, pulse_width_ms=10.0, pulse_count=3,
                   pulse_delay_ms=40.0)  # fmt: skip


def cobs(data: bytes) -> bytes:
    """Plain COBS for packets under 254 bytes: each zero ends a run and becomes its length."""
    out = b""
    for run in data.split(b"\x00"):
        out += bytes([len(run) + 1]) + run
    return out


def frame(seq: int, msg: int, payload: bytes = b"", *, crc_fix: int = 0) -> bytes:
    """A wire frame; ``crc_fix`` XORs the CRC (to make a CRC error)."""
    head = bytes([1, seq, msg]) + payload
    crc = binascii.crc_hqx(head, 0xFFFF) ^ crc_fix
    return cobs(head + crc.to_bytes(2, "big")) + b"\x00"


def status_payload(flags: int = 0x18, charge: int = 0, filter_nm: int = 560) -> bytes:
    return (
        flags.to_bytes(2, "little")
        + bytes([charge])
        + (50).to_bytes(2, "little")
        + (250).to_bytes(2, "little")
        + (0).to_bytes(4, "little")
        + (0).to_bytes(2, "little")
        + filter_nm.to_bytes(2, "little")
        + bytes([100])
        + (0).to_bytes(2, "little")
    )


def test_frame_helper_agrees_with_the_literals() -> None:
    assert frame(0, HEARTBEAT) == HEARTBEAT_0
    assert frame(0, STATUS) == STATUS_0
    assert frame(255, STATUS) == STATUS_255
    assert frame(1, ACK, bytes([DISARM])) == ACK_DISARM_1
    assert frame(0, SET_PARAMS, bytes.fromhex("3002 e204 6400 03 2800")) == SET_PARAMS_0
    assert frame(0, NAK, bytes([ARM, 3])) == NAK_ARM_3_0
    assert frame(0, IDENTITY, b"Acme Aesthetics,IPL-500,SN00007,1.4.2") == IDENTITY_0
    # the spec's example: heartbeat seq 7 is 01 07 01 + CRC, COBS-encoded, then 00
    assert frame(7, HEARTBEAT) == bytes.fromhex("06 01 07 01 72 1a 00")


# ------------------------------------------------------------------ fake port


def make(
    *exchanges: tuple[Chunk, ...], read_retries: int = 2, now: ManualNow | None = None
) -> tuple[IPLCobsDriver, ScriptedPort]:
    port = ScriptedPort()
    for command, *reply in exchanges:
        assert isinstance(command, bytes)
        port.expect(command, *reply)
    driver = IPLCobsDriver(port, now=now or ManualNow(), read_retries=read_retries)  # type: ignore[arg-type]
    return driver, port


# ------------------------------------------------------- every method's bytes


def test_identify_sends_identify_and_parses_the_identity() -> None:
    driver, port = make((IDENTIFY_0, IDENTITY_0))
    assert driver.identify() == DeviceIdentity("Acme Aesthetics", "IPL-500", "SN00007", "1.4.2")
    assert port.writes == [IDENTIFY_0]
    port.assert_done()


def test_read_sends_status_and_returns_a_stamped_reading() -> None:
    clock = ManualNow(12.5)
    driver, port = make((STATUS_0, STATUS_REPLY_0), (STATUS_1, STATUS_REPLY_1_OPEN), now=clock)
    assert driver.last_status is None
    reading = driver.read()
    assert reading == IPLReading(
        t_s=12.5,
        status=IPLStatus.CHARGED
        | IPLStatus.CHARGING
        | IPLStatus.ARMED
        | IPLStatus.FILTER_OK
        | IPLStatus.CONTACT_OK,
        charge_pct=100.0,
        crystal_temp_c=5.2,
        block_temp_c=29.1,
        shot_count=12345,
        last_fluence_j_cm2=14.87,
        filter_nm=560,
        lamp_life_pct=88.0,
    )
    assert type(reading.status) is IPLStatus
    assert driver.last_status is not None
    assert (driver.last_status.lamp_life_pct, driver.last_status.frame_errors) == (88, 3)
    clock.t_s = 12.55
    reading = driver.read()
    assert reading.t_s == 12.55
    assert math.isnan(reading.crystal_temp_c) and math.isnan(reading.block_temp_c)
    assert reading.status == (
        IPLStatus.FILTER_OK
        | IPLStatus.WATCHDOG_TRIPPED
        | IPLStatus.POWER_ON_RESET
        | IPLStatus.SENSOR_FAULT
    )
    assert reading.has(IPLStatus.SENSOR_FAULT) and not reading.has(IPLStatus.ARMED)
    assert (reading.charge_pct, reading.shot_count, reading.last_fluence_j_cm2) == (0.0, 0, 0.0)
    assert reading.filter_nm == 0
    assert port.writes == [STATUS_0, STATUS_1]
    port.assert_done()


@given(
    flags=st.integers(0, 0x1FF),
    charge=st.integers(0, 100),
    crystal=st.integers(-32768, 32767),
    block=st.sampled_from([0x7FFF, -32768, -1, 0, 450, 32766]),
    shots=st.integers(0, 2**32 - 1),
    fluence=st.integers(0, 65535),
    filter_nm=st.sampled_from([0, 515, 560, 590, 640, 695]),
    life=st.integers(0, 100),
    errors=st.integers(0, 65535),
)
def test_read_converts_exactly_as_the_codec_does(
    flags: int,
    charge: int,
    crystal: int,
    block: int,
    shots: int,
    fluence: int,
    filter_nm: int,
    life: int,
    errors: int,
) -> None:
    payload = (
        flags.to_bytes(2, "little")
        + bytes([charge])
        + crystal.to_bytes(2, "little", signed=True)
        + block.to_bytes(2, "little", signed=True)
        + shots.to_bytes(4, "little")
        + fluence.to_bytes(2, "little")
        + filter_nm.to_bytes(2, "little")
        + bytes([life])
        + errors.to_bytes(2, "little")
    )
    driver, _ = make((STATUS_0, frame(0, STATUS_REPLY, payload)), now=ManualNow(7.0))
    reading = driver.read()
    want = parse_status_reply(payload)
    assert driver.last_status == want
    got = (
        int(reading.status),
        reading.charge_pct,
        reading.crystal_temp_c,
        reading.block_temp_c,
        reading.shot_count,
        reading.last_fluence_j_cm2,
        reading.filter_nm,
    )
    assert repr(got) == repr(tuple(want[:7]))  # repr: nan == nan, and the same types
    assert reading.t_s == 7.0 and type(reading.status) is IPLStatus


def test_set_params_sends_the_packed_parameters() -> None:
    driver, port = make((SET_PARAMS_0, ACK_SET_PARAMS_0))
    driver.set_params(PARAMS)
    assert port.writes == [SET_PARAMS_0]
    assert driver.next_seq == 1
    port.assert_done()


@pytest.mark.parametrize(
    ("call", "command", "reply"),
    [
        (IPLCobsDriver.charge, CHARGE_0, ACK_CHARGE_0),
        (IPLCobsDriver.arm, ARM_0, ACK_ARM_0),
        (IPLCobsDriver.fire, FIRE_0, ACK_FIRE_0),
        (IPLCobsDriver.disarm, DISARM_0, ACK_DISARM_0),
        (IPLCobsDriver.clear_status, CLEAR_0, ACK_CLEAR_0),
        (IPLCobsDriver.heartbeat, HEARTBEAT_0, ACK_HEARTBEAT_0),
    ],
)
def test_ack_commands_send_their_exact_frame(
    call: Callable[[IPLCobsDriver], None], command: bytes, reply: bytes
) -> None:
    driver, port = make((command, reply))
    call(driver)
    assert port.writes == [command]
    assert port.resets == 1
    port.assert_done()


def test_an_ack_echoing_another_command_is_refused() -> None:
    driver, port = make((ARM_0, ACK_FIRE_0))
    with pytest.raises(ProtocolError, match="ACK payload 13 does not echo ARM"):
        driver.arm()
    assert port.writes == [ARM_0]


def test_sequence_numbers_increment_per_command() -> None:
    driver, port = make(
        (STATUS_0, STATUS_REPLY_0),
        (DISARM_1, ACK_DISARM_1),
        (STATUS_2, STATUS_REPLY_2),
    )
    assert driver.next_seq == 0
    driver.read()
    driver.disarm()
    driver.read()
    assert driver.next_seq == 3
    port.assert_done()


def test_seq_wraps_from_255_to_0() -> None:
    port = ScriptedPort()
    for seq in range(255):
        port.expect(frame(seq, HEARTBEAT), frame(seq, ACK, bytes([HEARTBEAT])))
    port.expect(STATUS_255, frame(255, STATUS_REPLY, status_payload()))
    port.expect(STATUS_0, frame(0, STATUS_REPLY, status_payload()))
    port.expect(STATUS_1, frame(1, STATUS_REPLY, status_payload()))
    driver = IPLCobsDriver(port)  # type: ignore[arg-type]
    for _ in range(255):
        driver.heartbeat()
    assert driver.next_seq == 255
    driver.read()
    assert driver.next_seq == 0
    driver.read()
    driver.read()
    assert driver.next_seq == 2
    port.assert_done()


# ------------------------------------------------------------- stale / chunks


def test_stale_bytes_are_discarded_before_each_command() -> None:
    driver, port = make((STATUS_0, STATUS_REPLY_0))
    port.inject(frame(9, STATUS_REPLY, status_payload()), b"\x05\x01\x09")
    assert driver.read().shot_count == 12345
    assert port.resets == 1
    port.assert_done()


def test_reply_split_across_reads_is_reassembled() -> None:
    chunks = [STATUS_REPLY_0[i : i + 1] for i in range(len(STATUS_REPLY_0))]
    driver, port = make((STATUS_0, *chunks))
    assert driver.read().filter_nm == 560
    assert port.writes == [STATUS_0]


def test_reads_ask_for_what_is_waiting_not_byte_by_byte() -> None:
    class CountingPort(ScriptedPort):
        sizes: list[int]

        def read(self, size: int = 1) -> bytes:
            self.sizes.append(size)
            return super().read(size)

    port = CountingPort()
    port.sizes = []
    port.expect(STATUS_0, STATUS_REPLY_0[:10], STATUS_REPLY_0[10:])
    IPLCobsDriver(port).read()  # type: ignore[arg-type]
    assert port.sizes == [10, len(STATUS_REPLY_0) - 10]


def test_empty_chunks_before_the_reply_are_skipped() -> None:
    driver, port = make((ARM_0, b"\x00", b"\x00\x00" + ACK_ARM_0))
    driver.arm()
    port.assert_done()


def test_bytes_after_the_delimiter_are_not_taken_for_the_next_reply() -> None:
    driver, port = make((STATUS_0, STATUS_REPLY_0 + ACK_DISARM_1), (DISARM_1, ACK_DISARM_1))
    driver.read()
    port.inject(ACK_DISARM_0)  # would be a SequenceError if kept
    driver.disarm()
    port.assert_done()


def test_a_reply_running_past_70_bytes_without_a_delimiter_is_a_protocol_error() -> None:
    driver, port = make(
        (STATUS_0, b"\x01" * 80), (STATUS_1, b"\x01" * 71), (STATUS_2, STATUS_REPLY_2)
    )
    assert driver.read().charge_pct == 100.0  # retried twice, third try good
    assert len(port.writes) == 3
    driver, port = make((ARM_0, b"\x02" * 75))
    with pytest.raises(ProtocolError, match="ran past 70 bytes without a 0x00 delimiter"):
        driver.arm()
    assert port.writes == [ARM_0]


def test_a_reply_of_exactly_70_bytes_is_read_whole() -> None:
    longest = frame(0, IDENTITY, b"A" * 20 + b"," + b"B" * 20 + b"," + b"C" * 20 + b",D")
    assert len(longest) == 71  # 70 encoded bytes and the delimiter
    driver, _ = make((IDENTIFY_0, longest))
    assert driver.identify().firmware == "D"


# ------------------------------------------------------------- read retries


def test_read_is_retried_after_a_timeout_with_a_fresh_seq() -> None:
    driver, port = make((STATUS_0,), (STATUS_1, STATUS_REPLY_1))
    assert driver.read().block_temp_c == 29.1
    assert port.writes == [STATUS_0, STATUS_1]
    assert port.resets == 2


def test_read_is_retried_after_every_kind_of_bad_frame() -> None:
    driver, port = make(
        (STATUS_0, frame(0, STATUS_REPLY, status_payload(), crc_fix=1)),  # CRC error
        (STATUS_1, frame(0, STATUS_REPLY, status_payload())),  # stale seq
        (STATUS_2, frame(2, STATUS_REPLY, status_payload(flags=0x200))),  # undefined bit
        (frame(3, STATUS), frame(3, ACK, bytes([STATUS]))),  # wrong message
        (frame(4, STATUS), b"\x07\x01\x04\xa0\x00"),  # truncated, then the delimiter
        (frame(5, STATUS), b"\x05\x00"),  # not COBS
        (frame(6, STATUS), frame(6, STATUS_REPLY, status_payload(charge=7))),
        read_retries=6,
    )
    assert driver.read().charge_pct == 7.0
    assert len(port.writes) == 7
    port.assert_done()


def test_read_gives_up_after_read_retries_and_raises_the_last_error() -> None:
    driver, port = make((STATUS_0,), (STATUS_1,), (STATUS_2, b"\x05\x01\x02"))
    with pytest.raises(DeviceTimeout, match=re.escape("no reply to STATUS (seq 2)")) as info:
        driver.read()
    assert port.writes == [STATUS_0, STATUS_1, STATUS_2]
    assert "got only 05 01 02" in str(info.value)
    assert any("gave up after 3 tries" in note for note in info.value.__notes__)
    port.assert_done()


def test_read_raises_the_last_protocol_error() -> None:
    driver, port = make(
        (STATUS_0,), (STATUS_1,), (STATUS_2, frame(2, STATUS_REPLY, status_payload(), crc_fix=4))
    )
    with pytest.raises(CRCError, match="CRC mismatch"):
        driver.read()
    assert len(port.writes) == 3


def test_read_retries_zero_means_one_try() -> None:
    driver, port = make((STATUS_0,), read_retries=0)
    with pytest.raises(DeviceTimeout, match="STATUS") as info:
        driver.read()
    assert port.writes == [STATUS_0]
    assert not getattr(info.value, "__notes__", [])


def test_identify_is_retried() -> None:
    driver, port = make(
        (IDENTIFY_0,),
        (frame(1, IDENTIFY), frame(1, IDENTITY, b"A,B,C")),  # 3 fields: protocol error
        (frame(2, IDENTIFY), frame(2, IDENTITY, b"A,B,C,D")),
    )
    assert driver.identify().serial == "C"
    assert len(port.writes) == 3


def test_disarm_is_retried_after_a_timeout() -> None:
    driver, port = make((DISARM_0,), (DISARM_1, ACK_DISARM_1))
    driver.disarm()
    assert port.writes == [DISARM_0, DISARM_1]
    port.assert_done()


def test_disarm_gives_up_after_read_retries() -> None:
    driver, port = make(
        (DISARM_0,), (DISARM_1,), (frame(2, DISARM),), (frame(3, DISARM),)
    )  # fmt: skip
    with pytest.raises(DeviceTimeout, match="DISARM"):
        driver.disarm()
    assert len(port.writes) == 3  # read_retries=2: the fourth is never sent
    assert driver.next_seq == 3


# ----------------------------------------------------- energy: sent once only


@pytest.mark.parametrize(
    ("call", "command", "msg"),
    [
        (lambda d: d.set_params(PARAMS), SET_PARAMS_0, SET_PARAMS),
        (IPLCobsDriver.charge, CHARGE_0, CHARGE),
        (IPLCobsDriver.arm, ARM_0, ARM),
        (IPLCobsDriver.fire, FIRE_0, FIRE),
        (IPLCobsDriver.clear_status, CLEAR_0, CLEAR),
        (IPLCobsDriver.heartbeat, HEARTBEAT_0, HEARTBEAT),
    ],
    ids=["set_params", "charge", "arm", "fire", "clear_status", "heartbeat"],
)
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (lambda msg: (), DeviceTimeout),
        (lambda msg: (frame(0, ACK, bytes([msg]), crc_fix=0x0100),), CRCError),
        (lambda msg: (frame(9, ACK, bytes([msg])),), SequenceError),
        (lambda msg: (frame(0, STATUS_REPLY, status_payload()),), ProtocolError),
        (lambda msg: (b"\x03\x01",), DeviceTimeout),  # half a frame, then silence
    ],
    ids=["timeout", "crc", "stale-seq", "wrong-msg", "partial"],
)
def test_non_idempotent_commands_are_never_retried(
    call: Callable[[IPLCobsDriver], None],
    command: bytes,
    msg: int,
    reply: Callable[[int], tuple[bytes, ...]],
    error: type[Exception],
) -> None:
    port = ScriptedPort()
    port.expect(command, *reply(msg))
    driver = IPLCobsDriver(port, read_retries=5)  # type: ignore[arg-type]
    with pytest.raises(error):
        call(driver)
    assert port.writes == [command]  # exactly one write
    port.assert_done()
    assert driver.next_seq == 1


def test_fire_timeout_names_the_command() -> None:
    driver, port = make((FIRE_0,))
    with pytest.raises(DeviceTimeout, match=re.escape("no reply to FIRE (seq 0) within 0.05 s")):
        driver.fire()
    assert port.writes == [FIRE_0]


def test_set_params_out_of_range_sends_nothing() -> None:
    driver, port = make()
    with pytest.raises(ValidationError) as info:
        driver.set_params(IPLParams(600, 30.0, 10.0, 1, 0.0))
    assert len(info.value.problems) == 2
    assert "filter_nm 600" in info.value.problems[0]
    assert "fluence_j_cm2 30.0" in info.value.problems[1]
    assert port.writes == [] and port.resets == 0
    assert driver.next_seq == 0


# ------------------------------------------------------------- NAK replies


def test_nak_is_device_rejected_with_code_text_and_command() -> None:
    driver, port = make((ARM_0, NAK_ARM_3_0))
    with pytest.raises(DeviceRejected) as info:
        driver.arm()
    assert (info.value.code, info.value.text, info.value.command) == (3, "not charged", "ARM")
    assert port.writes == [ARM_0]


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (5, "minimum interval between flashes (1 s) not elapsed"),
        (6, "lamp block over temperature"),
        (10, "no skin contact"),
        (42, "unknown error code 42"),
    ],
)
def test_nak_to_fire_carries_the_spec_text(code: int, text: str) -> None:
    driver, port = make((FIRE_0, frame(0, NAK, bytes([FIRE, code]))))
    with pytest.raises(DeviceRejected, match=re.escape(f"'FIRE': {code} {text}")) as info:
        driver.fire()
    assert info.value.code == code
    assert port.writes == [FIRE_0]


def test_nak_to_set_params_names_the_parameters_sent() -> None:
    driver, port = make((SET_PARAMS_0, frame(0, NAK, bytes([SET_PARAMS, 7]))))
    with pytest.raises(DeviceRejected) as info:
        driver.set_params(PARAMS)
    assert info.value.code == 7 and info.value.text.startswith("filter mismatch")
    assert info.value.command == (
        "SET_PARAMS(filter 560 nm, fluence 12.50 J/cm2, width 10.0 ms, 3 pulse(s), delay 40 ms)"
    )
    assert port.writes == [SET_PARAMS_0]


@pytest.mark.parametrize(
    ("call", "command", "msg"),
    [
        (IPLCobsDriver.read, STATUS_0, STATUS),
        (IPLCobsDriver.identify, IDENTIFY_0, IDENTIFY),
        (IPLCobsDriver.disarm, DISARM_0, DISARM),
    ],
)
def test_nak_to_a_retried_command_is_not_retried(
    call: Callable[[IPLCobsDriver], object], command: bytes, msg: int
) -> None:
    driver, port = make((command, frame(0, NAK, bytes([msg, 8]))))
    with pytest.raises(DeviceRejected) as info:
        call(driver)
    assert info.value.code == 8 and info.value.text == "unknown message id"
    assert port.writes == [command]
    port.assert_done()


def test_nak_with_another_seq_is_a_sequence_error_first() -> None:
    driver, port = make((ARM_0, frame(7, NAK, bytes([ARM, 3]))))
    with pytest.raises(SequenceError, match="carries seq 7, expected 0"):
        driver.arm()
    assert port.writes == [ARM_0]


# --------------------------------------------------------------- port errors


@pytest.mark.parametrize(
    "exc", [serial.SerialException("device disconnected"), OSError(5, "Input/output error")]
)
def test_port_failure_on_read_is_a_port_error_and_not_retried(exc: BaseException) -> None:
    driver, port = make((STATUS_0, b"\x02\x01", exc))
    with pytest.raises(PortError, match="during STATUS") as info:
        driver.read()
    assert info.value.__cause__ is exc
    assert port.writes == [STATUS_0]


def test_port_failure_on_write_is_a_port_error() -> None:
    port = ScriptedPort()
    port.expect(DISARM_0, write_error=serial.SerialTimeoutException("Write timeout"))
    driver = IPLCobsDriver(port)  # type: ignore[arg-type]
    with pytest.raises(PortError, match="Write timeout"):
        driver.disarm()
    assert port.writes == [DISARM_0]


def test_short_write_is_a_port_error() -> None:
    class ShortWritePort(ScriptedPort):
        def write(self, data: bytes) -> int:
            return super().write(data) - 1

    port = ShortWritePort()
    port.expect(FIRE_0, ACK_FIRE_0)
    with pytest.raises(PortError, match="wrote 6 of 7 bytes of FIRE"):
        IPLCobsDriver(port).fire()  # type: ignore[arg-type]


def test_against_a_real_pyserial_port() -> None:
    """pyserial's loop:// echoes the command back: a valid frame, but not a reply."""
    port = serial.serial_for_url("loop://", timeout=0.01)
    driver = IPLCobsDriver(port, read_retries=1)
    with pytest.raises(ProtocolError, match="is STATUS, expected STATUS_REPLY or NAK"):
        driver.read()
    with pytest.raises(ProtocolError, match="is FIRE, expected ACK or NAK"):
        driver.fire()
    port.close()  # closed under the driver's feet: pyserial raises PortNotOpenError
    with pytest.raises(PortError):
        driver.read()
    driver.close()


# ------------------------------------------------------------ construction


def test_driver_satisfies_the_ipl_source_protocol_and_declares_itself() -> None:
    driver, _ = make()
    assert isinstance(driver, IPLSource)
    assert IPLCobsDriver.modality == "ipl"
    assert IPLCobsDriver.default_simulator == "ipl"


def test_the_entry_point_loads_this_class() -> None:
    from devicectl.plugins import DRIVER_GROUP, load_plugin

    assert load_plugin(DRIVER_GROUP, "ipl_cobs") is IPLCobsDriver


def _imported_modules(path: Path) -> Iterable[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("name", ["ipl_codec.py", "ipl_cobs.py"])
def test_driver_imports_only_devices_errors_pyserial_cobs_and_the_stdlib(name: str) -> None:
    allowed = {
        "devicectl.devices",
        "devicectl.errors",
        "devicectl_drivers.ipl_codec",
        "devicectl_drivers.port_errors",
        "devicectl_drivers.retry",
        "devicectl_drivers.sequenced_port",
        "serial",
        "cobs",
    }
    for module in _imported_modules(DRIVERS / name):
        top = module.split(".")[0]
        assert module in allowed or top in sys.stdlib_module_names or module == "__future__", (
            f"{name} imports {module}"
        )
