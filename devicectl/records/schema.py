"""The record store's tables, in SQLAlchemy Core, identical on SQLite and PostgreSQL.

This module is the single description of the schema. Alembic revisions in
``migrations/versions`` create and change it; nothing else issues DDL.

Conventions, guaranteed for every backend:
- session ids are uuid4 hex strings (32 characters);
- wall times are ISO 8601 UTC text with microseconds (``2025-01-31T09:15:02.123456+00:00``),
  so they round-trip byte for byte and sort as text;
- clock times (``t_s``, ``started_s`` ...) are the loop clock's seconds as doubles;
- JSON payloads (``events.data``, ``steps.result``) are stored as canonical JSON
  text (see :mod:`devicectl.records.chain`), never a dialect JSON type, so the
  bytes that were hashed are the bytes that are stored on every backend;
- ``traces.value`` is NULL for a missing reading (SQLite cannot store NaN).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SESSION_OUTCOMES = ("running", "complete", "aborted", "fault", "interrupted")
"""Every value ``sessions.outcome`` may hold; only ``running`` sessions may change."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_outcomes_sql = ", ".join(f"'{o}'" for o in SESSION_OUTCOMES)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("protocol_name", Text, nullable=False),
    Column("protocol_sha256", String(64), nullable=True),
    Column("operator_id", Text, nullable=False),
    Column("unattended", Boolean(create_constraint=False), nullable=False, default=False),
    Column("station", Text, nullable=False),  # host name of the chair's controller
    Column("owner_pid", Integer, nullable=False),  # process that began it (interrupt check)
    Column("software_version", Text, nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40), nullable=True),
    Column("outcome", String(16), nullable=False, default="running"),
    Column("chain", String(16), nullable=False),  # hash-chain scheme, e.g. "sha256-v1"
    Column("head_seq", Integer, nullable=False, default=0),  # last committed event
    Column("head_hash", String(64), nullable=False),  # its hash (genesis when none)
    CheckConstraint(f"outcome IN ({_outcomes_sql})", name="outcome"),
)

steps = Table(
    "steps",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("step_index", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("started_s", Double, nullable=True),
    Column("ended_s", Double, nullable=True),
    Column("result", Text, nullable=True),  # canonical JSON
)

events = Table(
    "events",
    metadata,
    Column("session_id", String(32), ForeignKey("sessions.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # 1, 2, 3 ... per session
    Column("t_s", Double, nullable=False),
    Column("wall_at", String(40), nullable=False),
    Column("kind", Text, nullable=False),
    Column("device", Text, nullable=False),
    Column("step_index", Integer, nullable=True),
    Column("operator_id", Text, nullable=True),
    Column("data", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

traces = Table(
    "traces",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("session_id", String(32), ForeignKey("sessions.id"), nullable=False),
    Column("t_s", Double, nullable=False),
    Column("device", Text, nullable=False),
    Column("step_index", Integer, nullable=True),
    Column("channel", Text, nullable=False),
    Column("value", Double, nullable=True),
    Index("ix_traces_session_channel", "session_id", "device", "channel", "t_s"),
)
