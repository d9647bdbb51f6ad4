"""The console's audible alarm signals, after IEC 60601-1-8.

The standard gives each priority its own burst of pulses, told apart by ear:

- HIGH: ten pulses, 3 + 2, a pause, 3 + 2, the burst repeated every 10 s
  (the standard: every 2.5 to 15 s);
- MEDIUM: three pulses, more widely spaced, repeated every 20 s (2.5 to 30 s);
- LOW: two pulses, once (the standard lets a low priority signal not repeat).

In a terminal a pulse is one terminal bell; in the browser (``console --serve``)
the page plays the same burst with Web Audio (``web/app_index.html``, given
:data:`PATTERNS` by ``serve.py``). What sounds is the highest priority among the
alarms not yet acknowledged: acknowledging an alarm ends its sound.

Silence (the M key) pauses the sound for :data:`SILENCE_S` only, never longer,
and is recorded with the operator's id (the desk's ``alarm_silence`` command,
the station's ``silence``). A new alarm condition sounds at once, whatever the
interval, and ends the pause: a silence given for one alarm never hides the next.

:class:`AlarmSounder` decides when a burst starts; it holds no timer and makes no
sound, so it is tested with a clock the test moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicectl.control.events import AlarmPriority

SILENCE_S = 120.0


@dataclass(frozen=True)
class Burst:
    """One burst: when each pulse starts (s from the burst's start), how long a
    pulse lasts in the browser, its pitch, and how long until the burst repeats
    (None: it does not)."""

    pulses_s: tuple[float, ...]
    pulse_len_s: float
    pitch_hz: float
    repeat_s: float | None


PATTERNS: dict[AlarmPriority, Burst] = {
    AlarmPriority.HIGH: Burst(
        (0.0, 0.2, 0.4, 0.8, 1.0, 1.8, 2.0, 2.2, 2.6, 2.8), 0.12, 880.0, 10.0
    ),
    AlarmPriority.MEDIUM: Burst((0.0, 0.35, 0.7), 0.2, 660.0, 20.0),
    AlarmPriority.LOW: Burst((0.0, 0.35), 0.2, 523.0, None),
}


class AlarmSounder:
    """When a burst starts, for the priority that should sound."""

    def __init__(self) -> None:
        self._sounding: AlarmPriority | None = None
        self._next_s: float | None = None
        self.silenced_until_s: float | None = None

    def silence(self, now_s: float, seconds: float = SILENCE_S) -> float:
        """Pause the sound for ``seconds`` (at most :data:`SILENCE_S`); returns the end."""
        self.silenced_until_s = now_s + min(seconds, SILENCE_S)
        return self.silenced_until_s

    def new_alarm(self) -> None:
        """A new alarm condition: it ends a silence, and the highest pending priority
        sounds its burst at the next update, whatever the interval."""
        self.silenced_until_s = None
        self._sounding = None

    def silenced_for_s(self, now_s: float) -> float:
        """Seconds of silence left (0: not silenced)."""
        if self.silenced_until_s is None:
            return 0.0
        return max(0.0, self.silenced_until_s - now_s)

    def update(self, now_s: float, priority: AlarmPriority | None) -> AlarmPriority | None:
        """The priority whose burst starts now (None: no burst starts).

        ``priority`` is the highest among the unacknowledged alarms (None: none). A
        change of priority starts its burst at once; a burst repeats after its
        pattern's interval; nothing sounds while silenced."""
        if self.silenced_until_s is not None and now_s >= self.silenced_until_s:
            self.silenced_until_s = None
            self._sounding = None  # sound again at once, if anything is still pending
        if priority is None or self.silenced_until_s is not None:
            self._sounding = None if priority is None else self._sounding
            return None
        if priority != self._sounding or (self._next_s is not None and now_s >= self._next_s):
            self._sounding = priority
            repeat = PATTERNS[priority].repeat_s
            self._next_s = now_s + repeat if repeat is not None else None
            return priority
        return None
