"""The traces are inside the record's hash chain, and they keep the readings that tripped a fault.

The writer chains a ``trace_block`` event holding a digest of every trace row it
wrote since the last one, at the end of every step and at least every 10 s of
session time; ``records verify`` recomputes the digests and names the block
(its seq and time range) whose rows were edited, deleted or inserted. An alarm's
event carries the reading of its tick, and that reading is in the trace.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicectl.control.events import Event
from devicectl.records import RecordStore, RecordWriter
from devicectl.records.export import verify_jsonl
from devicectl.report import render_report
from tests.records_scenario import OPERATOR, start_child

TICK_S = 0.05
TICKS = 300  # 15 s of trace: a block is cut at 10 s, another at the step's end
BLOCK_MAX_S = 10.0


def _sql(store: RecordStore, *statements: str) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def write_traced_session(store: RecordStore, *, ticks: int = TICKS) -> str:
    """Two steps; the first is 15 s of RF skin samples at every tick, the second 1 s more."""
    sid = store.begin_session(protocol_name="traced", operator_id=OPERATOR)
    writer = RecordWriter(store, sid)
    writer.begin_step(1, "rf", "RF zone cheek", 0.0)
    tick = 0
    for tick in range(1, ticks + 1):
        t_s = round(tick * TICK_S, 6)
        writer.append_event(Event(t_s, "state", "rf", {"tick": tick}), step_index=1)
        writer.append_trace(t_s, "rf", "skin1_c", 33.0 + 0.02 * tick, step_index=1)
        writer.append_trace(t_s, "rf", "skin2_c", 33.1 + 0.02 * tick, step_index=1)
        writer.end_tick()
    writer.end_step(1, "complete", tick * TICK_S, None)
    writer.end_tick()
    writer.begin_step(2, "led", "LED canopy", tick * TICK_S)
    for extra in range(1, 21):
        t_s = round((tick + extra) * TICK_S, 6)
        writer.append_trace(t_s, "led", "skin_c", 34.0, step_index=2)
        writer.end_tick()
    writer.end_step(2, "complete", (tick + 20) * TICK_S, None)
    writer.close("complete")
    return sid


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    with RecordStore.open(tmp_path / "records.sqlite") as s:
        yield s


def _blocks(store: RecordStore, sid: str) -> list[tuple[int, float, dict[str, object]]]:
    return [(e.seq, e.t_s, e.data) for e in store.events(sid) if e.kind == "trace_block"]


def test_blocks_cover_every_row_cut_at_each_step_end_and_every_10_s(store: RecordStore) -> None:
    sid = write_traced_session(store)
    events = store.events(sid)
    blocks = [e for e in events if e.kind == "trace_block"]
    rows = store.traces(sid)
    assert sum(b.data["rows"] for b in blocks) == len(rows) == 2 * TICKS + 20
    spans = [(b.data["first_t_s"], b.data["last_t_s"]) for b in blocks]
    assert all(last - first <= BLOCK_MAX_S for first, last in spans), spans
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), spans
    # the first step's end (15 s) closes a block holding its last tick's rows, right after it
    step_ended = next(e.seq for e in events if e.kind == "step_ended" and e.step_index == 1)
    after_step = next(b for b in blocks if b.seq > step_ended)
    assert after_step.data["last_t_s"] == TICKS * TICK_S, spans
    assert after_step.seq <= step_ended + 2  # in the same tick's commit
    [result] = store.verify(sid)
    assert result.ok, result.describe()
    assert (result.trace_blocks, result.trace_rows) == (len(blocks), len(rows))
    assert f"{len(blocks)} trace blocks / {len(rows)} trace rows covered" in result.describe()


TAMPER = {
    # name: (SQL on the session's trace rows, words the verdict must hold)
    "edited": (
        "UPDATE traces SET value = value + 3 WHERE session_id = '{sid}' AND channel = 'skin1_c'"
        " AND t_s > 12.0 AND t_s < 12.1",
        ("rf skin1_c", "edited", "t 10.1-15.0 s"),
    ),
    "all skin rows edited": (
        "UPDATE traces SET value = value + 3 WHERE session_id = '{sid}' AND device = 'rf'",
        ("rf skin1_c", "rf skin2_c", "t 0.05-10.05 s", "t 10.1-15.0 s"),
    ),
    "deleted": (
        "DELETE FROM traces WHERE session_id = '{sid}' AND channel = 'skin2_c'"
        " AND t_s > 4.0 AND t_s < 4.06",
        ("rf skin2_c", "deleted", "t 0.05-10.05 s"),
    ),
    "inserted": (
        "INSERT INTO traces (session_id, t_s, device, step_index, channel, value)"
        " VALUES ('{sid}', 3.025, 'rf', 1, 'skin1_c', 41.0)",
        ("rf skin1_c", "inserted", "t 0.05-10.05 s"),
    ),
    "inserted channel": (
        "INSERT INTO traces (session_id, t_s, device, step_index, channel, value)"
        " VALUES ('{sid}', 3.0, 'rf', 1, 'power_w', 50.0)",
        ("rf power_w", "inserted", "t 0.05-10.05 s"),
    ),
    "inserted after the last block": (
        "INSERT INTO traces (session_id, t_s, device, step_index, channel, value)"
        " VALUES ('{sid}', 99.0, 'rf', 1, 'skin1_c', 45.0)",
        ("after the last trace block",),
    ),
}


@pytest.mark.parametrize("edit", list(TAMPER))
def test_edited_deleted_or_inserted_trace_rows_fail_verify_naming_the_block(
    store: RecordStore, edit: str
) -> None:
    sid = write_traced_session(store)
    assert store.verify(sid)[0].ok
    statement, words = TAMPER[edit]
    _sql(store, statement.format(sid=sid))
    [result] = store.verify(sid)
    assert not result.ok, f"{edit}: still verifies"
    text = result.describe()
    for word in words:
        assert word in text, text
    assert result.traces and not (result.edited or result.missing or result.summary), text


def test_cli_verify_and_report_name_an_edited_trace_block(
    store: RecordStore, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from devicectl.cli import app

    sid = write_traced_session(store)
    page = render_report(store, sid)
    assert "hash chain verified" not in page
    blocks = len(_blocks(store, sid))
    assert f"events chain verified ({store.session(sid).events} events)" in page, page[:2000]
    assert f"{blocks} trace blocks / {2 * TICKS + 20} trace rows covered" in page
    _sql(store, TAMPER["edited"][0].format(sid=sid))
    page = render_report(store, sid)
    assert "RECORD DOES NOT VERIFY: trace block" in page
    assert "t 10.1-15.0 s" in page
    db = store.engine.url.database
    assert db is not None
    out = CliRunner().invoke(
        app, ["--log-file", str(tmp_path / "cli.jsonl"), "records", "verify", sid, "--db", db]
    )
    assert out.exit_code == 1, out.output
    assert "rf skin1_c" in out.output and "t 10.1-15.0 s" in out.output, out.output


def test_an_export_with_traces_finds_an_edited_trace_line(store: RecordStore) -> None:
    sid = write_traced_session(store, ticks=40)
    buf = io.StringIO()
    store.export_jsonl(sid, buf)
    lines = buf.getvalue().splitlines()
    assert verify_jsonl(lines).ok
    edited = []
    for line in lines:
        obj = json.loads(line)
        if obj["record"] == "trace" and obj["t_s"] == 1.0 and obj["channel"] == "skin1_c":
            obj["value"] += 3.0
            line = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        edited.append(line)
    text = verify_jsonl(edited).describe()
    assert "rf skin1_c" in text and "edited" in text, text


def test_a_killed_controller_leaves_verified_blocks_and_a_note_for_the_rest(
    tmp_path: Path,
) -> None:
    """Rows after the last block of a session that was never closed: a note, not a failure."""
    import signal

    url = str(tmp_path / "killed.sqlite")
    child = start_child(url, 0, 2, 0.0)  # one trace sample per 50 ms tick, until killed
    assert child.stdout is not None
    sid = child.stdout.readline().split()[1]
    for line in child.stdout:
        if line.startswith("committed") and int(line.split()[1]) >= 260:  # 13 s of trace
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    with RecordStore.open(url) as store:
        [result] = store.verify(sid)
        assert result.ok, result.describe()
        assert result.trace_blocks >= 1
        assert any("not covered" in n and "not closed" in n for n in result.notes), result.notes
        _sql(store, f"DELETE FROM traces WHERE session_id = '{sid}' AND t_s < 1.0")
        assert "deleted" in store.verify(sid)[0].describe()  # the closed blocks are checked


def test_a_record_written_before_trace_blocks_verifies_with_a_note(tmp_path: Path) -> None:
    """tests/data holds a store written before the traces were chained."""
    legacy = Path(__file__).parent / "data" / "records-before-summary-chain.sqlite"
    copy = tmp_path / "legacy.sqlite"
    shutil.copyfile(legacy, copy)
    with RecordStore.open(copy) as store:
        results = store.verify()
        assert results
        for result in results:
            assert result.ok, result.describe()
            assert any("traces not covered" in n for n in result.notes), result.notes
            assert result.trace_blocks == 0
        page = render_report(store, results[0].session_id)
        assert "traces not covered" in page and "hash chain verified" not in page


# -- the chain's canonical form, by hand (docs/records.md) -----------------------------------------


def _canon(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def test_known_answer_hashes_from_the_documented_canonical_form(tmp_path: Path) -> None:
    """Every hash the store wrote, recomputed with hashlib and json from docs/records.md alone."""
    wall = iter([1_750_000_000.0 + i for i in range(100)])
    sid = "0123456789abcdef0123456789abcdef"
    with RecordStore.open(tmp_path / "kat.sqlite", wall_clock=lambda: next(wall)) as store:
        store.begin_session(protocol_name="kat", operator_id="tech-1", session_id=sid, t_s=0.0)
        writer = RecordWriter(store, sid)
        writer.append_event(Event(0.5, "state", "rf", {"state": "delivering"}), step_index=1)
        writer.append_trace(0.5, "rf", "skin2_c", 42.5, step_index=1)
        writer.append_trace(0.5, "rf", "skin1_c", 43.0, step_index=1)
        writer.append_trace(1.0, "rf", "skin1_c", 41.25, step_index=1)
        writer.append_trace(1.0, "rf", "skin2_c", float("nan"), step_index=1)
        writer.end_tick()
        writer.close("complete")
        row = store.session(sid)
        events = store.events(sid)

    def digest(rows: list[list[object]]) -> str:
        texts = sorted(_canon(r) for r in rows)
        return hashlib.sha256(("[" + ",".join(texts) + "]").encode("ascii")).hexdigest()

    iso = ["2025-06-15T15:06:40.000000+00:00", "2025-06-15T15:06:41.000000+00:00"]
    started = {
        "protocol_name": "kat",
        "protocol_sha256": None,
        "operator_id": "tech-1",
        "unattended": False,
        "station": row.station,
        "software_version": row.software_version,
        "started_at": iso[0],
        "trace_scheme": "sha256-rows-v1",
    }
    block = {
        "first_t_s": 0.5,
        "last_t_s": 1.0,
        "rows": 4,
        "channels": [
            {
                "device": "rf",
                "channel": "skin1_c",
                "rows": 2,
                "sha256": digest([[0.5, 1, 43.0], [1.0, 1, 41.25]]),
            },
            {
                "device": "rf",
                "channel": "skin2_c",
                "rows": 2,
                "sha256": digest([[0.5, 1, 42.5], [1.0, 1, None]]),
            },
        ],
    }
    expected = [
        (0.0, iso[0], "session_started", "session", None, None, started),
        (0.5, iso[1], "state", "rf", 1, None, {"state": "delivering"}),
        (1.0, "2025-06-15T15:06:42.000000+00:00", "trace_block", "records", None, None, block),
        (
            1.0,
            "2025-06-15T15:06:43.000000+00:00",
            "session_ended",
            "session",
            None,
            None,
            {"outcome": "complete", "ended_at": "2025-06-15T15:06:43.000000+00:00"},
        ),
    ]
    prev = hashlib.sha256(b"devicectl-records/sha256-v1/genesis\x00" + sid.encode()).hexdigest()
    assert len(events) == len(expected), [(e.kind, e.data) for e in events]
    for seq, (event, want) in enumerate(zip(events, expected, strict=True), start=1):
        t_s, wall_at, kind, device, step, operator, data = want
        assert (event.kind, event.data) == (kind, data)
        text = _canon([prev, seq, t_s, wall_at, kind, device, step, operator, data])
        digest_hex = hashlib.sha256(text.encode("ascii")).hexdigest()
        assert (event.seq, event.prev_hash, event.hash) == (seq, prev, digest_hex), kind
        prev = digest_hex
    assert row.head_hash == prev


# -- the readings that tripped a fault are recorded -----------------------------------------------

RF_PROTOCOL = (
    '[session]\nname = "Runaway"\nversion = "1"\n\n'
    '[[step]]\nkind = "rf"\ntitle = "RF one zone"\ntarget_c = 42.0\nhold_s = 10\n'
    'zones = ["forehead"]\n'
)


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from devicectl.session.api import run_protocol_file

    folder = tmp_path_factory.mktemp("faulted")
    protocol = folder / "rf.toml"
    protocol.write_text(RF_PROTOCOL, encoding="utf-8")
    db = folder / "records.sqlite"
    done = run_protocol_file(
        protocol,
        operator_id="tech-f",
        auto_confirm=True,
        db=str(db),
        faults={"rf": ["runaway@5s"]},
    )
    assert done.outcome == "fault"
    return db, done.session_id


def test_a_fault_event_carries_its_tick_reading_and_the_trace_keeps_it(
    faulted: tuple[Path, str],
) -> None:
    db, sid = faulted
    with RecordStore.open(db, readonly=True) as store:
        events = store.events(sid)
        traces = store.traces(sid, device="rf")
        assert store.verify(sid)[0].ok
    trips = [e for e in events if e.kind == "alarm" and e.data["alarm"]["latches"]]
    assert trips, [e.kind for e in events]
    for trip in trips:
        reading = trip.data["reading"]
        assert reading is not None, trip.data
        for channel in ("skin1_c", "skin2_c"):
            assert isinstance(reading[channel], float)
            at_trip = [p.value for p in traces if p.channel == channel and p.t_s == trip.t_s]
            assert at_trip == [reading[channel]], (channel, trip.t_s, at_trip)
        assert "power_w" in trip.data["channels"]
    hottest = max(p.value for p in traces if p.channel in ("skin1_c", "skin2_c") and p.value)
    first = trips[0].data["reading"]
    assert hottest >= max(first["skin1_c"], first["skin2_c"])
    [zone] = [e for e in events if e.kind == "zone_result"]
    peak = zone.data["result"]["peak_c"]
    assert peak >= max(first["skin1_c"], first["skin2_c"])
    assert zone.data["result"]["outcome"] == "fault"
