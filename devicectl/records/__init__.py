"""The durable, tamper-evident record of sessions: SQLite by default, PostgreSQL shared.

- :class:`RecordStore` (``store.py``): open/migrate, sessions, steps, reading,
  export, verify. Use it from any thread but the control loop's.
- :class:`RecordWriter` (``writer.py``): what the control loop calls; a thread
  commits its rows once per tick.
- ``chain.py`` (canonical JSON, sha256 chain, trace-block digests; the canonical
  form is in ``docs/records.md``), ``verify.py`` (what was edited,
  deleted or reordered, and which session or step row disagrees with the chain),
  ``summary.py`` (the chained events that state the session and step rows),
  ``schema.py`` (tables), ``migrate.py`` + ``migrations/`` (alembic),
  ``export.py`` (JSON lines), ``models.py`` (what reads return).
"""

from __future__ import annotations

from devicectl.records.models import (
    EventRecord,
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
    "Problem",
    "ProblemKind",
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
