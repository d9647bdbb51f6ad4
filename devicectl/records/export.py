"""A session as JSON lines, and such a file read back as a record source.

Format (one canonical JSON object per line, keys sorted, NaN as ``"NaN"``; each
line is its row's ``to_json()``, :mod:`devicectl.records.models`):
1. ``{"record": "session", ...}``: the session row, including ``head_seq``,
   ``head_hash`` and ``chain``;
2. ``{"record": "step", ...}`` per step, by index;
3. ``{"record": "event", ...}`` per event, by seq, with ``prev_hash`` and ``hash``;
4. ``{"record": "trace", ...}`` per sample, by time (unless left out).

Guarantee: an export read back (:class:`JsonlRecord`) is a
:class:`~devicectl.records.models.RecordSource` like the store it came from, so
:func:`verify_jsonl` runs the very check of ``RecordStore.verify``
(:func:`~devicectl.records.verify.verify_session`) and gives the same verdict:
the chain, the session and step lines against the chained events that state
them, and the trace lines against the chained ``trace_block`` digests when the
export holds them. An exported record can be checked away from the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from devicectl.errors import RecordError
from devicectl.records.chain import canonical_json
from devicectl.records.models import (
    EventRecord,
    RecordSource,
    SessionSummary,
    StepRecord,
    TracePoint,
)
from devicectl.records.verify import VerifyResult, verify_session


def export_jsonl(
    source: RecordSource, session_id: str, fh: IO[str], *, include_traces: bool = True
) -> int:
    """Write one session of ``source`` to ``fh``; returns the number of lines written."""
    sid = source.resolve(session_id)
    lines = 0

    def put(fields: dict[str, Any]) -> None:
        nonlocal lines
        fh.write(canonical_json(fields) + "\n")
        lines += 1

    put(source.session(sid).to_json())
    for step in source.steps(sid):
        put(step.to_json())
    for event in source.iter_events(sid):
        put(event.to_json())
    if include_traces:
        for point in source.iter_traces(sid) or ():
            put(point.to_json(sid))
    return lines


class JsonlRecord:
    """One exported session, read back: a :class:`~devicectl.records.models.RecordSource`."""

    def __init__(
        self,
        session: SessionSummary,
        steps: list[StepRecord],
        events: list[EventRecord],
        traces: list[TracePoint] | None,
        *,
        name: str = "export",
    ) -> None:
        self.db = name  # how errors name it, like RecordStore.db
        self._session = session
        self._steps = steps
        self._events = events
        self._traces = traces

    @classmethod
    def parse(cls, lines: Iterable[str], *, name: str = "export") -> JsonlRecord:
        """Read an export made by :func:`export_jsonl` (ValueError if it is not one)."""
        session: SessionSummary | None = None
        steps: list[StepRecord] = []
        events: list[EventRecord] = []
        traces: list[TracePoint] = []
        for line in lines:
            if not line.strip():
                continue
            obj = json.loads(line)
            record = obj.get("record")
            if record == "session":
                session = SessionSummary.from_json(obj)
            elif record == "step":
                steps.append(StepRecord.from_json(obj))
            elif record == "event":
                events.append(EventRecord.from_json(obj))
            elif record == "trace":
                traces.append(TracePoint.from_json(obj))
        if session is None:
            raise ValueError("not a devicectl session export: no session line")
        # An export made without its traces has no trace lines: they are then not
        # checked (the verdict's note says so), rather than all called deleted.
        return cls(session, steps, events, traces or None, name=name)

    def resolve(self, id_or_prefix: str) -> str:
        prefix = id_or_prefix.strip().lower()
        if not prefix or not self._session.id.startswith(prefix):
            raise RecordError(self.db, f"no session {id_or_prefix!r}")
        return self._session.id

    def list_sessions(self) -> list[SessionSummary]:
        return [self._session]

    def session(self, session_id: str) -> SessionSummary:
        self.resolve(session_id)
        return self._session

    def steps(self, session_id: str) -> list[StepRecord]:
        self.resolve(session_id)
        return list(self._steps)

    def iter_events(self, session_id: str) -> Iterator[EventRecord]:
        self.resolve(session_id)
        return iter(self._events)

    def iter_traces(self, session_id: str) -> Iterable[TracePoint] | None:
        self.resolve(session_id)
        return None if self._traces is None else iter(self._traces)


def verify_jsonl(lines: Iterable[str]) -> VerifyResult:
    """Check an export made by :func:`export_jsonl`, as ``RecordStore.verify`` checks a store."""
    record = JsonlRecord.parse(lines)
    return verify_session(record, record.list_sessions()[0].id)
