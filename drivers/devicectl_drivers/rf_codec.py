"""RFP/1 line codec: pure functions from text to bytes and back, no I/O.

Written from ``docs/protocols/rf.md`` only (the simulator is written from the
same page, independently). Every line is ``<seq> <body>*<crc>\\n``: printable
ASCII, at most 128 bytes with the LF, ``crc`` the CRC-16/CCITT-FALSE of the
bytes before the ``*`` as four upper-case hex digits.

What is guaranteed:

- :func:`encode_command` returns exactly one well-formed frame, or raises
  :class:`~devicectl.errors.ProtocolError` (a body that cannot be framed).
- :func:`decode_reply` either returns a :class:`Reply` whose every field was
  checked, or raises :class:`~devicectl.errors.CRCError` (checksum mismatch on
  an otherwise well-framed line) or :class:`~devicectl.errors.ProtocolError`
  (anything else). It never raises any other exception, whatever the bytes.
- The ``parse_*`` functions turn a reply payload into numbers in the units
  their names say, or raise :class:`~devicectl.errors.ProtocolError` with a
  message that shows the offending text. They never return a half-parsed value.

Where the spec is ambiguous this module decides as follows:

- The spec says a body "contains no ``*``", yet the commands ``*IDN?`` and
  ``*CLS`` start with one (and its own example frames ``7 *IDN?*``). The CRC
  separator is therefore the **last** ``*`` of the line; a body may contain
  ``*`` (the CRC covers it, so a corruption that moves the separator is still
  caught).
- ``OK`` followed by a space must carry a non-empty payload (``OK `` alone is
  rejected); an ``ERR`` code must be negative with no leading zeros, and its
  text is double-quoted with no quote inside.
- Decimal fields ("one decimal place") must have exactly one digit after the
  point; a leading ``-`` is accepted on every decimal field (plausibility of
  values is the supervisor's job, not the codec's). Whole-number fields are
  plain ASCII digits. ``float()``/``int()`` never see unchecked text, so Python
  spellings such as ``inf``, ``1e3``, `` 1`` or ``1_0`` are rejected.
- Status words above 0x7F (bits the spec does not define) are rejected.
"""

from __future__ import annotations

import binascii
import math
import re
from dataclasses import dataclass

from devicectl.devices import DeviceIdentity
from devicectl.errors import CRCError, ProtocolError, ValidationError

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_SEQ",
    "STATUS_MASK",
    "Reply",
    "ReplyFields",
    "crc16",
    "decode_reply",
    "encode_command",
    "expect_no_payload",
    "format_power_w",
    "frame_command",
    "parse_all",
    "parse_error_entry",
    "parse_identity",
    "parse_impedance_ohm",
    "parse_output_state",
    "parse_power_w",
    "parse_status",
    "parse_temperatures_c",
    "split_reply",
]

MAX_LINE_BYTES = 128  # including the LF
MAX_SEQ = 65535
STATUS_MASK = 0x7F  # bits 0..6 are the only ones the spec defines

_LF = 0x0A
_PRINTABLE = bytes(range(0x20, 0x7F))
_UPPER_HEX = b"0123456789ABCDEF"
_DIGITS = frozenset("0123456789")
_SHOWN_BYTES = 60  # how much of a bad line an error message quotes


@dataclass(frozen=True, slots=True)
class Reply:
    """One decoded reply line.

    ``ok`` replies carry ``payload`` (``""`` when the device sent bare ``OK``)
    and no error fields; ``ERR`` replies carry ``error_code`` (negative) and
    ``error_text`` and an empty ``payload``.
    """

    seq: int
    ok: bool
    payload: str
    error_code: int | None = None
    error_text: str | None = None


