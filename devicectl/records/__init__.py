"""The durable, tamper-evident record of sessions: SQLite by default, PostgreSQL shared.

- :class:`RecordStore` (``store.py``): the facade; open/migrate, sessions,
  steps, reading, export, verify. Use it from any thread but the control loop's.
  Its work is split by job: ``engine.py`` (URL, engine, dialect setup,
  migrations, transactions), ``append.py`` (writes: the one path that appends
  to the hash chain), ``queries.py`` (reads).
- :class:`RecordWriter` (``writer.py``): what the control loop calls; a thread
  commits its rows once per tick, through ``append.py``.
- ``models.py``: one row type per table and its one conversion to and from the
  table and the export, and :class:`RecordSource`, what verify and export read
  (a store, a snapshot of one, or an export: :class:`JsonlRecord`).
- ``chain.py`` (canonical JSON, sha256 chain, trace-block digests; the canonical
  form is in ``docs/records.md``), ``verify.py`` (what was edited,
  deleted or reordered, and which session or step row disagrees with the chain),
  ``summary.py`` (the chained events that state the session and step rows),
  ``schema.py`` (tables), ``migrate.py`` + ``migrations/`` (alembic),
  ``export.py`` (JSON lines out and back in).
"""

from __future__ import annotations

from devicectl.records.export import JsonlRecord
from devicectl.records.models import (
    EventRecord,
    RecordSource,
    SessionDetail,
    SessionSummary,
    StepRecord,
    TraceChannel,
    TracePoint,
)
from devicectl.records.store import DEFAULT_DB_PATH, ENV_VAR, RecordStore, resolve_url
from devicectl.records.verify import Problem, ProblemKind, VerifyResult
from devicectl.records.writer import RecordWriter

__all__ = [
    "DEFAULT_DB_PATH",
    "ENV_VAR",
    "EventRecord",
    "JsonlRecord",
    "Problem",
    "ProblemKind",
    "RecordSource",
    "RecordStore",
    "RecordWriter",
    "SessionDetail",
    "SessionSummary",
    "StepRecord",
    "TraceChannel",
    "TracePoint",
    "VerifyResult",
    "resolve_url",
]
