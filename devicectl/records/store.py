"""The record store: one SQLite file or a shared PostgreSQL database, same schema and chain.

Where the record goes (:func:`resolve_url`):
- ``None``: ``$DEVICECTL_DB`` if set, else ``./devicectl-records.sqlite``;
- a path (``str`` without ``://`` or :class:`~pathlib.Path`): that SQLite file;
- ``sqlite:///path`` or ``postgresql://user:pw@host/db`` (also ``postgres://``;
  both mean the ``postgresql+psycopg`` driver) or any SQLAlchemy URL for them.

Guarantees:
- :meth:`RecordStore.open` migrates the schema to head (alembic) and proves the
  store writable (it takes the write lock once), or raises one
  :class:`~devicectl.errors.RecordError` naming the database: unreachable host
  (within ``connect_timeout_s``), locked (after ``busy_timeout_s``), read-only,
  missing directory. ``readonly=True`` opens for reading only, creates nothing,
  and refuses a store whose schema is not at this version's head.
- Every SQLite connection runs ``journal_mode=WAL`` (writable stores) and
  ``synchronous=FULL``, ``foreign_keys=ON``; write transactions start with
  ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of
  failing on a lock upgrade.
- Every method either does all it says in one transaction or raises
  RecordError and changes nothing. Methods are thread-safe (one engine, a pool
  of connections); the loop thread must not call them: use
  :class:`~devicectl.records.writer.RecordWriter`.
- Read methods accept a session id or a unique prefix of one.
- The session and step rows are never written without the chained event that
  states them, in the same transaction (:mod:`devicectl.records.summary`):
  ``begin_session`` chains ``session_started`` (seq 1), ``end_session``
  ``session_ended``, and step rows follow ``step_started``/``step_ended`` events.
  So :meth:`RecordStore.verify` can name an edited outcome, operator or step.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from devicectl.errors import RecordError
from devicectl.records import migrate
from devicectl.records.chain import (
    CHAIN_SCHEME,
    TRACE_SCHEME,
    canonical_json,
    event_hash,
    genesis_hash,
)
from devicectl.records.models import (
    EventRecord,
    SessionDetail,
    SessionSummary,
    StepRecord,
    TraceChannel,
    TracePoint,
)
from devicectl.records.schema import SESSION_OUTCOMES, events, sessions, steps, traces
from devicectl.records.summary import (
    SESSION_DEVICE,
    SESSION_ENDED,
    SESSION_STARTED,
    STEP_ENDED,
    STEP_STARTED,
    SessionRow,
    StepBegin,
    StepEnd,
    StepRow,
    canonical_or_raw,
    session_ended_data,
    session_started_data,
    step_change,
)
from devicectl.records.verify import ChainRow, TraceRow, VerifyResult, verify_record
from devicectl.records.wall import WallClock, system_wall_clock, utc_iso

ENV_VAR = "DEVICECTL_DB"
DEFAULT_DB_PATH = Path("devicectl-records.sqlite")
FINAL_OUTCOMES = ("complete", "aborted", "fault", "interrupted")


def _software_version() -> str:
    try:
        return importlib.metadata.version("devicectl")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "unknown"


def resolve_url(url_or_path: str | os.PathLike[str] | None = None) -> URL:
    """The SQLAlchemy URL a ``--db`` value means (see the module doc)."""
    if url_or_path is None:
        url_or_path = os.environ.get(ENV_VAR) or DEFAULT_DB_PATH
    if isinstance(url_or_path, str) and "://" in url_or_path:
        try:
            url = make_url(url_or_path)
        except ArgumentError as exc:
            raise RecordError(url_or_path.split("@")[-1], f"not a database URL: {exc}") from exc
        backend, _, driver = url.drivername.partition("+")
        if backend in ("postgresql", "postgres"):
            # psycopg 3 is the driver devicectl ships with; "postgresql://" means it.
            url = url.set(drivername=f"postgresql+{driver or 'psycopg'}")
        elif backend != "sqlite":
            raise RecordError(
                url.render_as_string(hide_password=True),
                "only sqlite:// and postgresql:// record stores are supported",
            )
        return url
    return URL.create("sqlite", database=str(Path(url_or_path).expanduser()))


def describe_url(url: URL) -> str:
    """How errors and the CLI name a store: a SQLite file by its path (or ``file:`` URI),
    anything else by its URL with the password hidden."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


