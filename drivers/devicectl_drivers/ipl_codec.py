"""IPLB/1 codec: pure functions from packets to bytes and back, no I/O.

Written from ``docs/protocols/ipl.md`` only (the simulator is written from the
same page, independently, with its own COBS). A *packet* is ``version (0x01),
seq, msg, payload (0-64 bytes), CRC-16/CCITT-FALSE`` (big-endian, over all
bytes before it); on the wire it is COBS-encoded and followed by one 0x00.

What is guaranteed:

- :func:`encode_command` returns exactly one wire frame (COBS + 0x00), or
  raises :class:`~devicectl.errors.ProtocolError` (a seq, msg or payload the
  protocol cannot carry).
- :func:`decode_frame` takes one chunk (the bytes between two 0x00, without
  the delimiter) and either returns a :class:`Frame` whose framing, length,
  CRC and version were checked, or raises :class:`~devicectl.errors.CRCError`
  (a well-framed packet whose checksum does not match) or
  :class:`~devicectl.errors.ProtocolError` (anything else). It never raises
  any other exception, whatever the bytes. Messages show the bytes in hex.
- The ``parse_*`` functions turn a reply payload into values in the units their
  names say, or raise :class:`~devicectl.errors.ProtocolError` showing the
  payload; they never return a half-parsed value.
- :func:`pack_set_params` checks every field against the firmware ranges of
  the spec *before* anything is sent and raises one
  :class:`~devicectl.errors.ValidationError` naming every bad field.
- :func:`expect_reply` maps a ``NAK`` to :class:`~devicectl.errors.DeviceRejected`
  with the spec's text for its code.
- :func:`fast_status_reply` (the per-tick path) accepts exactly what the full
  path accepts for a STATUS_REPLY and returns None for anything else; it is
  property-tested against the full path.

What the framing cannot guarantee: the CRC covers the *decoded* packet. Any
change to one packet byte is caught (CRC-16 catches every burst of up to 16
bits), and so is any change to a COBS data byte; a changed COBS *code* byte
moves bytes and zeros around, which CRC-16 misses with probability about
2**-16 (measured: 11 in 29.2 million single-byte corruptions of random
frames). The seq, msg and payload checks stand behind it.

Where the spec is ambiguous this module decides as follows:

- Checks run in the order framing (COBS, 5..69 bytes), CRC, content (version,
  then the message), so damage in transit is a ``CRCError`` and only a packet
  with a right checksum can fail as malformed content.
- Physical values are sent rounded to the wire resolution (fluence 0.01 J/cm2,
  pulse width 0.1 ms, pulse delay 1 ms) and the range is checked on the
  rounded value, i.e. on exactly what the device will receive: 25.004 J/cm2 is
  sent as 25.00 and accepted, 25.006 would be 25.01 and is refused.
- ``pulse_delay`` must be 0 for one pulse and 5-500 ms for two or more.
- ``filter_nm`` is checked against the five known filters only; whether it
  matches the inserted filter is the device's answer (``NAK 7``).
- A STATUS_REPLY that sets bits 9-15, reports a charge or lamp life above
  100 %, or a detected filter other than 0 or a known filter is a
  ``ProtocolError`` (the spec gives these ranges; such a reply is not to be
  trusted). Temperatures are not range-checked (that is the supervisor's job)
  except that 0x7FFF means an open thermistor and reads NaN.
- IDENTITY must be printable ASCII with exactly four non-empty comma-separated
  fields (a field cannot hold a comma).
- ``ACK`` and ``NAK`` must echo the command's msg; one that echoes another is a
  ``ProtocolError``, not an answer to our command. An unknown NAK code is still
  a ``DeviceRejected`` (text "unknown error code N").
"""

from __future__ import annotations

import binascii
import math
import struct
from typing import NamedTuple

from cobs import cobs

from devicectl.devices import IPL_FILTERS_NM, DeviceIdentity, IPLParams
from devicectl.errors import (
    CRCError,
    DeviceRejected,
    ProtocolError,
    SequenceError,
    ValidationError,
)

