"""Reading the record: every query of the store, on one connection.

:class:`Reader` reads inside the transaction of the connection it is given, so
what it returns comes from one moment when that transaction is a snapshot
(``transaction(..., snapshot=True)``). It is a
:class:`~devicectl.records.models.RecordSource`: verify and export read a store
through it. Its methods take full session ids (:meth:`Reader.resolve` turns a
prefix into one) and return the row types of :mod:`devicectl.records.models`.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from devicectl.errors import RecordError
from devicectl.records.chain import CHAIN_SCHEME
from devicectl.records.models import (
    EventRecord,
    SessionDetail,
    SessionSummary,
    StepRecord,
    TraceChannel,
    TracePoint,
)
from devicectl.records.schema import events, sessions, steps, traces


class Reader:
    """The store's reads on ``conn``; ``db`` names the store in errors."""

    def __init__(self, conn: Connection, db: str) -> None:
        self.conn = conn
        self.db = db

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of the one session whose id starts with ``id_or_prefix``."""
        prefix = id_or_prefix.strip().lower()
        if not prefix:
            raise RecordError(self.db, "empty session id")
        ids = (
            self.conn.execute(
                sa.select(sessions.c.id)
                .where(sessions.c.id.startswith(prefix, autoescape=True))
                .limit(2)
            )
            .scalars()
            .all()
        )
        if not ids:
            raise RecordError(self.db, f"no session {id_or_prefix!r}")
        if len(ids) > 1:
            raise RecordError(self.db, f"session id {id_or_prefix!r} is ambiguous")
        return str(ids[0])

    def head(self, session_id: str) -> tuple[int, str, str]:
        """``(head_seq, head_hash, outcome)`` of a session: where its chain goes on."""
        row = self.conn.execute(
            sa.select(
                sessions.c.head_seq, sessions.c.head_hash, sessions.c.outcome, sessions.c.chain
            ).where(sessions.c.id == session_id)
        ).first()
        if row is None:
            raise RecordError(self.db, f"no session {session_id}")
        if row.chain != CHAIN_SCHEME:
            raise RecordError(self.db, f"session {session_id} uses chain {row.chain!r}")
        return int(row.head_seq), str(row.head_hash), str(row.outcome)

    def list_sessions(self, *, limit: int | None = None) -> list[SessionSummary]:
        """Sessions, newest first."""
        query = sa.select(sessions).order_by(sessions.c.started_at.desc(), sessions.c.id)
        if limit is not None:
            query = query.limit(limit)
        return [SessionSummary.from_columns(r) for r in self.conn.execute(query)]

    def session(self, session_id: str) -> SessionSummary:
        row = self.conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).first()
        if row is None:
            raise RecordError(self.db, f"no session {session_id!r}")
        return SessionSummary.from_columns(row)

    def steps(self, session_id: str) -> list[StepRecord]:
        rows = self.conn.execute(
            sa.select(steps).where(steps.c.session_id == session_id).order_by(steps.c.step_index)
        )
        return [StepRecord.from_columns(r) for r in rows]

    def events(
        self, session_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[EventRecord]:
        """Events in seq order: those after seq ``after``, at most ``limit`` of them."""
        query = (
            sa.select(events)
            .where(events.c.session_id == session_id, events.c.seq > after)
            .order_by(events.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        return [EventRecord.from_columns(r) for r in self.conn.execute(query)]

    def iter_events(self, session_id: str) -> Iterator[EventRecord]:
        """Events in seq order, streamed (read them before the transaction ends)."""
        query = sa.select(events).where(events.c.session_id == session_id).order_by(events.c.seq)
        for row in self.conn.execute(query):
            yield EventRecord.from_columns(row)

    def traces(
        self, session_id: str, *, device: str | None = None, channel: str | None = None
    ) -> list[TracePoint]:
        """Trace samples in time order, optionally of one device and/or channel."""
        return list(self.iter_traces(session_id, device=device, channel=channel))

    def iter_traces(
        self, session_id: str, *, device: str | None = None, channel: str | None = None
    ) -> Iterator[TracePoint]:
        """:meth:`traces`, streamed (read them before the transaction ends)."""
        query = sa.select(traces).where(traces.c.session_id == session_id)
        if device is not None:
            query = query.where(traces.c.device == device)
        if channel is not None:
            query = query.where(traces.c.channel == channel)
        query = query.order_by(traces.c.t_s, traces.c.id)
        for row in self.conn.execute(query):
            yield TracePoint.from_columns(row)

    def session_detail(self, session_id: str) -> SessionDetail:
        """Everything ``records show`` needs."""
        summary = self.session(session_id)
        counts = {
            str(kind): int(n)
            for kind, n in self.conn.execute(
                sa.select(events.c.kind, sa.func.count())
                .where(events.c.session_id == session_id)
                .group_by(events.c.kind)
                .order_by(events.c.kind)
            )
        }
        notable = [
            EventRecord.from_columns(r)
            for r in self.conn.execute(
                sa.select(events)
                .where(
                    events.c.session_id == session_id,
                    sa.or_(events.c.kind == "alarm", events.c.operator_id.is_not(None)),
                )
                .order_by(events.c.seq)
            )
        ]
        channels = self.conn.execute(
            sa.select(
                traces.c.device,
                traces.c.channel,
                sa.func.count(),
                sa.func.min(traces.c.t_s),
                sa.func.max(traces.c.t_s),
            )
            .where(traces.c.session_id == session_id)
            .group_by(traces.c.device, traces.c.channel)
            .order_by(traces.c.device, traces.c.channel)
        ).all()
        return SessionDetail(
            session=summary,
            steps=tuple(self.steps(session_id)),
            event_counts=counts,
            alarms=tuple(e for e in notable if e.kind == "alarm"),
            operator_actions=tuple(e for e in notable if e.operator_id is not None),
            traces=tuple(
                TraceChannel(d, c, int(n), float(a), float(b)) for d, c, n, a, b in channels
            ),
        )
