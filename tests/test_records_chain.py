"""The hash chain: canonical JSON, a round trip through SQLite, and tampering found and named."""

from __future__ import annotations

import enum
import io
import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.records import ProblemKind, RecordStore, RecordWriter
from devicectl.records.chain import canonical_json, event_hash, genesis_hash, to_jsonable
from devicectl.records.export import verify_jsonl
from tests.records_scenario import OPERATOR, write_session

TICKS, PER_TICK = 10, 5  # 50 events + the acknowledgement = 51


class Mode(enum.Enum):
    CONTINUOUS = 1


@dataclass(frozen=True)
class Result:
    zone: str
    dose: float
    mode: Mode
    temps: tuple[float, ...]


# -- canonical JSON ----------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_and_ascii() -> None:
    assert canonical_json({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"\\u00e9"],"b":1}'


def test_nan_and_infinities_become_strings_never_bare_tokens() -> None:
    text_ = canonical_json({"x": math.nan, "y": math.inf, "z": -math.inf})
    assert text_ == '{"x":"NaN","y":"Infinity","z":"-Infinity"}'
    json.loads(text_, parse_constant=lambda c: pytest.fail(f"bare {c} in canonical JSON"))


def test_alarm_and_dataclass_payloads_serialise_with_enum_names() -> None:
    alarm = Alarm("rf", "RF-T-HIGH", AlarmPriority.HIGH, "hot", True, 43.2, 43.0)
    value = to_jsonable(
        {"alarm": alarm, "result": Result("cheek", math.nan, Mode.CONTINUOUS, (1.0,))}
    )
    assert value["alarm"]["priority"] == "HIGH"
    assert value["alarm"]["value"] == 43.2
    assert value["result"] == {"zone": "cheek", "dose": "NaN", "mode": "CONTINUOUS", "temps": [1.0]}


def test_unknown_objects_and_cycles_never_raise() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    assert "too deep" in canonical_json(loop)
    assert canonical_json({"o": object()}).startswith('{"o":"<object object')
    assert (
        canonical_json({Mode.CONTINUOUS: {1, 2}, "b": b"\x01"}) == '{"CONTINUOUS":[1,2],"b":"01"}'
    )


def test_hash_depends_on_every_field_and_the_genesis_on_the_session() -> None:
    args = (genesis_hash("a" * 32), 1, 0.05, "2025-01-01T00:00:00.000000+00:00")
    base = event_hash(*args, "state", "rf", 1, OPERATOR, "{}")
    assert len(base) == 64
    assert event_hash(*args, "state", "rf", 1, OPERATOR, '{"x":1}') != base
    assert event_hash(*args, "state", "rf", 2, OPERATOR, "{}") != base
    assert event_hash(*args, "state", "rf", 1, None, "{}") != base
    assert genesis_hash("a" * 32) != genesis_hash("b" * 32)


# -- a session through SQLite ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    with RecordStore.open(tmp_path / "records.sqlite") as s:
        yield s


@pytest.fixture
def sid(store: RecordStore) -> str:
    return write_session(store, ticks=TICKS, per_tick=PER_TICK)


def test_round_trip_keeps_every_field_and_verifies(store: RecordStore, sid: str) -> None:
    events = store.events(sid)
    assert [e.seq for e in events] == list(range(1, TICKS * PER_TICK + 2))
    assert events[0].prev_hash == genesis_hash(sid)
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    first = events[0]
    assert (first.t_s, first.kind, first.device, first.step_index) == (0.05, "reading", "rf", 1)
    assert first.data == {"tick": 1, "i": 0, "skin_c": 33.01}
    # the acknowledgement carries the operator; it was taken from the event's data
    assert events[-1].operator_id == OPERATOR and events[-1].step_index is None
    [result] = store.verify(sid)
    assert result.ok, result.describe()
    assert (result.events, result.head_seq) == (TICKS * PER_TICK + 1, TICKS * PER_TICK + 1)
    assert "ok" in result.describe()