__all__ = [
    "ACK",
    "ARM",
    "CHARGE",
    "CLEAR",
    "DISARM",
    "FIRE",
    "HEARTBEAT",
    "IDENTIFY",
    "IDENTITY",
    "MAX_CHUNK",
    "MAX_PACKET",
    "MAX_PAYLOAD",
    "MAX_SEQ",
    "MIN_PACKET",
    "MSG_NAMES",
    "NAK",
    "NAK_TEXTS",
    "SET_PARAMS",
    "STATUS",
    "STATUS_MASK",
    "STATUS_REPLY",
    "STATUS_REPLY_LEN",
    "THERMISTOR_OPEN",
    "VERSION",
    "Frame",
    "ParamsWire",
    "StatusFields",
    "StatusReply",
    "check_ack",
    "crc16",
    "decode_frame",
    "describe_params",
    "encode_command",
    "expect_reply",
    "fast_status_reply",
    "msg_name",
    "nak_text",
    "pack_set_params",
    "pack_wire_params",
    "params_to_wire",
    "parse_identity",
    "parse_nak",
    "parse_status_reply",
    "rejection",
    "status_reply",
    "unpack_status_reply",
]

VERSION = 0x01
MAX_SEQ = 255
MAX_PAYLOAD = 64
MIN_PACKET = 3 + 2  # version, seq, msg, CRC
MAX_PACKET = 3 + MAX_PAYLOAD + 2  # 69
# COBS adds one code byte per started run of 254: a packet of 1..254 bytes
# encodes to exactly one byte more, so no valid chunk is longer than this.
MAX_CHUNK = MAX_PACKET + 1

# Commands (host -> device).
HEARTBEAT = 0x01
IDENTIFY = 0x02
SET_PARAMS = 0x10
CHARGE = 0x11
ARM = 0x12
FIRE = 0x13
DISARM = 0x14
STATUS = 0x20
CLEAR = 0x21
# Replies (device -> host).
ACK = 0x80
NAK = 0x81
IDENTITY = 0x82
STATUS_REPLY = 0xA0

MSG_NAMES: dict[int, str] = {
    HEARTBEAT: "HEARTBEAT",
    IDENTIFY: "IDENTIFY",
    SET_PARAMS: "SET_PARAMS",
    CHARGE: "CHARGE",
    ARM: "ARM",
    FIRE: "FIRE",
    DISARM: "DISARM",
    STATUS: "STATUS",
    CLEAR: "CLEAR",
    ACK: "ACK",
    NAK: "NAK",
    IDENTITY: "IDENTITY",
    STATUS_REPLY: "STATUS_REPLY",
}

NAK_TEXTS: dict[int, str] = {
    1: "bad payload length or field",
    2: "value out of range",
    3: "not charged",
    4: "not armed",
    5: "minimum interval between flashes (1 s) not elapsed",
    6: "lamp block over temperature",
    7: "filter mismatch: SET_PARAMS filter differs from the detected one, or none detected",
    8: "unknown message id",
    9: "busy (charging, or a train is being fired)",
    10: "no skin contact",
    11: "sensor fault",
}
# Where the spec gives a code a more precise meaning for one command.
_NAK_CONTEXT: dict[tuple[int, int], str] = {
    (ARM, 2): "value out of range (ARM: crystal warmer than 10.0 degC)",
}

STATUS_MASK = 0x01FF  # bits 0..8; the spec says bits 9-15 are zero
STATUS_REPLY_LEN = 18
THERMISTOR_OPEN = 0x7FFF

_STATUS = struct.Struct("<HBhhIHHBH")  # flags, charge, crystal, block, shots, fluence,
_STATUS_UNPACK = _STATUS.unpack  #        filter, lamp life, frame errors
_SET_PARAMS = struct.Struct("<HHHBH")  # filter_nm, fluence, pulse_width, pulse_count, delay
_DETECTABLE_FILTERS = frozenset((0, *IPL_FILTERS_NM))
_NAN = math.nan
_SHOWN_BYTES = 80  # how much of a bad chunk an error message quotes

