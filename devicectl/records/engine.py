"""Opening a record store: its URL, the engine and dialect setup, migrations, transactions.

Where the record goes (:func:`resolve_url`):
- ``None``: ``$DEVICECTL_DB`` if set, else ``./devicectl-records.sqlite``;
- a path (``str`` without ``://`` or :class:`~pathlib.Path`): that SQLite file;
- ``sqlite:///path`` or ``postgresql://user:pw@host/db`` (also ``postgres://``;
  both mean the ``postgresql+psycopg`` driver) or any SQLAlchemy URL for them.

Guarantees:
- :func:`open_engine` migrates the schema to head (alembic) and proves the
  store writable (it takes the write lock once), or raises one
  :class:`~devicectl.errors.RecordError` naming the database: unreachable host
  (within ``connect_timeout_s``), locked (after ``busy_timeout_s``), read-only,
  missing directory. ``readonly=True`` opens for reading only, creates nothing,
  and refuses a store whose schema is not at this version's head.
- Every SQLite connection runs ``journal_mode=WAL`` (writable stores) and
  ``synchronous=FULL``, ``foreign_keys=ON``; write transactions start with
  ``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout instead of
  failing on a lock upgrade.
- :func:`transaction` turns any database error into RecordError naming the store.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from devicectl.errors import RecordError
from devicectl.records import migrate

ENV_VAR = "DEVICECTL_DB"
DEFAULT_DB_PATH = Path("devicectl-records.sqlite")


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


def reason(exc: BaseException) -> str:
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


def open_engine(
    url: URL, *, readonly: bool, busy_timeout_s: float, connect_timeout_s: float
) -> Engine:
    """An engine on the store at ``url``, its schema migrated (or checked, ``readonly``)."""
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
            raise RecordError(db, f"cannot use this URL: {reason(exc)}") from exc
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
        raise RecordError(db, reason(exc)) from exc
    except RecordError:
        engine.dispose()
        raise
    return engine


@contextmanager
def transaction(
    engine: Engine, db: str, *, write: bool = True, snapshot: bool = False
) -> Iterator[Connection]:
    """One transaction; any database error leaves as RecordError naming the store ``db``.

    ``snapshot``: every statement sees the same committed state (PostgreSQL
    REPEATABLE READ; a SQLite read transaction always does), so a check of a
    session that is being written sees its events and head from one moment.
    """
    try:
        with engine.connect() as conn:
            if write:
                conn.execution_options(records_write=True)
            if snapshot and conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn
    except SQLAlchemyError as exc:
        raise RecordError(db, reason(exc)) from exc
