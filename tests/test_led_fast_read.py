"""The LED driver's per-tick read skips the pymodbus client: it must accept what
pymodbus accepts, and nothing else.

``devicectl_drivers.led_modbus.parse_input_reply`` checks a reply to "read input
registers 0-7" itself (see the driver's docstring for why). Here every frame
hypothesis builds (good replies with any register values and units, the same
frames mutated, exception replies, random bytes) goes through both it and
pymodbus's own RTU framer and client PDU decoder:

- whatever the fast parser accepts, pymodbus decodes to the same 8 registers
  from the same unit with function 0x04 (it never accepts more than pymodbus);
- whatever is exactly one frame pymodbus decodes as such a reply, the fast
  parser accepts with the same registers (it never refuses a good reply);
- everything else is one of the driver's typed errors, never another exception.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU

from devicectl.errors import CRCError, DeviceRejected, ProtocolError
from devicectl_drivers.led_modbus import _input_reply_crc_ok, input_request_frame, parse_input_reply
from devicectl_simulators.led_firmware import crc16_modbus


def adu(body: bytes) -> bytes:
    return body + crc16_modbus(body).to_bytes(2, "little")


def good_reply(unit: int, registers: list[int]) -> bytes:
    return adu(struct.pack(">BBB8H", unit, 0x04, 16, *registers))


def pymodbus_registers(frame: bytes, unit: int) -> tuple[int, ...] | None:
    """What pymodbus makes of ``frame`` as the reply from ``unit``: registers, or None."""
    framer = FramerRTU(DecodePDU(is_server=False))
    used, pdu = framer.handleFrame(frame, unit, 0)
    if pdu is None or used != len(frame) or pdu.dev_id != unit or pdu.function_code != 0x04:
        return None
    registers = tuple(pdu.registers)
    return registers if len(registers) == 8 else None


def fast_registers(frame: bytes, unit: int) -> tuple[int, ...] | None:
    try:
        return tuple(parse_input_reply(frame, unit))
    except (ProtocolError, DeviceRejected):  # CRCError is a ProtocolError
        return None


units = st.integers(1, 247)
registers = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8)


def mutate(frame: bytes, data: st.DataObject) -> bytes:
    op = data.draw(st.sampled_from(("flip", "insert", "delete", "truncate", "swap_crc")))
    b = bytearray(frame)
    i = data.draw(st.integers(0, len(b) - 1))
    if op == "flip":
        b[i] ^= 1 << data.draw(st.integers(0, 7))
    elif op == "insert":
        b.insert(i, data.draw(st.integers(0, 255)))
    elif op == "delete":
        del b[i]
    elif op == "truncate":
        del b[i:]
    else:
        b[-2], b[-1] = b[-1], b[-2]
    return bytes(b)


@settings(max_examples=400, deadline=None)
@given(unit=units, regs=registers)
def test_every_good_reply_is_accepted_with_pymodbus_registers(unit: int, regs: list[int]) -> None:
    frame = good_reply(unit, regs)
    assert pymodbus_registers(frame, unit) == tuple(regs)
    assert fast_registers(frame, unit) == tuple(regs)


@settings(max_examples=500, deadline=None)
@given(unit=units, regs=registers, data=st.data())
def test_a_mutated_reply_is_accepted_only_if_pymodbus_accepts_it_the_same(
    unit: int, regs: list[int], data: st.DataObject
) -> None:
    frame = mutate(good_reply(unit, regs), data)
    fast = fast_registers(frame, unit)
    if fast is not None:
        assert pymodbus_registers(frame, unit) == fast


@settings(max_examples=500, deadline=None)
@given(unit=units, frame=st.binary(max_size=40))
def test_random_bytes_raise_only_typed_errors_and_never_beat_pymodbus(
    unit: int, frame: bytes
) -> None:
    try:
        fast = tuple(parse_input_reply(frame, unit))
    except (ProtocolError, DeviceRejected):
        return
    assert pymodbus_registers(frame, unit) == fast


@settings(max_examples=200, deadline=None)
@given(unit=units, code=st.integers(0, 255))
def test_an_exception_reply_is_a_rejection_with_its_code(unit: int, code: int) -> None:
    with pytest.raises(DeviceRejected) as caught:
        parse_input_reply(adu(bytes([unit, 0x84, code])), unit)
    assert caught.value.code == code


def test_a_reply_from_another_unit_is_refused() -> None:
    with pytest.raises(ProtocolError, match="no valid reply frame for unit 2"):
        parse_input_reply(good_reply(1, [0] * 8), 2)


def test_a_bad_crc_is_a_crc_error() -> None:
    frame = bytearray(good_reply(1, list(range(8))))
    frame[5] ^= 0x10
    with pytest.raises(CRCError):
        parse_input_reply(bytes(frame), 1)


@pytest.mark.parametrize("unit", [1, 17, 247])
def test_the_request_frame_is_pymodbus_built_and_well_formed(unit: int) -> None:
    frame = input_request_frame(unit)
    assert frame == adu(struct.pack(">BBHH", unit, 0x04, 0, 8))


@given(frame=st.binary(min_size=21, max_size=21), fix=st.booleans())
def test_the_table_crc_agrees_with_pymodbus(frame: bytes, fix: bool) -> None:
    if fix:  # half the frames end in their right CRC
        frame = adu(frame[:-2])
    expected = FramerRTU.check_CRC(frame[:-2], (frame[-2] << 8) | frame[-1])
    assert _input_reply_crc_ok(frame) is expected
