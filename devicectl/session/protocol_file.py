"""Session protocol files (TOML): read one, check every key and value, build the plan.

The format is documented, with a full example, in ``docs/protocols/session-files.md``.

A file is checked whole before anything runs (DESIGN.md, safety rule 4): every
problem found becomes one line, ``<file name>: step <n> (<kind>): <field> <problem>``
(``<file name>: session: ...`` outside the steps), and if there is any line the
file is rejected with :class:`~devicectl.errors.ProtocolFileError`. Unknown keys
are problems, not ignored: a misspelt ``targt_c`` must not silently become the
default.

A device step's kind is a registered modality (:mod:`devicectl.modality`):
the modality reads its own ``[[step]]`` table and checks its values with its
limits' own ``problems()``, so the limits live in one place. This module adds
the document's shape (``[session]``, ``[[step]]``, ``kind``), the manual step,
and what every table can get wrong: missing keys, wrong types, unknown keys.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, NoReturn, TypeAlias

from devicectl.errors import ConfigError, ProtocolFileError
from devicectl.modality import modalities, modality_of_step
from devicectl.step_table import INT_RULE, MISSING, StepTable, describe, show

__all__ = [
    "ManualStep",
    "SessionLimits",
    "SessionProtocol",
    "Step",
    "kinds",
    "load_protocol",
    "loads_protocol",
    "planned_s",
    "protocol_problems",
    "total_planned_s",
    "validate_protocol",
]

MANUAL: Final = "manual"


def kinds() -> tuple[str, ...]:
    """The step kinds a protocol file may use: manual, and every registered modality."""
    return (MANUAL, *modalities())


# --------------------------------------------------------------------------- model


class SessionLimits:
    """The limits a protocol is checked against: one set per modality.

    ``SessionLimits(rf=RFLimits(target_max_c=40.0))`` overrides one modality's
    set; every other modality gets its defaults. ``limits.rf`` (or
    ``limits.for_kind("rf")``) is that modality's set.
    """

    def __init__(self, **by_kind: Any) -> None:
        registered = modalities()
        unknown = sorted(set(by_kind) - set(registered))
        if unknown:
            raise ConfigError(
                f"limits for unknown modalities {', '.join(unknown)} "
                f"(installed: {', '.join(registered)})"
            )
        self._by_kind: dict[str, Any] = {
            name: by_kind[name] if by_kind.get(name) is not None else mod.limits()
            for name, mod in registered.items()
        }

    def for_kind(self, kind: str) -> Any:
        return self._by_kind[kind]

    def __getattr__(self, kind: str) -> Any:
        by_kind = self.__dict__.get("_by_kind", {})
        if kind in by_kind:
            return by_kind[kind]
        raise AttributeError(kind)


@dataclass(frozen=True)
class ManualStep:
    """Something the operator does by hand; the runner waits for a confirmation."""

    kind: ClassVar[str] = "manual"
    title: str
    instructions: str
    confirm: bool = True


# A manual step, or the step type of a registered modality (``Modality.step_type``).
Step: TypeAlias = Any


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
        _fail(p, f"TOML syntax error: an integer is too large ({INT_RULE})")
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
    memos: dict[str, dict[str, Any]] = {}
    for n, step in enumerate(protocol.steps, 1):
        where = f"{file}: step {n} ({getattr(step, 'kind', type(step).__name__)})"
        if isinstance(step, ManualStep):
            lines = [
                f"{key} is empty"
                for key in ("title", "instructions")
                if not getattr(step, key).strip()
            ]
        else:
            mod = modality_of_step(step)
            if mod is None:
                found.append(f"{where}: not a step of any installed modality")
                continue
            memo = memos.setdefault(mod.name, {})
            lines = mod.step_problems(step, lim.for_kind(mod.name), memo)
        found += [f"{where}: {line}" for line in lines]
    return found


def validate_protocol(protocol: SessionProtocol, limits: SessionLimits | None = None) -> None:
    """Raise :class:`ProtocolFileError` with :func:`protocol_problems`, if any."""
    found = protocol_problems(protocol, limits)
    if found:
        raise ProtocolFileError(protocol.path, found)


# --------------------------------------------------------------------------- durations


def planned_s(step: Step, limits: SessionLimits | None = None) -> float:
    """A rough duration of one step in seconds, for progress display (manual: 0)."""
    mod = modality_of_step(step)
    if mod is None:
        return 0.0
    return mod.planned_s(step, (limits or SessionLimits()).for_kind(mod.name))


def total_planned_s(protocol: SessionProtocol, limits: SessionLimits | None = None) -> float:
    """A rough duration of the device steps in seconds (manual steps count 0): each
    modality's own estimate (``Modality.planned_s``). Operator time is not included."""
    lim = limits or SessionLimits()
    return sum(planned_s(step, lim) for step in protocol.steps)


