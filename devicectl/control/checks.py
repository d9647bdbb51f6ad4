"""The supervisors' checks: one small class per kind of check, shared by every modality.

Each check is time-driven, as Klipper's ``verify_heater``: the supervisor hands
it this tick's value and clock time, and it keeps only what it needs to judge
the next tick (a count, a since-time, a window of samples, a total). A check
holds no device and no limits object: it is built with its thresholds, and a
supervisor composes the checks its modality needs, in the order they run.

Every alarm a check raises has one message format::

    <device>: <condition>: <value>, limit <limit>; see docs/safety.md#<anchor>

naming the device, the condition, the value, the limit and the section of
docs/safety.md that explains the code (its ``doc`` link too). Latching alarms
are HIGH and raised on every tick their condition holds; non-latching alarms
are raised once when their condition starts, and again only after it cleared.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from devicectl.control.events import Alarm, AlarmPriority
from devicectl.control.slope import SlopeEstimator


def doc_link(code: str) -> str:
    """The section of docs/safety.md that explains ``code``."""
    return f"docs/safety.md#{code.replace('.', '-')}"


def make_alarm(
    device: str,
    code: str,
    condition: str,
    shown_value: str,
    shown_limit: str,
    value: float | None,
    limit: float | None,
    *,
    latches: bool = True,
    priority: AlarmPriority = AlarmPriority.HIGH,
) -> Alarm:
    """An alarm in the one message format (see the module's docstring)."""
    doc = doc_link(code)
    message = f"{device}: {condition}: {shown_value}, limit {shown_limit}; see {doc}"
    return Alarm(device, code, priority, message, latches, value, limit, doc)


class Stale:
    """No valid reading for ``ticks`` ticks in a row is comms loss, never "last value"."""

    def __init__(self, device: str, code: str, ticks: int) -> None:
        self.device, self.code, self.ticks = device, code, ticks
        self.missed = 0

    def reset(self) -> None:
        self.missed = 0

    def check(self, present: bool) -> Alarm | None:
        if present:  # a valid reading ends the count
            self.missed = 0
            return None
        self.missed += 1
        if self.missed < self.ticks:
            return None
        return make_alarm(
            self.device,
            self.code,
            "no valid reading (comms loss)",
            f"{self.missed} ticks",
            f"{self.ticks} ticks",
            self.missed,
            self.ticks,
        )


class DeviceBits:
    """The device's own fault bits: the firmware already acted, the host latches too.

    ``table`` maps each bit to its code and what it means. With ``undefined_code``,
    a bit outside ``defined`` is a fault the host cannot name, never a healthy device.
    """

    def __init__(
        self,
        device: str,
        word: str,
        table: Sequence[tuple[enum.IntFlag, str, str]],
        *,
        defined: int | None = None,
        undefined_code: str | None = None,
    ) -> None:
        self.device, self.word, self.table = device, word, tuple(table)
        self.mask = 0
        for bit, _, _ in self.table:
            self.mask |= int(bit)
        self.defined = self.mask if defined is None else defined
        self.undefined_code = undefined_code

    def reset(self) -> None:
        pass

    def check(self, status: int) -> list[Alarm]:
        out: list[Alarm] = []
        if status & self.mask:
            for bit, code, text in self.table:
                if status & bit:
                    out.append(
                        make_alarm(
                            self.device,
                            code,
                            text,
                            f"{self.word} bit {bit.name} set",
                            "clear",
                            None,
                            None,
                        )
                    )
        undefined = status & ~self.defined
        if self.undefined_code is not None and undefined:
            out.append(
                make_alarm(
                    self.device,
                    self.undefined_code,
                    f"{self.word} bits that the protocol does not define",
                    f"0x{undefined:04X}",
                    f"0x{self.defined:04X} at most",
                    status,
                    None,
                )
            )
        return out


class Plausible:
    """A value no sensor in working order can give (an open sensor reads NaN)."""

    def __init__(self, device: str, code: str, low: float, high: float, unit: str) -> None:
        self.device, self.code = device, code
        self.low, self.high, self.unit = low, high, unit

    def reset(self) -> None:
        pass

    def check(self, what: str, value: float) -> Alarm | None:
        if self.low <= value <= self.high:  # NaN fails too
            return None
        return make_alarm(
            self.device,
            self.code,
            f"{what} implausible",
            f"{value} {self.unit}",
            f"{self.low}-{self.high} {self.unit}",
            value,
            None,
        )


class Threshold:
    """A value at (``inclusive``) or over ``level``: the one implementation of every
    limit and warning on a value.

    Latching: a fault on every tick the value is over. Not latching: an alarm once
    when the value gets over, re-armed only once it has cleared: with ``clear`` set,
    by falling to ``clear`` or below (``clear_inclusive``, NaN clears too) or strictly
    below it, so a value dithering on the level does not flap (hysteresis); without,
    as soon as it is no longer over. ``limit`` is the limit the message and the
    alarm name (``level`` by default; a warning names the limit it approaches).
    """

    def __init__(
        self,
        device: str,
        code: str,
        condition: str,
        level: float,
        unit: str,
        *,
        digits: int = 1,
        inclusive: bool = True,
        latching: bool = True,
        priority: AlarmPriority = AlarmPriority.HIGH,
        clear: float | None = None,
        clear_inclusive: bool = True,
        limit: float | None = None,
    ) -> None:
        self.device, self.code, self.condition = device, code, condition
        self.level, self.unit, self.digits = level, unit, digits
        self.inclusive, self.latching, self.priority = inclusive, latching, priority
        self.clear, self.clear_inclusive = clear, clear_inclusive
        self.limit = level if limit is None else limit
        self.raised = False  # a non-latching alarm is up

    def reset(self) -> None:
        self.raised = False

    def over(self, value: float) -> bool:
        return value >= self.level if self.inclusive else value > self.level

    def _cleared(self, value: float) -> bool:
        if self.clear is None:
            return not self.over(value)
        if self.clear_inclusive:
            return not value > self.clear
        return value < self.clear

    def check(self, value: float) -> Alarm | None:
        if self.latching:
            return self._alarm(value) if self.over(value) else None
        if self.raised:
            # Up: stays up, silent, until the value has cleared.
            if self._cleared(value):
                self.raised = False
            return None
        if not self.over(value):
            return None
        self.raised = True
        return self._alarm(value)

    def _alarm(self, value: float) -> Alarm:
        return make_alarm(
            self.device,
            self.code,
            self.condition,
            f"{value:.{self.digits}f} {self.unit}",
            f"{self.limit} {self.unit}",
            value,
            self.limit,
            latches=self.latching,
            priority=self.priority if not self.latching else AlarmPriority.HIGH,
        )


class Dose:
    """An accumulated dose (thermal dose, light dose, time) against its limit.

    The supervisor accrues it (``add``; ``total`` for a site's prior dose); ``check``
    faults on every tick the total is over ``level`` and, with ``warn_fraction``,
    warns once when it reaches that fraction of ``limit``.
    """

    def __init__(
        self,
        device: str,
        code: str,
        condition: str,
        limit: float,
        unit: str,
        *,
        digits: int = 1,
        level: float | None = None,
        warn_code: str | None = None,
        warn_fraction: float | None = None,
    ) -> None:
        self.total = 0.0
        self.over = Threshold(
            device,
            code,
            condition,
            limit if level is None else level,
            unit,
            digits=digits,
            inclusive=False,
            limit=limit,
        )
        self.warn: Threshold | None = None
        if warn_code is not None and warn_fraction is not None:
            self.warn = Threshold(
                device,
                warn_code,
                f"{condition} approaching the limit",
                limit * warn_fraction,
                unit,
                digits=digits,
                latching=False,
                priority=AlarmPriority.MEDIUM,
                limit=limit,
            )

    def reset(self) -> None:
        if self.warn is not None:
            self.warn.reset()

    def add(self, amount: float) -> float:
        self.total += amount
        return self.total

    def check(self) -> list[Alarm]:
        out = [a for a in (self.over.check(self.total),) if a is not None]
        if self.warn is not None:
            warned = self.warn.check(self.total)
            if warned is not None:
                out.append(warned)
        return out


class Stuck:
    """A live sensor never repeats itself exactly for seconds while energy goes in;
    a frozen ADC does: the value exactly unchanged for ``stuck_s`` while active."""

    def __init__(self, device: str, code: str, what: str, stuck_s: float, unit: str) -> None:
        self.device, self.code, self.what = device, code, what
        self.stuck_s, self.unit = stuck_s, unit
        self._held: tuple[float, float] | None = None  # (value, since_t_s)

    def reset(self) -> None:
        self._held = None

    def check(self, now_s: float, value: float, active: bool) -> Alarm | None:
        if not active:  # only energy going in proves a sensor should move
            self._held = None
            return None
        if self._held is None or self._held[0] != value:
            self._held = (value, now_s)
            return None
        held_s = now_s - self._held[1]
        if held_s < self.stuck_s:
            return None
        return make_alarm(
            self.device,
            self.code,
            f"{self.what} stuck at {value:.1f} {self.unit} while output on",
            f"{held_s:.1f} s",
            f"{self.stuck_s} s",
            held_s,
            self.stuck_s,
        )


class Rate:
    """Rate of change over a sliding ``window_s`` (least squares), against ``limit``:
    a rise faster than it, or with ``falling`` a fall faster than it."""

    def __init__(
        self,
        device: str,
        code: str,
        condition: str,
        limit: float,
        window_s: float,
        min_samples: int,
        *,
        falling: bool = False,
        unit: str = "degC/s",
    ) -> None:
        self.device, self.code, self.condition = device, code, condition
        self.limit, self.falling, self.unit = limit, falling, unit
        self._slope = SlopeEstimator(window_s, min_samples=min_samples)
        self.rate: float | None = None  # the last tick's, None until the window fills

    def reset(self) -> None:
        self._slope.clear()

    def sample(self, now_s: float, value: float) -> float | None:
        self._slope.add(now_s, value)
        self.rate = self._slope.slope()
        return self.rate

    def check(self, now_s: float, value: float) -> Alarm | None:
        self.sample(now_s, value)
        return self.beyond(self.limit, self.condition)

    def beyond(self, limit: float, condition: str) -> Alarm | None:
        """An alarm if the last rate is beyond ``limit`` (a second, tighter limit too)."""
        rate = self.rate
        if rate is None:
            return None
        if self.falling:
            if not rate < -limit:
                return None
            return make_alarm(
                self.device,
                self.code,
                condition,
                f"{-rate:.2f} {self.unit}",
                f"{limit} {self.unit}",
                rate,
                -limit,
            )
        if not rate > limit:
            return None
        return make_alarm(
            self.device,
            self.code,
            condition,
            f"{rate:.2f} {self.unit}",
            f"{limit} {self.unit}",
            rate,
            limit,
        )


class Sustained:
    """How long a condition has held, once it has held ``hold_s`` (a since-time)."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.since_s: float | None = None

    def reset(self) -> None:
        self.since_s = None

    def check(self, now_s: float, condition: bool) -> float | None:
        """The time it has held, on a tick it has held at least ``hold_s``; else None."""
        if not condition:
            self.since_s = None
            return None
        if self.since_s is None:
            self.since_s = now_s
            return None
        held_s = now_s - self.since_s
        return held_s if held_s >= self.hold_s else None
