"""Host-side driver for the LED canopy's Modbus RTU register map (docs/protocols/led.md).

:class:`LEDModbusDriver` implements :class:`devicectl.devices.LEDPanel` over an
already open pyserial port, with pymodbus's public message layer: its request
PDU classes (``pymodbus.pdu.register_message``), its RTU framer
(:class:`pymodbus.framer.FramerRTU`: frame building, CRC, reply decoding) and
its client PDU decoder (:class:`pymodbus.pdu.DecodePDU`). It does not use a
pymodbus client: the driver does its own I/O on the port it was handed (see
"Why no pymodbus client" below). It knows registers and units only: no
sessions, no limits beyond the register ranges, no state machine. What it
guarantees:

- One call, one request per try (at most two for :meth:`~LEDModbusDriver.read`,
  see below), after discarding whatever was waiting (a late reply to an earlier
  timed-out request). A reply must be the right function for the right unit, the
  right register count, and a write's echo must match what was written;
  anything else is a :class:`~devicectl.errors.ProtocolError`.
- Writes that change the treatment (``set_wavelength``, ``set_irradiance``,
  ``output_on``, ``clear_status``, ``heartbeat``) are sent exactly once: a lost
  reply does not say whether the device acted, so the error goes up and the
  caller decides (usually: fault, output off, read back).
- Reads and ``output_off`` (writing 0: the safe, idempotent direction) are
  retried up to ``retries`` extra times (0 or 1) on a timeout or a bad frame.
- Every failure is a :class:`devicectl.errors.DeviceError`, never a pymodbus
  exception: ``DeviceTimeout`` (no byte arrived within ``timeout_s``),
  ``CRCError``/``ProtocolError`` (bytes arrived but no valid reply frame),
  ``DeviceRejected`` (a Modbus exception response; ``code`` is the Modbus
  exception code, e.g. 4 for ``output_on`` refused by the interlock, a latched
  fault or a zero setpoint; never retried) and ``PortError`` (pyserial or the
  OS failed, or the driver was closed). Range violations are
  ``ValidationError`` and nothing is sent.

Receiving. After a request the driver reads what the reply's header says is
coming, never "whatever is waiting" and never on a wall clock: the first read
asks for 5 bytes (an exception reply is exactly 5, every normal reply to our
requests is longer), and when that is not an exception reply, pymodbus's
decoder sizes the frame from its function code (fixed size, or the byte
count) and the driver asks for the rest. Every read blocks only in the port's
own ``read``, i.e. for at most the port ``timeout`` (set to ``timeout_s``),
which a ``sim://`` port spends in clock time and a UART in real time. A read
that returns nothing ends the request: no bytes at all is ``DeviceTimeout``;
some bytes are handed to ``FramerRTU.handleFrame`` as they are, and a frame it
does not accept is ``CRCError`` (the bytes end in a bad CRC) or
``ProtocolError``. Leading garbage is not skipped (pymodbus's framer would
scan past bytes whose function code it does not know): the request fails as a
bad frame and the retry, where one is allowed, asks again.

Per-tick cost. :meth:`read` sends ``0x04`` input registers 0-7 (21-byte reply),
which is all the measured state. Its request frame is built once by pymodbus,
it asks the port for all 21 bytes in one read, and its reply is checked by
:func:`parse_input_reply` (a table CRC giving pymodbus's CRC check's answer, then
unit, function, byte count, length: exactly what pymodbus's framer and PDU decoder accept, which
``tests/test_led_fast_read.py`` checks against pymodbus for every frame
hypothesis can build). Decoding the same 21 bytes through pymodbus's
``handleFrame`` and PDU objects takes about 30 us against 12 us (measured
here, one sitting), and one LED read per 50 ms tick is a large share of a
simulated-time tick; everything else (writes, the holding-register read,
``identify``) is decoded by pymodbus.

The wavelength and the irradiance setpoint of :class:`LEDReading` are holding
registers 0-1; the driver caches what the device confirmed (the echo of its own
writes) and reads holding 0-1 as a second request only when the cache may be
wrong: before the first reading, after a write whose outcome is unknown
(timeout, bad frame, port error), after ``clear_status``, and on every reading
that shows ``POWER_ON_RESET`` (a reboot resets the setpoint to 0 and the
wavelength to 633; the bit stays latched until ``clear_status``, so a reboot is
always seen). So a tick is one request in the steady state and never more than
two (each retried at most ``retries`` times). A rejected write (Modbus
exception) leaves the cache alone: the device did not change.

Why no pymodbus client. ``ModbusSerialClient`` opens its own port by name
(``serial_for_url(..., exclusive=True)``), while every driver here is handed a
port the station opened (for ``sim://``, one bound to the session's clock, so
reopening it by name would start a new simulator on a real clock). Its sync
receive loop waits on the wall clock (``time.sleep`` polling ``in_waiting``
until ``timeout``), so a silent simulated device would cost wall time during
which a :class:`~devicectl.clock.SimClock` does not move, and its
"no response" error does not tell silence from garbage. Binding a client to
an injected port means overriding undocumented members, which break between
pymodbus minors; the message layer used here is pymodbus's documented API
(the ``pymodbus.framer`` and ``pymodbus.pdu`` modules of its library
reference) and is what the client itself is built on.

pymodbus facts this relies on (read in its source; the lower bound of the pin
in pyproject.toml, 3.10, is the first release with all of them: the driver
tests pass on 3.10.0 and on 3.16.1, the one in uv.lock):

- ``FramerRTU(DecodePDU(is_server=False))``: ``buildFrame(pdu)`` gives the
  whole ADU (unit, PDU, CRC low byte first); ``handleFrame(data, unit, 0)``
  returns ``(used, pdu)`` with ``pdu`` None when ``data`` holds no whole frame
  with a good CRC from ``unit`` (a frame from another unit is skipped), and
  raises ``ModbusIOException`` when a framed PDU does not decode (mapped to
  ``ProtocolError``). An exception reply decodes to an ``ExceptionResponse``
  whose ``function_code`` is the request's ``| 0x80``.
- ``DecodePDU.lookupPduClass(frame)`` and ``calculateRtuFrameSize`` size a
  reply from its header, as the framer does.
- RTU transaction ids are always 0, and the framer does not check that a
  reply's function or register count matches the request, so we do.
- pymodbus logs ``Log.error`` when it skips a frame from another unit. With no
  logging configured that reaches stderr through ``logging.lastResort``; we
  attach a ``NullHandler`` to the ``pymodbus`` logger (records still propagate
  to the application's handlers) because the same news reaches the caller as a
  typed error.

Timing: the driver never sleeps and reads no clock for timeouts; the ``now``
callable only stamps readings (pass the control clock's ``now``). At 115200
baud a read is 8 bytes out and 21 back, about 2.5 ms on the wire; on FTDI
adapters set the latency timer low (see PITFALLS.md) or a round trip costs
~16 ms.
"""

