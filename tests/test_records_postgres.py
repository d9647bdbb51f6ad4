"""The same record store on a real PostgreSQL (pgserver), shared by several chairs.

Skipped only when pgserver cannot start a server here (the reason is shown).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from devicectl.records import RecordStore, migrate
from devicectl.records.export import verify_jsonl
from devicectl.records.schema import metadata
from tests.records_scenario import start_child, write_session

# pgserver finds its runtime directory through platformdirs, which warns without XDG_RUNTIME_DIR.
pytestmark = pytest.mark.filterwarnings("ignore:XDG_RUNTIME_DIR")


@pytest.fixture(scope="module")
def pg_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        from pgserver import get_server  # type: ignore[attr-defined]

        server: Any = get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    except Exception as exc:  # noqa: BLE001 - any failure to start means: cannot test here
        pytest.skip(f"pgserver cannot start PostgreSQL here: {exc!r}")
    with server:
        yield str(server.get_uri())


_created: set[str] = set()


def fresh_database(pg_uri: str, name: str) -> str:
    """A new, empty database on the server; returns its ``postgresql://`` URL."""
    import psycopg

    if name not in _created:
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        _created.add(name)
    return make_url(pg_uri).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def pg_url(pg_uri: str) -> str:
    return fresh_database(pg_uri, "records")


@pytest.fixture
def store(pg_url: str) -> Iterator[RecordStore]:
    with RecordStore.open(pg_url) as s:
        yield s


def _columns(engine: sa.engine.Engine) -> dict[str, list[str]]:
    inspector = sa.inspect(engine)
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in sorted(metadata.tables)}