def _reason(exc: BaseException) -> str:
    """One line for an error: the driver's message when there is one."""
    orig = getattr(exc, "orig", None)
    text = str(orig) if orig is not None else str(exc)
    text = " ".join(text.split())
    if "(Background on this error" in text:
        text = text.split("(Background on this error")[0].strip()
    return text[:400] or type(exc).__name__


def _install_sqlite_listeners(engine: Engine, *, readonly: bool) -> None:
    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below own transactions (pysqlite's own
        # implicit BEGIN does not cover DDL and cannot take the write lock early).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            if readonly:
                cursor.execute("PRAGMA query_only=ON")
            else:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = bool(conn.get_execution_options().get("records_write"))
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _pid_alive(pid: int) -> bool:
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


def _json_or_none(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


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
        url = resolve_url(url_or_path)
        db = describe_url(url)
        if url.get_backend_name() == "sqlite":
            path = url.database or ""
            in_memory = path in ("", ":memory:") or path.startswith("file::memory:")
            is_uri = bool(url.query.get("uri"))
            if readonly and not in_memory and not is_uri and not Path(path).exists():
                raise RecordError(db, "no such record store (file does not exist)")
            if not in_memory and not is_uri and not Path(path).parent.is_dir():
                raise RecordError(db, f"directory {Path(path).parent} does not exist")
            engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_s})
            _install_sqlite_listeners(engine, readonly=readonly)
        else:
            try:
                engine = sa.create_engine(
                    url,
                    pool_pre_ping=True,
                    connect_args={
                        # libpq treats anything under 2 s as 2 s
                        "connect_timeout": max(2, math.ceil(connect_timeout_s)),
                        "application_name": "devicectl",
                    },
                )
            except (NoSuchModuleError, ArgumentError, ImportError) as exc:
                raise RecordError(db, f"cannot use this URL: {_reason(exc)}") from exc
        store = cls(engine, wall_clock=wall_clock)
        try:
            if readonly:
                with engine.connect() as conn:
                    current = migrate.current_revision(conn)
                head = migrate.SCHEMA_REVISION
                if current != head:
                    found = "no devicectl schema" if current is None else f"revision {current}"
                    raise RecordError(db, f"{found}, this devicectl needs revision {head}")
            else:
                migrate.upgrade(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise RecordError(db, _reason(exc)) from exc
        except RecordError:
            engine.dispose()
            raise
        return store

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
        """One transaction; any database error leaves as RecordError naming the store.

        ``snapshot``: every statement sees the same committed state (PostgreSQL
        REPEATABLE READ; a SQLite read transaction always does), so a check of a
        session that is being written sees its events and head from one moment.
        """
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(records_write=True)
                if snapshot and conn.dialect.name == "postgresql":
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise RecordError(self.db, _reason(exc)) from exc

    def error(self, exc: BaseException) -> RecordError:
        """The RecordError for a failure met while using this store."""
        return RecordError(self.db, _reason(exc))

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
        started_at = utc_iso(self.wall_clock())
        row: dict[str, Any] = {
            "id": sid,
            "protocol_name": protocol_name,
            "protocol_sha256": protocol_sha256,
            "operator_id": operator_id,
            "unattended": bool(unattended),
            "station": self.station,
            "owner_pid": os.getpid(),
            "software_version": _software_version(),
            "started_at": started_at,
            "ended_at": None,
            "outcome": "running",
            "chain": CHAIN_SCHEME,
            "head_seq": 0,
            "head_hash": genesis_hash(sid),
        }
        with self.transaction() as conn:
            conn.execute(sessions.insert().values(**row))
            append_chained_event(
                conn,
                sid,
                t_s=float(t_s),
                wall_at=started_at,
                kind=SESSION_STARTED,
                device=SESSION_DEVICE,
                step_index=None,
                # trace_scheme: this record chains its traces in trace_block events.
                data={**session_started_data(row), "trace_scheme": TRACE_SCHEME},
            )
        return sid

    def end_session(self, session_id: str, outcome: str) -> None:
        """Close a running session with a final outcome (complete, aborted, fault, interrupted).

        The same transaction chains its ``session_ended`` event (outcome and end
        time, at the loop time of its last event), so the outcome is verifiable.
        Close its :class:`RecordWriter` first, so every event is in before the end
        (a writer still open would collide with that event and fail).
        """
        if outcome not in FINAL_OUTCOMES:
            raise ValueError(f"outcome must be one of {FINAL_OUTCOMES}, not {outcome!r}")
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(sessions.c.outcome, sessions.c.head_seq)
                .where(sessions.c.id == session_id)
                .with_for_update()
            ).first()
            if row is None or row.outcome != "running":
                what = "no such session" if row is None else f"it is already {row.outcome}"
                raise RecordError(self.db, f"cannot end session {session_id}: {what}")
            last_t_s = conn.execute(
                sa.select(events.c.t_s).where(
                    events.c.session_id == session_id, events.c.seq == row.head_seq
                )
            ).scalar()
            ended_at = utc_iso(self.wall_clock())
            append_chained_event(
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

    def mark_interrupted(self, *, all_stations: bool = False) -> list[str]:
        """Mark dead sessions ``interrupted``; returns their ids. Call it on start-up.

        A session is dead when it is still ``running`` but the process that began
        it (same host name, ``owner_pid``) is gone. Sessions of other hosts are
        left alone (their chair may be live) unless ``all_stations``; then every
        running session not owned by a live process of this host is marked.
        ``ended_at`` becomes the wall time of its last recorded event (or its start).
        """
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(sessions.c.id, sessions.c.station, sessions.c.owner_pid).where(
                    sessions.c.outcome == "running"
                )
            ).all()
            dead = [
                r.id
                for r in rows
                if (r.station == self.station and not _pid_alive(r.owner_pid))
                or (all_stations and r.station != self.station)
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

    def head(self, session_id: str) -> tuple[int, str, str]:
        """``(head_seq, head_hash, outcome)`` of a session: where its chain goes on."""
        with self.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(
                    sessions.c.head_seq, sessions.c.head_hash, sessions.c.outcome, sessions.c.chain
                ).where(sessions.c.id == session_id)
            ).first()
        if row is None:
            raise RecordError(self.db, f"no session {session_id}")
        if row.chain != CHAIN_SCHEME:
            raise RecordError(self.db, f"session {session_id} uses chain {row.chain!r}")
        return int(row.head_seq), str(row.head_hash), str(row.outcome)

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
        """One chained step event and the step row written from it, in one transaction."""
        with self.transaction() as conn:
            append_chained_event(
                conn,
                session_id,
                t_s=float(t_s),
                wall_at=utc_iso(self.wall_clock()),
                kind=kind,
                device=SESSION_DEVICE,
                step_index=index,
                data=data,
                write_step=True,
            )

    # -- reading ----------------------------------------------------------------------------

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of the one session whose id starts with ``id_or_prefix``."""
        prefix = id_or_prefix.strip().lower()
        if not prefix:
            raise RecordError(self.db, "empty session id")
        with self.transaction(write=False) as conn:
            ids = (
                conn.execute(
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

    @staticmethod
    def _summary(row: Any) -> SessionSummary:
        return SessionSummary(
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

    def list_sessions(self, *, limit: int | None = None) -> list[SessionSummary]:
        """Sessions, newest first."""
        query = sa.select(sessions).order_by(sessions.c.started_at.desc(), sessions.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction(write=False) as conn:
            return [self._summary(r) for r in conn.execute(query)]

    def session(self, session_id: str) -> SessionSummary:
        sid = self.resolve(session_id)
        with self.transaction(write=False) as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == sid)).one()
        return self._summary(row)

    def steps(self, session_id: str) -> list[StepRecord]:
        sid = self.resolve(session_id)
        with self.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(steps).where(steps.c.session_id == sid).order_by(steps.c.step_index)
            ).all()
        return [
            StepRecord(
                index=r.step_index,
                kind=r.kind,
                title=r.title,
                outcome=r.outcome,
                started_s=r.started_s,
                ended_s=r.ended_s,
                result=_json_or_none(r.result),
            )
            for r in rows
        ]

    @staticmethod
    def _event(row: Any) -> EventRecord:
        return EventRecord(
            seq=row.seq,
            t_s=row.t_s,
            wall_at=row.wall_at,
            kind=row.kind,
            device=row.device,
            step_index=row.step_index,
            operator_id=row.operator_id,
            data=_json_or_none(row.data),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )

    def iter_events(self, session_id: str, *, batch: int = 2000) -> Iterator[EventRecord]:
        """A session's events in seq order, read ``batch`` rows at a time."""
        sid = self.resolve(session_id)
        after = 0
        while True:
            with self.transaction(write=False) as conn:
                rows = conn.execute(
                    sa.select(events)
                    .where(events.c.session_id == sid, events.c.seq > after)
                    .order_by(events.c.seq)
                    .limit(batch)
                ).all()
            for row in rows:
                yield self._event(row)
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
        sid = self.resolve(session_id)
        query = sa.select(traces).where(traces.c.session_id == sid)
        if device is not None:
            query = query.where(traces.c.device == device)
        if channel is not None:
            query = query.where(traces.c.channel == channel)
        query = query.order_by(traces.c.t_s, traces.c.id)
        with self.transaction(write=False) as conn:
            return [
                TracePoint(r.t_s, r.device, r.step_index, r.channel, r.value)
                for r in conn.execute(query)
            ]

    def session_detail(self, session_id: str) -> SessionDetail:
        """Everything ``records show`` needs, in one call."""
        sid = self.resolve(session_id)
        summary = self.session(sid)
        step_records = tuple(self.steps(sid))
        with self.transaction(write=False) as conn:
            counts = {
                str(kind): int(n)
                for kind, n in conn.execute(
                    sa.select(events.c.kind, sa.func.count())
                    .where(events.c.session_id == sid)
                    .group_by(events.c.kind)
                    .order_by(events.c.kind)
                )
            }
            notable = conn.execute(
                sa.select(events)
                .where(
                    events.c.session_id == sid,
                    sa.or_(events.c.kind == "alarm", events.c.operator_id.is_not(None)),
                )
                .order_by(events.c.seq)
            ).all()
            channels = conn.execute(
                sa.select(
                    traces.c.device,
                    traces.c.channel,
                    sa.func.count(),
                    sa.func.min(traces.c.t_s),
                    sa.func.max(traces.c.t_s),
                )
                .where(traces.c.session_id == sid)
                .group_by(traces.c.device, traces.c.channel)
                .order_by(traces.c.device, traces.c.channel)
            ).all()
        records = [self._event(r) for r in notable]
        return SessionDetail(
            session=summary,
            steps=step_records,
            event_counts=counts,
            alarms=tuple(e for e in records if e.kind == "alarm"),
            operator_actions=tuple(e for e in records if e.operator_id is not None),
            traces=tuple(
                TraceChannel(d, c, int(n), float(a), float(b)) for d, c, n, a, b in channels
            ),
        )

    def export_jsonl(self, session_id: str, fh: IO[str], *, include_traces: bool = True) -> int:
        """Write the session as JSON lines (see :mod:`devicectl.records.export`); returns lines."""
        from devicectl.records.export import export_jsonl

        return export_jsonl(self, session_id, fh, include_traces=include_traces)

    # -- verifying ----------------------------------------------------------------------------

    def verify(self, session_id: str | None = None) -> list[VerifyResult]:
        """Check one session's record, or every session's (oldest first).

        The hash chain of its events, then its session and step rows against the
        chained events that state them, and its trace rows against the chained
        ``trace_block`` digests (:func:`~devicectl.records.verify.verify_record`),
        all read from one snapshot.
        """
        if session_id is not None:
            ids = [self.resolve(session_id)]
        else:
            ids = [s.id for s in reversed(self.list_sessions())]
        results = []
        for sid in ids:
            with self.transaction(write=False, snapshot=True) as conn:
                head = conn.execute(sa.select(sessions).where(sessions.c.id == sid)).one()
                step_rows = [
                    StepRow(
                        index=r.step_index,
                        kind=r.kind,
                        title=r.title,
                        outcome=r.outcome,
                        started_s=r.started_s,
                        ended_s=r.ended_s,
                        result=canonical_or_raw(r.result),
                    )
                    for r in conn.execute(
                        sa.select(steps)
                        .where(steps.c.session_id == sid)
                        .order_by(steps.c.step_index)
                    )
                ]
                rows = [
                    ChainRow(
                        seq=r.seq,
                        t_s=r.t_s,
                        wall_at=r.wall_at,
                        kind=r.kind,
                        device=r.device,
                        step_index=r.step_index,
                        operator_id=r.operator_id,
                        data=r.data,
                        prev_hash=r.prev_hash,
                        hash=r.hash,
                    )
                    for r in conn.execute(
                        sa.select(events).where(events.c.session_id == sid).order_by(events.c.seq)
                    )
                ]
                trace_rows = [
                    TraceRow(r.t_s, r.device, r.channel, r.step_index, r.value)
                    for r in conn.execute(
                        sa.select(
                            traces.c.t_s,
                            traces.c.device,
                            traces.c.channel,
                            traces.c.step_index,
                            traces.c.value,
                        ).where(traces.c.session_id == sid)
                    )
                ]
            results.append(
                verify_record(
                    sid,
                    rows,
                    head_seq=head.head_seq,
                    head_hash=head.head_hash,
                    scheme=head.chain,
                    session=SessionRow(
                        protocol_name=head.protocol_name,
                        protocol_sha256=head.protocol_sha256,
                        operator_id=head.operator_id,
                        unattended=bool(head.unattended),
                        station=head.station,
                        software_version=head.software_version,
                        started_at=head.started_at,
                        ended_at=head.ended_at,
                        outcome=head.outcome,
                    ),
                    steps=step_rows,
                    traces=trace_rows,
                )
            )
        return results


