"""The hash chain: canonical JSON, a round trip through SQLite, and tampering found and named."""

from __future__ import annotations

import enum
import io
import itertools
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.records import ProblemKind, RecordStore, RecordWriter
from devicectl.records.chain import canonical_json, event_hash, genesis_hash, to_jsonable
from devicectl.records.export import verify_jsonl
from devicectl.session.runner import SessionRunner
from devicectl.station import Station
from tests.records_scenario import OPERATOR, write_session

TICKS, PER_TICK = 10, 5  # 50 events + the acknowledgement = 51
LOOP_EVENTS = TICKS * PER_TICK + 1
# The store chains session_started (seq 1) and session_ended (last); the writer's
# begin_step/end_step chain step_started (seq 2) and step_ended, and after the
# step's end the writer chains the trace_block stating its trace rows.
ALL_EVENTS = LOOP_EVENTS + 5


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
    assert [e.seq for e in events] == list(range(1, ALL_EVENTS + 1))
    assert events[0].prev_hash == genesis_hash(sid)
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))
    assert [e.kind for e in events[:2]] == ["session_started", "step_started"]
    assert [e.kind for e in events[-3:]] == ["step_ended", "trace_block", "session_ended"]
    assert events[-2].data["rows"] == TICKS and events[-2].device == "records"
    assert events[0].data["operator_id"] == OPERATOR and events[0].operator_id is None
    assert events[-1].data["outcome"] == "complete"
    first = events[2]
    assert (first.t_s, first.kind, first.device, first.step_index) == (0.05, "reading", "rf", 1)
    assert first.data == {"tick": 1, "i": 0, "skin_c": 33.01}
    # the acknowledgement carries the operator; it was taken from the event's data
    ack = events[-4]
    assert ack.kind == "acknowledged"
    assert ack.operator_id == OPERATOR and ack.step_index is None
    [result] = store.verify(sid)
    assert result.ok, result.describe()
    assert (result.events, result.head_seq) == (ALL_EVENTS, ALL_EVENTS)
    assert "ok" in result.describe() and result.notes == ()
    assert (result.trace_blocks, result.trace_rows) == (1, TICKS)


def test_show_and_list_have_steps_alarms_operator_actions_and_traces(
    store: RecordStore, sid: str
) -> None:
    [summary] = store.list_sessions()
    assert (summary.id, summary.outcome, summary.operator_id) == (sid, "complete", OPERATOR)
    assert summary.events == ALL_EVENTS and summary.ended_at is not None
    detail = store.session_detail(sid[:8])  # a unique prefix is enough
    [step] = detail.steps
    assert (step.index, step.kind, step.outcome, step.result) == (
        1,
        "rf",
        "complete",
        {"zones": 1, "dose_cem43": 0.4},
    )
    assert detail.event_counts == {
        "acknowledged": 1,
        "reading": 40,
        "state": 10,
        "session_started": 1,
        "step_started": 1,
        "step_ended": 1,
        "trace_block": 1,
        "session_ended": 1,
    }
    assert detail.alarms == ()  # tick 25 never came in 10 ticks
    assert [e.kind for e in detail.operator_actions] == ["acknowledged"]
    [channel] = detail.traces
    assert (channel.device, channel.channel, channel.samples) == ("rf", "skin_c", TICKS)


def test_export_jsonl_verifies_offline_and_detects_an_edit(store: RecordStore, sid: str) -> None:
    buf = io.StringIO()
    lines = store.export_jsonl(sid, buf)
    text_lines = buf.getvalue().splitlines()
    assert lines == len(text_lines) == 1 + 1 + ALL_EVENTS + TICKS
    assert json.loads(text_lines[0])["record"] == "session"
    assert verify_jsonl(text_lines).ok
    assert '"skin_c":33.02' in text_lines[9]  # event 8, tick 2's first reading
    text_lines[9] = text_lines[9].replace('"skin_c":33.02', '"skin_c":33.0')
    assert verify_jsonl(text_lines).edited == (8,)


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
        "UPDATE events SET kind = 'reading' WHERE seq = 12",  # tick 2's state event
    )
    assert _check(store, sid) == ((4, 8, 12), (), ())


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
    last = ALL_EVENTS
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
    last = ALL_EVENTS
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
    events = store.events(sid)
    assert [e.seq for e in events] == [1, 2, 3, 4]  # after the session_started event
    assert [e.data for e in events[1:]] == [{"n": 0}, {"n": 1}, {"n": 2}]
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


