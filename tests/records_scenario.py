"""Shared pieces of the record-store tests: a scripted session and a writer child process.

``child_main`` is what the durability and PostgreSQL tests run in a separate
interpreter (``sys.executable -c``), like a controller at a chair: it opens the
store, begins a session and a device step, then writes ``per_tick`` events and
one trace sample per tick, calling ``end_tick`` each time. It prints
``session <id>`` first and ``committed <n>`` from the writer thread after each
commit, so the parent knows exactly what is durable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.records import RecordStore, RecordWriter

REPO = Path(__file__).resolve().parents[1]
OPERATOR = "tech-17"


def tick_events(tick: int, per_tick: int, t_s: float) -> list[Event]:
    """The events of one tick: readings, a state change, now and then an alarm."""
    out = [
        Event(t_s, "reading", "rf", {"tick": tick, "i": i, "skin_c": 33.0 + 0.01 * tick})
        for i in range(per_tick - 1)
    ]
    if tick % 25 == 0:
        alarm = Alarm("rf", "RF-T-HIGH", AlarmPriority.HIGH, "skin 43.2 > 43.0", True, 43.2, 43.0)
        out.append(Event(t_s, "alarm", "rf", {"tick": tick, "alarm": alarm}))
    else:
        out.append(Event(t_s, "state", "rf", {"tick": tick, "state": "delivering"}))
    return out


def write_session(
    store: RecordStore,
    *,
    ticks: int,
    per_tick: int,
    outcome: str | None = "complete",
    operator_id: str = OPERATOR,
) -> str:
    """A whole session through a RecordWriter; returns its id."""
    sid = store.begin_session(protocol_name="facial-basic", operator_id=operator_id)
    writer = RecordWriter(store, sid)
    writer.begin_step(1, "rf", "RF zone cheek-left", 0.0)
    for tick in range(1, ticks + 1):
        t_s = tick * 0.05
        for event in tick_events(tick, per_tick, t_s):
            writer.append_event(event, step_index=1)
        writer.append_trace(t_s, "rf", "skin_c", 33.0 + 0.01 * tick, step_index=1)
        writer.end_tick()
    writer.append_event(Event(ticks * 0.05, "acknowledged", "rf", {"operator_id": operator_id}))
    writer.end_step(1, "complete", ticks * 0.05, {"zones": 1, "dose_cem43": 0.4})
    writer.end_tick()
    writer.close(outcome)
    return sid


def child_main(argv: list[str] | None = None) -> None:
    """``URL TICKS PER_TICK SLEEP_S``: TICKS 0 means write until killed."""
    url, ticks_s, per_tick_s, sleep_s = argv or sys.argv[1:]
    ticks, per_tick, sleep = int(ticks_s), int(per_tick_s), float(sleep_s)
    store = RecordStore.open(url)
    sid = store.begin_session(protocol_name="chair-test", operator_id=OPERATOR)
    print(f"session {sid}", flush=True)

    def committed(n: int) -> None:
        print(f"committed {n}", flush=True)

    writer = RecordWriter(store, sid, on_commit=committed)
    writer.begin_step(1, "rf", "RF zone forehead", 0.0)
    tick = 0
    while ticks == 0 or tick < ticks:
        tick += 1
        t_s = tick * 0.05
        for event in tick_events(tick, per_tick, t_s):
            writer.append_event(event, step_index=1)
        writer.append_trace(t_s, "rf", "skin_c", 33.0 + 0.01 * tick, step_index=1)
        writer.end_tick()
        if sleep > 0:
            time.sleep(sleep)
    writer.end_step(1, "complete", tick * 0.05, None)
    writer.end_tick()
    writer.close("complete")
    store.close()
    print("done", flush=True)


def start_child(url: str, ticks: int, per_tick: int, sleep_s: float) -> subprocess.Popen[str]:
    """Run :func:`child_main` in a fresh interpreter, stdout piped as text lines."""
    code = "from tests.records_scenario import child_main; child_main()"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(ticks), str(per_tick), str(sleep_s)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