# -- chained writes, shared by the store and the writer thread -----------------------------------


def append_chained_event(
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
    write_step: bool = False,
) -> None:
    """Append one event to a session's chain inside ``conn``'s transaction, and move its head.

    For the store's own events (session start and end, steps outside a writer):
    it reads the head under the write lock (SQLite ``BEGIN IMMEDIATE``,
    PostgreSQL ``FOR UPDATE``), so it must not race a RecordWriter on the same
    session, whose seq lives in memory. With ``write_step`` the step row the event
    states is written too (:func:`~devicectl.records.summary.step_change`).
    """
    head = conn.execute(
        sa.select(sessions.c.head_seq, sessions.c.head_hash)
        .where(sessions.c.id == session_id)
        .with_for_update()
    ).first()
    if head is None:
        raise RecordError(describe_url(conn.engine.url), f"no session {session_id}")
    data_json = canonical_json(data)
    seq = int(head.head_seq) + 1
    digest = event_hash(
        head.head_hash, seq, t_s, wall_at, kind, device, step_index, operator_id, data_json
    )
    conn.execute(
        events.insert().values(
            session_id=session_id,
            seq=seq,
            t_s=t_s,
            wall_at=wall_at,
            kind=kind,
            device=device,
            step_index=step_index,
            operator_id=operator_id,
            data=data_json,
            prev_hash=head.head_hash,
            hash=digest,
        )
    )
    conn.execute(
        sessions.update().where(sessions.c.id == session_id).values(head_seq=seq, head_hash=digest)
    )
    if write_step:
        write_step_change(conn, session_id, step_change(kind, device, json.loads(data_json), t_s))