_cobs_encode = cobs.encode
_cobs_decode = cobs.decode
_DecodeError: type[Exception] = cobs.DecodeError
_crc_hqx = binascii.crc_hqx

# Firmware ranges, in wire units.
FLUENCE_MIN, FLUENCE_MAX = 500, 2500  # 0.01 J/cm2: 5.00-25.00
WIDTH_MIN, WIDTH_MAX = 10, 1000  # 0.1 ms: 1.0-100.0
COUNT_MIN, COUNT_MAX = 1, 5
DELAY_MIN, DELAY_MAX = 5, 500  # ms, for two or more pulses (0 for one)


class Frame(NamedTuple):
    """One decoded, checked packet: what a chunk carried."""

    seq: int
    msg: int
    payload: bytes


class StatusReply(NamedTuple):
    """A STATUS_REPLY payload in host units (NaN for an open thermistor)."""

    status_bits: int
    charge_pct: float
    crystal_temp_c: float
    block_temp_c: float
    shot_count: int
    last_fluence_j_cm2: float
    filter_nm: int
    lamp_life_pct: int
    frame_errors: int


# (filter_nm, fluence 0.01 J/cm2, pulse width 0.1 ms, pulse count, pulse delay ms)
ParamsWire = tuple[int, int, int, int, int]
# STATUS_REPLY as wire integers: (flags, charge %, crystal 0.1 degC, block 0.1 degC,
# shots, fluence 0.01 J/cm2, filter nm, lamp life %, frame errors)
StatusFields = tuple[int, int, int, int, int, int, int, int, int]


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)."""
    return _crc_hqx(data, 0xFFFF)


def msg_name(msg: int) -> str:
    """``"ARM"`` for 0x12; ``"0x5A"`` for an id the spec does not name."""
    return MSG_NAMES.get(msg) or f"0x{msg:02X}"


def _hex(data: bytes) -> str:
    """Bytes as an error message shows them: spaced hex, cut to a readable length."""
    if not data:
        return "(no bytes)"
    if len(data) <= _SHOWN_BYTES:
        return data.hex(" ")
    return f"{data[:_SHOWN_BYTES].hex(' ')} ... ({len(data)} bytes)"


# ----------------------------------------------------------------- encoding


def _is_byte(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF


def encode_command(seq: int, msg: int, payload: bytes | bytearray = b"") -> bytes:
    """The wire form of one packet: COBS(``01 seq msg payload CRC``) + ``00``.

    Raises :class:`ProtocolError` for a seq or msg outside 0..255 or a payload
    over 64 bytes: the device would discard such a frame unanswered.
    """
    if not _is_byte(seq):
        raise ProtocolError(f"sequence number {seq!r} is outside 0..{MAX_SEQ}")
    if not _is_byte(msg):
        raise ProtocolError(f"message id {msg!r} is outside 0..255")
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            f"{msg_name(msg)} payload is {len(payload)} bytes, over the {MAX_PAYLOAD}-byte limit"
        )
    packet = bytes((VERSION, seq, msg)) + bytes(payload)
    packet += _crc_hqx(packet, 0xFFFF).to_bytes(2, "big")
    encoded: bytes = _cobs_encode(packet)
    return encoded + b"\x00"


# ----------------------------------------------------------------- decoding


def decode_frame(chunk: bytes) -> Frame:
    """Check and decode one chunk (the bytes before a 0x00, delimiter excluded)."""
    n = len(chunk)
    if n == 0:
        raise ProtocolError("empty chunk (two 0x00 delimiters in a row): no packet")
    if n > MAX_CHUNK:
        raise ProtocolError(
            f"chunk of {n} bytes is longer than any packet encodes to ({MAX_CHUNK}): {_hex(chunk)}"
        )
    try:
        packet: bytes = _cobs_decode(chunk)
    except _DecodeError as exc:
        raise ProtocolError(f"chunk does not COBS-decode ({exc}): {_hex(chunk)}") from None
    m = len(packet)
    if m < MIN_PACKET or m > MAX_PACKET:
        raise ProtocolError(
            f"decoded packet is {m} bytes, outside {MIN_PACKET}..{MAX_PACKET}: "
            f"{_hex(packet)} (chunk {_hex(chunk)})"
        )
    # A CRC without xor-out run over the data and its own big-endian CRC leaves 0.
    if _crc_hqx(packet, 0xFFFF):
        computed = _crc_hqx(packet[:-2], 0xFFFF)
        raise CRCError(
            f"CRC mismatch (packet says {packet[-2:].hex().upper()}, content gives "
            f"{computed:04X}): {_hex(packet)} (chunk {_hex(chunk)})"
        )
    if packet[0] != VERSION:
        raise ProtocolError(
            f"packet version 0x{packet[0]:02X}, expected 0x{VERSION:02X}: {_hex(packet)}"
        )
    return Frame(packet[1], packet[2], packet[3:-2])


def expect_reply(frame: Frame, seq: int, command_msg: int, reply_msg: int, command: str) -> bytes:
    """The payload of ``frame`` if it is the ``reply_msg`` answer to command ``seq``.

    ``SequenceError`` for another seq (checked first: a stale NAK is stale, not
    a refusal), ``DeviceRejected`` for a NAK of this command,
    ``ProtocolError`` for any other message or an ACK/NAK echoing another
    command. An expected ``ACK`` returns ``b""`` after checking its echo.
    ``command`` names the command in messages (e.g. ``"ARM"``).
    """
    if frame.seq != seq:
        raise SequenceError(
            f"reply to {command} carries seq {frame.seq}, expected {seq} (a stale reply)"
        )
    msg = frame.msg
    if msg == reply_msg:
        if msg == ACK:
            check_ack(frame.payload, command_msg)
            return b""
        return frame.payload
    if msg == NAK:
        raise rejection(parse_nak(frame.payload, command_msg), command_msg, command)
    raise ProtocolError(
        f"reply to {command} (seq {seq}) is {msg_name(msg)}, expected "
        f"{msg_name(reply_msg)} or NAK (payload {_hex(frame.payload)})"
    )


# ----------------------------------------------------------------- payloads


def check_ack(payload: bytes, command_msg: int) -> None:
    """An ACK payload must be exactly the command's msg."""
    if len(payload) != 1 or payload[0] != command_msg:
        raise ProtocolError(
            f"ACK payload {_hex(payload)} does not echo {msg_name(command_msg)} "
            f"(expected {command_msg:02x})"
        )


