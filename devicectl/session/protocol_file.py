"""Session protocol files (TOML): read one, check every key and value, build the plan.

The format is documented, with a full example, in ``docs/protocols/session-files.md``.

A file is checked whole before anything runs (DESIGN.md, safety rule 4): every
problem found becomes one line, ``<file name>: step <n> (<kind>): <field> <problem>``
(``<file name>: session: ...`` outside the steps), and if there is any line the
file is rejected with :class:`~devicectl.errors.ProtocolFileError`. Unknown keys
are problems, not ignored: a misspelt ``targt_c`` must not silently become the
default.

The values are checked by the limits' own ``problems()`` methods
(:class:`RFZone`, :class:`IPLPass`, :class:`LEDStep`), so the limits live in one
place, :mod:`devicectl.control.limits`. This module adds only what a file can get
wrong on top of that: missing keys, wrong types, unknown keys, the shape of the
document.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final, NoReturn, TypeAlias

from devicectl.control.limits import (
    IPLLimits,
    IPLPass,
    LEDLimits,
    LEDStep,
    RFLimits,
    RFZone,
    zone_key,
    zone_name_problems,
    zone_scripts_problem,
)
from devicectl.errors import ProtocolFileError

__all__ = [
    "KINDS",
    "IPLStep",
    "LEDExposureStep",
    "ManualStep",
    "RFStep",
    "SessionLimits",
    "SessionProtocol",
    "Step",
    "load_protocol",
    "loads_protocol",
    "planned_s",
    "protocol_problems",
    "total_planned_s",
    "validate_protocol",
]

KINDS: Final = ("manual", "rf", "ipl", "led")

# Rough-duration figures for total_planned_s (progress display only, never control):
# resting skin 32-34 degC and a rise of 0.2-1 degC/s at normal power (DESIGN.md),
# and the IPL charge time of docs/protocols/ipl.md (0.4 s + 1.6 s x fluence / 25).
RF_START_C: Final = 33.0
RF_RISE_C_PER_S: Final = 0.4
IPL_CHARGE_BASE_S: Final = 0.4
IPL_CHARGE_FULL_S: Final = 1.6
IPL_CHARGE_FULL_J_CM2: Final = 25.0


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class SessionLimits:
    """The limits a protocol is checked against: one set per modality."""

    rf: RFLimits = field(default_factory=RFLimits)
    ipl: IPLLimits = field(default_factory=IPLLimits)
    led: LEDLimits = field(default_factory=LEDLimits)


@dataclass(frozen=True)
class ManualStep:
    """Something the operator does by hand; the runner waits for a confirmation."""

    kind: ClassVar[str] = "manual"
    title: str
    instructions: str
    confirm: bool = True


@dataclass(frozen=True)
class RFStep:
    """RF heating of ``zones`` one after another, each to its target for its hold time."""

    kind: ClassVar[str] = "rf"
    title: str
    zones: tuple[RFZone, ...]


@dataclass(frozen=True)
class IPLStep:
    """One IPL pass."""

    kind: ClassVar[str] = "ipl"
    title: str
    ipl_pass: IPLPass


@dataclass(frozen=True)
class LEDExposureStep:
    """One LED exposure (``step`` is the LED controller's own plan object)."""

    kind: ClassVar[str] = "led"
    title: str
    step: LEDStep


Step: TypeAlias = ManualStep | RFStep | IPLStep | LEDExposureStep


@dataclass(frozen=True)
class SessionProtocol:
    """A checked protocol: metadata and the ordered steps (step ``n`` is ``steps[n - 1]``)."""

    path: Path
    name: str
    version: str
    description: str
    steps: tuple[Step, ...]
    notes: str = ""


# --------------------------------------------------------------------------- loading


def load_protocol(
    path: str | os.PathLike[str], limits: SessionLimits | None = None
) -> SessionProtocol:
    """Read, check and build the protocol in ``path``.

    Raises :class:`ProtocolFileError` listing every problem (one line each, each
    starting with the file's name) if the file is missing, unreadable, not valid
    TOML, or has any unknown key, missing key, wrong type or value out of limits.
    """
    return load_protocol_and_sha256(path, limits)[0]


def load_protocol_and_sha256(
    path: str | os.PathLike[str], limits: SessionLimits | None = None
) -> tuple[SessionProtocol, str]:
    """:func:`load_protocol`, and the SHA-256 of the very bytes it was built from
    (hex): the file is read once, so the recorded hash is always of what runs."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        _fail(p, f"file not found ({p})")
    except IsADirectoryError:
        _fail(p, f"is a directory, not a protocol file ({p})")
    except PermissionError:
        _fail(p, f"permission denied reading {p}")
    except OSError as exc:
        _fail(p, f"cannot read {p}: {exc.strerror or exc}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        _fail(p, f"line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8")
    return loads_protocol(text, p, limits), hashlib.sha256(raw).hexdigest()


def loads_protocol(
    text: str, path: str | os.PathLike[str] = "<text>", limits: SessionLimits | None = None
) -> SessionProtocol:
    """Like :func:`load_protocol` for TOML already in memory; ``path`` names it in problems."""
    p = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _fail(p, _syntax_line(str(exc)))
    except RecursionError:
        _fail(p, "TOML syntax error: arrays or tables nested too deeply")
    except ValueError:
        # tomllib does not wrap int() of an integer past Python's 4300-digit limit;
        # no other ValueError leaves it (its own errors are TOMLDecodeError).
        _fail(p, f"TOML syntax error: an integer is too large ({_INT_RULE})")
    lim = limits or SessionLimits()
    out: list[str] = []
    protocol = _Document(p, lim, out).read(data)
    if out or protocol is None:
        raise ProtocolFileError(p, out or [f"{p.name}: session: not a valid protocol"])
    # Belt and braces: the built objects must pass the checks the runner would make.
    validate_protocol(protocol, lim)
    return protocol


def _fail(path: Path, problem: str) -> NoReturn:
    raise ProtocolFileError(path, [f"{path.name}: {problem}"])


_AT = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_AT_END = re.compile(r"^(?P<msg>.*) \(at end of document\)$", re.DOTALL)


def _syntax_line(message: str) -> str:
    """tomllib's message as ``line L, column C: TOML syntax error: <what>``."""
    if m := _AT.match(message):
        return f"line {m['line']}, column {m['col']}: TOML syntax error: {m['msg']}"
    if m := _AT_END.match(message):
        return f"at end of file: TOML syntax error: {m['msg']}"
    return f"TOML syntax error: {message}"


# --------------------------------------------------------------------------- checks of
# built objects (a protocol made in Python, or belt and braces after loading)


def protocol_problems(protocol: SessionProtocol, limits: SessionLimits | None = None) -> list[str]:
    """Every problem of an already built protocol, in the file's line format."""
    lim = limits or SessionLimits()
    file = protocol.path.name
    found: list[str] = []
    if not protocol.name.strip():
        found.append(f"{file}: session: name is empty")
    if not protocol.version.strip():
        found.append(f"{file}: session: version is empty")
    if not protocol.steps:
        found.append(f"{file}: session: no steps")
    names_before: list[str] = []
    for n, step in enumerate(protocol.steps, 1):
        where = f"{file}: step {n} ({step.kind})"
        found += [f"{where}: {line}" for line in _step_problems(step, lim)]
        if isinstance(step, RFStep):
            found += [f"{where}: {line}" for line in _zone_set_problems(step, names_before)]
    return found


def _zone_set_problems(step: RFStep, names_before: list[str]) -> list[str]:
    """The zones of a step together: no site twice in the step, and one script for
    every zone name of the protocol (``names_before`` holds the earlier steps'
    names, and gets this step's). The same rules the file reader applies."""
    found: list[str] = []
    seen: dict[str, int] = {}
    for i, zone in enumerate(step.zones, 1):
        label = _zone_label(i, zone.name)
        key = zone_key(zone.name)
        if key and key in seen:
            found.append(f"{label}: name repeats zone {seen[key]}: {_ONCE}")
        elif key:
            seen[key] = i
        script = zone_scripts_problem(zone.name, names_before)
        if script is not None:
            found.append(f"{label}: {script}")
        names_before.append(zone.name)
    return found


def validate_protocol(protocol: SessionProtocol, limits: SessionLimits | None = None) -> None:
    """Raise :class:`ProtocolFileError` with :func:`protocol_problems`, if any."""
    found = protocol_problems(protocol, limits)
    if found:
        raise ProtocolFileError(protocol.path, found)


def _step_problems(step: Step, lim: SessionLimits) -> list[str]:
    if isinstance(step, ManualStep):
        return [
            f"{key} is empty" for key in ("title", "instructions") if not getattr(step, key).strip()
        ]
    if isinstance(step, RFStep):
        if not step.zones:
            return ["zones is empty"]
        found = []
        for i, zone in enumerate(step.zones, 1):
            found += [f"{_zone_label(i, zone.name)}: {p}" for p in zone.problems(lim.rf)]
        return found
    if isinstance(step, IPLStep):
        return step.ipl_pass.problems(lim.ipl)
    return step.step.problems(lim.led)


# --------------------------------------------------------------------------- durations


def planned_s(step: Step, limits: SessionLimits | None = None) -> float:
    """A rough duration of one step in seconds, for progress display (manual: 0)."""
    lim = limits or SessionLimits()
    if isinstance(step, ManualStep):
        return 0.0
    if isinstance(step, RFStep):
        return sum(
            max(0.0, zone.target_c - RF_START_C) / RF_RISE_C_PER_S + zone.hold_s
            for zone in step.zones
        )
    if isinstance(step, IPLStep):
        p = step.ipl_pass
        charge_s = IPL_CHARGE_BASE_S + IPL_CHARGE_FULL_S * p.fluence_j_cm2 / IPL_CHARGE_FULL_J_CM2
        return p.flashes * max(lim.ipl.min_interval_s, charge_s)
    return step.step.duration_s


def total_planned_s(protocol: SessionProtocol, limits: SessionLimits | None = None) -> float:
    """A rough duration of the device steps in seconds (manual steps count 0).

    RF: per zone, the ramp from resting skin at a typical rate plus the hold;
    IPL: per flash, the charge time or the minimum interval, whichever is longer;
    LED: the exposure. Operator time between steps is not included.
    """
    return sum(planned_s(step, limits) for step in protocol.steps)


# --------------------------------------------------------------------------- the reader

_MISSING: Final = object()
_TOP_KEYS: Final = ("session", "step")
_SESSION_KEYS: Final = ("name", "version", "description", "notes")
_MANUAL_KEYS: Final = ("kind", "title", "instructions", "confirm")
_RF_KEYS: Final = ("kind", "title", "target_c", "hold_s", "zones")
_ZONE_KEYS: Final = ("name", "target_c", "hold_s")
_IPL_KEYS: Final = (
    "kind",
    "title",
    "filter_nm",
    "fluence_j_cm2",
    "pulse_width_ms",
    "flashes",
    "pulse_count",
    "pulse_delay_ms",
)
_LED_KEYS: Final = (
    "kind",
    "title",
    "wavelength_nm",
    "irradiance_mw_cm2",
    "duration_s",
    "duration_min",
)
_RF_DEFAULT: Final = RFZone("default")
_ONCE: Final = "each zone is treated once per step"
_INT_RULE: Final = "TOML integers are 64-bit"
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**63 - 1
_SHOW_MAX: Final = 40


class _Table:
    """One TOML table being read: typed getters that record a problem line and
    return None instead of raising. Unknown keys are reported on construction."""

    def __init__(
        self, data: Mapping[str, object], where: str, out: list[str], known: tuple[str, ...]
    ) -> None:
        self.data = data
        self.where = where
        self.out = out
        self.bad: set[str] = set()  # keys with a missing/type problem: no limit lines for them
        for key in data:
            if key not in known:
                self.problem(_unknown_key(key, known))

    def problem(self, text: str) -> None:
        self.out.append(f"{self.where}: {text}")

    def field_problem(self, key: str, text: str) -> None:
        self.bad.add(key)
        self.problem(f"{key} {text}")

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, default: str | None = None, *, blank_ok: bool = False) -> str | None:
        """Text; required when ``default`` is None; not blank unless ``blank_ok``."""
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is None:
                self.field_problem(key, "is missing")
            return default
        if not isinstance(value, str):
            self.field_problem(key, f"must be text, not {_describe(value)}")
            return None
        if not blank_ok and not value.strip():
            self.field_problem(key, "is empty")
            return None
        return value

    def number(self, key: str, default: float | None = None) -> float | None:
        """A number (integer or float; nan and inf are left to the limits)."""
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is None:
                self.field_problem(key, "is missing")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.field_problem(key, f"must be a number, not {_describe(value)}")
            return None
        if _too_large(value):
            self.field_problem(key, f"is too large ({_INT_RULE})")
            return None
        return float(value)

    def whole(self, key: str, default: int | None = None) -> int | None:
        """A whole number (an integer, or a float with nothing after the point)."""
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is None:
                self.field_problem(key, "is missing")
            return default
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.field_problem(key, f"must be a whole number, not {_describe(value)}")
            return None
        if _too_large(value):
            self.field_problem(key, f"is too large ({_INT_RULE})")
            return None
        return value

    def flag(self, key: str, default: bool) -> bool | None:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.field_problem(key, f"must be true or false, not {_describe(value)}")
            return None
        return value

    def limit_lines(self, lines: list[str], skip: AbstractSet[str] = frozenset()) -> None:
        """Record the limits' problem lines, except for fields already reported."""
        for line in lines:
            if _field_of(line) not in self.bad | skip:
                self.problem(line)


