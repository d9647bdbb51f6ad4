"""RF generator firmware emulation: the device side of docs/protocols/rf.md (RFP/1).

Written from the protocol page only; it shares no codec with the host driver.
An :class:`RFFirmware` has the shape of ``devicectl.transport.SimulatedDevice``
(``feed``/``take``/``pending``/``close``/``output_on``) and runs on the caller's
clock: every public call first brings the simulation up to ``clock.now()``.

What is guaranteed:

- Replies appear in the output buffer as soon as a complete line is fed (zero
  wire latency), one per valid frame, in order.
- Time is advanced exactly (see :mod:`devicectl_simulators.skin`), split at every event:
  the watchdog deadline (last valid frame + 0.25 s exactly), boot end, and each
  fault's start and end. While output is on, steps are at most 0.1 s, and at
  most 10 ms while the true surface or a sensor is above 43.5 degC, with the
  45.0 degC cut-off checked after each of them (the firmware samples at
  100 Hz). The cut-off and the re-arm check use the noise-free sensor values;
  noise is drawn only when the host asks for a measurement.
- Everything random comes from generators seeded by ``seed``, so the same seed
  and the same sequence of calls at the same clock times give the same bytes.
"""

from __future__ import annotations

import math
import random
import re
from binascii import crc_hqx
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from devicectl_simulators.faults import FaultSpec
from devicectl_simulators.skin import SkinModel, SkinParams, tenths
from devicectl_simulators.stream import SimulatedDevice, check_options

if TYPE_CHECKING:
    from devicectl.clock import Clock

CUTOFF_C = 45.0
REARM_BELOW_C = 44.0
HOT_ZONE_C = 43.5
HOT_STEP_S = 0.01
MAX_ON_STEP_S = 0.1
MAX_POWER_W = 60.0
ERROR_QUEUE_LEN = 16
MAX_LINE_BYTES = 128  # including the LF
CONTACT_MIN_OHM = 20
CONTACT_MAX_OHM = 1000
IMPEDANCE_PER_C = 0.01  # skin impedance falls about 1 % per degC of warming

OUTPUT_ON = 1 << 0
CONTACT_OK = 1 << 1
OVERTEMP_CUTOFF = 1 << 2
WATCHDOG_TRIPPED = 1 << 3
POWER_ON_RESET = 1 << 4
SENSOR_FAULT = 1 << 5
ERROR_QUEUED = 1 << 6
_LATCHED = OVERTEMP_CUTOFF | WATCHDOG_TRIPPED | POWER_ON_RESET

Error = tuple[int, str]
ERR_FRAME: Error = (-301, "Frame error")
ERR_UNDEFINED_HEADER: Error = (-113, "Undefined header")
ERR_DATA_TYPE: Error = (-104, "Data type error")
ERR_OUT_OF_RANGE: Error = (-222, "Data out of range")
ERR_SETTINGS_CONFLICT: Error = (-221, "Settings conflict")
ERR_QUEUE_OVERFLOW: Error = (-350, "Queue overflow")
NO_ERROR: Error = (0, "No error")

IDN_VENDOR = "devicectl-sim"
IDN_MODEL = "RF-60"
IDN_FIRMWARE = "1.0.0"

OPTIONS = ("skin0",)

_INF = math.inf
_FRAME_RE = re.compile(rb"(0|[1-9][0-9]{0,4}) ([ -~]+)\*[0-9A-F]{4}")
# b"*XXXX" for every CRC value (about 2.5 MB): checking and writing a CRC by
# table lookup is twice as fast as int(..., 16) and b"%04X" formatting.
_STAR_CRC: tuple[bytes, ...] = tuple(b"*%04X" % value for value in range(1 << 16))
_POWER_RE = re.compile(rb"-?[0-9]+(?:\.[0-9])?")

Reply = str | Error  # an OK payload ("" for none) or an error

_TENTHS: dict[int, str] = {}  # whole tenths -> "33.5": formatting floats is slow


def _tenths_text(count: int) -> str:
    """``count`` tenths as a one-decimal number, ``335`` -> ``"33.5"``."""
    text = _TENTHS.get(count)
    if text is None:
        text = f"{count / 10.0:.1f}"
        if len(_TENTHS) < 100_000:
            _TENTHS[count] = text
    return text