def parse_nak(payload: bytes, command_msg: int) -> int:
    """A NAK payload (echoed msg, code) -> the error code."""
    if len(payload) != 2 or payload[0] != command_msg:
        raise ProtocolError(
            f"NAK payload {_hex(payload)} is not {msg_name(command_msg)} "
            f"(0x{command_msg:02X}) followed by one error code"
        )
    return payload[1]


def nak_text(code: int, command_msg: int | None = None) -> str:
    """The spec's meaning of a NAK code (more precise where the command says more)."""
    if command_msg is not None:
        text = _NAK_CONTEXT.get((command_msg, code))
        if text is not None:
            return text
    return NAK_TEXTS.get(code) or f"unknown error code {code}"


def rejection(code: int, command_msg: int, command: str) -> DeviceRejected:
    """The exception for a NAK ``code`` to ``command`` (not raised here)."""
    return DeviceRejected(code, nak_text(code, command_msg), command)


def unpack_status_reply(payload: bytes) -> StatusFields:
    """STATUS_REPLY payload (18 bytes, little-endian) -> its nine checked wire integers."""
    if len(payload) != STATUS_REPLY_LEN:
        raise ProtocolError(
            f"STATUS_REPLY payload is {len(payload)} bytes, expected {STATUS_REPLY_LEN}: "
            f"{_hex(payload)}"
        )
    fields: StatusFields = _STATUS_UNPACK(payload)
    bits, charge, _, _, _, _, filter_nm, life, _ = fields
    if bits > STATUS_MASK or charge > 100 or life > 100 or filter_nm not in _DETECTABLE_FILTERS:
        _status_problem(payload, bits, charge, life, filter_nm)  # raises
    return fields


