"""Verify and export read a RecordSource: a store, a snapshot of one, or an export read back.

The same verify code (``verify_session``) judges a SQLite store and the JSON
lines exported from it, the same export code writes either, and the layers of
``devicectl.records`` import each other without a cycle.
"""

from __future__ import annotations

import ast
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicectl.control.events import Event
from devicectl.errors import RecordError
from devicectl.records import JsonlRecord, RecordSource, RecordStore, RecordWriter
from devicectl.records.export import export_jsonl
from devicectl.records.models import EventRecord, SessionSummary, StepRecord, TracePoint
from devicectl.records.verify import verify_session
from tests.records_scenario import write_session

RECORDS = Path(__file__).resolve().parents[1] / "devicectl" / "records"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    with RecordStore.open(tmp_path / "records.sqlite", wall_clock=lambda: 1.7e9) as s:
        yield s


def traced_session(store: RecordStore) -> str:
    """A closed session with a step, events, a trace and its trace blocks."""
    return write_session(store, ticks=60, per_tick=3)


def _export(source: RecordSource, sid: str, *, include_traces: bool = True) -> str:
    buf = io.StringIO()
    export_jsonl(source, sid, buf, include_traces=include_traces)
    return buf.getvalue()


def test_an_export_verifies_through_the_same_code_as_its_store(store: RecordStore) -> None:
    sid = traced_session(store)
    record = JsonlRecord.parse(_export(store, sid).splitlines())
    [from_store] = store.verify(sid)
    from_file = verify_session(record, sid)
    assert from_store.ok and from_store.trace_blocks > 0, from_store.describe()
    assert from_file == from_store  # same events, blocks, rows covered, notes


def test_a_tampered_export_and_a_tampered_store_get_the_same_verdict(
    store: RecordStore,
) -> None:
    sid = traced_session(store)
    lines = []
    for line in _export(store, sid).splitlines():
        obj = json.loads(line)
        if obj["record"] == "event" and obj["seq"] == 9:
            obj["data"]["skin_c"] = 40.0
        lines.append(json.dumps(obj, sort_keys=True, separators=(",", ":")))
    from_file = verify_session(JsonlRecord.parse(lines), sid)
    with store.engine.begin() as conn:
        [[data]] = conn.exec_driver_sql(
            f"SELECT data FROM events WHERE session_id = '{sid}' AND seq = 9"
        ).all()
        obj = json.loads(data)
        obj["skin_c"] = 40.0
        conn.exec_driver_sql(
            "UPDATE events SET data = ? WHERE session_id = ? AND seq = 9",
            (json.dumps(obj, sort_keys=True, separators=(",", ":")), sid),
        )
    [from_store] = store.verify(sid)
    assert from_file.edited == (9,)
    assert from_file == from_store


def test_an_edited_step_line_is_named_like_an_edited_step_row(store: RecordStore) -> None:
    sid = traced_session(store)
    lines = [
        line.replace('"outcome":"complete"', '"outcome":"aborted"')
        if json.loads(line)["record"] == "step"
        else line
        for line in _export(store, sid).splitlines()
    ]
    from_file = verify_session(JsonlRecord.parse(lines), sid)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE steps SET outcome = 'aborted'")
    [from_store] = store.verify(sid)
    assert "step 1 outcome is 'aborted'" in from_file.describe(), from_file.describe()
    assert from_file == from_store


def test_export_runs_over_any_source_and_an_export_round_trips(store: RecordStore) -> None:
    sid = traced_session(store)
    text = _export(store, sid)
    assert _export(JsonlRecord.parse(text.splitlines()), sid[:8]) == text
    bare = _export(store, sid, include_traces=False)
    record = JsonlRecord.parse(bare.splitlines())
    assert record.iter_traces(sid) is None  # not held: not called deleted
    assert verify_session(record, sid).ok
    with pytest.raises(RecordError, match="no session"):
        record.session("ffff")


def test_one_row_type_per_table_converts_both_ways(store: RecordStore) -> None:
    sid = traced_session(store)
    source: RecordSource = store  # the facade is a source too
    session = source.session(sid)
    assert SessionSummary.from_json(session.to_json()) == session
    for step in source.steps(sid):
        assert StepRecord.from_json(step.to_json()) == step
    for event in source.iter_events(sid):
        assert EventRecord.from_json(event.to_json()) == event
    points = list(source.iter_traces(sid) or ())
    assert points
    for point in points:
        assert TracePoint.from_json(point.to_json(sid)) == point


def test_the_writer_and_the_store_append_through_one_chain(store: RecordStore) -> None:
    """Events of the store (begin, steps, end) and of a writer form one chain."""
    sid = store.begin_session(protocol_name="p", operator_id="op")
    store.begin_step(sid, 1, "rf", "zone", 0.0)
    with RecordWriter(store, sid) as writer:
        writer.append_event(Event(0.5, "state", "rf", {"state": "delivering"}))
        writer.append_trace(0.5, "rf", "skin1_c", 33.1)
        writer.end_tick()
    store.end_step(sid, 1, "complete", 1.0, {"zones": 1})
    store.end_session(sid, "complete")
    events = store.events(sid)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert [s.outcome for s in store.steps(sid)] == ["complete"]
    assert store.verify(sid)[0].ok


def test_the_records_modules_import_each_other_without_a_cycle() -> None:
    modules = {p.stem for p in RECORDS.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((RECORDS / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                if parts[:2] == ["devicectl", "records"] and len(parts) > 2:
                    deps.add(parts[2])
                elif node.module == "devicectl.records":
                    deps |= {a.name for a in node.names if a.name in modules}
        graph[name] = deps & modules - {name}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            dep == goal or (dep not in seen and reaches(dep, goal, seen | {dep}))
            for dep in graph[start]
        )

    assert [m for m in sorted(modules) if reaches(m, m, {m})] == []
    assert "store" not in graph["export"] and "store" not in graph["verify"]