# (seq, ok, payload, error_code, error_text): a Reply's fields as a plain tuple.
ReplyFields = tuple[int, bool, str, int | None, str | None]


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)."""
    return binascii.crc_hqx(data, 0xFFFF)


def _show(data: bytes) -> str:
    """A bad line as an error message shows it: repr, cut to a readable length."""
    if len(data) <= _SHOWN_BYTES:
        return repr(data)
    return f"{data[:_SHOWN_BYTES]!r}... ({len(data)} bytes)"


# ----------------------------------------------------------------- encoding


def encode_command(seq: int, body: str) -> bytes:
    """Frame ``body`` as command number ``seq``: ``b"<seq> <body>*<CRC>\\n"``.

    Raises :class:`ProtocolError` if ``seq`` is outside 0..65535 or ``body``
    cannot be sent as one line (empty, not printable ASCII, or a frame over
    128 bytes): such a frame would be discarded by the device unanswered.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise ProtocolError(f"sequence number {seq!r} is outside 0..{MAX_SEQ}")
    if not body:
        raise ProtocolError("cannot frame an empty command body")
    raw = body.encode("ascii", "replace")  # a '?' for non-ASCII is caught just below
    if not body.isascii() or raw.translate(None, _PRINTABLE):
        raise ProtocolError(f"command body {body!r} is not printable ASCII")
    frame = frame_command(seq, raw)
    if len(frame) > MAX_LINE_BYTES:
        raise ProtocolError(
            f"command {body!r} makes a {len(frame)}-byte line, over the {MAX_LINE_BYTES}-byte limit"
        )
    return frame


def frame_command(seq: int, body: bytes) -> bytes:
    """Hot-path framing of an already validated body (no checks at all).

    The driver validates its constant bodies once with :func:`encode_command`
    and then frames them with this, saving the checks on every tick.
    """
    head = b"%d %s" % (seq, body)
    return b"%s*%04X\n" % (head, binascii.crc_hqx(head, 0xFFFF))


# The longest argument of "SOUR:POW <w>" that still fits one line at seq 65535.
_MAX_POWER_TEXT = MAX_LINE_BYTES - len(b"65535 SOUR:POW *XXXX\n")


def format_power_w(power_w: float) -> str:
    """A power setpoint as the wire writes it: one decimal place, never ``-0.0``.

    Raises :class:`~devicectl.errors.ValidationError` (before anything is sent)
    for NaN, infinity, or a number too long to fit one line: those have no wire
    form. Range is not checked here: the device's range and the host's limit
    belong to the device and the supervisor.
    """
    if not math.isfinite(power_w):
        raise ValidationError([f"power {power_w!r} W has no wire form (not a finite number)"])
    text = f"{power_w:.1f}"
    if len(text) > _MAX_POWER_TEXT:
        raise ValidationError([f"power {power_w!r} W is too long to fit one RFP/1 line"])
    return "0.0" if text == "-0.0" else text


# ----------------------------------------------------------------- decoding


def decode_reply(line: bytes) -> Reply:
    """Check and decode one reply line, LF included.

    Order of checks: framing (LF, length, characters, ``*`` and CRC digits),
    then the CRC, then the content (seq and body). So a line that is framed
    well but damaged in transit is a :class:`CRCError`, and only a line whose
    checksum is right can fail as malformed content.
    """
    return Reply(*split_reply(line))