def status_reply(fields: StatusFields) -> StatusReply:
    """Checked wire integers (from :func:`unpack_status_reply`) in host units."""
    bits, charge, crystal, block, shots, fluence, filter_nm, life, errors = fields
    return StatusReply(
        bits,
        float(charge),
        _NAN if crystal == THERMISTOR_OPEN else crystal / 10,
        _NAN if block == THERMISTOR_OPEN else block / 10,
        shots,
        fluence / 100,
        filter_nm,
        life,
        errors,
    )


def parse_status_reply(payload: bytes) -> StatusReply:
    """STATUS_REPLY payload (18 bytes, little-endian) -> values in host units."""
    return status_reply(unpack_status_reply(payload))


# A whole good STATUS_REPLY packet: 3 header bytes, 18 payload bytes, 2 CRC bytes.
_STATUS_PACKET_LEN = 3 + STATUS_REPLY_LEN + 2
_STATUS_IN_PACKET = struct.Struct("<3x" + _STATUS.format[1:]).unpack_from


def fast_status_reply(chunk: bytes, seq: int) -> StatusFields | None:
    """The wire integers of a good STATUS_REPLY to ``seq``, or None to take the full path.

    The per-tick path: one COBS decode, one CRC, one unpack, no intermediate
    objects. Accepts exactly what :func:`decode_frame` + :func:`expect_reply` +
    :func:`unpack_status_reply` accept for a STATUS_REPLY to ``seq``; for
    everything else (bad bytes, a NAK, another seq) it returns None, never
    raises, and the full path names the problem.
    """
    if len(chunk) > MAX_CHUNK:
        return None
    try:
        packet: bytes = _cobs_decode(chunk)
    except _DecodeError:
        return None
    if (
        len(packet) != _STATUS_PACKET_LEN
        or _crc_hqx(packet, 0xFFFF)
        or packet[0] != VERSION
        or packet[1] != seq
        or packet[2] != STATUS_REPLY
    ):
        return None
    fields: StatusFields = _STATUS_IN_PACKET(packet)
    bits, charge, _, _, _, _, filter_nm, life, _ = fields
    if bits > STATUS_MASK or charge > 100 or life > 100 or filter_nm not in _DETECTABLE_FILTERS:
        return None
    return fields


def _status_problem(payload: bytes, bits: int, charge: int, life: int, filter_nm: int) -> None:
    if bits > STATUS_MASK:
        what = f"status flags 0x{bits:04X} set bits 9-15, which the spec says are zero"
    elif charge > 100:
        what = f"charge {charge} % is over 100"
    elif life > 100:
        what = f"lamp life {life} % is over 100"
    else:
        known = ", ".join(map(str, IPL_FILTERS_NM))
        what = f"detected filter {filter_nm} nm is neither 0 nor one of {known}"
    raise ProtocolError(f"STATUS_REPLY {what}: {_hex(payload)}")


