"""Schema versions: alembic, run from code on every open.

Guarantees:
- :func:`upgrade` brings any store (new, empty or older) to :data:`SCHEMA_REVISION`
  in one transaction, on SQLite and PostgreSQL alike; a store already there is
  left untouched and alembic is not even imported (it costs most of a second).
  Several processes opening one new PostgreSQL store at once are serialised by a
  transaction-scoped advisory lock; on SQLite the write transaction
  (``BEGIN IMMEDIATE``) does the same.
- It ends with a no-op write, so a read-only store fails here, at open.
- No ``alembic.ini`` is read: the Config is built here, with the scripts found
  as package data (``devicectl/records/migrations``).

To write a new revision during development::

    from alembic import command
    from devicectl.records.migrate import alembic_config
    command.revision(alembic_config(), message="...", rev_id="0002")

then edit the file it creates in ``migrations/versions`` (name it
``rev_0002_...py``) and set :data:`SCHEMA_REVISION` to it (a test checks that it
is alembic's head).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from devicectl.errors import RecordError

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA_REVISION = "0001"
"""The head revision in ``migrations/versions``: what this devicectl reads and writes."""

SCRIPT_LOCATION = "devicectl.records:migrations"
VERSION_TABLE = "alembic_version"

# pg_advisory_xact_lock key: "devicectl" squeezed into a bigint, any fixed number works.
_PG_LOCK_KEY = 0x64657669636563


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config for the record store; ``connection`` is what env.py migrates."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """alembic's head, read from the scripts (tests check it is SCHEMA_REVISION)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise RuntimeError("no alembic revisions in devicectl.records.migrations")
    return head


def current_revision(connection: Connection) -> str | None:
    """The store's revision, None for a store with no devicectl schema."""
    if not sa.inspect(connection).has_table(VERSION_TABLE):
        return None
    version = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))
    return connection.execute(sa.select(version.c.version_num)).scalar()


def upgrade(engine: Engine) -> str:
    """Migrate to SCHEMA_REVISION in one transaction; returns the revision now in place."""
    with engine.connect() as conn:
        conn.execution_options(records_write=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            current = current_revision(conn)
            if current != SCHEMA_REVISION:
                _alembic_upgrade(conn, current)
            # Prove the store writable now, not at the first tick: a harmless write.
            conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = version_num"))
    return SCHEMA_REVISION


def _alembic_upgrade(conn: Connection, current: str | None) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    db = conn.engine.url.render_as_string(hide_password=True)
    config = alembic_config(conn)
    if current is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except CommandError:
            raise RecordError(
                db,
                f"schema revision {current} is newer than this devicectl knows "
                f"({SCHEMA_REVISION}): upgrade devicectl",
            ) from None
    try:
        command.upgrade(config, SCHEMA_REVISION)
    except CommandError as exc:
        raise RecordError(db, f"schema migration failed: {exc}") from exc