def test_show_and_list_have_steps_alarms_operator_actions_and_traces(
    store: RecordStore, sid: str
) -> None:
    [summary] = store.list_sessions()
    assert (summary.id, summary.outcome, summary.operator_id) == (sid, "complete", OPERATOR)
    assert summary.events == TICKS * PER_TICK + 1 and summary.ended_at is not None
    detail = store.session_detail(sid[:8])  # a unique prefix is enough
    [step] = detail.steps
    assert (step.index, step.kind, step.outcome, step.result) == (
        1,
        "rf",
        "complete",
        {"zones": 1, "dose_cem43": 0.4},
    )
    assert detail.event_counts == {"acknowledged": 1, "reading": 40, "state": 10}
    assert detail.alarms == ()  # tick 25 never came in 10 ticks
    assert [e.kind for e in detail.operator_actions] == ["acknowledged"]
    [channel] = detail.traces
    assert (channel.device, channel.channel, channel.samples) == ("rf", "skin_c", TICKS)


def test_export_jsonl_verifies_offline_and_detects_an_edit(store: RecordStore, sid: str) -> None:
    buf = io.StringIO()
    lines = store.export_jsonl(sid, buf)
    text_lines = buf.getvalue().splitlines()
    assert lines == len(text_lines) == 1 + 1 + (TICKS * PER_TICK + 1) + TICKS
    assert json.loads(text_lines[0])["record"] == "session"
    assert verify_jsonl(text_lines).ok
    text_lines[7] = text_lines[7].replace('"skin_c":33.02', '"skin_c":33.0')  # event 6
    assert verify_jsonl(text_lines).edited == (6,)


# -- tampering ---------------------------------------------------------------------------------


def _sql(store: RecordStore, *statements: str) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)


def _check(store: RecordStore, sid: str) -> tuple[tuple[int, ...], ...]:
    [result] = store.verify(sid)
    assert not result.ok
    return result.edited, result.missing, result.out_of_order


def test_edited_event_is_named(store: RecordStore, sid: str) -> None:
    _sql(store, 'UPDATE events SET data = \'{"tick":1,"i":2,"skin_c":40.0}\' WHERE seq = 3')
    assert _check(store, sid) == ((3,), (), ())


def test_edited_time_operator_or_kind_is_named(store: RecordStore, sid: str) -> None:
    _sql(
        store,
        "UPDATE events SET t_s = 0.06 WHERE seq = 4",
        "UPDATE events SET operator_id = 'someone' WHERE seq = 8",
        "UPDATE events SET kind = 'reading' WHERE seq = 10",
    )
    assert _check(store, sid) == ((4, 8, 10), (), ())


def test_edit_with_a_recomputed_hash_is_still_named(store: RecordStore, sid: str) -> None:
    event = store.events(sid)[6]  # seq 7
    forged = '{"i":1,"skin_c":20.0,"tick":2}'
    new_hash = event_hash(
        event.prev_hash,
        event.seq,
        event.t_s,
        event.wall_at,
        event.kind,
        event.device,
        event.step_index,
        event.operator_id,
        forged,
    )
    _sql(store, f"UPDATE events SET data = '{forged}', hash = '{new_hash}' WHERE seq = 7")
    [result] = store.verify(sid)
    assert result.edited == (7,)
    assert "re-hashed" in result.describe()


def test_deleted_event_is_named(store: RecordStore, sid: str) -> None:
    _sql(store, "DELETE FROM events WHERE seq = 12")
    assert _check(store, sid) == ((), (12,), ())


def test_deleted_last_events_are_named_through_the_session_head(
    store: RecordStore, sid: str
) -> None:
    last = TICKS * PER_TICK + 1
    _sql(store, f"DELETE FROM events WHERE seq >= {last - 1}")
    assert _check(store, sid) == ((), (last - 1, last), ())


def test_two_swapped_events_are_named_out_of_order(store: RecordStore, sid: str) -> None:
    _sql(
        store,
        "UPDATE events SET seq = -1 WHERE seq = 20",
        "UPDATE events SET seq = 20 WHERE seq = 21",
        "UPDATE events SET seq = 21 WHERE seq = -1",
    )
    assert _check(store, sid) == ((), (), (20, 21))
    [result] = store.verify(sid)
    assert "event 21 is stored at seq 20" in result.describe()


def test_delete_and_renumber_is_a_missing_event_and_moved_ones(
    store: RecordStore, sid: str
) -> None:
    last = TICKS * PER_TICK + 1
    _sql(store, "DELETE FROM events WHERE seq = 30")
    for seq in range(31, last + 1):  # one at a time: the primary key forbids a clash
        _sql(store, f"UPDATE events SET seq = {seq - 1} WHERE seq = {seq}")
    edited, missing, moved = _check(store, sid)
    assert (edited, missing, moved) == ((), (30,), tuple(range(31, last + 1)))