from __future__ import annotations

import logging
import math
import struct
import time
from collections.abc import Callable
from typing import ClassVar, TypeVar

import serial
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteSingleRegisterRequest,
)

from devicectl.devices import (
    LED_WAVELENGTHS_NM,
    DeviceIdentity,
    LEDFault,
    LEDReading,
    frozen_constructor,
)
from devicectl.errors import (
    ConfigError,
    CRCError,
    DeviceError,
    DeviceRejected,
    DeviceTimeout,
    PortError,
    ProtocolError,
    ValidationError,
)
from devicectl_drivers.port_errors import PORT_ERRORS

_new_ledreading = frozen_constructor(LEDReading)  # the per-tick reading, built fast

__all__ = ["LEDModbusDriver"]

_T = TypeVar("_T")

logging.getLogger("pymodbus").addHandler(logging.NullHandler())

# ----------------------------------------------------------------- register map

_FC_READ_HOLDING = 0x03
_FC_READ_INPUT = 0x04
_FC_WRITE_SINGLE = 0x06

# holding registers
_H_WAVELENGTH = 0
_H_SETPOINT = 1
_H_OUTPUT_ENABLE = 2
_H_HEARTBEAT = 3
_H_CLEAR_FAULTS = 4

# input registers (read 0-7 in one request)
_I_COUNT = 8
_I_STATUS = 6
_I_FIRMWARE = 7

_SETPOINT_MAX_RAW = 1100  # 0.1 mW/cm2
_SETPOINT_MAX_MW_CM2 = _SETPOINT_MAX_RAW / 10
_SKIN_OPEN = 0x7FFF
_STATUS_OUTPUT_ON = 0x0001
_POWER_ON_RESET = int(LEDFault.POWER_ON_RESET)
_HEARTBEAT_VALUE = 1