def split_reply(line: bytes) -> ReplyFields:
    """:func:`decode_reply` without building the object: ``(seq, ok, payload, code, text)``.

    Exactly the same checks and errors (``decode_reply`` is this plus the
    dataclass); the driver's per-tick path uses it because building a frozen
    dataclass costs about as much as all the checks together.
    """
    n = len(line)
    if n == 0 or line[-1] != _LF:
        raise ProtocolError(f"reply line does not end in LF: {_show(line)}")
    if n > MAX_LINE_BYTES:
        raise ProtocolError(
            f"reply line is {n} bytes, over the {MAX_LINE_BYTES}-byte limit: {_show(line)}"
        )
    leftover = line.translate(None, _PRINTABLE)
    if leftover != b"\n":
        raise ProtocolError(_bad_characters(line, leftover))
    star = line.rfind(b"*")
    if star < 0:
        raise ProtocolError(f"reply line has no '*' before its CRC: {_show(line)}")
    covered = line[:star]
    crc_text = line[star + 1 : n - 1]
    # Equal to the formatted CRC means: exactly 4 upper-case hex digits, and right.
    if crc_text != b"%04X" % binascii.crc_hqx(covered, 0xFFFF):
        raise _crc_problem(line, covered, crc_text)
    seq_text, space, body = covered.decode("ascii").partition(" ")
    # Fast acceptance inline (ASCII is already guaranteed, so isdigit means 0-9);
    # _seq_error says exactly what is wrong otherwise.
    if (
        not space
        or not seq_text.isdigit()
        or len(seq_text) > 5
        or (seq_text[0] == "0" and len(seq_text) > 1)
    ):
        raise ProtocolError(_seq_error(seq_text, space, line))
    seq = int(seq_text)
    if seq > MAX_SEQ:
        raise ProtocolError(f"reply seq {seq} is over {MAX_SEQ}: {_show(line)}")
    if body[:3] == "OK ":
        payload = body[3:]
        if payload:
            return seq, True, payload, None, None
        raise ProtocolError(f"reply 'OK ' has an empty payload: {_show(line)}")
    if body == "OK":
        return seq, True, "", None, None
    if body[:4] == "ERR ":
        code, err_text = _parse_err(body[4:], line)
        return seq, False, "", code, err_text
    raise ProtocolError(
        f"reply body {body!r} is neither 'OK[ payload]' nor 'ERR <code>,\"<text>\"'"
    )


def _crc_problem(line: bytes, covered: bytes, crc_text: bytes) -> ProtocolError:
    """Why the CRC field did not match: malformed (ProtocolError) or wrong (CRCError)."""
    if len(crc_text) != 4 or crc_text.translate(None, _UPPER_HEX):
        return ProtocolError(
            f"reply CRC {crc_text!r} is not exactly 4 upper-case hex digits: {_show(line)}"
        )
    computed = binascii.crc_hqx(covered, 0xFFFF)
    return CRCError(
        f"reply CRC mismatch (line says {crc_text.decode()}, content gives {computed:04X}): "
        f"{_show(line)}"
    )


def _bad_characters(line: bytes, leftover: bytes) -> str:
    """Name the first character problem of a line whose non-printables are ``leftover``."""
    body = line[:-1]
    if b"\r" in body:
        where = "before the LF" if body.endswith(b"\r") else "inside the line"
        return f"reply line has a CR {where} (CR is not allowed): {_show(line)}"
    if b"\n" in body:
        return f"reply line has an LF before its end (two lines run together): {_show(line)}"
    first = leftover[0]
    kind = "non-ASCII" if first >= 0x80 else "non-printable"
    offset = body.index(first)
    return f"reply line has a {kind} byte 0x{first:02X} at offset {offset}: {_show(line)}"


def _seq_error(seq_text: str, space: str, line: bytes) -> str:
    if not space:
        return f"reply has no space between seq and body: {_show(line)}"
    if not seq_text.isdigit() or len(seq_text) > 5:
        return f"reply seq {seq_text!r} is not 1 to 5 decimal digits: {_show(line)}"
    return f"reply seq {seq_text!r} has a leading zero: {_show(line)}"


def _parse_err(rest: str, line: bytes) -> tuple[int, str]:
    """``<code>,"<text>"`` of an ERR reply: code negative, text quoted."""
    code_text, comma, quoted = rest.partition(",")
    if not comma:
        raise ProtocolError(f"ERR reply {rest!r} has no ',' after its code: {_show(line)}")
    digits = code_text[1:]
    if (
        code_text[:1] != "-"
        or not digits.isdigit()
        or digits[0] == "0"
        or not _is_ascii_digits(digits)
    ):
        raise ProtocolError(
            f"ERR code {code_text!r} is not a negative whole number without leading zeros"
        )
    return -int(digits), _unquote(quoted, "ERR text")


def _unquote(quoted: str, what: str) -> str:
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"' or '"' in quoted[1:-1]:
        raise ProtocolError(f'{what} {quoted!r} is not one double-quoted string ("text")')
    return quoted[1:-1]


