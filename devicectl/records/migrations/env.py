"""Alembic environment for the record store: always run from code, on a given connection.

:func:`devicectl.records.migrate.upgrade` builds the Config in code and puts an
open connection, already inside a transaction, in ``config.attributes["connection"]``;
the migrations run in that transaction and commit with it. There is no
``alembic.ini`` and no offline (SQL script) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from devicectl.records.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "devicectl record migrations run only through devicectl.records.migrate "
        "(config.attributes['connection'] must hold an open connection)"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things: later revisions copy-and-move
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