# --------------------------------------------------------------------------- the reader

_TOP_KEYS: Final = ("session", "step")
_SESSION_KEYS: Final = ("name", "version", "description", "notes")
_MANUAL_KEYS: Final = ("kind", "title", "instructions", "confirm")


class _Document:
    """Reads one parsed TOML document into a :class:`SessionProtocol`."""

    def __init__(self, path: Path, limits: SessionLimits, out: list[str]) -> None:
        self.path = path
        self.file = path.name
        self.lim = limits
        self.out = out
        self.memos: dict[str, dict[str, Any]] = {}  # each modality's rules across steps

    def read(self, data: Mapping[str, object]) -> SessionProtocol | None:
        session_where = f"{self.file}: session"
        StepTable(data, session_where, self.out, _TOP_KEYS)  # unknown top-level keys
        meta = self._session(data.get("session", MISSING), session_where)
        steps = self._steps(data.get("step", MISSING), session_where)
        if meta is None or steps is None:
            return None
        name, version, description, notes = meta
        return SessionProtocol(self.path, name, version, description, steps, notes)

    def _session(self, raw: object, where: str) -> tuple[str, str, str, str] | None:
        if raw is MISSING:
            self.out.append(f"{where}: the [session] table is missing (name, version)")
            return None
        if not isinstance(raw, dict):
            self.out.append(f"{where}: session must be a table ([session]), not {describe(raw)}")
            return None
        t = StepTable(raw, where, self.out, _SESSION_KEYS)
        name = t.text("name")
        version = t.text("version")
        description = t.text("description", default="", blank_ok=True)
        notes = t.text("notes", default="", blank_ok=True)
        if name is None or version is None or description is None or notes is None:
            return None
        return name, version, description, notes

    def _steps(self, raw: object, where: str) -> tuple[Step, ...] | None:
        if raw is MISSING or raw == []:
            self.out.append(f"{where}: no steps: a protocol needs at least one [[step]]")
            return None
        if not isinstance(raw, list):
            self.out.append(
                f"{where}: step must be an array of tables ([[step]]), not {describe(raw)}"
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
            self.out.append(f"{where}: must be a table ([[step]]), not {describe(raw)}")
            return None
        kind = raw.get("kind", MISSING)
        known = kinds()
        expected = ", ".join(known)
        if kind is MISSING:
            self.out.append(f"{where}: kind is missing (one of {expected})")
            return None
        if not isinstance(kind, str):
            self.out.append(f"{where}: kind must be text ({expected}), not {describe(kind)}")
            return None
        if kind not in known:
            self.out.append(f"{where}: kind {show(kind)} is not one of {expected}")
            return None
        where = f"{where} ({kind})"
        if kind == MANUAL:
            return self._manual(StepTable(raw, where, self.out, _MANUAL_KEYS))
        mod = modalities()[kind]
        table = StepTable(raw, where, self.out, mod.step_keys)
        return mod.read_step(table, self.lim.for_kind(kind), self.memos.setdefault(kind, {}))

    # -- manual ---------------------------------------------------------------------

    def _manual(self, t: StepTable) -> ManualStep | None:
        title = t.text("title")
        instructions = t.text("instructions")
        confirm = t.flag("confirm", True)
        if title is None or instructions is None or confirm is None:
            return None
        return ManualStep(title, instructions, confirm)