class RFFirmware(SimulatedDevice):
    """Simulated RF generator: protocol, protections, skin physics, faults.

    Test hooks (not on the wire): :attr:`skin_true_c`, :attr:`peak_skin_c`,
    :attr:`output_log` and :meth:`advance`.
    """

    device_name = "rf"
    output_reasons = ("host", "watchdog", "cutoff", "contact", "sensor", "reset")

    def __init__(
        self,
        clock: Clock,
        seed: int = 0,
        faults: Sequence[str] = (),
        **options: str,
    ) -> None:
        check_options("rf", options, OPTIONS)
        params = SkinParams()
        if "skin0" in options:
            try:
                skin0_c = float(options["skin0"])
            except ValueError:
                raise ValueError(f"option skin0={options['skin0']!r} is not a number") from None
            params = SkinParams(skin0_c=skin0_c)
        super().__init__(clock, seed, faults)
        self._skin = SkinModel(params, seed=seed)
        self._skin0_c = params.skin0_c
        self._offset1_c, self._offset2_c = params.sensor_offsets_c
        self._max_offset_c = max(params.sensor_offsets_c)
        self._base_impedance_ohm = random.Random(f"rf-contact:{seed}").uniform(90.0, 180.0)

        self._peak_c = self._skin.surface_c

        # Firmware state (set again on every reboot).
        self._output_on = False
        self._power_w = 0.0  # heating power into the tissue now
        self._setpoint_w = 0.0
        self._setpoint_text = "0.0"
        self._latched = 0
        self._rearm_pending = False  # after a cut-off: OUTP ON needs both sensors < 44.0
        self._errors: list[Error] = []

        # The combined effect of the active faults (see _apply_faults).
        self._stuck_value_c: dict[int, float] = {}
        self._open = [False, False]
        self._stuck: list[float | None] = [None, None]
        self._drift: list[list[tuple[float, float]]] = [[], []]
        self._sensor_faults = False
        self._runaway: tuple[float, float] | None = None
        self._contact_lost = False

        self._no_arg: dict[bytes, Callable[[], Reply]] = {
            b"*IDN?": self._cmd_idn,
            b"*CLS": self._cmd_cls,
            b"SYST:HEART": self._cmd_heart,
            b"SYST:ERR?": self._cmd_err,
            b"SOUR:POW?": self._cmd_pow_query,
            b"OUTP?": self._cmd_outp_query,
            b"MEAS:TEMP?": self._cmd_meas_temp,
            b"MEAS:IMP?": self._cmd_meas_imp,
            b"MEAS:POW?": self._cmd_meas_pow,
            b"STAT?": self._cmd_stat,
            b"MEAS:ALL?": self._cmd_meas_all,
        }
        self._with_arg: dict[bytes, Callable[[bytes], Reply]] = {
            b"SOUR:POW": self._cmd_sour_pow,
            b"OUTP": self._cmd_outp,
        }
        self._power_on()

    # ------------------------------------------------------------------ contract

    def feed(self, data: bytes) -> None:
        """Bytes from the host, arriving at ``clock.now()``; replies are queued at once."""
        data = self._arrival(data)
        if not data:
            return
        buf = self._inbuf
        size = len(data)
        if not buf and not self._discarding and data.find(b"\n") == size - 1 <= MAX_LINE_BYTES - 1:
            self._handle_line(data[:-1])  # the usual case: exactly one whole line
            return
        buf += data
        while True:
            end = buf.find(b"\n")
            if end < 0:
                break
            if self._discarding or end >= MAX_LINE_BYTES:
                self._discarding = False
                del buf[: end + 1]
                self._queue_error(ERR_FRAME)
                continue
            line = bytes(buf[:end])
            del buf[: end + 1]
            self._handle_line(line)
        if len(buf) >= MAX_LINE_BYTES:  # can no longer end within 128 bytes
            self._discarding = True
            buf.clear()

    @property
    def output_on(self) -> bool:
        """The output state the firmware holds at ``clock.now()``."""
        self.advance()
        return self._output_on

    # ------------------------------------------------------------------ test hooks

    @property
    def skin_true_c(self) -> float:
        """True skin surface temperature Ts now (no sensor lag, offset or noise)."""
        self.advance()
        return self._skin.surface_c

    @property
    def peak_skin_c(self) -> float:
        """Highest true surface temperature since creation (sampled at every step end)."""
        self.advance()
        return self._peak_c

    def reposition(self) -> None:
        """The technician lifts the handpiece and sets it on a fresh site (a new zone).

        Not on the wire: it is what a hand does. The skin under the electrode is
        at rest again; if output was on, the lift breaks contact and the
        firmware turns output off, as it would for any contact loss.
        """
        self.advance()
        if self._output_on:
            self._set_output(False, "contact", self._t)
        self._skin.reset_to_rest()

    @property
    def skin(self) -> SkinModel:
        """The skin model (read it, do not step it)."""
        return self._skin

    # ------------------------------------------------------------------ time

    def _advance_physics(self, t: float, end: float) -> float:
        skin = self._skin
        while t < end:
            ts = skin.surface_c
            if self._output_on:
                if self._sensor_faults:
                    sensor_max_c = self._sensor_max_c(t)
                else:
                    sensor_max_c = skin.lag_c + self._max_offset_c
                h_max = (
                    HOT_STEP_S if ts > HOT_ZONE_C or sensor_max_c > HOT_ZONE_C else MAX_ON_STEP_S
                )
            elif skin.surface_rate_c_per_s(0.0) > 1e-6:
                h_max = MAX_ON_STEP_S  # surface still rising after output off: sample the peak
            else:
                h_max = _INF
            remaining = end - t
            if remaining <= h_max * (1.0 + 1e-9):
                h = remaining
                t_next = end
            else:
                h = remaining / math.ceil(remaining / h_max - 1e-9)
                t_next = t + h
            skin.integrate(h, self._power_w)
            self._t = t = t_next
            if skin.surface_c > self._peak_c:
                self._peak_c = skin.surface_c
            if self._output_on:
                if self._sensor_faults:
                    sensor_max_c = self._sensor_max_c(t)
                else:
                    sensor_max_c = skin.lag_c + self._max_offset_c
                if sensor_max_c >= CUTOFF_C:
                    self._trip_cutoff(t)
        return t

    def _on_watchdog(self, t: float) -> None:
        self._latched |= WATCHDOG_TRIPPED
        self._set_output(False, "watchdog", t)

    # ------------------------------------------------------------------ protections

    def _set_output(self, on: bool, reason: str, t: float) -> None:
        if on != self._output_on:
            self._output_on = on
            self._output_log.append((t, on, reason))
            self._update_power()

    def _update_power(self) -> None:
        if not self._output_on:
            self._power_w = 0.0
        elif self._runaway is not None:
            gain, floor_w = self._runaway
            self._power_w = max(self._setpoint_w, floor_w) * gain
        else:
            self._power_w = self._setpoint_w

    def _sensor_max_c(self, t: float) -> float:
        if not self._sensor_faults:
            return self._skin.lag_c + self._max_offset_c
        values = [v for v in (self._sensor_clean_c(1, t), self._sensor_clean_c(2, t)) if v == v]
        return max(values, default=-_INF)

    def _trip_cutoff(self, t: float) -> None:
        self._latched |= OVERTEMP_CUTOFF
        self._rearm_pending = True
        self._set_output(False, "cutoff", t)

    def _on_reboot(self, t: float) -> None:
        self._set_output(False, "reset", t)
        self._setpoint_w = 0.0
        self._setpoint_text = "0.0"
        self._update_power()
        self._errors.clear()
        self._latched = POWER_ON_RESET
        self._rearm_pending = False

    # ------------------------------------------------------------------ faults

    def _on_fault_start(self, index: int, spec: FaultSpec, t: float) -> None:
        if spec.kind == "sensor_stuck":
            self._stuck_value_c[index] = self._sensor_clean_c(int(spec.param("sensor")), t)

    def _apply_faults(self, t: float) -> None:
        is_open = [False, False]
        stuck: list[float | None] = [None, None]
        drift: list[list[tuple[float, float]]] = [[], []]
        runaway: tuple[float, float] | None = None
        contact_lost = False
        for index, start in self._active.items():
            spec = self._specs[index]
            kind = spec.kind
            if kind == "sensor_open":
                is_open[int(spec.param("sensor")) - 1] = True
            elif kind == "sensor_stuck":
                i = int(spec.param("sensor")) - 1
                if stuck[i] is None:  # the earliest active one holds
                    stuck[i] = self._stuck_value_c[index]
            elif kind == "sensor_drift":
                drift[int(spec.param("sensor")) - 1].append((spec.param("rate"), start))
            elif kind == "runaway":
                runaway = (spec.param("gain"), spec.param("floor_w"))
            elif kind == "contact_loss":
                contact_lost = True
        self._open, self._stuck, self._drift = is_open, stuck, drift
        self._sensor_faults = any(is_open) or stuck != [None, None] or drift != [[], []]
        self._runaway = runaway
        self._contact_lost = contact_lost
        if any(is_open):
            self._set_output(False, "sensor", t)
        if contact_lost:
            self._set_output(False, "contact", t)
        self._update_power()

    def _sensor_clean_c(self, sensor: int, t: float) -> float:
        """Noise-free value of sensor 1 or 2 as the faults leave it (NaN if open)."""
        i = sensor - 1
        if self._open[i]:
            return math.nan
        frozen = self._stuck[i]
        if frozen is not None:
            return frozen
        value = self._skin.sensor_clean_c(sensor)
        for rate, start in self._drift[i]:
            value += rate * (t - start)
        return value

    # ------------------------------------------------------------------ framing

    def _handle_line(self, line: bytes) -> None:
        match = _FRAME_RE.fullmatch(line)
        if match is None:
            self._queue_error(ERR_FRAME)
            return
        seq, body = match.groups()
        if line[-5:] != _STAR_CRC[crc_hqx(line[:-5], 0xFFFF)] or (
            len(seq) == 5 and int(seq) > 65535
        ):
            self._queue_error(ERR_FRAME)
            return
        self._feed_watchdog()  # a valid frame feeds the watchdog
        handler = self._no_arg.get(body)
        if handler is not None:
            reply = handler()
        else:
            header, space, arg = body.partition(b" ")
            arg_handler = self._with_arg.get(header)
            if arg_handler is not None:
                reply = arg_handler(arg) if space else ERR_DATA_TYPE
            elif header in self._no_arg:
                reply = ERR_DATA_TYPE  # an argument where none is taken
            else:
                reply = ERR_UNDEFINED_HEADER
        if isinstance(reply, str):
            head = seq + b" OK " + reply.encode() if reply else seq + b" OK"
        else:
            code, text = reply
            self._queue_error(reply)
            head = seq + b' ERR %d,"%s"' % (code, text.encode())
        self._send(head + _STAR_CRC[crc_hqx(head, 0xFFFF)] + b"\n")

    def _queue_error(self, error: Error) -> None:
        if len(self._errors) < ERROR_QUEUE_LEN:
            self._errors.append(error)
        else:
            self._errors[-1] = ERR_QUEUE_OVERFLOW

    # ------------------------------------------------------------------ readings

    def _temps_text(self) -> str:
        """Both sensors for one query: noise drawn now, quantised, ``NAN`` if open."""
        n1, n2 = self._skin.noise_pair_c()
        if not self._sensor_faults:
            lag = self._skin.lag_c
            q1 = round((lag + self._offset1_c + n1) * 10.0)
            q2 = round((lag + self._offset2_c + n2) * 10.0)
            return f"{_TENTHS.get(q1) or _tenths_text(q1)},{_TENTHS.get(q2) or _tenths_text(q2)}"
        return f"{self._sensor_text(1, n1)},{self._sensor_text(2, n2)}"

    def _sensor_text(self, sensor: int, noise_c: float) -> str:
        i = sensor - 1
        if self._open[i]:
            return "NAN"
        frozen = self._stuck[i]
        if frozen is not None:
            return _tenths_text(tenths(frozen))  # a stuck sensor repeats itself exactly
        return _tenths_text(tenths(self._sensor_clean_c(sensor, self._t) + noise_c))

    def _impedance_ohm(self) -> int | None:
        if self._contact_lost:
            return None
        warming_c = self._skin.surface_c - self._skin0_c
        return round(self._base_impedance_ohm * (1.0 - IMPEDANCE_PER_C * warming_c))

    def _status(self, impedance_ohm: int | None) -> int:
        bits = self._latched
        if self._output_on:
            bits |= OUTPUT_ON
        if impedance_ohm is not None and CONTACT_MIN_OHM <= impedance_ohm <= CONTACT_MAX_OHM:
            bits |= CONTACT_OK
        if self._open[0] or self._open[1]:
            bits |= SENSOR_FAULT
        if self._errors:
            bits |= ERROR_QUEUED
        return bits

    # ------------------------------------------------------------------ commands

    def _cmd_idn(self) -> Reply:
        return f"{IDN_VENDOR},{IDN_MODEL},SIM{self._seed},{IDN_FIRMWARE}"

    def _cmd_cls(self) -> Reply:
        self._errors.clear()
        self._latched &= ~_LATCHED
        return ""

    def _cmd_heart(self) -> Reply:
        return ""

    def _cmd_err(self) -> Reply:
        code, text = self._errors.pop(0) if self._errors else NO_ERROR
        return f'{code},"{text}"'

    def _cmd_sour_pow(self, arg: bytes) -> Reply:
        if _POWER_RE.fullmatch(arg) is None:
            return ERR_DATA_TYPE
        power_w = float(arg) + 0.0  # + 0.0 turns -0.0 into 0.0
        if not 0.0 <= power_w <= MAX_POWER_W:
            return ERR_OUT_OF_RANGE
        self._setpoint_w = power_w
        self._setpoint_text = f"{power_w:.1f}"
        self._update_power()
        return ""

    def _cmd_pow_query(self) -> Reply:
        return self._setpoint_text

    def _cmd_outp(self, arg: bytes) -> Reply:
        if arg == b"OFF":
            self._set_output(False, "host", self._t)
            return ""
        if arg != b"ON":
            return ERR_DATA_TYPE
        if not self._may_turn_on():
            return ERR_SETTINGS_CONFLICT
        self._set_output(True, "host", self._t)
        return ""

    def _may_turn_on(self) -> bool:
        if self._latched & OVERTEMP_CUTOFF or self._contact_lost:
            return False
        if self._open[0] or self._open[1]:
            return False
        impedance = self._impedance_ohm()
        if impedance is None or not CONTACT_MIN_OHM <= impedance <= CONTACT_MAX_OHM:
            return False
        if self._rearm_pending:
            t = self._t
            if self._sensor_clean_c(1, t) >= REARM_BELOW_C:
                return False
            if self._sensor_clean_c(2, t) >= REARM_BELOW_C:
                return False
            self._rearm_pending = False
        return True

    def _cmd_outp_query(self) -> Reply:
        return "ON" if self._output_on else "OFF"

    def _cmd_meas_temp(self) -> Reply:
        return self._temps_text()

    def _cmd_meas_imp(self) -> Reply:
        impedance = self._impedance_ohm()
        return "OPEN" if impedance is None else str(impedance)

    def _cmd_meas_pow(self) -> Reply:
        # The power meter sits before a runaway fault: it reports the setpoint.
        return self._setpoint_text if self._output_on else "0.0"

    def _cmd_stat(self) -> Reply:
        return str(self._status(self._impedance_ohm()))

    def _cmd_meas_all(self) -> Reply:
        # The control loop's every-tick query: the no-fault case is inlined.
        skin = self._skin
        if self._sensor_faults:
            temps = self._temps_text()
        else:
            n1, n2 = skin.noise_pair_c()
            lag = skin.lag_c
            q1 = round((lag + self._offset1_c + n1) * 10.0)
            q2 = round((lag + self._offset2_c + n2) * 10.0)
            temps = f"{_TENTHS.get(q1) or _tenths_text(q1)},{_TENTHS.get(q2) or _tenths_text(q2)}"
        bits = self._latched
        if self._contact_lost:
            impedance_text = "OPEN"
        else:
            warming_c = skin.surface_c - self._skin0_c
            impedance = round(self._base_impedance_ohm * (1.0 - IMPEDANCE_PER_C * warming_c))
            impedance_text = str(impedance)
            if CONTACT_MIN_OHM <= impedance <= CONTACT_MAX_OHM:
                bits |= CONTACT_OK
        if self._open[0] or self._open[1]:
            bits |= SENSOR_FAULT
        if self._errors:
            bits |= ERROR_QUEUED
        if self._output_on:
            return f"{temps},{impedance_text},{self._setpoint_text},ON,{bits | OUTPUT_ON}"
        return f"{temps},{impedance_text},0.0,OFF,{bits}"