def write_step_change(
    conn: Connection, session_id: str, change: StepBegin | StepEnd | None
) -> None:
    """Write the step row change a chained step event states (nothing for None)."""
    if isinstance(change, StepBegin):
        write_step_begin(conn, session_id, change.index, change.kind, change.title, change.t_s)
    elif isinstance(change, StepEnd):
        write_step_end(conn, session_id, change.index, change.outcome, change.t_s, change.result)


def write_step_begin(
    conn: Connection,
    session_id: str,
    index: int,
    kind: str,
    title: str,
    started_s: float | None,
) -> None:
    """A step's row after a ``step_started`` event (the rule of ``summary.fold_steps``)."""
    values = {
        "kind": kind,
        "title": title,
        "outcome": "running",
        "started_s": started_s,
        "ended_s": None,
    }
    done = conn.execute(
        steps.update()
        .where(steps.c.session_id == session_id, steps.c.step_index == index)
        .values(**values)
    )
    if done.rowcount == 0:
        conn.execute(steps.insert().values(session_id=session_id, step_index=index, **values))


def write_step_end(
    conn: Connection,
    session_id: str,
    index: int,
    outcome: str,
    ended_s: float | None,
    result: Any,
) -> None:
    """A step's row after a ``step_ended`` event (the rule of ``summary.fold_steps``)."""
    result_json = None if result is None else canonical_json(result)
    done = conn.execute(
        steps.update()
        .where(steps.c.session_id == session_id, steps.c.step_index == index)
        .values(outcome=outcome, ended_s=ended_s, result=result_json)
    )
    if done.rowcount == 0:  # ended without a recorded begin: keep what we know
        conn.execute(
            steps.insert().values(
                session_id=session_id,
                step_index=index,
                kind="unknown",
                title="",
                outcome=outcome,
                started_s=None,
                ended_s=ended_s,
                result=result_json,
            )
        )


__all__ = [
    "DEFAULT_DB_PATH",
    "ENV_VAR",
    "SESSION_OUTCOMES",
    "RecordStore",
    "describe_url",
    "resolve_url",
]