def test_several_problems_in_one_session_are_all_named(store: RecordStore, sid: str) -> None:
    _sql(
        store,
        "UPDATE events SET device = 'ipl' WHERE seq = 2",
        "DELETE FROM events WHERE seq = 15",
        "UPDATE events SET seq = -1 WHERE seq = 40",
        "UPDATE events SET seq = 40 WHERE seq = 41",
        "UPDATE events SET seq = 41 WHERE seq = -1",
    )
    assert _check(store, sid) == ((2,), (15,), (40, 41))
    [result] = store.verify(sid)
    kinds = {p.kind for p in result.problems}
    assert kinds == {ProblemKind.EDITED, ProblemKind.MISSING, ProblemKind.OUT_OF_ORDER}


def test_an_event_moved_to_another_session_is_found_in_both(store: RecordStore, sid: str) -> None:
    other = write_session(store, ticks=2, per_tick=2)
    _sql(
        store,
        f"UPDATE events SET session_id = '{other}', seq = 100"
        f" WHERE session_id = '{sid}' AND seq = 5",
    )
    [mine] = store.verify(sid)
    assert mine.missing == (5,)
    [theirs] = store.verify(other)
    assert not theirs.ok


def test_verify_all_sessions_reports_each(store: RecordStore, sid: str) -> None:
    other = write_session(store, ticks=3, per_tick=2)
    _sql(store, f"DELETE FROM events WHERE session_id = '{other}' AND seq = 2")
    results = {r.session_id: r for r in store.verify()}
    assert results[sid].ok and results[other].missing == (2,)


def test_writer_continues_an_existing_chain(store: RecordStore) -> None:
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    for n in range(3):  # three writers one after the other on one session
        writer = RecordWriter(store, sid)
        writer.append_event(Event(float(n), "state", "rf", {"n": n}))
        writer.end_tick()
        writer.close()
    assert [e.seq for e in store.events(sid)] == [1, 2, 3]
    assert store.verify(sid)[0].ok


# -- an edited record is still shown and reported, with the edit named ---------------------------


def _report_session(store: RecordStore) -> str:
    """A small session with what ``records show`` and ``report`` read inside payloads:
    an RF load and its zone result, an IPL flash, an alarm."""
    sid = store.begin_session(protocol_name="edited", operator_id=OPERATOR)
    with RecordWriter(store, sid) as writer:
        zone = {"name": "nose", "target_c": 42.0, "hold_s": 10.0}
        alarm = Alarm("rf", "rf.alarm_temp", AlarmPriority.HIGH, "rf: skin 43.0", True, 43.0, 43.0)
        flash = {"set_fluence_j_cm2": 12.0, "delivered_j_cm2": 11.8}
        for event in (
            Event(1.0, "command", "rf", {"action": "load", "args": {"zone": zone}}),
            Event(2.0, "alarm", "rf", {"alarm": alarm}),
            Event(3.0, "zone_result", "rf", {"result": zone}),
            Event(4.0, "flash", "ipl", {"record": flash}),
        ):
            writer.append_event(event, step_index=1)
            writer.append_trace(event.t_s, "rf", "skin1_c", 40.0, step_index=1)
            writer.end_tick()
    store.end_session(sid, "complete")
    return sid


@pytest.mark.parametrize("seq", [1, 2, 4])
@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "{}",
        '{"alarm":"x","args":1,"record":[]}',
        '{"action":"load","alarm":{},"record":{}}',
    ],
)
def test_show_and_report_of_an_edited_record_name_the_edit_instead_of_crashing(
    store: RecordStore, tmp_path: Path, seq: int, data: str
) -> None:
    """An edited payload is what verify exists to find; ``records show`` and ``report``
    used to die on it with a TypeError or KeyError traceback instead of showing the
    record with the report's 'RECORD DOES NOT VERIFY'."""
    from typer.testing import CliRunner

    from devicectl.cli import app
    from devicectl.report import render_report

    sid = _report_session(store)
    _sql(store, f"UPDATE events SET data = '{data}' WHERE seq = {seq}")
    [result] = store.verify(sid)
    assert result.edited == (seq,)
    assert "RECORD DOES NOT VERIFY" in render_report(store, sid)
    db = store.engine.url.database
    assert db is not None
    log = tmp_path / "cli.jsonl"
    shown = CliRunner().invoke(app, ["--log-file", str(log), "records", "show", sid, "--db", db])
    assert shown.exit_code == 0, shown.output
