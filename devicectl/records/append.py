"""Writing the record: the one path by which events join a session's hash chain.

- :class:`ChainHead` is where a session's chain goes on (its last ``seq`` and
  hash). :meth:`ChainHead.link` numbers and hashes the next event
  (:func:`~devicectl.records.chain.event_hash` from the previous hash) and
  moves on; it touches no database.
- :func:`append` writes linked events (and trace rows) inside a transaction:
  inserts them, moves the session head (``head_seq``, ``head_hash``) to the
  last one, and writes every step row a chained ``step_started``/``step_ended``
  event states (:func:`~devicectl.records.summary.step_change`), so a row and
  the event that states it are durable together.

Both writers of the chain use exactly these two:
- the store's own events (:func:`begin_session`, :func:`end_session`,
  :func:`append_event` for steps outside a writer) read the head from the
  database under the write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
  ``FOR UPDATE``: :meth:`ChainHead.read`), link one event and append it in the
  same transaction;
- the writer thread (:class:`~devicectl.records.writer.RecordWriter`) reads the
  head once, keeps it in memory, links every event as it comes and appends a
  whole batch of ticks per commit.
A session has one chain writer at a time: while a RecordWriter is open on it the
store must not append to it (both would take the same next ``seq``; the second
insert fails on the primary key and its transaction changes nothing).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from devicectl.errors import RecordError
from devicectl.records.chain import TRACE_SCHEME, canonical_json, event_hash
from devicectl.records.engine import describe_url
from devicectl.records.models import EventRecord, SessionSummary, TracePoint
from devicectl.records.schema import events, sessions, steps, traces
from devicectl.records.summary import (
    SESSION_DEVICE,
    SESSION_ENDED,
    SESSION_STARTED,
    STEP_ENDED,
    STEP_STARTED,
    StepBegin,
    StepEnd,
    session_ended_data,
    session_started_data,
    step_change,
)

FINAL_OUTCOMES = ("complete", "aborted", "fault", "interrupted")
_STEP_EVENTS = (STEP_STARTED, STEP_ENDED)


class ChainHead:
    """A session's chain head: links the next events after it (in memory)."""

    __slots__ = ("hash", "seq", "session_id")

    def __init__(self, session_id: str, seq: int, hash: str) -> None:
        self.session_id = session_id
        self.seq = seq
        self.hash = hash

    @classmethod
    def read(cls, conn: Connection, session_id: str) -> ChainHead:
        """The stored head, read under the write lock of ``conn``'s transaction."""
        row = conn.execute(
            sa.select(sessions.c.head_seq, sessions.c.head_hash)
            .where(sessions.c.id == session_id)
            .with_for_update()
        ).first()
        if row is None:
            raise RecordError(describe_url(conn.engine.url), f"no session {session_id}")
        return cls(session_id, int(row.head_seq), str(row.head_hash))

    def link(
        self,
        *,
        t_s: float,
        wall_at: str,
        kind: str,
        device: str,
        step_index: int | None,
        operator_id: str | None,
        data: Any,
    ) -> EventRecord:
        """The next event, numbered and hashed after this head, which moves on to it.

        ``data`` is any payload :func:`~devicectl.records.chain.canonical_json` takes.
        """
        data_json = canonical_json(data)
        seq = self.seq + 1
        digest = event_hash(
            self.hash, seq, t_s, wall_at, kind, device, step_index, operator_id, data_json
        )
        event = EventRecord(
            seq, t_s, wall_at, kind, device, step_index, operator_id, data_json, self.hash, digest
        )
        self.seq, self.hash = seq, digest
        return event


def append(
    conn: Connection,
    session_id: str,
    chained: Sequence[EventRecord],
    trace_rows: Sequence[TracePoint] = (),
) -> None:
    """Write linked events (in seq order) and trace rows in ``conn``'s transaction.

    The session head moves to the last event, and every step row a chained step
    event states is written from the payload as chained (what verify recomputes).
    """
    if chained:
        conn.execute(events.insert(), [{"session_id": session_id, **e.columns()} for e in chained])
        last = chained[-1]
        conn.execute(
            sessions.update()
            .where(sessions.c.id == session_id)
            .values(head_seq=last.seq, head_hash=last.hash)
        )
        for event in chained:
            if event.kind in _STEP_EVENTS:
                change = step_change(event.kind, event.device, event.data, event.t_s)
                write_step_change(conn, session_id, change)
    if trace_rows:
        conn.execute(
            traces.insert(), [{"session_id": session_id, **p.columns()} for p in trace_rows]
        )


def append_event(
    conn: Connection,
    session_id: str,
    *,
    t_s: float,
    wall_at: str,
    kind: str,
    device: str,
    step_index: int | None,
    data: Any,
    operator_id: str | None = None,
) -> EventRecord:
    """Chain one event after the stored head, in ``conn``'s transaction (not while a
    RecordWriter is open on the session: see the module doc)."""
    event = ChainHead.read(conn, session_id).link(
        t_s=t_s,
        wall_at=wall_at,
        kind=kind,
        device=device,
        step_index=step_index,
        operator_id=operator_id,
        data=data,
    )
    append(conn, session_id, [event])
    return event


