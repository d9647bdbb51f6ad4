"""The summary rows (``sessions``, ``steps``) as facts stated inside the hash chain.

Why: ``records show``, ``list`` and the report print a session's outcome,
operator, unattended flag, protocol and its steps' outcomes first. Those rows
are updated in place, so on their own they could be rewritten without breaking
any hash. Every fact in them is therefore also stated by a chained event, and
:func:`check_summary` (run by every verify) compares the rows with those events.

Which events state which row, for records written by this version:
- ``session_started`` (device ``session``, seq 1, written by
  ``RecordStore.begin_session`` in the transaction that inserts the row): the
  protocol name and sha256, operator id, unattended flag, station, software
  version and start time (:data:`SESSION_STARTED_FIELDS`);
- ``session_ended`` (device ``session``, written by ``RecordStore.end_session``
  in the transaction that sets the outcome): the outcome and end time. A session
  whose process died has none: its row must say ``running`` (``ended_at`` empty)
  or ``interrupted`` (``ended_at`` the wall time of its last event, as
  ``mark_interrupted`` sets it); it verifies, with a note that it is unfinished;
- ``step_started`` / ``step_ended`` (device ``session``, from the session runner
  or ``RecordWriter.begin_step``/``end_step``): a step's row is *derived* from
  them by :func:`step_change` and :func:`fold_steps`, the same functions for the
  writer (which writes the row in the commit that chains the event) and for
  verify (which recomputes it), so a row and its events cannot disagree unless
  one was edited.

Records written before this existed have no ``session_started`` event: their
chain is checked as before and the verdict carries a note that their session
and step rows are not covered (no schema change; the event's presence is the
record's version, and it cannot be removed without breaking the chain).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from devicectl.records.chain import canonical_json
from devicectl.records.models import EventRecord, SessionSummary, StepRecord

SESSION_DEVICE: Final = "session"
SESSION_STARTED: Final = "session_started"
SESSION_ENDED: Final = "session_ended"
STEP_STARTED: Final = "step_started"
STEP_ENDED: Final = "step_ended"

SESSION_STARTED_FIELDS: Final = (
    "protocol_name",
    "protocol_sha256",
    "operator_id",
    "unattended",
    "station",
    "software_version",
    "started_at",
)
"""Session-row columns a ``session_started`` event states, under the same names."""

SESSION_ENDED_FIELDS: Final = ("outcome", "ended_at")
"""Session-row columns a ``session_ended`` event states, under the same names."""

STEP_FIELDS: Final = ("kind", "title", "outcome", "started_s", "ended_s", "result")

UNFINISHED_OUTCOMES: Final = ("running", "interrupted")
"""What a session row may say when its chain has no ``session_ended`` event."""

NOT_COVERED_NOTE: Final = (
    "session and step rows not covered: this record was written before they were "
    "chained (no session_started event); only its events are verified"
)

_LABELS: Final = {
    "protocol_name": "protocol name",
    "protocol_sha256": "protocol sha256",
    "operator_id": "operator id",
    "unattended": "unattended",
    "station": "station",
    "software_version": "software version",
    "started_at": "started at",
    "ended_at": "ended at",
    "outcome": "outcome",
    "kind": "kind",
    "title": "title",
    "started_s": "started s",
    "ended_s": "ended s",
    "result": "result",
}


# -- steps: the one rule that turns chained events into a row ------------------------------------


@dataclass(frozen=True)
class StepBegin:
    """A ``step_started`` event: the row gets kind, title, ``running``, started_s; ended_s
    cleared; result kept (a step begun again on resume keeps its last result)."""

    index: int
    kind: str
    title: str
    t_s: float


@dataclass(frozen=True)
class StepEnd:
    """A ``step_ended`` event: the row gets outcome, ended_s and result (``detail``);
    a step ended with no begin gets kind ``unknown`` and an empty title."""

    index: int
    outcome: str
    t_s: float
    result: Any  # plain JSON value, or None


def step_change(kind: str, device: str, data: Any, t_s: float) -> StepBegin | StepEnd | None:
    """The step-row change a chained event states, or None (not a step event, or malformed).

    ``data`` is the event's payload as plain JSON (what was hashed, parsed back).
    """
    if device != SESSION_DEVICE or not isinstance(data, Mapping):
        return None
    index = data.get("step")
    if not isinstance(index, int) or isinstance(index, bool):
        return None
    if kind == STEP_STARTED:
        step_kind, title = data.get("kind"), data.get("title")
        if isinstance(step_kind, str) and isinstance(title, str):
            return StepBegin(index, step_kind, title, float(t_s))
    elif kind == STEP_ENDED:
        outcome = data.get("outcome")
        if isinstance(outcome, str):
            return StepEnd(index, outcome, float(t_s), data.get("detail"))
    return None


@dataclass
class StepFacts:
    """A step's row as its chained events say it must be, and which event said each field."""

    index: int
    kind: str
    title: str
    outcome: str
    started_s: float | None
    ended_s: float | None
    result: str | None  # canonical JSON text
    source: dict[str, tuple[str, int]] = field(default_factory=dict)  # field -> (kind, seq)