# ----------------------------------------------------------------- payloads


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() alone accepts e.g. superscripts; ASCII-only means 0-9 exactly.
    return text.isdigit() and text.isascii()


def _decimal1(text: str, what: str, payload: str) -> float:
    """``[-]digits.digit`` -> float; anything else is a ProtocolError."""
    whole, dot, frac = text.partition(".")
    if dot and len(frac) == 1 and frac in _DIGITS:
        digits = whole[1:] if whole[:1] == "-" else whole
        if _is_ascii_digits(digits):
            return float(text)
    raise ProtocolError(
        f"{what} {text!r} is not a decimal with one decimal place (in payload {payload!r})"
    )


def _temperature_c(text: str, what: str, payload: str) -> float:
    if text == "NAN":
        return math.nan
    return _decimal1(text, what, payload)


def _impedance_ohm(text: str, payload: str) -> float:
    if text == "OPEN":
        return math.inf
    if _is_ascii_digits(text):
        return float(int(text))
    raise ProtocolError(
        f"impedance {text!r} is neither whole ohms nor OPEN (in payload {payload!r})"
    )


def _output(text: str, payload: str) -> bool:
    if text == "ON":
        return True
    if text == "OFF":
        return False
    raise ProtocolError(f"output state {text!r} is neither ON nor OFF (in payload {payload!r})")


def _status(text: str, payload: str) -> int:
    if _is_ascii_digits(text):
        bits = int(text)
        if bits <= STATUS_MASK:
            return bits
        raise ProtocolError(
            f"status word {text!r} sets bits the protocol does not define "
            f"(only 0..{STATUS_MASK}; in payload {payload!r})"
        )
    raise ProtocolError(f"status word {text!r} is not a decimal number (in payload {payload!r})")


def _fields(payload: str, count: int, what: str) -> list[str]:
    fields = payload.split(",")
    if len(fields) != count:
        raise ProtocolError(
            f"{what} payload {payload!r} has {len(fields)} comma-separated fields, expected {count}"
        )
    return fields


# The whole MEAS:ALL? payload shape in one C-level match: measured faster than
# split + per-field checks (about 2.1 us against 2.8 us). Groups are converted
# without further checks; a non-match goes to the per-field diagnosis.
_ALL_SHAPE = re.compile(
    r"(-?[0-9]+\.[0-9]|NAN),(-?[0-9]+\.[0-9]|NAN),([0-9]+|OPEN),(-?[0-9]+\.[0-9]),(ON|OFF),([0-9]+)"
)
_ALL_MATCH = _ALL_SHAPE.fullmatch


def parse_all(payload: str) -> tuple[float, float, float, float, bool, int]:
    """``MEAS:ALL?`` payload -> ``(t1_c, t2_c, impedance_ohm, power_w, output_on, status_bits)``.

    ``NAN`` temperatures become ``math.nan``, ``OPEN`` impedance ``math.inf``.
    This is the per-tick hot path.
    """
    match = _ALL_MATCH(payload)
    if match is None:
        return _parse_all_fields(payload)  # raises, naming the bad field
    t1, t2, ohm, watts, out, bits_text = match.groups()
    bits = int(bits_text)
    if bits > STATUS_MASK:
        _status(bits_text, payload)  # raises
    return (
        float(t1),  # float("NAN") is nan
        float(t2),
        math.inf if ohm == "OPEN" else float(ohm),
        float(watts),
        out == "ON",
        bits,
    )


# A whole good MEAS:ALL? reply line in one C-level match. Anything else (an ERR
# reply, a damaged or malformed line) returns None and takes the full path of
# split_reply + parse_all, which names the problem. The CRC is still checked.
_ALL_LINE = re.compile(
    rb"(0|[1-9][0-9]{0,4}) OK "
    rb"(-?[0-9]+\.[0-9]|NAN),(-?[0-9]+\.[0-9]|NAN),([0-9]+|OPEN),(-?[0-9]+\.[0-9]),(ON|OFF),"
    rb"([0-9]+)\*([0-9A-F]{4})\n"
).fullmatch