_MAX_UNIT = 247  # Modbus serial line: unicast addresses 1-247
_DEFAULT_TIMEOUT_S = 0.05

_EXCEPTION_TEXT = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}

_INPUT_REPLY_LEN = 5 + 2 * _I_COUNT  # unit, function, byte count, 8 registers, CRC
_EXCEPTION_REPLY_LEN = 5  # unit, function | 0x80, exception code, CRC
_INPUT_REGISTERS = struct.Struct(f">{_I_COUNT}H")
_GOOD_REPLIES_LIMIT = 1024

# LEDFault(bits) builds a flag each call; the 64 defined combinations are prebuilt.
_FAULTS_BY_BITS: tuple[LEDFault, ...] = tuple(LEDFault(bits) for bits in range(64))


def _crc_tables() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """CRC-16/MODBUS tables: per byte, and per little-endian byte pair (with
    ``v = crc ^ (b0 | b1 << 8)`` the 16-bit register is shifted out entirely, so
    two bytes cost one lookup: 65,536 entries, built once at import)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    words = []
    for value in range(1 << 16):
        first = (value >> 8) ^ table[value & 0xFF]
        words.append((first >> 8) ^ table[first & 0xFF])
    return tuple(table), tuple(words)


_CRC_BYTES, _CRC_WORDS = _crc_tables()
_REPLY_WORDS = struct.Struct(f"<{(_INPUT_REPLY_LEN - 1) // 2}H").unpack_from


def _input_reply_crc_ok(frame: bytes) -> bool:
    """The CRC of a whole ``_INPUT_REPLY_LEN``-byte frame is right: CRC-16/MODBUS
    over the frame with its CRC (low byte first) is 0. The same answer as
    pymodbus's ``FramerRTU.check_CRC`` (``tests/test_led_fast_read.py``), about
    four times faster."""
    crc = 0xFFFF
    words = _CRC_WORDS
    for word in _REPLY_WORDS(frame):
        crc = words[crc ^ word]
    return (crc >> 8) ^ _CRC_BYTES[(crc ^ frame[_INPUT_REPLY_LEN - 1]) & 0xFF] == 0


def _signed16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def _faults(bits: int) -> LEDFault:
    return _FAULTS_BY_BITS[bits] if bits < 64 else LEDFault(bits)  # keep unknown bits


def _framer() -> FramerRTU:
    """pymodbus's RTU framer with its client-side (reply) PDU decoder."""
    return FramerRTU(DecodePDU(is_server=False))


def input_request_frame(unit: int) -> bytes:
    """The RTU frame reading input registers 0-7 of ``unit``, built by pymodbus's framer."""
    request = ReadInputRegistersRequest(address=0, count=_I_COUNT, dev_id=unit)
    return _framer().buildFrame(request)


def parse_input_reply(frame: bytes, unit: int) -> tuple[int, ...]:
    """The 8 registers of a whole reply to :func:`input_request_frame`, or a typed error.

    ``frame`` is everything that arrived for the request. Accepts exactly one
    21-byte frame from ``unit`` with function 0x04, byte count 16 and a good
    CRC; a well-formed exception reply is ``DeviceRejected``; anything else is
    ``CRCError`` (the bytes end in a bad CRC) or ``ProtocolError``.
    """
    size = len(frame)
    if size == _INPUT_REPLY_LEN and frame[0] == unit and frame[1] == _FC_READ_INPUT:
        if frame[2] != 2 * _I_COUNT:
            raise ProtocolError(
                f"reply to read input registers 0-7 has byte count {frame[2]}, not {2 * _I_COUNT}"
            )
        if not _input_reply_crc_ok(frame):
            raise CRCError(f"reply to read input registers 0-7 has a bad CRC: {frame.hex(' ')}")
        return _INPUT_REGISTERS.unpack_from(frame, 3)
    crc_ok = size >= 4 and FramerRTU.check_CRC(frame[:-2], (frame[-2] << 8) | frame[-1])
    if crc_ok and frame[0] == unit:
        function = frame[1]
        if function == _FC_READ_INPUT and size == 5 + frame[2] and not frame[2] % 2:
            raise ProtocolError(
                f"reply to {_READ_INPUTS} carries {frame[2] // 2} registers, not {_I_COUNT}"
            )
        if function == _FC_READ_INPUT | 0x80 and size == _EXCEPTION_REPLY_LEN:
            code = frame[2]
            raise DeviceRejected(code, _exception_text(code, _FC_READ_INPUT), _READ_INPUTS)
        if function & 0x7F in _KNOWN_FUNCTIONS and function != _FC_READ_INPUT:
            raise ProtocolError(
                f"reply to {_READ_INPUTS} is function 0x{function:02X}, not "
                f"0x{_FC_READ_INPUT:02X} (a stale reply?): {frame[:32].hex(' ')}"
            )
    shown = frame[:32].hex(" ") + (" ..." if size > 32 else "")
    if size >= 4 and not crc_ok:
        raise CRCError(f"reply to {_READ_INPUTS} has a bad CRC: {shown}")
    raise ProtocolError(
        f"no valid reply frame for unit {unit} to {_READ_INPUTS} in {size} bytes: {shown}"
    )


