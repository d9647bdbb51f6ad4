"""The record store: one SQLite file or a shared PostgreSQL database, same schema and chain.

:class:`RecordStore` is the facade every caller uses; the work is done by
:mod:`~devicectl.records.engine` (URL, engine, dialect setup, migrations,
transactions), :mod:`~devicectl.records.append` (writes: the one path to the
hash chain) and :mod:`~devicectl.records.queries` (reads).

Guarantees:
- :meth:`RecordStore.open` migrates the schema to head and proves the store
  writable, or raises one :class:`~devicectl.errors.RecordError` naming the
  database (see :mod:`~devicectl.records.engine` for URLs and failures).
  ``readonly=True`` opens for reading only, creates nothing, and refuses a store
  whose schema is not at this version's head.
- Every method either does all it says in one transaction or raises
  RecordError and changes nothing. Methods are thread-safe (one engine, a pool
  of connections); the loop thread must not call them: use
  :class:`~devicectl.records.writer.RecordWriter`.
- Read methods accept a session id or a unique prefix of one. The store is a
  :class:`~devicectl.records.models.RecordSource`; :meth:`RecordStore.verify`
  and :meth:`RecordStore.export_jsonl` read one snapshot of it.
- The session and step rows are never written without the chained event that
  states them, in the same transaction (:mod:`devicectl.records.summary`):
  ``begin_session`` chains ``session_started`` (seq 1), ``end_session``
  ``session_ended``, and step rows follow ``step_started``/``step_ended`` events.
  So :meth:`RecordStore.verify` can name an edited outcome, operator or step.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import IO, Any, Self

from sqlalchemy.engine import Connection, Engine

from devicectl.errors import RecordError
from devicectl.records import append
from devicectl.records.append import FINAL_OUTCOMES
from devicectl.records.chain import CHAIN_SCHEME, genesis_hash
from devicectl.records.engine import (
    DEFAULT_DB_PATH,
    ENV_VAR,
    describe_url,
    open_engine,
    reason,
    resolve_url,
    transaction,
)
from devicectl.records.export import export_jsonl
from devicectl.records.models import (
    EventRecord,
    SessionDetail,
    SessionSummary,
    StepRecord,
    TracePoint,
)
from devicectl.records.queries import Reader
from devicectl.records.schema import SESSION_OUTCOMES
from devicectl.records.summary import SESSION_DEVICE, STEP_ENDED, STEP_STARTED
from devicectl.records.verify import VerifyResult, verify_session
from devicectl.records.wall import WallClock, system_wall_clock, utc_iso


def _software_version() -> str:
    try:
        return importlib.metadata.version("devicectl")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown"


class RecordStore:
    """A handle on one record store; open with :meth:`open`, close when done."""

    def __init__(self, engine: Engine, *, wall_clock: WallClock = system_wall_clock) -> None:
        """Prefer :meth:`open`, which migrates and checks the store first."""
        self.engine = engine
        self.url = engine.url
        self.db = describe_url(engine.url)
        self.wall_clock = wall_clock
        self.station = socket.gethostname()

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url_or_path: str | os.PathLike[str] | None = None,
        *,
        readonly: bool = False,
        busy_timeout_s: float = 5.0,
        connect_timeout_s: float = 5.0,
        wall_clock: WallClock = system_wall_clock,
    ) -> Self:
        """Open (and create or migrate, unless ``readonly``) the store; see the module doc."""
        engine = open_engine(
            resolve_url(url_or_path),
            readonly=readonly,
            busy_timeout_s=busy_timeout_s,
            connect_timeout_s=connect_timeout_s,
        )
        return cls(engine, wall_clock=wall_clock)

    def close(self) -> None:
        """Release every connection (writers must be closed first)."""
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RecordStore({self.db!r})"

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool = True, snapshot: bool = False) -> Iterator[Connection]:
        """One transaction (:func:`~devicectl.records.engine.transaction`)."""
        with transaction(self.engine, self.db, write=write, snapshot=snapshot) as conn:
            yield conn

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[Reader]:
        with self.transaction(write=False, snapshot=snapshot) as conn:
            yield Reader(conn, self.db)

    def error(self, exc: BaseException) -> RecordError:
        """The RecordError for a failure met while using this store."""
        return RecordError(self.db, reason(exc))

    # -- sessions ----------------------------------------------------------------------------

    def begin_session(
        self,
        *,
        protocol_name: str,
        operator_id: str,
        protocol_sha256: str | None = None,
        unattended: bool = False,
        session_id: str | None = None,
        t_s: float = 0.0,
    ) -> str:
        """Create a ``running`` session owned by this host and process; returns its id.

        The same transaction chains its ``session_started`` event (seq 1, at loop
        time ``t_s``, wall time ``started_at``) stating the row's protocol,
        operator, unattended flag, station, software version and start, so a
        later edit of any of them is named by :meth:`verify`.
        """
        sid = session_id or uuid.uuid4().hex
        session = SessionSummary(
            id=sid,
            protocol_name=protocol_name,
            protocol_sha256=protocol_sha256,
            operator_id=operator_id,
            unattended=bool(unattended),
            station=self.station,
            started_at=utc_iso(self.wall_clock()),
            ended_at=None,
            outcome="running",
            events=0,
            head_hash=genesis_hash(sid),
            chain=CHAIN_SCHEME,
            software_version=_software_version(),
        )
        with self.transaction() as conn:
            append.begin_session(conn, session, owner_pid=os.getpid(), t_s=t_s)
        return sid

    def end_session(self, session_id: str, outcome: str) -> None:
        """Close a running session with a final outcome (complete, aborted, fault, interrupted).

        The same transaction chains its ``session_ended`` event (outcome and end
        time, at the loop time of its last event), so the outcome is verifiable.
        Close its :class:`RecordWriter` first, so every event is in before the end
        (a writer still open would collide with that event and fail).
        """
        with self.transaction() as conn:
            ended_at = utc_iso(self.wall_clock())
            append.end_session(conn, self.db, session_id, outcome, ended_at)

    def mark_interrupted(self, *, all_stations: bool = False) -> list[str]:
        """Mark dead sessions ``interrupted``; returns their ids. Call it on start-up.

        A session is dead when it is still ``running`` but the process that began
        it (same host name, ``owner_pid``) is gone. Sessions of other hosts are
        left alone (their chair may be live) unless ``all_stations``; then every
        running session not owned by a live process of this host is marked.
        ``ended_at`` becomes the wall time of its last recorded event (or its start).
        """
        with self.transaction() as conn:
            return append.mark_interrupted(
                conn, self.station, all_stations=all_stations, pid_alive=append.pid_alive
            )

    def head(self, session_id: str) -> tuple[int, str, str]:
        """``(head_seq, head_hash, outcome)`` of a session: where its chain goes on."""
        with self._read() as reader:
            return reader.head(session_id)

    # -- steps -------------------------------------------------------------------------------

    def begin_step(
        self, session_id: str, index: int, kind: str, title: str, started_s: float
    ) -> None:
        """Record that a step started (again, if it was begun before: resume).

        Chains a ``step_started`` event at loop time ``started_s`` and writes the
        step's row from it, in one transaction. Not while a RecordWriter is open on
        the session (use the writer's ``begin_step`` then).
        """
        data = {"step": index, "kind": kind, "title": title}
        self._chain_step_event(session_id, STEP_STARTED, index, started_s, data)

    def end_step(
        self, session_id: str, index: int, outcome: str, ended_s: float, result: Any = None
    ) -> None:
        """Record a step's outcome and result (any JSON-able value, dataclasses welcome).

        Chains a ``step_ended`` event at loop time ``ended_s`` and writes the step's
        row from it, in one transaction (not while a RecordWriter is open on it).
        """
        data = {"step": index, "outcome": outcome, "detail": result}
        self._chain_step_event(session_id, STEP_ENDED, index, ended_s, data)

    def _chain_step_event(
        self, session_id: str, kind: str, index: int, t_s: float, data: dict[str, Any]
    ) -> None:
        with self.transaction() as conn:
            append.append_event(
                conn,
                session_id,
                t_s=float(t_s),
                wall_at=utc_iso(self.wall_clock()),
                kind=kind,
                device=SESSION_DEVICE,
                step_index=index,
                data=data,
            )

    # -- reading ----------------------------------------------------------------------------

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of the one session whose id starts with ``id_or_prefix``."""
        with self._read() as reader:
            return reader.resolve(id_or_prefix)

    def list_sessions(self, *, limit: int | None = None) -> list[SessionSummary]:
        """Sessions, newest first."""
        with self._read() as reader:
            return reader.list_sessions(limit=limit)

    def session(self, session_id: str) -> SessionSummary:
        with self._read() as reader:
            return reader.session(reader.resolve(session_id))

    def steps(self, session_id: str) -> list[StepRecord]:
        with self._read() as reader:
            return reader.steps(reader.resolve(session_id))

    def iter_events(self, session_id: str, *, batch: int = 2000) -> Iterator[EventRecord]:
        """A session's events in seq order, read ``batch`` rows at a time."""
        sid = self.resolve(session_id)
        after = 0
        while True:
            with self._read() as reader:
                rows = reader.events(sid, after=after, limit=batch)
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].seq

    def events(self, session_id: str) -> list[EventRecord]:
        """A session's events in seq order."""
        return list(self.iter_events(session_id))

    def traces(
        self, session_id: str, *, device: str | None = None, channel: str | None = None
    ) -> list[TracePoint]:
        """Trace samples in time order, optionally of one device and/or channel."""
        with self._read() as reader:
            return reader.traces(reader.resolve(session_id), device=device, channel=channel)

    def iter_traces(self, session_id: str) -> Iterator[TracePoint]:
        """A session's trace samples in time order."""
        return iter(self.traces(session_id))

    def session_detail(self, session_id: str) -> SessionDetail:
        """Everything ``records show`` needs, in one call."""
        with self._read() as reader:
            return reader.session_detail(reader.resolve(session_id))

    def export_jsonl(self, session_id: str, fh: IO[str], *, include_traces: bool = True) -> int:
        """Write the session as JSON lines, read from one snapshot
        (:func:`~devicectl.records.export.export_jsonl`); returns lines."""
        with self._read(snapshot=True) as reader:
            return export_jsonl(reader, session_id, fh, include_traces=include_traces)

    # -- verifying ----------------------------------------------------------------------------

    def verify(self, session_id: str | None = None) -> list[VerifyResult]:
        """Check one session's record, or every session's (oldest first).

        The hash chain of its events, then its session and step rows against the
        chained events that state them, and its trace rows against the chained
        ``trace_block`` digests (:func:`~devicectl.records.verify.verify_session`),
        all read from one snapshot.
        """
        if session_id is not None:
            ids = [self.resolve(session_id)]
        else:
            ids = [s.id for s in reversed(self.list_sessions())]
        results = []
        for sid in ids:
            with self._read(snapshot=True) as reader:
                results.append(verify_session(reader, sid))
        return results


__all__ = [
    "DEFAULT_DB_PATH",
    "ENV_VAR",
    "FINAL_OUTCOMES",
    "SESSION_OUTCOMES",
    "RecordStore",
    "describe_url",
    "resolve_url",
]