def fold_steps(events: Iterable[EventRecord]) -> dict[int, StepFacts]:
    """Every step row the chained events imply (events in seq order), by step index."""
    steps: dict[int, StepFacts] = {}
    for event in events:
        change = step_change(event.kind, event.device, event.data, event.t_s)
        if isinstance(change, StepBegin):
            prev = steps.get(change.index)
            facts = StepFacts(
                change.index,
                change.kind,
                change.title,
                "running",
                change.t_s,
                None,
                prev.result if prev is not None else None,
                dict(prev.source) if prev is not None else {},
            )
            for name in ("kind", "title", "outcome", "started_s", "ended_s"):
                facts.source[name] = (STEP_STARTED, event.seq)
            facts.source.setdefault("result", (STEP_STARTED, event.seq))
            steps[change.index] = facts
        elif isinstance(change, StepEnd):
            result = None if change.result is None else canonical_json(change.result)
            facts_or_none = steps.get(change.index)
            if facts_or_none is None:
                facts = StepFacts(change.index, "unknown", "", change.outcome, None, None, None)
                for name in ("kind", "title", "started_s"):
                    facts.source[name] = (STEP_ENDED, event.seq)
                steps[change.index] = facts
            else:
                facts = facts_or_none
            facts.outcome, facts.ended_s, facts.result = change.outcome, change.t_s, result
            for name in ("outcome", "ended_s", "result"):
                facts.source[name] = (STEP_ENDED, event.seq)
    return steps


# -- the session events ---------------------------------------------------------------------------


def session_started_data(row: Mapping[str, Any]) -> dict[str, Any]:
    """The payload of a ``session_started`` event for the session row ``row`` (its columns)."""
    return {name: row[name] for name in SESSION_STARTED_FIELDS}


def session_ended_data(outcome: str, ended_at: str) -> dict[str, Any]:
    """The payload of a ``session_ended`` event."""
    return {"outcome": outcome, "ended_at": ended_at}


def canonical_or_raw(text: str | None) -> str | None:
    """Stored JSON text in canonical form, or as it is when it is not JSON."""
    if text is None:
        return None
    try:
        return canonical_json(json.loads(text))
    except ValueError:
        return text


# -- the check ----------------------------------------------------------------------------------

_MISSING: Final = object()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class SummaryFinding:
    """One disagreement between a summary row and the chain; ``seq`` 0 when no event."""

    seq: int
    detail: str


