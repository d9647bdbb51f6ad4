"""In simulated time the writer may hold whole ticks back to commit them together
(``RecordWriter.batch_ticks``); never a partial tick, and nothing is left waiting
when the loop goes quiet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devicectl.clock import SimClock
from devicectl.control.events import Event
from devicectl.records import RecordStore, RecordWriter
from devicectl.session.recorder import SIM_BATCH_TICKS, SessionRecorder
from devicectl.station import Station
from tests.records_scenario import OPERATOR


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    opened = RecordStore.open(str(tmp_path / "records.sqlite"))
    yield opened
    opened.close()


def test_batched_ticks_are_committed_whole_and_when_the_loop_goes_quiet(
    store: RecordStore,
) -> None:
    sid = store.begin_session(protocol_name="p", operator_id=OPERATOR)
    writer = RecordWriter(store, sid)
    writer.batch_ticks(10)
    for tick in range(1, 26):
        for i in range(3):
            writer.append_event(Event(tick * 0.05, "reading", "rf", {"tick": tick, "i": i}))
        writer.end_tick()
    writer.append_event(Event(1.3, "reading", "rf", {"tick": 26, "i": 0}))  # a partial tick
    assert writer.flush(timeout_s=30)  # the last 5 ticks go once nothing more comes
    assert writer.ticks_committed == 25
    assert 1 <= writer.commits <= 3
    writer.close("complete")
    kinds = [e.kind for e in store.events(sid)]
    assert kinds.count("reading") == 76  # close committed the partial tick too


def test_batch_ticks_needs_a_whole_tick(store: RecordStore) -> None:
    writer = RecordWriter(store, store.begin_session(protocol_name="p", operator_id=OPERATOR))
    with pytest.raises(ValueError):
        writer.batch_ticks(0)
    writer.close("complete")


class _Writer:
    error = None
    pending_ticks = 0

    def __init__(self) -> None:
        self.batched: list[int] = []

    def batch_ticks(self, ticks: int) -> None:
        self.batched.append(ticks)


@pytest.mark.parametrize(("real_time", "batched"), [(False, [SIM_BATCH_TICKS]), (True, [])])
def test_the_recorder_batches_in_simulated_time_only(real_time: bool, batched: list[int]) -> None:
    writer = _Writer()
    SessionRecorder(
        Station(SimClock()),
        writer,  # type: ignore[arg-type]
        step_index=lambda: None,
        on_record_lost=lambda why: None,
        real_time=real_time,
    )
    assert writer.batched == batched