def test_same_schema_through_alembic_as_on_sqlite(store: RecordStore, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert store.engine.dialect.name == "postgresql"
    assert store.engine.dialect.driver == "psycopg"
    with store.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.SCHEMA_REVISION
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    with RecordStore.open(tmp_path / "same.sqlite") as lite:
        assert _columns(lite.engine) == _columns(store.engine)


def test_env_var_points_at_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICECTL_DB", pg_url)
    with RecordStore.open() as s:
        assert s.engine.dialect.name == "postgresql"
        assert "postgresql+psycopg://" in s.db


def test_chain_verifies_and_tampering_is_named(store: RecordStore) -> None:
    sid = write_session(store, ticks=30, per_tick=4)
    [result] = store.verify(sid)
    assert result.ok, result.describe()
    assert len(store.session_detail(sid).alarms) == 1  # tick 25
    buf = io.StringIO()
    store.export_jsonl(sid, buf)
    # Same hashes as the rows, and the same verify code: the same verdict.
    assert verify_jsonl(buf.getvalue().splitlines()) == result

    with store.engine.begin() as conn:
        where = f"session_id = '{sid}'"
        conn.exec_driver_sql(f"UPDATE events SET data = '{{}}' WHERE {where} AND seq = 3")
        conn.exec_driver_sql(f"DELETE FROM events WHERE {where} AND seq = 10")
        conn.exec_driver_sql(f"UPDATE events SET seq = -1 WHERE {where} AND seq = 50")
        conn.exec_driver_sql(f"UPDATE events SET seq = 50 WHERE {where} AND seq = 51")
        conn.exec_driver_sql(f"UPDATE events SET seq = 51 WHERE {where} AND seq = -1")
    [result] = store.verify(sid)
    assert (result.edited, result.missing, result.out_of_order) == ((3,), (10,), (50, 51))


def test_edited_deleted_and_inserted_trace_rows_are_named_on_postgres(store: RecordStore) -> None:
    """The trace rows come back from PostgreSQL as the digests chained them, and a
    changed row is named by its block here too."""
    for statement, words in (
        (
            "UPDATE traces SET value = value + 3 WHERE session_id = '{sid}'"
            " AND t_s > 0.5 AND t_s < 0.56",
            "rf skin_c: row(s) edited",
        ),
        (
            "DELETE FROM traces WHERE session_id = '{sid}' AND t_s > 0.9 AND t_s < 0.96",
            "1 row(s) deleted",
        ),
        (
            "INSERT INTO traces (session_id, t_s, device, step_index, channel, value) "
            "VALUES ('{sid}', 0.2, 'rf', 1, 'skin_c', 45.0)",
            "1 row(s) inserted",
        ),
    ):
        sid = write_session(store, ticks=30, per_tick=2)
        [result] = store.verify(sid)
        assert result.ok and (result.trace_blocks, result.trace_rows) == (1, 30), result.describe()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(statement.format(sid=sid))
        text = store.verify(sid)[0].describe()
        assert "trace block seq" in text and "(t 0.05-1.5 s)" in text, text
        assert words in text, text


def test_an_edited_summary_row_is_named_on_postgres(store: RecordStore) -> None:
    """The session and step rows are checked against their chained events here too."""
    sid = write_session(store, ticks=3, per_tick=2)
    assert store.verify(sid)[0].ok
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE sessions SET unattended = true WHERE id = '{sid}'")
        conn.exec_driver_sql(f"UPDATE steps SET outcome = 'fault' WHERE session_id = '{sid}'")
    text = store.verify(sid)[0].describe()
    assert "session unattended is True but the chained session_started event" in text, text
    assert "step 1 outcome is 'fault' but the chained step_ended event" in text, text


def test_three_controllers_write_sessions_at_once(pg_uri: str) -> None:
    """Three chair processes open one new store together and write 3 x 2000 events."""
    url = fresh_database(pg_uri, "clinic")  # not migrated yet: the three race to migrate it
    ticks, per_tick = 200, 10
    children = [start_child(url, ticks=ticks, per_tick=per_tick, sleep_s=0.002) for _ in range(3)]
    sids = []
    for child in children:  # each has migrated (or waited for another) and begun its session
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("session "), child.stderr.read() if child.stderr else ""
        sids.append(first.split()[1])
    with RecordStore.open(url) as store:
        live_checks, deadline = 0, time.monotonic() + 120
        while any(child.poll() is None for child in children):
            assert time.monotonic() < deadline, "the chair processes did not finish"
            # sessions being written verify too: events and head read from one snapshot
            results = store.verify()
            assert all(r.ok for r in results), [r.describe() for r in results]
            live_checks += 1
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            lines = out.splitlines()
            assert lines[-1] == "done"
            assert max(int(x.split()[1]) for x in lines if x.startswith("committed")) > ticks
        assert live_checks >= 1

        summaries = {s.id: s for s in store.list_sessions()}
        assert set(summaries) == set(sids)
        for sid in sids:
            assert summaries[sid].outcome == "complete"
            # the ticks' events between session_started + step_started and
            # step_ended + trace_block + session_ended, which chain the session and
            # step rows and the step's 10 s of trace rows
            assert summaries[sid].events == ticks * per_tick + 5
            stored = store.events(sid)
            assert [e.seq for e in stored] == list(range(1, ticks * per_tick + 6))
            assert [e.kind for e in stored[:2] + stored[-3:]] == [
                "session_started",
                "step_started",
                "step_ended",
                "trace_block",
                "session_ended",
            ]
            assert stored[-2].data["rows"] == ticks
            events = stored[2:-3]
            assert {e.data["tick"] for e in events} == set(range(1, ticks + 1))
            assert len(store.traces(sid, channel="skin_c")) == ticks
        results = store.verify()
        assert len(results) == 3
        assert all(r.ok for r in results), [r.describe() for r in results]
        assert all(r.trace_rows == ticks for r in results)  # interleaved rows, each covered
        with store.engine.connect() as conn:
            total = conn.exec_driver_sql("SELECT count(*) FROM events").scalar()
        assert total == 3 * (ticks * per_tick + 5)