class _Document:
    """Reads one parsed TOML document into a :class:`SessionProtocol`."""

    def __init__(self, path: Path, limits: SessionLimits, out: list[str]) -> None:
        self.path = path
        self.file = path.name
        self.lim = limits
        self.out = out
        self.zone_names: list[str] = []  # every zone name so far, for the one-script rule

    def read(self, data: Mapping[str, object]) -> SessionProtocol | None:
        session_where = f"{self.file}: session"
        _Table(data, session_where, self.out, _TOP_KEYS)  # unknown top-level keys
        meta = self._session(data.get("session", _MISSING), session_where)
        steps = self._steps(data.get("step", _MISSING), session_where)
        if meta is None or steps is None:
            return None
        name, version, description, notes = meta
        return SessionProtocol(self.path, name, version, description, steps, notes)

    def _session(self, raw: object, where: str) -> tuple[str, str, str, str] | None:
        if raw is _MISSING:
            self.out.append(f"{where}: the [session] table is missing (name, version)")
            return None
        if not isinstance(raw, dict):
            self.out.append(f"{where}: session must be a table ([session]), not {_describe(raw)}")
            return None
        t = _Table(raw, where, self.out, _SESSION_KEYS)
        name = t.text("name")
        version = t.text("version")
        description = t.text("description", default="", blank_ok=True)
        notes = t.text("notes", default="", blank_ok=True)
        if name is None or version is None or description is None or notes is None:
            return None
        return name, version, description, notes

    def _steps(self, raw: object, where: str) -> tuple[Step, ...] | None:
        if raw is _MISSING or raw == []:
            self.out.append(f"{where}: no steps: a protocol needs at least one [[step]]")
            return None
        if not isinstance(raw, list):
            self.out.append(
                f"{where}: step must be an array of tables ([[step]]), not {_describe(raw)}"
            )
            return None
        steps: list[Step] = []
        for n, entry in enumerate(raw, 1):
            step = self._step(n, entry)
            if step is not None:
                steps.append(step)
        return tuple(steps) if len(steps) == len(raw) else None

    def _step(self, n: int, raw: object) -> Step | None:
        where = f"{self.file}: step {n}"
        if not isinstance(raw, dict):
            self.out.append(f"{where}: must be a table ([[step]]), not {_describe(raw)}")
            return None
        kind = raw.get("kind", _MISSING)
        expected = ", ".join(KINDS)
        if kind is _MISSING:
            self.out.append(f"{where}: kind is missing (one of {expected})")
            return None
        if not isinstance(kind, str):
            self.out.append(f"{where}: kind must be text ({expected}), not {_describe(kind)}")
            return None
        if kind not in KINDS:
            self.out.append(f"{where}: kind {_show(kind)} is not one of {expected}")
            return None
        where = f"{where} ({kind})"
        if kind == "manual":
            return self._manual(_Table(raw, where, self.out, _MANUAL_KEYS))
        if kind == "rf":
            return self._rf(_Table(raw, where, self.out, _RF_KEYS))
        if kind == "ipl":
            return self._ipl(_Table(raw, where, self.out, _IPL_KEYS))
        return self._led(_Table(raw, where, self.out, _LED_KEYS))

    # -- manual ---------------------------------------------------------------------

    def _manual(self, t: _Table) -> ManualStep | None:
        title = t.text("title")
        instructions = t.text("instructions")
        confirm = t.flag("confirm", True)
        if title is None or instructions is None or confirm is None:
            return None
        return ManualStep(title, instructions, confirm)

    # -- rf -------------------------------------------------------------------------

    def _rf(self, t: _Table) -> RFStep | None:
        lim = self.lim.rf
        title = t.text("title", default="RF")
        target_c = t.number("target_c", default=_RF_DEFAULT.target_c)
        hold_s = t.number("hold_s", default=_RF_DEFAULT.hold_s)
        entries = t.data.get("zones", _MISSING)
        zones: list[RFZone] = []
        inherited: set[str] = set()
        failed = False
        if entries is _MISSING:
            t.field_problem("zones", "is missing: list the zones to treat")
            failed = True
        elif not isinstance(entries, list):
            t.field_problem(
                "zones",
                f"must be an array (zones = [...] or [[step.zones]]), not {_describe(entries)}",
            )
            failed = True
        elif not entries:
            t.field_problem("zones", "is empty: list at least one zone")
            failed = True
        else:
            seen: dict[str, int] = {}
            for i, entry in enumerate(entries, 1):
                zone = self._zone(t, i, entry, target_c, hold_s, inherited, seen)
                if zone is None:
                    failed = True
                else:
                    zones.append(zone)
        # Step-level target_c/hold_s are checked once here, when written in the file
        # or used by a zone; the zones report only the values they set themselves.
        checked = {key for key in ("target_c", "hold_s") if t.has(key) or key in inherited}
        probe = RFZone(
            "step",
            _RF_DEFAULT.target_c if target_c is None else target_c,
            _RF_DEFAULT.hold_s if hold_s is None else hold_s,
        )
        t.limit_lines([p for p in probe.problems(lim) if _field_of(p) in checked])
        if failed or title is None:
            return None
        return RFStep(title, tuple(zones))

    def _zone(
        self,
        step: _Table,
        i: int,
        entry: object,
        step_target_c: float | None,
        step_hold_s: float | None,
        inherited: set[str],
        seen: dict[str, int],
    ) -> RFZone | None:
        data: Mapping[str, object]
        if isinstance(entry, str):
            data = {"name": entry}
        elif isinstance(entry, dict):
            data = entry
        else:
            step.problem(f"zone {i} must be a name or a table, not {_describe(entry)}")
            return None
        raw_name = data.get("name")
        label = _zone_label(i, raw_name if isinstance(raw_name, str) else "")
        z = _Table(data, f"{step.where}: {label}", step.out, _ZONE_KEYS)
        name = z.text("name")
        own = {key for key in ("target_c", "hold_s") if z.has(key)}
        inherited.update({"target_c", "hold_s"} - own)
        target_c = z.number("target_c") if "target_c" in own else step_target_c
        hold_s = z.number("hold_s") if "hold_s" in own else step_hold_s
        if name is not None:
            # One zone however its name was typed: case, Unicode forms that look the
            # same (e + combining accent vs the accented letter; NFKC), and runs of
            # spaces. Lookalike letters and invisible characters are refused by the
            # name rule (zone_name_problems), so they cannot make a second name.
            key = zone_key(name)
            if key in seen:
                z.problem(f"name repeats zone {seen[key]}: {_ONCE}")
            elif key:
                seen[key] = i
            script = zone_scripts_problem(name, self.zone_names)
            if script is not None:
                z.problem(script)
            self.zone_names.append(name)
        probe = RFZone(
            name or "zone",
            self.lim.rf.target_min_c if target_c is None else target_c,
            self.lim.rf.hold_max_s if hold_s is None else hold_s,
        )
        checked = own if name is None else own | {"name"}
        z.limit_lines([p for p in probe.problems(self.lim.rf) if _field_of(p) in checked])
        if name is None or target_c is None or hold_s is None:
            return None
        return RFZone(name, target_c, hold_s)

    # -- ipl ------------------------------------------------------------------------

    def _ipl(self, t: _Table) -> IPLStep | None:
        lim = self.lim.ipl
        title = t.text("title", default="IPL")
        filter_nm = t.whole("filter_nm")
        fluence = t.number("fluence_j_cm2")
        width = t.number("pulse_width_ms")
        flashes = t.whole("flashes", default=1)
        count = t.whole("pulse_count", default=1)
        delay = t.number("pulse_delay_ms", default=0.0)
        if count is not None and 1 < count <= lim.pulse_count_max and not t.has("pulse_delay_ms"):
            t.field_problem(
                "pulse_delay_ms",
                f"is missing: a train of {count} pulses needs the delay between them "
                f"({lim.pulse_delay_min_ms}-{lim.pulse_delay_max_ms} ms)",
            )
        probe = IPLPass(
            lim.filters_nm[0] if filter_nm is None else filter_nm,
            lim.fluence_min_j_cm2 if fluence is None else fluence,
            lim.pulse_width_min_ms if width is None else width,
            1 if flashes is None else flashes,
            1 if count is None else count,
            0.0 if delay is None else delay,
        )
        lines = probe.problems(lim)
        skip: set[str] = set()
        if "pulse_count" in t.bad or any(_field_of(p) == "pulse_count" for p in lines):
            skip.add("pulse_delay_ms")  # the delay's rule depends on a valid pulse count
        t.limit_lines(lines, skip)
        if (
            title is None
            or filter_nm is None
            or fluence is None
            or width is None
            or flashes is None
            or count is None
            or delay is None
            or "pulse_delay_ms" in t.bad
        ):
            return None
        return IPLStep(title, IPLPass(filter_nm, fluence, width, flashes, count, delay))

    # -- led ------------------------------------------------------------------------

    def _led(self, t: _Table) -> LEDExposureStep | None:
        lim = self.lim.led
        title = t.text("title", default="LED")
        wavelength = t.whole("wavelength_nm")
        irradiance = t.number("irradiance_mw_cm2")
        duration_s: float | None = None
        minutes: float | None = None
        if t.has("duration_s") and t.has("duration_min"):
            t.bad |= {"duration_s", "duration_min"}
            t.problem("duration_s and duration_min: give one of them, not both")
        elif t.has("duration_min"):
            minutes = t.number("duration_min")
            duration_s = None if minutes is None else minutes * 60.0
        elif t.has("duration_s"):
            duration_s = t.number("duration_s")
        else:
            t.field_problem("duration_s", "is missing (or give duration_min)")
        if duration_s is None:
            t.bad.add("duration_s")
        probe = LEDStep(
            lim.wavelengths_nm[0] if wavelength is None else wavelength,
            0.1 if irradiance is None else irradiance,
            1.0 if duration_s is None else duration_s,
        )
        lines = probe.problems(lim)
        if minutes is not None:
            lines = [
                f"duration_min {minutes} = {p}" if _field_of(p) == "duration_s" else p
                for p in lines
            ]
        skip = {"dose"} if {"irradiance_mw_cm2", "duration_s"} & t.bad else set()
        t.limit_lines(lines, skip)
        if title is None or wavelength is None or irradiance is None or duration_s is None:
            return None
        return LEDExposureStep(title, LEDStep(wavelength, irradiance, duration_s))