def begin_session(conn: Connection, session: SessionSummary, *, owner_pid: int, t_s: float) -> None:
    """Insert a new session's row and chain its ``session_started`` event (seq 1) stating it."""
    row = {**session.columns(), "owner_pid": owner_pid}
    conn.execute(sessions.insert().values(**row))
    append_event(
        conn,
        session.id,
        t_s=float(t_s),
        wall_at=session.started_at,
        kind=SESSION_STARTED,
        device=SESSION_DEVICE,
        step_index=None,
        # trace_scheme: this record chains its traces in trace_block events.
        data={**session_started_data(row), "trace_scheme": TRACE_SCHEME},
    )


def end_session(conn: Connection, db: str, session_id: str, outcome: str, ended_at: str) -> None:
    """Chain ``session_ended`` (at the loop time of the last event) and close the row."""
    if outcome not in FINAL_OUTCOMES:
        raise ValueError(f"outcome must be one of {FINAL_OUTCOMES}, not {outcome!r}")
    row = conn.execute(
        sa.select(sessions.c.outcome, sessions.c.head_seq)
        .where(sessions.c.id == session_id)
        .with_for_update()
    ).first()
    if row is None or row.outcome != "running":
        what = "no such session" if row is None else f"it is already {row.outcome}"
        raise RecordError(db, f"cannot end session {session_id}: {what}")
    last_t_s = conn.execute(
        sa.select(events.c.t_s).where(
            events.c.session_id == session_id, events.c.seq == row.head_seq
        )
    ).scalar()
    append_event(
        conn,
        session_id,
        t_s=float(last_t_s) if last_t_s is not None else 0.0,
        wall_at=ended_at,
        kind=SESSION_ENDED,
        device=SESSION_DEVICE,
        step_index=None,
        data=session_ended_data(outcome, ended_at),
    )
    conn.execute(
        sessions.update()
        .where(sessions.c.id == session_id, sessions.c.outcome == "running")
        .values(outcome=outcome, ended_at=ended_at)
    )


def mark_interrupted(
    conn: Connection,
    station: str,
    *,
    all_stations: bool,
    pid_alive: Callable[[int], bool],
) -> list[str]:
    """Mark dead running sessions ``interrupted`` (see ``RecordStore.mark_interrupted``)."""
    rows = conn.execute(
        sa.select(sessions.c.id, sessions.c.station, sessions.c.owner_pid).where(
            sessions.c.outcome == "running"
        )
    ).all()
    dead = [
        r.id
        for r in rows
        if (r.station == station and not pid_alive(r.owner_pid))
        or (all_stations and r.station != station)
    ]
    for sid in dead:
        last = conn.execute(
            sa.select(events.c.wall_at)
            .where(events.c.session_id == sid)
            .order_by(events.c.seq.desc())
            .limit(1)
        ).scalar()
        ended = (
            last
            or conn.execute(
                sa.select(sessions.c.started_at).where(sessions.c.id == sid)
            ).scalar_one()
        )
        conn.execute(
            sessions.update()
            .where(sessions.c.id == sid, sessions.c.outcome == "running")
            .values(outcome="interrupted", ended_at=ended)
        )
    return dead


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs."""
    if pid == os.getpid():
        return True  # this process: a live session of another store object, maybe
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    except OSError:  # pragma: no cover - platforms without signal 0
        return True
    return True


def write_step_change(
    conn: Connection, session_id: str, change: StepBegin | StepEnd | None
) -> None:
    """Write the step row change a chained step event states (nothing for None);
    the rule of :func:`~devicectl.records.summary.fold_steps`."""
    if isinstance(change, StepBegin):
        values = {
            "kind": change.kind,
            "title": change.title,
            "outcome": "running",
            "started_s": change.t_s,
            "ended_s": None,
        }
        done = conn.execute(
            steps.update()
            .where(steps.c.session_id == session_id, steps.c.step_index == change.index)
            .values(**values)
        )
        if done.rowcount == 0:
            conn.execute(
                steps.insert().values(session_id=session_id, step_index=change.index, **values)
            )
    elif isinstance(change, StepEnd):
        result_json = None if change.result is None else canonical_json(change.result)
        done = conn.execute(
            steps.update()
            .where(steps.c.session_id == session_id, steps.c.step_index == change.index)
            .values(outcome=change.outcome, ended_s=change.t_s, result=result_json)
        )
        if done.rowcount == 0:  # ended without a recorded begin: keep what we know
            conn.execute(
                steps.insert().values(
                    session_id=session_id,
                    step_index=change.index,
                    kind="unknown",
                    title="",
                    outcome=change.outcome,
                    started_s=None,
                    ended_s=change.t_s,
                    result=result_json,
                )
            )