def parse_identity(payload: bytes) -> DeviceIdentity:
    """IDENTITY payload: printable ASCII ``vendor,model,serial,firmware``."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"IDENTITY payload is not ASCII: {_hex(payload)}") from None
    if not text.isprintable():
        raise ProtocolError(f"IDENTITY payload has a control character: {text!r}")
    fields = text.split(",")
    if len(fields) != 4:
        raise ProtocolError(
            f"IDENTITY payload {text!r} has {len(fields)} comma-separated fields, expected 4"
        )
    vendor, model, serial, firmware = fields
    if not (vendor and model and serial and firmware):
        raise ProtocolError(f"IDENTITY payload {text!r} has an empty field")
    return DeviceIdentity(vendor=vendor, model=model, serial=serial, firmware=firmware)


def _wire_units(
    value: object, name: str, scale: int, lo: int, hi: int, unit: str, problems: list[str]
) -> int:
    """``value * scale`` rounded to a whole wire unit and range-checked.

    Appends a line to ``problems`` (and returns -1) when it is not a finite
    number or falls outside ``lo..hi`` wire units.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{name} {value!r} is not a number")
        return -1
    if not math.isfinite(value):
        problems.append(f"{name} {value!r} is not a finite number")
        return -1
    scaled = value * scale  # may overflow to inf: then it is out of range
    units = round(scaled) if math.isfinite(scaled) else hi + 1
    if not lo <= units <= hi:
        digits = len(str(scale)) - 1  # 1 -> 0, 10 -> 1, 100 -> 2 decimal places
        problems.append(
            f"{name} {value!r} is outside {lo / scale:.{digits}f}-{hi / scale:.{digits}f} {unit}"
        )
        return -1
    return units


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def params_to_wire(params: IPLParams) -> ParamsWire:
    """Check every field of ``params`` against the firmware ranges; the wire values.

    Raises one :class:`ValidationError` whose ``problems`` name every bad field.
    """
    problems: list[str] = []
    filter_nm = params.filter_nm
    if not _whole(filter_nm) or filter_nm not in IPL_FILTERS_NM:
        known = ", ".join(map(str, IPL_FILTERS_NM))
        problems.append(f"filter_nm {filter_nm!r} is not one of {known}")
    fluence = _wire_units(
        params.fluence_j_cm2, "fluence_j_cm2", 100, FLUENCE_MIN, FLUENCE_MAX, "J/cm2", problems
    )
    width = _wire_units(
        params.pulse_width_ms, "pulse_width_ms", 10, WIDTH_MIN, WIDTH_MAX, "ms", problems
    )
    count: int | None = params.pulse_count
    if not _whole(count) or not COUNT_MIN <= params.pulse_count <= COUNT_MAX:
        problems.append(
            f"pulse_count {params.pulse_count!r} is not a whole number {COUNT_MIN}-{COUNT_MAX}"
        )
        count = None  # unknown: the delay is checked against every count
    raw_delay = params.pulse_delay_ms
    delay = _wire_units(raw_delay, "pulse_delay_ms", 1, 0, DELAY_MAX, "ms", problems)
    if delay < 0:
        pass  # already reported
    elif count == 1:
        if delay != 0:
            problems.append(f"pulse_delay_ms {raw_delay!r} must be 0 for a single pulse")
    elif count is not None:
        if delay < DELAY_MIN:
            problems.append(
                f"pulse_delay_ms {raw_delay!r} is outside {DELAY_MIN}-{DELAY_MAX} ms "
                f"(the gap between the {count} pulses of a train)"
            )
    elif 0 < delay < DELAY_MIN:
        problems.append(
            f"pulse_delay_ms {raw_delay!r} is neither 0 (one pulse) nor {DELAY_MIN}-{DELAY_MAX} ms"
        )
    if problems or count is None:  # count is None only with a problem listed
        raise ValidationError(problems)
    return (filter_nm, fluence, width, count, delay)


def pack_set_params(params: IPLParams) -> bytes:
    """SET_PARAMS payload (9 bytes) for ``params``; ``ValidationError`` before anything is sent."""
    return _SET_PARAMS.pack(*params_to_wire(params))


def pack_wire_params(wire: ParamsWire) -> bytes:
    """SET_PARAMS payload (9 bytes) of values :func:`params_to_wire` already checked."""
    return _SET_PARAMS.pack(*wire)


def describe_params(wire: ParamsWire) -> str:
    """A SET_PARAMS command as messages name it, in the units the device receives."""
    filter_nm, fluence, width, count, delay = wire
    return (
        f"SET_PARAMS(filter {filter_nm} nm, fluence {fluence / 100:.2f} J/cm2, "
        f"width {width / 10:.1f} ms, {count} pulse(s), delay {delay} ms)"
    )