_READ_INPUTS = "read input registers 0-7"
# Function codes pymodbus's client decoder has a reply class for: a frame with
# another one is not a reply at all (pymodbus skips it), so it is "no valid
# reply frame". Asked through lookupPduClass, which every pymodbus the pin
# allows has (list_function_codes came later); 0x2B is known only with a
# sub-function, 0x0E (read device identification).
_CLIENT_DECODER = DecodePDU(is_server=False)
_KNOWN_FUNCTIONS = frozenset(
    function
    for function in range(1, 0x80)
    for sub_function in (0x00, 0x0E)
    if _CLIENT_DECODER.lookupPduClass(bytes((1, function, sub_function, 0, 0))) is not None
)


# ----------------------------------------------------------------------- driver


class LEDModbusDriver:
    """An LED canopy speaking Modbus RTU over an open pyserial port.

    ``port`` is any open ``serial.SerialBase`` (or an object with the same
    ``read``/``write``/``in_waiting``/``reset_input_buffer``/``timeout``/
    ``is_open``/``close``); under a ``SimClock`` it must be the port that
    ``open_port(url, clock=clock)`` returned. One read that waits ``timeout_s``
    and gets nothing means the reply is lost; by default that is the port's own
    read timeout (as for every driver: the port is opened with the station's
    timeout), or 50 ms when the port has none that is finite and positive. The
    driver sets ``port.timeout`` to it. ``unit`` is the Modbus server address
    (1-247). ``retries`` (0 or 1, see PITFALLS.md) is how many extra tries a
    read or ``output_off`` gets. ``now`` stamps :attr:`LEDReading.t_s`. Use a
    driver from one thread only (it owns one port and one framer buffer).
    """

    implements: ClassVar[str] = "led"
    """The device interface this driver implements: ``"led"`` is
    :class:`devicectl.devices.LEDPanel`. A class attribute, so the station can
    check it before opening any port."""
    modality: ClassVar[str] = implements  # the older name of ``implements``
    default_simulator: ClassVar[str] = "led"

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        now: Callable[[], float] = time.monotonic,
        unit: int = 1,
        timeout_s: float | None = None,
        retries: int = 1,
    ) -> None:
        if isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= _MAX_UNIT:
            raise ConfigError(f"Modbus unit must be a whole number 1-{_MAX_UNIT}, not {unit!r}")
        if timeout_s is None:
            port_timeout: object = getattr(port, "timeout", None)
            if (
                isinstance(port_timeout, int | float)
                and not isinstance(port_timeout, bool)
                and 0 < port_timeout < math.inf
            ):
                timeout_s = float(port_timeout)
            else:
                timeout_s = _DEFAULT_TIMEOUT_S
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, int | float)
            or not 0 < timeout_s < math.inf
        ):
            raise ConfigError(
                f"the LED driver needs a finite positive timeout in seconds, not {timeout_s!r}"
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 1:
            raise ConfigError(f"retries must be 0 or 1 (pymodbus pitfall), not {retries!r}")
        timeout_s = float(timeout_s)
        try:
            port.timeout = timeout_s
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(f"cannot set the LED port timeout to {timeout_s} s: {exc}") from exc
        self._port = port
        self._decoder = DecodePDU(is_server=False)
        self._framer = FramerRTU(self._decoder)
        self._input_request = input_request_frame(unit)
        self._good_replies: dict[bytes, tuple[int, ...]] = {}  # whole good replies, for unit
        self._now = now
        self._unit = unit
        self._timeout_s = timeout_s
        self._tries = retries + 1
        self._closed = False
        # What holding 0 and 1 hold at the device, as far as we know.
        self._wavelength_nm: int | None = None
        self._setpoint_raw: int | None = None

    # ------------------------------------------------------------ properties

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called; every command then raises ``PortError``."""
        return self._closed

    @property
    def unit(self) -> int:
        return self._unit

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    # --------------------------------------------------------- LEDPanel API

    def identify(self) -> DeviceIdentity:
        """Input register 7 (firmware ``major * 256 + minor``). Retried; no change of state.

        The register map reports no vendor, model or serial number.
        """
        (raw,) = self._retrying(
            lambda: self._read(_FC_READ_INPUT, _I_FIRMWARE, 1, "read firmware_version (input 7)")
        )
        return DeviceIdentity(
            vendor="unknown",
            model="LED canopy (Modbus RTU)",
            serial="unknown",
            firmware=f"{raw >> 8}.{raw & 0xFF}",
        )

    def read(self) -> LEDReading:
        """Input registers 0-7 in one request (+ holding 0-1 when the cache is stale).

        Stamped with ``now()`` when the input registers arrived. Each request is
        retried up to ``retries`` extra times on a timeout or bad frame.
        """
        regs = self._retrying(self._read_inputs)
        t_s = self._now()
        irradiance, panel, skin, interlock, elapsed, fault_bits, status, _fw = regs
        if fault_bits & _POWER_ON_RESET:  # rebooted: holding registers back to defaults
            self._forget_settings()
        wavelength_nm, setpoint_raw = self._wavelength_nm, self._setpoint_raw
        if wavelength_nm is None or setpoint_raw is None:
            wavelength_nm, setpoint_raw = self._refresh_settings()
        return _new_ledreading(
            t_s=t_s,
            wavelength_nm=wavelength_nm,
            setpoint_mw_cm2=setpoint_raw / 10,
            irradiance_mw_cm2=irradiance / 10,
            output_on=bool(status & _STATUS_OUTPUT_ON),
            panel_temp_c=_signed16(panel) / 10,
            skin_temp_c=math.nan if skin == _SKIN_OPEN else _signed16(skin) / 10,
            interlock_closed=interlock == 1,
            elapsed_s=elapsed / 10,
            faults=_faults(fault_bits),
        )

    def set_wavelength(self, wavelength_nm: int) -> None:
        """Holding 0. Sent once. 633 or 830 nm, else ``ValidationError`` and nothing is sent.

        The firmware turns output off when the wavelength changes while output is on.
        """
        value = _check_wavelength(wavelength_nm)
        self._write_setting(_H_WAVELENGTH, value, f"write wavelength (holding 0) = {value}")
        self._wavelength_nm = value

    def set_irradiance(self, irradiance_mw_cm2: float) -> None:
        """Holding 1 in 0.1 mW/cm2. Sent once. 0.0-110.0 mW/cm2, else ``ValidationError``."""
        raw = _check_irradiance(irradiance_mw_cm2)
        self._write_setting(
            _H_SETPOINT, raw, f"write irradiance_setpoint (holding 1) = {raw} (x0.1 mW/cm2)"
        )
        self._setpoint_raw = raw

    def output_on(self) -> None:
        """Holding 2 = 1. Sent once, never retried: a lost reply leaves the state unknown.

        Refused with ``DeviceRejected`` code 4 when the interlock is open, a fault
        is latched or the setpoint is 0.
        """
        self._write(_H_OUTPUT_ENABLE, 1, "write output_enable (holding 2) = 1")

    def output_off(self) -> None:
        """Holding 2 = 0: the safe direction, idempotent, so retried like a read."""
        self._retrying(
            lambda: self._write(_H_OUTPUT_ENABLE, 0, "write output_enable (holding 2) = 0")
        )

    def output_is_on(self) -> bool:
        """Input register 6 bit 0: the output state as the firmware holds it. Retried."""
        (status,) = self._retrying(
            lambda: self._read(_FC_READ_INPUT, _I_STATUS, 1, "read status_bits (input 6)")
        )
        return bool(status & _STATUS_OUTPUT_ON)

    def clear_status(self) -> None:
        """Holding 4 = 1: clear latched fault bits whose cause is gone. Sent once.

        Not retried: it clears safety latches, so whether it acted is the
        caller's question (answer it with ``read().faults``). The next
        :meth:`read` re-reads holding 0-1 (a reboot's ``POWER_ON_RESET`` may be
        what was cleared).
        """
        self._forget_settings()
        self._write(_H_CLEAR_FAULTS, 1, "write clear_faults (holding 4) = 1")

    def heartbeat(self) -> None:
        """Holding 3 = 1: feed the device watchdog, nothing else. Sent once.

        A missed heartbeat is news for the control loop, not something to hide by
        retrying (every valid frame, a read included, feeds the watchdog too).
        """
        self._write(_H_HEARTBEAT, _HEARTBEAT_VALUE, "write heartbeat (holding 3)")

    def close(self) -> None:
        """Close the port (idempotent). The device watchdog turns output off by itself."""
        if self._closed:
            return
        self._closed = True
        try:
            self._port.close()
        except PORT_ERRORS as exc:
            raise PortError(f"LED port failed while closing: {exc}") from exc

    def __enter__(self) -> LEDModbusDriver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------- internals

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` up to ``retries + 1`` times while it times out or gets a
        bad frame; a rejection or a port failure goes up at once."""
        tries = self._tries
        while True:
            try:
                return attempt()
            except (DeviceTimeout, ProtocolError) as exc:
                tries -= 1
                if not tries:
                    if self._tries > 1:
                        exc.add_note(f"gave up after {self._tries} tries")
                    raise

    def _read_inputs(self) -> tuple[int, ...]:
        """One try of the per-tick input-register read, without the pymodbus client
        (see the module docstring); the same checks and the same typed errors."""
        if self._closed:
            raise PortError(f"LED driver is closed; cannot {_READ_INPUTS}")
        port = self._port
        try:
            port.reset_input_buffer()  # drop a late reply to an earlier timed-out request
            written = port.write(self._input_request)
            if written is not None and written != len(self._input_request):
                raise PortError(f"LED port wrote {written} of {len(self._input_request)} bytes")
            data = port.read(_INPUT_REPLY_LEN)
            if not data:
                raise DeviceTimeout(f"no reply to {_READ_INPUTS} within {self._timeout_s} s")
            while len(data) < _INPUT_REPLY_LEN and not (
                len(data) == _EXCEPTION_REPLY_LEN and data[1] & 0x80  # an exception frame
            ):
                more = port.read(_INPUT_REPLY_LEN - len(data))
                if not more:
                    break  # a short frame: classified below
                data += more
        except PORT_ERRORS as exc:
            raise PortError(f"LED port failed during {_READ_INPUTS}: {exc}") from exc
        # An idle canopy repeats a few replies: their registers are kept, checked once.
        known = self._good_replies.get(data)
        if known is not None:
            return known
        regs = parse_input_reply(data, self._unit)  # raises for anything but a good reply
        if len(self._good_replies) >= _GOOD_REPLIES_LIMIT:
            self._good_replies.clear()
        self._good_replies[data] = regs
        return regs

    def _forget_settings(self) -> None:
        self._wavelength_nm = None
        self._setpoint_raw = None

    def _refresh_settings(self) -> tuple[int, int]:
        wavelength_nm, setpoint_raw = self._retrying(
            lambda: self._read(_FC_READ_HOLDING, _H_WAVELENGTH, 2, "read holding registers 0-1")
        )
        self._wavelength_nm, self._setpoint_raw = wavelength_nm, setpoint_raw
        return wavelength_nm, setpoint_raw

    def _write_setting(self, address: int, value: int, what: str) -> None:
        """A write of a cached holding register: sent once; an unknown outcome
        (anything but success or a rejection) invalidates the cache."""
        try:
            self._write(address, value, what)
        except DeviceRejected:
            raise  # the device refused: it still holds what we cached
        except DeviceError:
            self._forget_settings()
            raise

    def _read(self, function: int, address: int, count: int, what: str) -> list[int]:
        """One try of a register read; the register values, checked for count."""
        request_class = (
            ReadInputRegistersRequest if function == _FC_READ_INPUT else ReadHoldingRegistersRequest
        )
        request = request_class(address=address, count=count, dev_id=self._unit)
        registers = list(self._transact(request, what).registers)
        if len(registers) != count:
            raise ProtocolError(f"reply to {what} carries {len(registers)} registers, not {count}")
        return registers

    def _write(self, address: int, value: int, what: str) -> None:
        """One try of a single-register write; the echo must match."""
        request = WriteSingleRegisterRequest(address=address, registers=[value], dev_id=self._unit)
        response = self._transact(request, what)
        echo = (response.address, list(response.registers))
        if echo != (address, [value]):
            raise ProtocolError(
                f"reply to {what} echoes register {echo[0]} = {echo[1]}, not {address} = {value}"
            )

    def _transact(self, request: ModbusPDU, what: str) -> ModbusPDU:
        """Send ``request`` framed by pymodbus; the reply PDU of its function or a typed error."""
        if self._closed:
            raise PortError(f"LED driver is closed; cannot {what}")
        frame = self._framer.buildFrame(request)
        port = self._port
        try:
            port.reset_input_buffer()  # drop a late reply to an earlier timed-out request
            written = port.write(frame)
        except PORT_ERRORS as exc:
            raise PortError(f"LED port failed while sending {frame.hex(' ')}: {exc}") from exc
        if written is not None and written != len(frame):
            raise PortError(f"LED port wrote {written} of {len(frame)} bytes")
        data = self._receive(what)
        try:
            _, response = self._framer.handleFrame(data, self._unit, 0)
        except ModbusException as exc:
            raise ProtocolError(f"reply to {what} does not decode ({exc}): {_shown(data)}") from exc
        if response is None:
            raise self._no_valid_reply(data, what)
        function = request.function_code
        if response.function_code == function:
            return response
        if response.function_code == function | 0x80:
            code = response.exception_code
            raise DeviceRejected(code, _exception_text(code, function), what)
        raise ProtocolError(
            f"reply to {what} is function 0x{response.function_code:02X}, "
            f"not 0x{function:02X} (a stale reply?)"
        )

    def _receive(self, what: str) -> bytes:
        """The bytes of one reply: 5 (an exception reply's size, less than any other
        reply of ours), then as many more as pymodbus's decoder says the frame has.
        Stops early when a read returns nothing (the port timeout passed)."""
        port = self._port
        try:
            data = bytes(port.read(_EXCEPTION_REPLY_LEN))
            if not data:
                raise DeviceTimeout(f"no reply to {what} within {self._timeout_s} s")
            while len(data) < (size := self._frame_size(data)):
                more = port.read(size - len(data))
                if not more:
                    break  # a short frame: classified by the caller
                data += more
        except PORT_ERRORS as exc:
            raise PortError(f"LED port failed while receiving the reply to {what}: {exc}") from exc
        return data

    def _frame_size(self, data: bytes) -> int:
        """How long the RTU frame starting at ``data[0]`` is, as pymodbus's framer sizes
        it; ``len(data)`` when pymodbus does not know the function (nothing to wait for)."""
        if len(data) < _EXCEPTION_REPLY_LEN:
            return _EXCEPTION_REPLY_LEN
        try:
            pdu_class = self._decoder.lookupPduClass(data)
            size = pdu_class.calculateRtuFrameSize(data) if pdu_class is not None else 0
        except (ModbusException, IndexError, struct.error):
            size = 0
        return size or len(data)

    def _no_valid_reply(self, data: bytes, what: str) -> ProtocolError:
        if len(data) >= 4 and not FramerRTU.check_CRC(data[:-2], int.from_bytes(data[-2:], "big")):
            return CRCError(f"reply to {what} has a bad CRC: {_shown(data)}")
        return ProtocolError(
            f"no valid reply frame for unit {self._unit} to {what} in {len(data)} bytes: "
            f"{_shown(data)}"
        )


def _shown(data: bytes) -> str:
    return data[:32].hex(" ") + (" ..." if len(data) > 32 else "")


def _exception_text(code: int, function: int) -> str:
    text = _EXCEPTION_TEXT.get(code, "unknown exception code")
    if code == 4 and function == _FC_WRITE_SINGLE:
        text += " (interlock open, fault latched or setpoint 0)"
    return text


def _check_wavelength(wavelength_nm: object) -> int:
    value: object = wavelength_nm
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in LED_WAVELENGTHS_NM:
        allowed = " or ".join(str(w) for w in LED_WAVELENGTHS_NM)
        raise ValidationError([f"wavelength must be {allowed} nm, not {wavelength_nm!r}"])
    return value


def _check_irradiance(irradiance_mw_cm2: object) -> int:
    value = irradiance_mw_cm2
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= _SETPOINT_MAX_MW_CM2
    ):
        raise ValidationError(
            [f"irradiance must be 0.0-{_SETPOINT_MAX_MW_CM2:.1f} mW/cm2, not {irradiance_mw_cm2!r}"]
        )
    return min(int(value * 10 + 0.5), _SETPOINT_MAX_RAW)  # 0.1 mW/cm2, half up