# --------------------------------------------------------------------------- text helpers


def _too_large(value: int | float) -> bool:
    """An integer outside TOML's 64-bit range (tomllib reads any length): no float
    holds one past 1.8e308, and the limits' checks cannot compare it."""
    return isinstance(value, int) and not _INT_MIN <= value <= _INT_MAX


def _field_of(line: str) -> str:
    """The field a limits' problem line is about: its first word."""
    return line.split(" ", 1)[0]


def _zone_label(i: int, name: str) -> str:
    """``zone <i> (<name>)``; a name that breaks the name rule is shown escaped
    (``'\\u0441hin'``), so the problem line shows what the eye cannot."""
    if not name.strip():
        return f"zone {i}"
    shown = _one_line(ascii(name)) if zone_name_problems(name) else _one_line(name)
    return f"zone {i} ({shown})"


def _one_line(text: str) -> str:
    """Free text as it may appear inside a one-line problem."""
    shown = text if text.isprintable() else repr(text)
    return shown if len(shown) <= _SHOW_MAX else shown[: _SHOW_MAX - 3] + "..."


def _show(text: str) -> str:
    return _one_line(repr(text))


def _show_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _show(key)


def _unknown_key(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}?" if close else "known keys: " + ", ".join(known)
    return f"{_show_key(key)} is not a known key ({hint})"


def _describe(value: object) -> str:
    """A TOML value as a problem line names it: its kind, and a short form of it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {_show(value)}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"the date/time {_one_line(str(value))}"
