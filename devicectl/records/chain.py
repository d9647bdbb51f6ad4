"""Canonical JSON and the per-session sha256 hash chain of events.

Guarantees:
- :func:`to_jsonable` turns any payload the control loop emits into plain JSON
  values and never raises: dataclasses become objects of their fields, enums
  their *name*, tuples and sets lists, NaN and infinities the strings
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; anything unknown its ``repr``.
- :func:`canonical_json` is deterministic (sorted keys, no whitespace, ASCII with
  ``\\u`` escapes, never a bare ``NaN`` token), so the same value always hashes the same on every
  backend and Python version that keeps ``float.__repr__`` (shortest round-trip).
- Event ``seq`` runs 1, 2, 3 ... per session; the hash of event ``seq`` is
  ``sha256(canonical_json([prev_hash, seq, t_s, wall_at, kind, device, step_index,
  operator_id, data]))`` where ``prev_hash`` is the hash of event ``seq - 1`` or,
  for the first event, :func:`genesis_hash` of the session id. The chain thus
  binds every event to its position, its predecessor and its session.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

CHAIN_SCHEME = "sha256-v1"
"""Stored in ``sessions.chain``; a new scheme gets a new name, old sessions keep theirs."""

_GENESIS_PREFIX = b"devicectl-records/sha256-v1/genesis\x00"


def genesis_hash(session_id: str) -> str:
    """The ``prev_hash`` of a session's first event."""
    return hashlib.sha256(_GENESIS_PREFIX + session_id.encode("utf-8")).hexdigest()


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_MAX_DEPTH = 32


def _key(key: Any) -> str:
    return key.name if isinstance(key, enum.Enum) else str(key)


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A plain-JSON copy of ``value`` (see the module doc); never raises.

    Nesting deeper than 32 levels (or a cycle) is cut off as ``"<too deep>"``.
    """
    if _depth > _MAX_DEPTH:
        return "<too deep>"
    d = _depth + 1
    kind = type(value)
    # Fast paths for what events are made of; subclasses (IntEnum, StrEnum) go below.
    if value is None or kind is str or kind is int or kind is bool:
        return value
    if kind is float:
        return _float(value)
    if kind is dict:
        return {k if type(k) is str else _key(k): to_jsonable(v, d) for k, v in value.items()}
    if isinstance(value, enum.Enum):  # before int and str: IntEnum is an int
        return value.name
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), d) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v, d) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, d) for v in value]
    if isinstance(value, set | frozenset):
        items = [to_jsonable(v, d) for v in value]
        return sorted(items, key=_encode)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the event
        return f"<unrepresentable {type(value).__name__}>"


_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
).encode


def canonical_json(value: Any) -> str:
    """Deterministic JSON text of ``to_jsonable(value)``."""
    return _encode(to_jsonable(value))


def recanonicalize(data_json: str) -> str:
    """Canonical form of stored JSON text (what :func:`event_hash` hashes)."""
    return canonical_json(json.loads(data_json))


def event_hash(
    prev_hash: str,
    seq: int,
    t_s: float,
    wall_at: str,
    kind: str,
    device: str,
    step_index: int | None,
    operator_id: str | None,
    data_json: str,
) -> str:
    """sha256 hex of one event; ``data_json`` must already be canonical JSON text."""
    head = canonical_json([prev_hash, seq, t_s, wall_at, kind, device, step_index, operator_id])
    # The canonical JSON of a list is "[" + items joined by "," + "]": append the
    # already-canonical data as the last item without encoding it twice.
    text = head[:-1] + "," + data_json + "]"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- trace blocks: the sampled traces inside the chain ------------------------------------------

TRACE_SCHEME = "sha256-rows-v1"
"""Stated as ``trace_scheme`` by the ``session_started`` event of a record whose traces are
chained in ``trace_block`` events; a record without it predates them (not covered)."""

TRACE_BLOCK = "trace_block"
TRACE_BLOCK_DEVICE = "records"
TRACE_BLOCK_MAX_S = 10.0
"""A block is cut at the first tick end at which its rows span this much session time."""


def trace_row_json(t_s: float, step_index: int | None, value: float | None) -> str:
    """Canonical JSON of one trace row as a block digest covers it: ``[t_s, step_index, value]``.

    ``value`` is None for a missing reading (stored as NULL); device and channel are
    the channel entry's own fields.
    """
    return canonical_json([float(t_s), step_index, None if value is None else float(value)])


def trace_digest(row_texts: list[str]) -> str:
    """sha256 hex of one channel's rows in a block: the canonical JSON list of its rows,
    ordered by each row's canonical JSON text (so storage order does not matter)."""
    text = "[" + ",".join(sorted(row_texts)) + "]"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