def check_summary(
    session: SessionSummary,
    steps: Sequence[StepRecord],
    events: Sequence[EventRecord],
    *,
    has_session_started: bool,
) -> tuple[list[SummaryFinding], list[str]]:
    """Compare the session and step rows with what the chained ``events`` say.

    ``events`` are the intact events in seq order (edited ones left out: the chain
    check names them, and their content says nothing). ``has_session_started``
    is whether *any* stored event is a ``session_started`` one, intact or not:
    without one the record predates the chained summary and only a note is
    returned. Returns the findings and the notes (notes never fail a verify).
    """
    if not has_session_started:
        return [], [NOT_COVERED_NOTE]
    findings: list[SummaryFinding] = []
    notes: list[str] = []

    def differ(what: str, name: str, row: Any, chained: Any, kind: str, seq: int) -> None:
        label = _LABELS.get(name, name)
        if chained is _MISSING:
            detail = f"{what} {label} is {_show(row)} but the chained {kind} event (seq {seq})"
            detail += " does not state it"
        else:
            detail = (
                f"{what} {label} is {_show(row)} but the chained {kind} event (seq {seq}) "
                f"says {_show(chained)}"
            )
        findings.append(SummaryFinding(seq, detail))

    session_events = [e for e in events if e.device == SESSION_DEVICE]
    started = next((e for e in session_events if e.kind == SESSION_STARTED), None)
    ended = next((e for e in reversed(session_events) if e.kind == SESSION_ENDED), None)

    if started is not None:  # else it was edited: the chain check names it
        data = started.data if isinstance(started.data, Mapping) else {}
        for name in SESSION_STARTED_FIELDS:
            row_value = getattr(session, name)
            chained = data.get(name, _MISSING)
            if chained is _MISSING or row_value != chained or type(row_value) is not type(chained):
                differ("session", name, row_value, chained, SESSION_STARTED, started.seq)

    if ended is not None:
        data = ended.data if isinstance(ended.data, Mapping) else {}
        for name in SESSION_ENDED_FIELDS:
            row_value = getattr(session, name)
            chained = data.get(name, _MISSING)
            if chained is _MISSING or row_value != chained:
                differ("session", name, row_value, chained, SESSION_ENDED, ended.seq)
    elif session.outcome not in UNFINISHED_OUTCOMES:
        findings.append(
            SummaryFinding(
                0,
                f"session outcome is {session.outcome!r} but the chain has no "
                f"{SESSION_ENDED} event (a session that was not closed can only be "
                f"{' or '.join(UNFINISHED_OUTCOMES)})",
            )
        )
    elif session.outcome == "running":
        if session.ended_at is not None:
            findings.append(
                SummaryFinding(
                    0, f"session ended at is {session.ended_at!r} but the session is running"
                )
            )
        notes.append(f"unfinished: no {SESSION_ENDED} event, the session is still running")
    else:
        last = events[-1] if events else None
        if last is not None and session.ended_at != last.wall_at:
            findings.append(
                SummaryFinding(
                    last.seq,
                    f"session ended at is {session.ended_at!r} but an interrupted session "
                    f"ends at its last event (seq {last.seq}, {last.wall_at!r})",
                )
            )
        notes.append(
            f"unfinished: no {SESSION_ENDED} event, the session was interrupted "
            "(its process ended before closing it)"
        )

    chained_steps = fold_steps(events)
    rows = {row.index: row for row in steps}
    for index in sorted(set(rows) | set(chained_steps)):
        step_row, facts = rows.get(index), chained_steps.get(index)
        if facts is None:
            findings.append(
                SummaryFinding(
                    0,
                    f"step {index} has a row but no chained {STEP_STARTED} or {STEP_ENDED} event",
                )
            )
            continue
        if step_row is None:
            seq = facts.source["outcome"][1]
            findings.append(SummaryFinding(seq, f"step {index} is in the chain but has no row"))
            continue
        for name in STEP_FIELDS:
            row_value = (
                canonical_or_raw(step_row.result_json)
                if name == "result"
                else getattr(step_row, name)
            )
            chained = getattr(facts, name)
            if row_value != chained:
                kind, seq = facts.source[name]
                differ(f"step {index}", name, row_value, chained, kind, seq)
    return findings, notes