def fast_all_reply(line: bytes, seq: int) -> tuple[float, float, float, float, bool, int] | None:
    """The fields of a good ``MEAS:ALL?`` reply to ``seq``, or None to take the full path.

    Accepts exactly what ``split_reply`` + ``parse_all`` accept for a well-formed
    reply with the right seq and CRC; everything else is None, never a guess.
    """
    match = _ALL_LINE(line)
    if match is None:
        return None
    seq_text, t1, t2, ohm, watts, out, bits_text, crc_text = match.groups()
    bits = int(bits_text)
    if (
        int(seq_text) != seq
        or bits > STATUS_MASK
        or int(crc_text, 16) != binascii.crc_hqx(line[: match.start(8) - 1], 0xFFFF)
    ):
        return None
    return (
        float(t1),
        float(t2),
        math.inf if ohm == b"OPEN" else float(ohm),
        float(watts),
        out == b"ON",
        bits,
    )


def _parse_all_fields(payload: str) -> tuple[float, float, float, float, bool, int]:
    """Field-by-field ``MEAS:ALL?`` parse: the reference for, and diagnosis of, the fast path."""
    t1, t2, ohm, watts, out, bits = _fields(payload, 6, "MEAS:ALL?")
    return (
        _temperature_c(t1, "skin sensor 1 temperature", payload),
        _temperature_c(t2, "skin sensor 2 temperature", payload),
        _impedance_ohm(ohm, payload),
        _decimal1(watts, "delivered power", payload),
        _output(out, payload),
        _status(bits, payload),
    )


def parse_identity(payload: str) -> DeviceIdentity:
    """``*IDN?`` payload ``vendor,model,serial,firmware`` (four non-empty fields)."""
    vendor, model, serial, firmware = _fields(payload, 4, "*IDN?")
    if not (vendor and model and serial and firmware):
        raise ProtocolError(f"*IDN? payload {payload!r} has an empty field")
    return DeviceIdentity(vendor=vendor, model=model, serial=serial, firmware=firmware)


def parse_temperatures_c(payload: str) -> tuple[float, float]:
    """``MEAS:TEMP?`` payload -> ``(t1_c, t2_c)``, NaN for an open sensor."""
    t1, t2 = _fields(payload, 2, "MEAS:TEMP?")
    return (
        _temperature_c(t1, "skin sensor 1 temperature", payload),
        _temperature_c(t2, "skin sensor 2 temperature", payload),
    )


def parse_impedance_ohm(payload: str) -> float:
    """``MEAS:IMP?`` payload -> ohms, ``inf`` for ``OPEN``."""
    return _impedance_ohm(payload, payload)


def parse_power_w(payload: str) -> float:
    """``MEAS:POW?`` or ``SOUR:POW?`` payload -> watts."""
    return _decimal1(payload, "power", payload)


def parse_output_state(payload: str) -> bool:
    """``OUTP?`` payload -> True for ``ON``, False for ``OFF``."""
    return _output(payload, payload)


def parse_status(payload: str) -> int:
    """``STAT?`` payload -> status bits (0..0x7F); wrap in ``RFStatus`` to name them."""
    return _status(payload, payload)


def parse_error_entry(payload: str) -> tuple[int, str]:
    """``SYST:ERR?`` payload ``<code>,"<text>"`` -> ``(code, text)``.

    An empty queue reads ``(0, "No error")``.
    """
    code_text, comma, quoted = payload.partition(",")
    if not comma:
        raise ProtocolError(f"SYST:ERR? payload {payload!r} has no ',' after its code")
    digits = code_text[1:] if code_text[:1] == "-" else code_text
    if not _is_ascii_digits(digits) or (len(digits) > 1 and digits[0] == "0"):
        raise ProtocolError(f"SYST:ERR? code {code_text!r} is not a whole number (in {payload!r})")
    return int(code_text), _unquote(quoted, "SYST:ERR? text")


def expect_no_payload(payload: str, command: str) -> None:
    """Commands that answer bare ``OK`` must not carry a payload."""
    if payload:
        raise ProtocolError(f"reply to {command!r} has an unexpected payload {payload!r}")
