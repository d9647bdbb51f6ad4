"""The record's rows: one frozen dataclass per table, and the one conversion to and from it.

- :class:`SessionSummary` is a ``sessions`` row, :class:`StepRecord` a ``steps``
  row, :class:`EventRecord` an ``events`` row, :class:`TracePoint` a ``traces``
  row. The store writes, reads, exports and verifies these, never ORM objects
  or parallel copies.
- Each has ``columns()`` / ``from_columns()`` (the table's columns, as stored)
  and ``to_json()`` / ``from_json()`` (its line of a JSON lines export, see
  :mod:`devicectl.records.export`), both here and nowhere else.
- JSON columns are kept as the stored text (``EventRecord.data_json``,
  ``StepRecord.result_json``: what was hashed, or what an edit left), so verify
  sees the bytes as stored; ``data`` and ``result`` are the parsed values.
- :class:`RecordSource` is what verify and export read: a store (SQLite or
  PostgreSQL) or an exported file, the same way.

Times: ``*_at`` fields are ISO 8601 UTC text, ``*_s`` fields the loop clock's
seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from devicectl.records.chain import canonical_json


def parse_json(text: str | None) -> Any:
    """Stored JSON text parsed; None for NULL, the text itself when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class SessionSummary:
    """One ``sessions`` row (all but ``owner_pid``), and one row of ``records list``."""

    id: str
    protocol_name: str
    protocol_sha256: str | None
    operator_id: str
    unattended: bool
    station: str
    started_at: str
    ended_at: str | None
    outcome: str  # running, complete, aborted, fault, interrupted
    events: int  # committed events (the chain's head seq, column ``head_seq``)
    head_hash: str
    chain: str
    software_version: str

    def columns(self) -> dict[str, Any]:
        """The row's column values (``events`` is ``head_seq``)."""
        return {
            "id": self.id,
            "protocol_name": self.protocol_name,
            "protocol_sha256": self.protocol_sha256,
            "operator_id": self.operator_id,
            "unattended": self.unattended,
            "station": self.station,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "head_seq": self.events,
            "head_hash": self.head_hash,
            "chain": self.chain,
            "software_version": self.software_version,
        }

    @classmethod
    def from_columns(cls, row: Any) -> SessionSummary:
        """From a ``sessions`` row (anything with its columns as attributes)."""
        return cls(
            id=row.id,
            protocol_name=row.protocol_name,
            protocol_sha256=row.protocol_sha256,
            operator_id=row.operator_id,
            unattended=bool(row.unattended),
            station=row.station,
            started_at=row.started_at,
            ended_at=row.ended_at,
            outcome=row.outcome,
            events=int(row.head_seq),
            head_hash=row.head_hash,
            chain=row.chain,
            software_version=row.software_version,
        )

    def to_json(self) -> dict[str, Any]:
        """The export's ``session`` line: the columns."""
        return {"record": "session", **self.columns()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SessionSummary:
        """From an export's ``session`` line, values as written (an edit stays visible)."""
        return cls(
            id=obj["id"],
            protocol_name=obj["protocol_name"],
            protocol_sha256=obj["protocol_sha256"],
            operator_id=obj["operator_id"],
            unattended=obj["unattended"],
            station=obj["station"],
            started_at=obj["started_at"],
            ended_at=obj["ended_at"],
            outcome=obj["outcome"],
            events=obj["head_seq"],
            head_hash=obj["head_hash"],
            chain=obj["chain"],
            software_version=obj["software_version"],
        )


@dataclass(frozen=True)
class StepRecord:
    """One ``steps`` row; ``result_json`` is its stored JSON text, ``result`` parsed."""

    index: int
    kind: str
    title: str
    outcome: str
    started_s: float | None
    ended_s: float | None
    result_json: str | None

    @cached_property
    def result(self) -> Any:
        return parse_json(self.result_json)

    def columns(self) -> dict[str, Any]:
        """The row's column values but ``session_id``."""
        return {
            "step_index": self.index,
            "kind": self.kind,
            "title": self.title,
            "outcome": self.outcome,
            "started_s": self.started_s,
            "ended_s": self.ended_s,
            "result": self.result_json,
        }

    @classmethod
    def from_columns(cls, row: Any) -> StepRecord:
        return cls(
            index=row.step_index,
            kind=row.kind,
            title=row.title,
            outcome=row.outcome,
            started_s=row.started_s,
            ended_s=row.ended_s,
            result_json=row.result,
        )

    def to_json(self) -> dict[str, Any]:
        """The export's ``step`` line: ``index`` and the result parsed."""
        return {
            "record": "step",
            "index": self.index,
            "kind": self.kind,
            "title": self.title,
            "outcome": self.outcome,
            "started_s": self.started_s,
            "ended_s": self.ended_s,
            "result": self.result,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> StepRecord:
        result = obj["result"]
        return cls(
            index=obj["index"],
            kind=obj["kind"],
            title=obj["title"],
            outcome=obj["outcome"],
            started_s=obj["started_s"],
            ended_s=obj["ended_s"],
            result_json=None if result is None else canonical_json(result),
        )


@dataclass(frozen=True)
class EventRecord:
    """One ``events`` row; ``data_json`` is its stored JSON text, ``data`` parsed."""

    seq: int
    t_s: float
    wall_at: str
    kind: str
    device: str
    step_index: int | None
    operator_id: str | None
    data_json: str
    prev_hash: str
    hash: str

    @cached_property
    def data(self) -> Any:
        return parse_json(self.data_json)

    def columns(self) -> dict[str, Any]:
        """The row's column values but ``session_id``."""
        return {
            "seq": self.seq,
            "t_s": self.t_s,
            "wall_at": self.wall_at,
            "kind": self.kind,
            "device": self.device,
            "step_index": self.step_index,
            "operator_id": self.operator_id,
            "data": self.data_json,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_columns(cls, row: Any) -> EventRecord:
        return cls(
            seq=row.seq,
            t_s=row.t_s,
            wall_at=row.wall_at,
            kind=row.kind,
            device=row.device,
            step_index=row.step_index,
            operator_id=row.operator_id,
            data_json=row.data,
            prev_hash=row.prev_hash,
            hash=row.hash,
        )

    def to_json(self) -> dict[str, Any]:
        """The export's ``event`` line: the columns, ``data`` parsed."""
        return {"record": "event", **self.columns(), "data": self.data}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EventRecord:
        return cls(
            seq=obj["seq"],
            t_s=obj["t_s"],
            wall_at=obj["wall_at"],
            kind=obj["kind"],
            device=obj["device"],
            step_index=obj["step_index"],
            operator_id=obj["operator_id"],
            data_json=canonical_json(obj["data"]),
            prev_hash=obj["prev_hash"],
            hash=obj["hash"],
        )


@dataclass(frozen=True)
class TracePoint:
    """One ``traces`` row (but its ``id`` and ``session_id``)."""

    t_s: float
    device: str
    step_index: int | None
    channel: str
    value: float | None  # None: no valid reading

    def columns(self) -> dict[str, Any]:
        """The row's column values but ``id`` and ``session_id``."""
        return {
            "t_s": self.t_s,
            "device": self.device,
            "step_index": self.step_index,
            "channel": self.channel,
            "value": self.value,
        }

    @classmethod
    def from_columns(cls, row: Any) -> TracePoint:
        return cls(row.t_s, row.device, row.step_index, row.channel, row.value)

    def to_json(self, session_id: str) -> dict[str, Any]:
        """The export's ``trace`` line: the columns and ``session_id``."""
        return {"record": "trace", "session_id": session_id, **self.columns()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TracePoint:
        value = obj["value"]
        return cls(
            t_s=obj["t_s"],
            device=obj["device"],
            step_index=obj["step_index"],
            channel=obj["channel"],
            value=None if value is None else float(value),
        )


class RecordSource(Protocol):
    """Where a record is read from: a store (:class:`~devicectl.records.store.RecordStore`,
    or one snapshot of it) or an export (:class:`~devicectl.records.export.JsonlRecord`).

    Verify and export read only through this, so they run the same on each.
    """

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of the one session whose id starts with ``id_or_prefix``."""
        ...

    def list_sessions(self) -> list[SessionSummary]:
        """Every session, newest first."""
        ...

    def session(self, session_id: str) -> SessionSummary: ...

    def steps(self, session_id: str) -> list[StepRecord]:
        """The session's step rows, by index."""
        ...

    def iter_events(self, session_id: str) -> Iterator[EventRecord]:
        """The session's events, by seq."""
        ...

    def iter_traces(self, session_id: str) -> Iterable[TracePoint] | None:
        """The session's trace rows in time order; None when the source does not hold
        them (an export made without its traces)."""
        ...


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
