"""Host-side driver for the IPL handpiece's IPLB/1 binary protocol (docs/protocols/ipl.md).

:class:`IPLCobsDriver` implements :class:`devicectl.devices.IPLSource` over an
already open pyserial port. It knows bytes and units only: no sessions, no
limits beyond the firmware ranges of ``SET_PARAMS``, no state machine. What it
guarantees:

- One command, one reply: every call sends exactly one frame per try, after
  discarding whatever was waiting (a stale reply from an earlier timeout), and
  accepts only a reply carrying that frame's sequence number and the message
  id the command expects (or a ``NAK`` of that command).
- Energy-enabling and state-changing commands (``set_params``, ``charge``,
  ``arm``, ``fire``, ``clear_status``, ``heartbeat``) are written exactly
  once. A lost reply does not say whether the device acted, so the error goes
  up and the caller decides (usually: fault, disarm, read back).
- Read-only queries (``read``, ``identify``) and ``disarm`` (the safe,
  idempotent direction) are retried up to ``read_retries`` extra times on a
  timeout or a bad frame, each try with a fresh sequence number; the last
  error propagates.
- Every failure is a :class:`devicectl.errors.DeviceError`: ``DeviceTimeout``
  (no complete frame within the port's own timeout), ``ProtocolError`` and
  its ``CRCError``/``SequenceError`` (bad bytes), ``DeviceRejected`` (a
  ``NAK``, with the spec's text for its code; never retried) and
  ``PortError`` (pyserial or the OS failed, or the driver was closed).
  ``set_params`` raises ``ValidationError`` before sending anything when a
  field is outside the firmware ranges.

Reading: ``port.read(port.in_waiting or 1)`` into a buffer, split on 0x00
(never ``read_until``, which reads byte by byte). Empty chunks (0x00 in a row)
are skipped; the first non-empty chunk is the reply; anything after its 0x00
is dropped by the next command's input reset.

Timing: the driver never sleeps and never reads a clock for timeouts; it relies
on the port's ``timeout`` (one empty ``read`` means it expired; the spec
advises 50 ms), so it runs unchanged on a UART, ``socket://`` or a ``sim://``
port in virtual time. ``now`` only stamps readings. The device's watchdog
trips after 250 ms without a valid frame: the control loop must send
something (``read`` or ``heartbeat``) more often than that. After a power-on
the device stays silent for 1 s. On real FTDI adapters set the latency timer
low (see PITFALLS.md) or a round trip costs ~16 ms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import ClassVar, TypeVar

import serial

from devicectl.devices import DeviceIdentity, IPLParams, IPLReading, IPLStatus, frozen_constructor
from devicectl.errors import (
    DeviceTimeout,
    PortError,
    ProtocolError,
)
from devicectl_drivers.ipl_codec import (
    ACK,
    ARM,
    CHARGE,
    CLEAR,
    DISARM,
    FIRE,
    HEARTBEAT,
    IDENTIFY,
    IDENTITY,
    MAX_CHUNK,
    MAX_SEQ,
    MSG_NAMES,
    SET_PARAMS,
    STATUS,
    STATUS_MASK,
    STATUS_REPLY,
    THERMISTOR_OPEN,
    StatusFields,
    StatusReply,
    decode_frame,
    describe_params,
    encode_command,
    expect_reply,
    fast_status_reply,
    pack_wire_params,
    params_to_wire,
    parse_identity,
    status_reply,
    unpack_status_reply,
)
from devicectl_drivers.port_errors import PORT_ERRORS
from devicectl_drivers.retry import note_tries
from devicectl_drivers.sequenced_port import SequencedPortDriver

_new_iplreading = frozen_constructor(IPLReading)  # the per-tick reading, built fast
_GOOD_STATUS_LIMIT = 4096  # good STATUS replies kept by (chunk, seq)

__all__ = ["IPLCobsDriver"]

_T = TypeVar("_T")

# Every payload-less command at every seq, encoded once at import: framing a
# command on the hot path is a tuple index.
_FRAMES: dict[int, tuple[bytes, ...]] = {
    msg: tuple(encode_command(seq, msg) for seq in range(MAX_SEQ + 1))
    for msg in (HEARTBEAT, IDENTIFY, CHARGE, ARM, FIRE, DISARM, STATUS, CLEAR)
}
_STATUS_FRAMES = _FRAMES[STATUS]

# IPLStatus(bits) builds a flag each call; 512 prebuilt values make it a tuple index.
_STATUS_BY_BITS: tuple[IPLStatus, ...] = tuple(IPLStatus(bits) for bits in range(STATUS_MASK + 1))

_ZERO = b"\x00"
_NAN = math.nan


class IPLCobsDriver(SequencedPortDriver):
    """An IPL handpiece speaking IPLB/1 over an open pyserial port.

    ``port`` is any open ``serial.SerialBase`` (or an object with the same
    ``read``/``write``/``in_waiting``/``reset_input_buffer``/``timeout``/``close``)
    whose ``timeout`` is a positive number of seconds: the driver relies on it
    to call a reply lost (the spec advises 50 ms). ``now`` stamps
    :attr:`IPLReading.t_s` (pass the controller clock's ``now``).
    ``read_retries`` is how many extra tries ``read``, ``identify`` and
    ``disarm`` get.
    """

    MAX_SEQ: ClassVar[int] = MAX_SEQ
    implements: ClassVar[str] = "ipl"
    """The device interface this driver implements: ``"ipl"`` is
    :class:`devicectl.devices.IPLSource`. A class attribute, so the station can
    check it before opening any port."""
    modality: ClassVar[str] = implements  # the older name of ``implements``
    default_simulator: ClassVar[str] = "ipl"
    _last_fields: StatusFields | None = None  # the last status reply, once there is one

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        now: Callable[[], float] = time.monotonic,
        read_retries: int = 2,
    ) -> None:
        super().__init__(port, now=now, read_retries=read_retries)
        self._good_status: dict[tuple[bytes, int], StatusFields] = {}

    # ------------------------------------------------------------ properties

    @property
    def last_status(self) -> StatusReply | None:
        """The whole STATUS_REPLY of the latest successful :meth:`read` (None before).

        Carries what :class:`IPLReading` does not: lamp life remaining and the
        device's frame-error counter.
        """
        fields = self._last_fields
        return None if fields is None else status_reply(fields)

    # --------------------------------------------------------- IPLSource API

    def identify(self) -> DeviceIdentity:
        """``IDENTIFY``: who the device is. Retried; no change of state."""
        return self._retrying(lambda: parse_identity(self._command(IDENTIFY, IDENTITY)))

    def read(self) -> IPLReading:
        """``STATUS`` in one round trip, stamped with ``now()`` when the reply arrived.

        Retried up to ``read_retries`` extra times on a timeout or bad frame.
        """
        tries = self._tries
        while True:
            try:
                seq = self._take_seq()
                chunk = self._roundtrip(seq, _STATUS_FRAMES[seq], "STATUS")
                # An idle lamp repeats its status: a good reply is checked once per seq.
                known = self._good_status.get((chunk, seq))
                if known is not None:
                    fields = known
                else:
                    fast = fast_status_reply(chunk, seq)
                    # not the plain good case: the full checks name the problem
                    fields = (
                        fast
                        if fast is not None
                        else unpack_status_reply(
                            expect_reply(decode_frame(chunk), seq, STATUS, STATUS_REPLY, "STATUS")
                        )
                    )
                    if len(self._good_status) >= _GOOD_STATUS_LIMIT:
                        self._good_status.clear()
                    self._good_status[chunk, seq] = fields
            except (DeviceTimeout, ProtocolError) as exc:
                tries -= 1
                if tries:
                    continue
                note_tries(exc, self._tries)
                raise
            self._last_fields = fields
            # Units as codec.status_reply converts them (a test holds the two equal),
            # inline to spare building a StatusReply per tick.
            bits, charge, crystal, block, shots, fluence, filter_nm, lamp_life, _ = fields
            return _new_iplreading(
                self._now(),
                _STATUS_BY_BITS[bits],
                float(charge),
                _NAN if crystal == THERMISTOR_OPEN else crystal / 10,
                _NAN if block == THERMISTOR_OPEN else block / 10,
                shots,
                fluence / 100,
                filter_nm,
                float(lamp_life),
            )

    def set_params(self, params: IPLParams) -> None:
        """``SET_PARAMS``. Sent once, never retried.

        Raises ``ValidationError`` (nothing sent, no seq used) naming every
        field outside the firmware ranges. The device also disarms and dumps
        any charge on ``SET_PARAMS``, and refuses a filter other than the one
        inserted (``NAK 7`` -> ``DeviceRejected``).
        """
        wire = params_to_wire(params)
        payload = pack_wire_params(wire)
        name = describe_params(wire)
        seq = self._take_seq()
        frame = encode_command(seq, SET_PARAMS, payload)
        expect_reply(decode_frame(self._roundtrip(seq, frame, name)), seq, SET_PARAMS, ACK, name)

    def charge(self) -> None:
        """``CHARGE``: start charging for the current parameters. Sent once."""
        self._command(CHARGE, ACK)

    def arm(self) -> None:
        """``ARM``. Sent once, never retried."""
        self._command(ARM, ACK)

    def fire(self) -> None:
        """``FIRE``: the device delivers the train at once. Sent once, never retried.

        A lost reply does not say whether it fired: compare the shot counter.
        """
        self._command(FIRE, ACK)

    def disarm(self) -> None:
        """``DISARM``: disarm and dump the capacitor. The safe direction, idempotent,
        so retried like a read."""
        self._retrying(lambda: self._command(DISARM, ACK))

    def clear_status(self) -> None:
        """``CLEAR``: clear latched flags. Sent once.

        Not retried: it clears safety latches, so whether it acted is the
        caller's question (answer it with ``read().status``).
        """
        self._command(CLEAR, ACK)

    def heartbeat(self) -> None:
        """``HEARTBEAT``: feed the device watchdog, nothing else. Sent once.

        A missed heartbeat is news for the control loop, not something to hide
        by retrying (any other valid frame feeds the watchdog as well).
        """
        self._command(HEARTBEAT, ACK)

    # ------------------------------------------------------------- internals

    def _command(self, msg: int, reply_msg: int) -> bytes:
        """One try of a payload-less command: fresh seq, send, the checked reply payload."""
        seq = self._take_seq()
        name = MSG_NAMES[msg]
        chunk = self._roundtrip(seq, _FRAMES[msg][seq], name)
        return expect_reply(decode_frame(chunk), seq, msg, reply_msg, name)

    def _roundtrip(self, seq: int, frame: bytes, name: str) -> bytes:
        """Send ``frame``; return the first non-empty chunk before a 0x00, unchecked."""
        if self._closed:
            raise PortError(f"IPL driver is closed; cannot send {name}")
        port = self._port
        try:
            port.reset_input_buffer()  # drop stale replies of earlier timed-out commands
            written = port.write(frame)
            if written is not None and written != len(frame):
                raise PortError(f"IPL port wrote {written} of {len(frame)} bytes of {name}")
            buf: bytes = b""
            while True:
                data: bytes = port.read(port.in_waiting or 1)
                if not data:
                    raise DeviceTimeout(_timeout_message(name, seq, port, buf))
                buf = (buf + data if buf else data).lstrip(_ZERO)  # empty chunks carry nothing
                end = buf.find(_ZERO)
                if end > 0:
                    # Anything after the 0x00 is not ours (one reply per command);
                    # the next command's input reset drops it.
                    return buf[:end]
                if len(buf) > MAX_CHUNK:
                    raise ProtocolError(
                        f"reply to {name} (seq {seq}) ran past {MAX_CHUNK} bytes without a "
                        f"0x00 delimiter: {buf[:MAX_CHUNK].hex(' ')} ..."
                    )
        except PORT_ERRORS as exc:
            raise PortError(f"IPL port failed during {name}: {exc}") from exc


def _timeout_message(name: str, seq: int, port: serial.SerialBase, partial: bytes) -> str:
    got = f"; got only {partial.hex(' ')}" if partial else ""
    return f"no reply to {name} (seq {seq}) within {port.timeout} s{got}"
