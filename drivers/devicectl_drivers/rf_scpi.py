"""Host-side driver for the RF generator's RFP/1 line protocol (docs/protocols/rf.md).

:class:`RFScpiDriver` implements :class:`devicectl.devices.RFGenerator` over an
already open pyserial port. It knows bytes and units only: no sessions, no
limits, no state machine. What it guarantees:

- One command, one reply: every call sends exactly one framed line per try,
  after discarding whatever was waiting (a stale reply from an earlier
  timeout), and accepts only a reply carrying that line's sequence number.
- Energy-enabling commands (``set_power``, ``output_on``) are written exactly
  once. A lost reply does not say whether the device acted, so the error goes
  up and the caller decides (usually: fault, output off, read back).
- Read-only queries and ``output_off`` (the safe, idempotent direction) are
  retried up to ``read_retries`` extra times on a timeout or a bad frame, each
  try with a fresh sequence number; the last error propagates.
- Every failure is a :class:`devicectl.errors.DeviceError`: ``DeviceTimeout``
  (no complete reply within the port's own timeout), ``ProtocolError`` and its
  ``CRCError``/``SequenceError`` (bad bytes), ``DeviceRejected`` (an ``ERR``
  reply, never retried) and ``PortError`` (pyserial or the OS failed, or the
  driver was closed).

Timing: the driver never sleeps and never reads a clock for timeouts; it relies
on the port's ``timeout`` (one empty ``read`` means it expired), so it runs
unchanged on a UART, ``socket://`` or a ``sim://`` port in virtual time. The
``now`` callable only stamps readings. On real FTDI adapters set the latency
timer low (see PITFALLS.md) or a round trip costs ~16 ms.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

import serial

from devicectl.devices import DeviceIdentity, RFReading, RFStatus, frozen_constructor
from devicectl.errors import (
    DeviceRejected,
    DeviceTimeout,
    PortError,
    ProtocolError,
    SequenceError,
)
from devicectl_drivers.port_errors import PORT_ERRORS
from devicectl_drivers.retry import note_tries
from devicectl_drivers.rf_codec import (
    MAX_LINE_BYTES,
    MAX_SEQ,
    STATUS_MASK,
    encode_command,
    expect_no_payload,
    fast_all_reply,
    format_power_w,
    frame_command,
    parse_all,
    parse_error_entry,
    parse_identity,
    parse_output_state,
    parse_power_w,
    split_reply,
)
from devicectl_drivers.sequenced_port import SequencedPortDriver

_new_rfreading = frozen_constructor(RFReading)  # the per-tick reading, built fast

__all__ = ["RFScpiDriver"]

_T = TypeVar("_T")

# Command bodies: validated once here by encode_command, framed per call by frame_command.
_IDN = "*IDN?"
_CLS = "*CLS"
_HEART = "SYST:HEART"
_SYST_ERR = "SYST:ERR?"
_OUTP_ON = "OUTP ON"
_OUTP_OFF = "OUTP OFF"
_OUTP_Q = "OUTP?"
_POW_Q = "SOUR:POW?"
_MEAS_ALL = "MEAS:ALL?"
_MEAS_ALL_BYTES = _MEAS_ALL.encode("ascii")
# The per-tick request's frame for each sequence number, framed on its first use.
_MEAS_ALL_FRAMES: list[bytes | None] = [None] * (MAX_SEQ + 1)
_BODIES: dict[str, bytes] = {}
for _body in (_IDN, _CLS, _HEART, _SYST_ERR, _OUTP_ON, _OUTP_OFF, _OUTP_Q, _POW_Q, _MEAS_ALL):
    encode_command(MAX_SEQ, _body)  # raises at import if a constant could not be framed
    _BODIES[_body] = _body.encode("ascii")
del _body

# RFStatus(bits) builds a flag each call; 128 prebuilt values make it a tuple index.
_STATUS_BY_BITS: tuple[RFStatus, ...] = tuple(RFStatus(bits) for bits in range(STATUS_MASK + 1))

_LF = b"\n"


class RFScpiDriver(SequencedPortDriver):
    """An RF generator speaking RFP/1 over an open pyserial port.

    ``port`` is any open ``serial.SerialBase`` (or an object with the same
    ``read``/``write``/``in_waiting``/``reset_input_buffer``/``timeout``/``close``)
    whose ``timeout`` is a positive number of seconds: the driver relies on it
    to call a reply lost (the spec advises 50 ms). ``now`` stamps
    :attr:`RFReading.t_s` (pass the controller clock's ``now``).
    ``read_retries`` is how many extra tries a read-only query or
    ``output_off`` gets.
    """

    MAX_SEQ: ClassVar[int] = MAX_SEQ
    implements: ClassVar[str] = "rf"
    """The device interface this driver implements: ``"rf"`` is
    :class:`devicectl.devices.RFGenerator`. A class attribute, so the station can
    check it before opening any port."""
    modality: ClassVar[str] = implements  # the older name of ``implements``
    default_simulator: ClassVar[str] = "rf"

    # ------------------------------------------------------- RFGenerator API

    def identify(self) -> DeviceIdentity:
        """``*IDN?``: who the device is. Retried; no change of state."""
        return self._retrying(lambda: parse_identity(self._transact(_IDN)))

    def read(self) -> RFReading:
        """``MEAS:ALL?`` in one round trip, stamped with ``now()`` when the reply arrived.

        Retried up to ``read_retries`` extra times on a timeout or bad frame.
        """
        tries = self._tries
        while True:
            try:
                seq = self._take_seq()
                frame = _MEAS_ALL_FRAMES[seq]
                if frame is None:
                    frame = _MEAS_ALL_FRAMES[seq] = frame_command(seq, _MEAS_ALL_BYTES)
                line = self._roundtrip(seq, frame, _MEAS_ALL)
                fields = fast_all_reply(line, seq)
                if fields is None:  # not the plain good case: full checks name the problem
                    fields = parse_all(self._check_reply(line, seq, _MEAS_ALL))
                t1_c, t2_c, impedance_ohm, power_w, output_on, bits = fields
            except (DeviceTimeout, ProtocolError) as exc:
                tries -= 1
                if tries:
                    continue
                note_tries(exc, self._tries)
                raise
            return _new_rfreading(
                self._now(),
                t1_c,
                t2_c,
                impedance_ohm,
                power_w,
                output_on,
                _STATUS_BY_BITS[bits],
            )

    def set_power(self, power_w: float) -> None:
        """``SOUR:POW <w>`` with one decimal place. Sent once, never retried.

        Raises ``ValidationError`` (nothing sent) for NaN/inf; the range is the
        device's (``ERR -222`` -> ``DeviceRejected``) and the supervisor's.
        """
        body = f"SOUR:POW {format_power_w(power_w)}"
        seq = self._take_seq()
        expect_no_payload(self._exchange(seq, encode_command(seq, body), body), body)

    def output_on(self) -> None:
        """``OUTP ON``. Sent once, never retried: a lost reply leaves the state unknown."""
        expect_no_payload(self._transact(_OUTP_ON), _OUTP_ON)

    def output_off(self) -> None:
        """``OUTP OFF``: the safe direction, idempotent, so retried like a read."""
        self._retrying(lambda: expect_no_payload(self._transact(_OUTP_OFF), _OUTP_OFF))

    def output_is_on(self) -> bool:
        """``OUTP?``: the output state as the firmware holds it. Retried."""
        return self._retrying(lambda: parse_output_state(self._transact(_OUTP_Q)))

    def clear_status(self) -> None:
        """``*CLS``: clear latched flags and the error queue. Sent once.

        Not retried: it clears safety latches, so whether it acted is the
        caller's question (answer it with ``read().status``).
        """
        expect_no_payload(self._transact(_CLS), _CLS)

    def heartbeat(self) -> None:
        """``SYST:HEART``: feed the device watchdog, nothing else. Sent once.

        A missed heartbeat is news for the control loop, not something to hide
        by retrying (any other valid frame feeds the watchdog as well).
        """
        expect_no_payload(self._transact(_HEART), _HEART)

    def next_error(self) -> tuple[int, str]:
        """``SYST:ERR?``: pop the oldest queued device error; ``(0, "No error")`` if none.

        Sent once: it changes the queue, so a retry after a lost reply would
        silently drop an entry.
        """
        return parse_error_entry(self._transact(_SYST_ERR))

    def power_setpoint_w(self) -> float:
        """``SOUR:POW?``: the setpoint as the device holds it. Retried."""
        return self._retrying(lambda: parse_power_w(self._transact(_POW_Q)))

    # ------------------------------------------------------------- internals

    def _transact(self, body: str) -> str:
        """One try of a constant command: fresh seq, frame, exchange; the OK payload."""
        seq = self._take_seq()
        return self._exchange(seq, frame_command(seq, _BODIES[body]), body)

    def _exchange(self, seq: int, frame: bytes, body: str) -> str:
        """Send ``frame``; return the payload of its matching ``OK`` reply or raise."""
        return self._check_reply(self._roundtrip(seq, frame, body), seq, body)

    @staticmethod
    def _check_reply(line: bytes, seq: int, body: str) -> str:
        reply_seq, ok, payload, code, text = split_reply(line)
        if reply_seq != seq:
            raise SequenceError(
                f"reply to {body!r} carries seq {reply_seq}, expected {seq} "
                "(a stale reply, or the device rebooted)"
            )
        if not ok:
            raise DeviceRejected(code or 0, text or "", body)
        return payload

    def _roundtrip(self, seq: int, frame: bytes, body: str) -> bytes:
        """Send ``frame``; return the first whole reply line (LF included), unchecked."""
        if self._closed:
            raise PortError(f"RF driver is closed; cannot send {body!r}")
        port = self._port
        try:
            port.reset_input_buffer()  # drop stale replies of earlier timed-out commands
            written = port.write(frame)
            if written is not None and written != len(frame):
                raise PortError(f"RF port wrote {written} of {len(frame)} bytes of {body!r}")
            buf = bytearray()
            while True:
                chunk = port.read(port.in_waiting or 1)
                if not chunk:
                    raise DeviceTimeout(_timeout_message(body, seq, port, buf))
                buf += chunk
                end = buf.find(_LF)
                if end >= 0:
                    # Anything after the LF is not ours (one reply per command);
                    # the next command's input reset drops it.
                    return bytes(buf[: end + 1])
                if len(buf) >= MAX_LINE_BYTES:
                    raise ProtocolError(
                        f"reply to {body!r} (seq {seq}) ran past {MAX_LINE_BYTES} bytes "
                        f"without an LF: {bytes(buf[:60])!r}..."
                    )
        except PORT_ERRORS as exc:
            raise PortError(f"RF port failed during {body!r}: {exc}") from exc


def _timeout_message(body: str, seq: int, port: serial.SerialBase, partial: bytearray) -> str:
    got = f"; got only {bytes(partial)!r}" if partial else ""
    return f"no reply to {body!r} (seq {seq}) within {port.timeout} s{got}"
