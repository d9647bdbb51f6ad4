"""kill -9 during a device step: the record opens, verifies, and holds every committed tick.

A real child process (``sys.executable -c``) writes a session tick by tick and
prints each tick number once its writer has committed it. The parent SIGKILLs
it mid-run, then opens the store as the next start would.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devicectl.records import RecordStore
from tests.records_scenario import REPO, start_child

PER_TICK = 8


def _read_until_committed(
    child: subprocess.Popen[str], ticks: int, deadline_s: float
) -> tuple[str, int]:
    assert child.stdout is not None
    sid, committed = "", 0
    end = time.monotonic() + deadline_s
    while committed < ticks:
        line = child.stdout.readline()
        if not line:
            stderr = child.stderr.read() if child.stderr else ""
            pytest.fail(f"child ended early (rc={child.poll()}):\n{stderr}")
        word, _, value = line.strip().partition(" ")
        if word == "session":
            sid = value
        elif word == "committed":
            committed = int(value)
        assert time.monotonic() < end, "child too slow to commit"
    return sid, committed


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_kill_9_mid_step_loses_at_most_the_tick_in_flight(tmp_path: Path) -> None:
    db = tmp_path / "chair.sqlite"
    RecordStore.open(db).close()  # schema in place, so the child starts writing at once
    child = start_child(str(db), ticks=0, per_tick=PER_TICK, sleep_s=0.001)
    try:
        sid, committed = _read_until_committed(child, ticks=40, deadline_s=30)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert child.stdout is not None
    for line in child.stdout.read().splitlines():  # lines written before the kill
        word, _, value = line.partition(" ")
        if word == "committed":
            committed = max(committed, int(value))

    with RecordStore.open(db) as store:  # the next start
        [result] = store.verify(sid)
        assert result.ok, result.describe()
        assert "unfinished" in result.describe()  # ok, and said to be not closed
        stored = store.events(sid)
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
        assert result.head_seq == len(stored)
        # session_started (by begin_session) and step_started come first; the rest
        # are the ticks' events, and no session_ended: nobody closed it
        assert [e.kind for e in stored[:2]] == ["session_started", "step_started"]
        events = stored[2:]
        assert len(events) >= committed * PER_TICK
        # every tick in the store is whole: a tick is one transaction
        per_tick = collections.Counter(e.data["tick"] for e in events)
        assert set(per_tick.values()) == {PER_TICK}
        assert sorted(per_tick) == list(range(1, len(per_tick) + 1))
        assert len(per_tick) >= committed
        assert {e.step_index for e in events} == {1}
        [step] = store.steps(sid)
        assert step.outcome == "running"  # killed during the device step
        assert store.session(sid).outcome == "running"

        assert store.mark_interrupted() == [sid]
        summary = store.session(sid)
        assert summary.outcome == "interrupted"
        assert summary.ended_at == events[-1].wall_at
        assert store.verify(sid)[0].ok


def test_a_child_that_finishes_leaves_a_complete_session(tmp_path: Path) -> None:
    db = tmp_path / "chair.sqlite"
    RecordStore.open(db).close()
    child = start_child(str(db), ticks=30, per_tick=4, sleep_s=0)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.splitlines()[-1] == "done"
    with RecordStore.open(db) as store:
        [summary] = store.list_sessions()
        # 120 tick events, between session_started + step_started and step_ended +
        # trace_block (the step's trace rows) + session_ended
        assert summary.outcome == "complete" and summary.events == 120 + 5
        assert store.verify()[0].ok
        assert store.mark_interrupted() == []


def test_exit_without_close_still_commits_what_was_queued(tmp_path: Path) -> None:
    """A normal interpreter exit flushes open writers; the session stays running."""
    db = tmp_path / "chair.sqlite"
    RecordStore.open(db).close()
    code = (
        "import sys\n"
        "from devicectl.control.events import Event\n"
        "from devicectl.records import RecordStore, RecordWriter\n"
        "store = RecordStore.open(sys.argv[1])\n"
        "sid = store.begin_session(protocol_name='p', operator_id='op')\n"
        "writer = RecordWriter(store, sid)\n"
        "for tick in range(1, 301):\n"
        "    for i in range(5):\n"
        "        writer.append_event(Event(tick * 0.05, 'reading', 'rf', {'tick': tick}))\n"
        "    writer.end_tick()\n"
        "print(sid)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sid = done.stdout.strip()
    with RecordStore.open(db) as store:
        assert len(store.events(sid)) == 1 + 1500  # session_started, then the ticks
        assert store.verify(sid)[0].ok
        assert store.mark_interrupted() == [sid]