# -- the summary rows (session, steps) are covered by the chain -----------------------------------
#
# A session's row (outcome, operator, unattended, protocol, times) and its steps' rows
# are what ``records show``, ``list`` and the report print first. They used to be
# outside the chain: an outcome edited from 'fault' to 'complete' verified "ok".

SHORT_PROTOCOL = (
    '[session]\nname = "Summary check"\nversion = "1"\n\n'
    '[[step]]\nkind = "manual"\ntitle = "Cleanse"\ninstructions = "Cleanse."\n\n'
    '[[step]]\nkind = "manual"\ntitle = "Mask"\ninstructions = "Mask."\n\n'
    '[[step]]\nkind = "rf"\ntitle = "RF one zone"\ntarget_c = 42.0\nhold_s = 10\n'
    'zones = ["forehead"]\n'
)
FAULT_STEP = 3  # the RF step, where the runaway is injected


@pytest.fixture(scope="module")
def real_sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A store with real sessions (run_protocol_file, simulated devices): outcome -> id."""
    from devicectl.session.api import run_protocol_file

    folder = tmp_path_factory.mktemp("summary")
    protocol = folder / "short.toml"
    protocol.write_text(SHORT_PROTOCOL, encoding="utf-8")
    db = folder / "records.sqlite"
    ids: dict[str, str] = {}
    done = run_protocol_file(protocol, operator_id="tech-ok", auto_confirm=True, db=str(db))
    ids[done.outcome] = done.session_id
    faulted = run_protocol_file(
        protocol,
        operator_id="tech-fault",
        auto_confirm=True,
        db=str(db),
        faults={"rf": ["runaway@5s"]},
    )
    ids[faulted.outcome] = faulted.session_id

    def abort_in_step_2(runner: SessionRunner, station: Station) -> None:
        if runner.current == 1 and not runner.finished:
            runner.abort("tech-abort")

    aborted = run_protocol_file(
        protocol,
        operator_id="tech-abort",
        auto_confirm=True,
        db=str(db),
        progress=abort_in_step_2,
        progress_every_ticks=1,
    )
    ids[aborted.outcome] = aborted.session_id
    assert set(ids) == {"complete", "fault", "aborted"}, ids
    return db, ids


@pytest.fixture
def real_store(tmp_path: Path, real_sessions: tuple[Path, dict[str, str]]) -> Iterator[RecordStore]:
    """A private copy of the real sessions' store, to edit."""
    import shutil

    db, _ = real_sessions
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(db, copy)
    with RecordStore.open(copy) as s:
        yield s


@pytest.mark.parametrize("outcome", ["complete", "fault", "aborted"])
def test_untouched_real_sessions_verify_with_their_summary_rows(
    real_store: RecordStore, real_sessions: tuple[Path, dict[str, str]], outcome: str
) -> None:
    sid = real_sessions[1][outcome]
    [result] = real_store.verify(sid)
    assert result.ok, result.describe()
    assert real_store.session(sid).outcome == outcome
    assert result.notes == (), result.describe()  # fully covered, and finished
    kinds = [e.kind for e in real_store.events(sid)]
    assert (kinds[0], kinds[-1]) == ("session_started", "session_ended")


