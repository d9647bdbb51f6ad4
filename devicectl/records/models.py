"""What reading the record store returns: plain frozen dataclasses, no ORM objects.

Times: ``*_at`` fields are ISO 8601 UTC text, ``*_s`` fields the loop clock's
seconds. JSON payloads (``data``, ``result``) are already parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SessionSummary:
    """One row of ``records list``."""

    id: str
    protocol_name: str
    protocol_sha256: str | None
    operator_id: str
    unattended: bool
    station: str
    started_at: str
    ended_at: str | None
    outcome: str  # running, complete, aborted, fault, interrupted
    events: int  # committed events (the chain's head seq)
    head_hash: str
    chain: str
    software_version: str


@dataclass(frozen=True)
class StepRecord:
    index: int
    kind: str
    title: str
    outcome: str
    started_s: float | None
    ended_s: float | None
    result: Any


@dataclass(frozen=True)
class EventRecord:
    seq: int
    t_s: float
    wall_at: str
    kind: str
    device: str
    step_index: int | None
    operator_id: str | None
    data: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class TracePoint:
    t_s: float
    device: str
    step_index: int | None
    channel: str
    value: float | None  # None: no valid reading


@dataclass(frozen=True)
class TraceChannel:
    device: str
    channel: str
    samples: int
    first_s: float
    last_s: float


@dataclass(frozen=True)
class SessionDetail:
    """What ``records show`` prints: the session, its steps, and what its record holds."""

    session: SessionSummary
    steps: tuple[StepRecord, ...]
    event_counts: Mapping[str, int]  # kind -> number of events
    alarms: tuple[EventRecord, ...]  # every event of kind "alarm", in order
    operator_actions: tuple[EventRecord, ...]  # every event carrying an operator id
    traces: tuple[TraceChannel, ...]


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None where the stored payload does not have that shape.

    Readers of the record (``records show``, ``report``) go through this: an edited
    payload is what ``records verify`` exists to name, so it must be shown, not crash
    the command that shows it.
    """
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data
