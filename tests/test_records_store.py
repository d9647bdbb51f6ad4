"""The SQLite store: where it lives, its pragmas, the writer's behaviour, and bad input.

Bad input (locked, read-only, missing, unreachable) must give one RecordError
naming the database, never a traceback from a driver.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devicectl.clock import SimClock
from devicectl.control.events import Event
from devicectl.control.loop import ControlLoop
from devicectl.errors import DevicectlError, RecordError
from devicectl.records import RecordStore, RecordWriter, resolve_url
from devicectl.records.schema import sessions
from tests.records_scenario import OPERATOR, write_session


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "records.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[RecordStore]:
    with RecordStore.open(db) as s:
        yield s


# -- where the record goes ---------------------------------------------------------------------


def test_default_path_then_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEVICECTL_DB", raising=False)
    assert resolve_url(None).database == "devicectl-records.sqlite"
    RecordStore.open().close()
    assert (tmp_path / "devicectl-records.sqlite").exists()
    monkeypatch.setenv("DEVICECTL_DB", str(tmp_path / "chair2.sqlite"))
    RecordStore.open().close()
    assert (tmp_path / "chair2.sqlite").exists()


def test_urls_pick_the_psycopg_driver_and_refuse_others() -> None:
    assert resolve_url("postgresql://u:pw@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert resolve_url("sqlite:///x.sqlite").database == "x.sqlite"
    with pytest.raises(RecordError, match="only sqlite"):
        resolve_url("mysql://u:secret@h/db")


# -- SQLite settings ----------------------------------------------------------------------------


def test_every_connection_is_wal_and_synchronous_full(store: RecordStore) -> None:
    connections = [store.engine.connect() for _ in range(3)]  # three distinct pooled connections
    try:
        for conn in connections:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        for conn in connections:
            conn.close()
    # and the file itself is in WAL mode for any other reader
    with sqlite3.connect(store.url.database or "") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_schema_is_alembic_head_and_matches_schema_py(store: RecordStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from devicectl.records import migrate
    from devicectl.records.schema import metadata

    assert migrate.head_revision() == migrate.SCHEMA_REVISION
    with store.engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.SCHEMA_REVISION
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    RecordStore.open(store.url.database).close()  # opening again migrates nothing


def test_a_store_from_a_newer_devicectl_is_refused(store: RecordStore) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
    with pytest.raises(RecordError, match="0999 is newer"):
        RecordStore.open(store.url.database)
    with pytest.raises(RecordError, match="revision 0999"):
        RecordStore.open(store.url.database, readonly=True)


# -- the writer -----------------------------------------------------------------------------------


def test_at_most_one_commit_per_tick_and_every_tick_whole(store: RecordStore) -> None:
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    writer = RecordWriter(store, sid)
    for tick in range(1, 201):
        for i in range(5):
            writer.append_event(Event(tick * 0.05, "reading", "rf", {"tick": tick, "i": i}))
        writer.end_tick()
    assert writer.flush(timeout_s=30)
    assert writer.ticks_committed == 200
    assert 1 <= writer.commits <= 200
    writer.close("complete")
    events = store.events(sid)
    assert [e.kind for e in events[1:-1]] == ["reading"] * 1000  # between start and end
    assert len(events) == 1002 and store.verify(sid)[0].ok


def test_steps_begin_again_on_resume_and_end_with_a_result(store: RecordStore) -> None:
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    with RecordWriter(store, sid) as writer:
        writer.begin_step(1, "manual", "cleansing mask", 0.0)
        writer.end_step(1, "complete", 10.0)
        writer.begin_step(2, "rf", "RF zones", 10.0)
        writer.end_step(2, "fault", 20.0, {"zones_done": 1})
        writer.end_tick()
        writer.begin_step(2, "rf", "RF zones", 30.0)  # resumed after acknowledgement
        writer.end_step(2, "complete", 40.0, {"zones_done": 3})
    steps = store.steps(sid)
    assert [(s.index, s.outcome, s.started_s, s.ended_s) for s in steps] == [
        (1, "complete", 0.0, 10.0),
        (2, "complete", 30.0, 40.0),
    ]
    assert steps[1].result == {"zones_done": 3}


def test_closed_writer_refuses_more_and_ended_session_refuses_a_writer(store: RecordStore) -> None:
    sid = write_session(store, ticks=2, per_tick=2)
    with pytest.raises(RecordError, match="complete, not running"):
        RecordWriter(store, sid)
    with pytest.raises(RecordError, match="already complete"):
        store.end_session(sid, "aborted")
    with pytest.raises(ValueError, match="outcome"):
        store.end_session(sid, "running")
    other = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    writer = RecordWriter(store, other)
    writer.close()
    with pytest.raises(RecordError, match="closed"):
        writer.append_event(Event(0.0, "state", "rf"))


def test_loop_side_cost_is_measured(
    store: RecordStore, record_property: Callable[[str, object], None]
) -> None:
    """Reported, not asserted: append + end_tick never wait for the database.

    Burst: ticks back to back (the writer falls behind and batches). Paced: a
    tick every 2 ms with the writer keeping up, so the GIL is shared with it.
    """
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    writer = RecordWriter(store, sid)
    per_tick = 10
    events = [Event(i * 0.001, "reading", "rf", {"skin_c": 33.0, "i": i}) for i in range(per_tick)]

    def one_tick() -> float:
        t0 = time.perf_counter()
        for event in events:
            writer.append_event(event, 1)
        writer.end_tick()
        return time.perf_counter() - t0

    burst = [one_tick() for _ in range(1000)]
    assert writer.flush(timeout_s=60)
    paced = []
    for _ in range(200):
        paced.append(one_tick())
        time.sleep(0.002)
    writer.close("complete")
    calls = per_tick + 1
    burst_us = sum(burst) / (len(burst) * calls) * 1e6
    paced_us = sorted(paced)[len(paced) // 2] / calls * 1e6
    worst_us = max(paced) * 1e6
    record_property("append_us_burst", round(burst_us, 2))
    record_property("append_us_paced_median", round(paced_us, 2))
    record_property("tick_us_paced_worst", round(worst_us, 1))
    print(
        f"\nloop side per call: burst {burst_us:.2f} us, paced median {paced_us:.2f} us; "
        f"worst paced tick ({per_tick} events + end_tick) {worst_us:.0f} us; "
        f"{writer.commits} commits for {writer.ticks_committed} ticks"
    )
    readings = [e for e in store.events(sid) if e.kind == "reading"]
    assert len(readings) == 1200 * per_tick


def test_a_database_error_stops_the_writer_but_never_the_loop(db: Path) -> None:
    store = RecordStore.open(db, busy_timeout_s=0.2)
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    errors: list[RecordError] = []
    writer = RecordWriter(store, sid, on_error=errors.append)
    writer.append_event(Event(0.0, "state", "rf"))
    writer.end_tick()
    assert writer.flush(timeout_s=10)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process hogs the write lock
    try:
        writer.append_event(Event(0.05, "state", "rf"))
        writer.end_tick()
        assert not writer.flush(timeout_s=10)
        assert isinstance(writer.error, RecordError)
        assert str(db) in str(writer.error) and "locked" in str(writer.error)
        assert errors == [writer.error]
        writer.append_event(Event(0.1, "state", "rf"))  # the loop side still never raises
        writer.end_tick()
        with pytest.raises(RecordError, match="locked"):
            writer.close("complete")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert writer.dropped >= 2
    # session_started, then the one state event committed before the lock
    assert [(e.seq, e.kind) for e in store.events(sid)] == [(1, "session_started"), (2, "state")]
    assert store.verify(sid)[0].ok  # what is there still verifies
    store.close()


class _Emitter:
    """A controller that emits two events per tick, like a device being supervised."""

    name = "rf"

    def __init__(self, loop: ControlLoop) -> None:
        self.loop = loop

    def sample(self, now_s: float) -> None:
        self.loop.emit(Event(now_s, "reading", "rf", {"skin_c": 33.0}))

    def supervise(self, now_s: float) -> None:
        """Nothing to check."""

    def act(self, now_s: float) -> None:
        self.loop.emit(Event(now_s, "command", "rf", {"action": "power", "operator_id": "op-3"}))

    def handle(self, command: Any) -> Any:
        return None

    def emergency_stop(self, operator_id: str | None = None) -> bool:
        return True


def test_writer_as_a_control_loop_subscriber(store: RecordStore) -> None:
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    writer = RecordWriter(store, sid)
    loop = ControlLoop(SimClock(), period_s=0.05)
    loop.add(_Emitter(loop))
    loop.subscribe(writer.subscriber(lambda: 2))
    loop.run(max_duration_s=0.999)  # ticks at 0.00 ... 0.95
    assert writer.ticks_sent == loop.tick_count == 20
    writer.close("complete")
    stored = store.events(sid)
    assert [e.kind for e in (stored[0], stored[-1])] == ["session_started", "session_ended"]
    events = stored[1:-1]  # the loop's
    assert [e.kind for e in events[:2]] == ["reading", "command"]
    assert len(events) == 40 and {e.step_index for e in events} == {2}
    assert [e.operator_id for e in events[:2]] == [None, "op-3"]
    assert store.verify(sid)[0].ok


# -- interrupted sessions ---------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_mark_interrupted_takes_only_dead_sessions_of_this_station(store: RecordStore) -> None:
    live = store.begin_session(protocol_name="p", operator_id=OPERATOR)  # this process: alive
    dead = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    remote = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    done = write_session(store, ticks=1, per_tick=1)
    writer = RecordWriter(store, dead)
    writer.append_event(Event(1.0, "state", "rf"))
    writer.end_tick()
    writer.close()
    with store.engine.begin() as conn:
        pid = _dead_pid()
        conn.execute(
            sessions.update().where(sessions.c.id.in_([dead, remote])).values(owner_pid=pid)
        )
        conn.execute(sessions.update().where(sessions.c.id == remote).values(station="chair-9"))
    assert store.mark_interrupted() == [dead]
    assert store.mark_interrupted() == []
    marked = store.session(dead)
    assert marked.outcome == "interrupted"
    assert marked.ended_at == store.events(dead)[-1].wall_at
    assert store.session(live).outcome == "running"
    assert store.session(done).outcome == "complete"
    assert store.mark_interrupted(all_stations=True) == [remote]
    assert store.session(live).outcome == "running"


# -- bad input: one RecordError naming the db -------------------------------------------------


def test_locked_database_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "locked.sqlite"
    RecordStore.open(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(RecordError) as info:
            RecordStore.open(db, busy_timeout_s=0.2)
        assert time.monotonic() - started < 5
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(db) in str(info.value) and "locked" in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, DevicectlError)


def test_read_only_database_is_one_clear_error(db: Path) -> None:
    write_session(RecordStore.open(db), ticks=2, per_tick=2)
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    with pytest.raises(RecordError, match="readonly") as info:
        RecordStore.open(url)
    assert str(db) in str(info.value)
    # ... while reading it is fine when asked for
    with RecordStore.open(url, readonly=True) as reader:
        [summary] = reader.list_sessions()
        assert reader.verify(summary.id)[0].ok


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores file modes")
def test_read_only_file_is_one_clear_error(db: Path) -> None:
    RecordStore.open(db).close()
    for path in db.parent.iterdir():
        path.chmod(0o444)
    db.parent.chmod(0o555)
    try:
        with pytest.raises(RecordError) as info:
            RecordStore.open(db)
        assert str(db) in str(info.value)
    finally:
        db.parent.chmod(0o755)


def test_missing_directory_and_missing_store_are_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "records.sqlite"
    with pytest.raises(RecordError, match="does not exist") as info:
        RecordStore.open(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(RecordError, match="no such record store"):
        RecordStore.open(tmp_path / "absent.sqlite", readonly=True)
    assert not (tmp_path / "absent.sqlite").exists()
    (tmp_path / "empty.sqlite").touch()
    with pytest.raises(RecordError, match="no devicectl schema"):
        RecordStore.open(tmp_path / "empty.sqlite", readonly=True)


def test_unknown_session_is_a_clear_error(store: RecordStore) -> None:
    with pytest.raises(RecordError, match="no session 'nope'"):
        store.session_detail("nope")


def test_unreachable_postgres_is_one_clear_error_quickly() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(RecordError) as info:
        RecordStore.open(f"postgresql://devicectl:secret@127.0.0.1:{port}/records")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert f"127.0.0.1:{port}/records" in message and "secret" not in message
    assert "\n" not in message


def test_silent_postgres_server_times_out(record_property: Callable[[str, object], None]) -> None:
    """A host that accepts TCP and never answers: the connect timeout ends it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                held.append(server.accept()[0])  # accept and say nothing
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(RecordError) as info:
            RecordStore.open(f"postgresql://u@127.0.0.1:{port}/db", connect_timeout_s=2)
        took = time.monotonic() - started
    finally:
        server.close()
        for conn in held:
            conn.close()
    record_property("silent_server_s", round(took, 2))
    assert took < 10
    assert f"127.0.0.1:{port}/db" in str(info.value)