SUMMARY_EDITS = {
    # name: (SQL on the faulted session's rows, what the verdict must say)
    "session outcome": (
        "UPDATE sessions SET outcome = 'complete' WHERE id = '{sid}'",
        ("session outcome is 'complete'", "session_ended", "'fault'"),
    ),
    "operator id": (
        "UPDATE sessions SET operator_id = 'tech-other' WHERE id = '{sid}'",
        ("session operator id is 'tech-other'", "session_started", "'tech-fault'"),
    ),
    "unattended flag": (
        "UPDATE sessions SET unattended = 0 WHERE id = '{sid}'",
        ("session unattended is False", "session_started", "True"),
    ),
    "protocol sha256": (
        "UPDATE sessions SET protocol_sha256 = '" + "0" * 64 + "' WHERE id = '{sid}'",
        ("session protocol sha256 is '" + "0" * 64 + "'", "session_started"),
    ),
    "protocol name": (
        "UPDATE sessions SET protocol_name = 'Other' WHERE id = '{sid}'",
        ("session protocol name is 'Other'", "'Summary check'"),
    ),
    "started at": (
        "UPDATE sessions SET started_at = '2020-01-01T00:00:00.000000+00:00' WHERE id = '{sid}'",
        ("session started at is '2020-01-01T00:00:00.000000+00:00'", "session_started"),
    ),
    "ended at": (
        "UPDATE sessions SET ended_at = '2099-01-01T00:00:00.000000+00:00' WHERE id = '{sid}'",
        ("session ended at is '2099-01-01T00:00:00.000000+00:00'", "session_ended"),
    ),
    "step outcome": (
        "UPDATE steps SET outcome = 'complete' WHERE session_id = '{sid}' AND step_index = 3",
        ("step 3 outcome is 'complete'", "step_ended", "'fault'"),
    ),
    "step result": (
        'UPDATE steps SET result = \'{{"moved":true,"zones_done":["forehead"]}}\''
        " WHERE session_id = '{sid}' AND step_index = 3",
        ("step 3 result is", "step_ended", "rf: skin rising"),
    ),
    "step kind": (
        "UPDATE steps SET kind = 'led' WHERE session_id = '{sid}' AND step_index = 3",
        ("step 3 kind is 'led'", "step_started", "'rf'"),
    ),
    "step title": (
        "UPDATE steps SET title = 'Nothing' WHERE session_id = '{sid}' AND step_index = 2",
        ("step 2 title is 'Nothing'", "step_started", "'Mask'"),
    ),
    "step ended": (
        "UPDATE steps SET ended_s = ended_s + 60 WHERE session_id = '{sid}' AND step_index = 3",
        ("step 3 ended s is", "step_ended"),
    ),
    "step deleted": (
        "DELETE FROM steps WHERE session_id = '{sid}' AND step_index = 2",
        ("step 2 is in the chain but has no row",),
    ),
    "step added": (
        "INSERT INTO steps VALUES ('{sid}', 9, 'manual', 'Extra', 'complete', 1.0, 2.0, NULL)",
        ("step 9 has a row but no chained step_started or step_ended event",),
    ),
}


@pytest.mark.parametrize("edit", list(SUMMARY_EDITS))
def test_an_edited_summary_row_fails_verify_naming_the_field(
    real_store: RecordStore, real_sessions: tuple[Path, dict[str, str]], edit: str
) -> None:
    sid = real_sessions[1]["fault"]
    statement, expected = SUMMARY_EDITS[edit]
    assert real_store.verify(sid)[0].ok
    _sql(real_store, statement.format(sid=sid))
    [result] = real_store.verify(sid)
    assert not result.ok, f"{edit}: still verifies after the edit"
    text = result.describe()
    for words in expected:
        assert words in text, text
    assert result.summary and not (result.edited or result.missing or result.out_of_order), text
    # the other sessions in the store are untouched and still verify
    others = [r for r in real_store.verify() if r.session_id != sid]
    assert len(others) == 2 and all(r.ok for r in others), [r.describe() for r in others]


def test_an_edited_outcome_fails_the_cli_verify_and_the_report(
    real_store: RecordStore, real_sessions: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from devicectl.cli import app
    from devicectl.report import render_report

    sid = real_sessions[1]["fault"]
    _sql(real_store, f"UPDATE sessions SET outcome = 'complete' WHERE id = '{sid}'")
    assert "RECORD DOES NOT VERIFY" in render_report(real_store, sid)
    db = real_store.engine.url.database
    assert db is not None
    log = tmp_path / "cli.jsonl"
    checked = CliRunner().invoke(
        app, ["--log-file", str(log), "records", "verify", sid[:8], "--db", db]
    )
    assert checked.exit_code == 1, checked.output
    assert "session outcome is 'complete'" in checked.output, checked.output


def test_an_edited_summary_row_is_found_in_an_export_too(
    real_store: RecordStore, real_sessions: tuple[Path, dict[str, str]]
) -> None:
    sid = real_sessions[1]["fault"]
    buf = io.StringIO()
    real_store.export_jsonl(sid, buf, include_traces=False)
    lines = buf.getvalue().splitlines()
    assert verify_jsonl(lines).ok
    session_line = json.loads(lines[0])
    session_line["operator_id"] = "tech-other"
    assert (
        "session operator id is 'tech-other'"
        in verify_jsonl([canonical_json(session_line), *lines[1:]]).describe()
    )
    step_lines = [json.loads(line) for line in lines if '"record":"step"' in line]
    step_lines[2]["outcome"] = "complete"
    edited = [lines[0], *(canonical_json(s) for s in step_lines), *lines[1 + len(step_lines) :]]
    assert "step 3 outcome is 'complete'" in verify_jsonl(edited).describe()


def test_records_written_before_the_summary_was_chained_verify_with_a_note(
    tmp_path: Path,
) -> None:
    """A store written by devicectl 0.1.0 before this change (tests/data, made by
    run_protocol_file at commit 3707408): its chains verify as before, and the verdict
    says the session and step rows are not covered; nothing fails for that reason."""
    import shutil

    legacy = Path(__file__).parent / "data" / "records-before-summary-chain.sqlite"
    copy = tmp_path / "legacy.sqlite"
    shutil.copyfile(legacy, copy)
    with RecordStore.open(copy) as store:
        results = store.verify()
        assert [store.session(r.session_id).outcome for r in results] == ["complete", "fault"]
        for result in results:
            assert result.ok, result.describe()
            assert any("not covered" in note for note in result.notes), result.notes
            assert "not covered" in result.describe()


def test_an_unclosed_session_verifies_as_unfinished_and_its_row_still_checked(
    store: RecordStore,
) -> None:
    """A session nobody closed (killed) has no session_ended event: its row may say
    running, then interrupted (with the end time mark_interrupted gives it), and it
    verifies with a note; an outcome claiming more, or another end time, does not."""
    sid = write_session(store, ticks=3, per_tick=2, outcome=None)  # never ended
    [running] = store.verify(sid)
    assert running.ok and any("still running" in n for n in running.notes), running.describe()
    assert "unfinished" in running.describe()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # a process that has ended
    dead.wait()
    _sql(
        store, f"UPDATE sessions SET owner_pid = {dead.pid} WHERE id = '{sid}'"
    )  # its process died
    assert store.mark_interrupted() == [sid]
    [interrupted] = store.verify(sid)
    assert interrupted.ok and any("interrupted" in n for n in interrupted.notes)
    _sql(store, f"UPDATE sessions SET ended_at = '2099-01-01T00:00:00+00:00' WHERE id = '{sid}'")
    [moved_end] = store.verify(sid)
    assert "session ended at is '2099-01-01T00:00:00+00:00'" in moved_end.describe()
    _sql(store, f"UPDATE sessions SET outcome = 'complete' WHERE id = '{sid}'")
    [claimed] = store.verify(sid)
    assert "session outcome is 'complete' but the chain has no session_ended event" in (
        claimed.describe()
    ), claimed.describe()


def test_store_begin_and_end_step_chain_their_rows(store: RecordStore) -> None:
    """The store's own step writes (no writer open) chain the step events too."""
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR, t_s=5.0)
    store.begin_step(sid, 1, "manual", "Cleanse", 5.0)
    store.end_step(sid, 1, "complete", 7.5, {"confirmed_by": OPERATOR})
    store.end_session(sid, "complete")
    kinds = [(e.seq, e.kind, e.t_s) for e in store.events(sid)]
    assert kinds == [
        (1, "session_started", 5.0),
        (2, "step_started", 5.0),
        (3, "step_ended", 7.5),
        (4, "session_ended", 7.5),  # at the loop time of the last event
    ]
    [step] = store.steps(sid)
    assert (step.outcome, step.started_s, step.ended_s) == ("complete", 5.0, 7.5)
    assert store.verify(sid)[0].ok
    _sql(store, f"UPDATE steps SET started_s = 4.0 WHERE session_id = '{sid}'")
    assert "step 1 started s is 4.0 but the chained step_started event (seq 2) says 5.0" in (
        store.verify(sid)[0].describe()
    )


def test_summary_rows_are_not_compared_with_a_broken_chain(store: RecordStore, sid: str) -> None:
    """An edited step event is named as such; the step row it made is not called wrong."""
    _sql(store, 'UPDATE events SET data = \'{"step":1,"outcome":"fault"}\' WHERE seq = 54')
    [result] = store.verify(sid)
    assert result.edited == (54,) and result.summary == ()
    assert any("not compared" in n for n in result.notes)
