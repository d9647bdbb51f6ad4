"""The record writer: the control loop hands it rows, a thread commits them per tick.

Loop side (``append_event``, ``append_trace``, ``begin_step``, ``end_step``,
``end_tick``): each call puts one tuple on a ``queue.SimpleQueue`` and returns;
it never touches the database, never blocks on a lock the writer holds, and
never raises because the database failed (see ``error``). Call them from one
thread (the loop's) so that a tick's rows stay together.

Writer side (a daemon thread):
- serialises payloads (:func:`~devicectl.records.chain.to_jsonable`), numbers
  events and hash-chains them after the session's head with a
  :class:`~devicectl.records.append.ChainHead` kept in memory (never read back),
  and commits them with :func:`~devicectl.records.append.append`: the one
  append path, the store's own events use it too;
- writes a step's row only from a chained ``step_started``/``step_ended`` event
  of device ``session`` (the runner's, or the ones ``begin_step``/``end_step``
  make), with :func:`~devicectl.records.summary.step_change` on the payload as
  chained, in the commit that holds that event: the row and the event that
  states it are durable together, and verify can recompute the row;
- commits in ONE transaction every row up to an ``end_tick`` marker, together
  with the session head (``head_seq``, ``head_hash``); a tick is never split
  over two commits. When the writer is behind, it may put several whole ticks in
  one commit, so there is at most one commit per tick. Rows after the last
  marker wait for their marker (or ``close``);
- chains the traces too: it keeps a digest of every trace row it queues for
  commit (:func:`~devicectl.records.chain.trace_digest`, per device and channel)
  and appends a chained ``trace_block`` event (device ``records``) stating the
  open block's time range, row count and per-channel digests: at the first tick
  end after a ``step_ended`` event, at a tick end at which the block spans
  ``TRACE_BLOCK_MAX_S`` (10 s) of session time, before a sample that would make
  it span more, and on ``close``. So a block never spans more than 10 s, and
  its event is chained no later than the commit after its rows; block ``k`` covers the rows with
  ``last_t_s`` of block ``k-1`` < ``t_s`` <= its own ``last_t_s``, which needs
  samples' ``t_s`` never to go back across a tick end (the loop clock is
  monotonic). All of it is writer-thread work: the loop only puts tuples;
- so a crash (kill -9, power loss with SQLite ``synchronous=FULL``) loses at
  most the ticks not yet committed: the tick in flight when the writer keeps up;
  ``pending_ticks`` says how far behind it is;
- on a database error it stops writing, keeps the first error in ``error``
  (a RecordError naming the db), calls ``on_error`` once, and drops what comes
  after (counted in ``dropped``). The runner must treat that as a fault: the
  record can no longer be kept (safety rule 6).

``close()`` commits everything queued, including a last partial tick, joins
the thread, raises the writer's error if there was one, and (with ``outcome``)
ends the session (``RecordStore.end_session``, which chains ``session_ended``).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import queue
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import structlog

from devicectl.control.events import Event
from devicectl.errors import RecordError
from devicectl.records.append import ChainHead, append
from devicectl.records.chain import (
    TRACE_BLOCK,
    TRACE_BLOCK_DEVICE,
    TRACE_BLOCK_MAX_S,
    trace_digest,
    trace_row_json,
)
from devicectl.records.models import EventRecord, TracePoint
from devicectl.records.store import RecordStore
from devicectl.records.summary import SESSION_DEVICE, STEP_ENDED, STEP_STARTED
from devicectl.records.wall import WallClock, utc_iso

_EVENT, _TRACE, _TICK, _CLOSE = range(4)

DEFAULT_MAX_BATCH_ROWS = 20_000
# With ``batch_ticks`` above 1 (simulated time only), what the writer holds back is
# committed anyway once no row has arrived for this long (a paused or finished loop).
BATCH_IDLE_COMMIT_S = 0.05
AT_EXIT_TIMEOUT_S = 5.0

_open_writers: weakref.WeakSet[RecordWriter] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """An interpreter that exits without closing a writer still commits what it queued.

    The session is not ended: it stays ``running`` and the next start marks it
    ``interrupted``, which is what happened.
    """
    for writer in list(_open_writers):
        with contextlib.suppress(RecordError):  # exiting anyway; the writer logged its error
            writer.close(timeout_s=AT_EXIT_TIMEOUT_S)


class RecordWriter:
    """Appends one session's record from the control loop without waiting on the database."""

    def __init__(
        self,
        store: RecordStore,
        session_id: str,
        *,
        wall_clock: WallClock | None = None,
        on_commit: Callable[[int], None] | None = None,
        on_error: Callable[[RecordError], None] | None = None,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
    ) -> None:
        """Start the writer thread for a ``running`` session (raises RecordError otherwise).

        ``on_commit(ticks_committed)`` and ``on_error(error)`` run on the writer
        thread: they must only hand the news on.
        """
        seq, prev_hash, outcome = store.head(session_id)
        if outcome != "running":
            raise RecordError(store.db, f"session {session_id} is {outcome}, not running")
        self.store = store
        self.session_id = session_id
        self.log = structlog.get_logger("devicectl.records").bind(
            device="records", session_id=session_id
        )
        self._wall = wall_clock or store.wall_clock
        self._on_commit = on_commit
        self._on_error = on_error
        self._max_batch_rows = max_batch_rows
        self._batch_ticks = 1  # see ``batch_ticks``
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._head = ChainHead(session_id, seq, prev_hash)  # kept in memory, never read back
        self._block = _TraceBlock()  # trace rows not yet stated by a trace_block event
        self._step_ended = False  # a step_ended event was chained since the last cut
        self._ticks_sent = 0
        self._ticks_committed = 0
        self._commits = 0
        self._dropped = 0
        self._error: RecordError | None = None
        self._closed = False
        self._done = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name=f"devicectl-records-{session_id[:8]}", daemon=True
        )
        self._thread.start()
        _open_writers.add(self)

    def batch_ticks(self, ticks: int) -> None:
        """Commit at least ``ticks`` whole ticks together (default 1: as soon as the
        writer has caught up). For simulated time only, where the loop ends ticks far
        faster than any database commits them: fewer commits cost the loop's process
        less. Whatever is held back is committed once no row has come for
        ``BATCH_IDLE_COMMIT_S``, and on ``close``. Never in real time: safety rule 6
        needs each tick committed before the next one ends."""
        if ticks < 1:
            raise ValueError("batch_ticks needs at least 1 tick")
        self._batch_ticks = ticks

    # -- loop side: put and return ------------------------------------------------------

    def append_event(
        self, event: Event, step_index: int | None = None, operator_id: str | None = None
    ) -> None:
        """Queue one event; ``operator_id`` defaults to ``event.data["operator_id"]`` if a str.

        The payload is serialised later, on the writer thread: do not mutate
        ``event.data`` after handing it over (the loop's events never are).
        """
        if self._closed:
            raise RecordError(self.store.db, f"writer of session {self.session_id} is closed")
        self._queue.put((_EVENT, event, step_index, operator_id, self._wall()))

    def append_trace(
        self,
        t_s: float,
        device: str,
        channel: str,
        value: float | None,
        step_index: int | None = None,
    ) -> None:
        """Queue one sample (NaN or None is stored as NULL: no valid reading)."""
        if self._closed:
            raise RecordError(self.store.db, f"writer of session {self.session_id} is closed")
        self._queue.put((_TRACE, t_s, device, channel, value, step_index))

    def begin_step(self, index: int, kind: str, title: str, started_s: float) -> None:
        """Queue a step start at loop time ``started_s`` (a step begun again is updated).

        It is a chained ``step_started`` event like the session runner's, and the
        step's row is written from it. Code whose events already include the
        runner's ``step_started`` (a SessionRecorder) must not call this too.
        """
        data = {"step": index, "kind": kind, "title": title}
        self.append_event(Event(started_s, STEP_STARTED, SESSION_DEVICE, data), step_index=index)

    def end_step(self, index: int, outcome: str, ended_s: float, result: Any = None) -> None:
        """Queue a step's outcome and result at loop time ``ended_s`` (a chained
        ``step_ended`` event, the row written from it; serialised on the writer thread)."""
        data = {"step": index, "outcome": outcome, "detail": result}
        self.append_event(Event(ended_s, STEP_ENDED, SESSION_DEVICE, data), step_index=index)

    def end_tick(self) -> int:
        """Mark the end of a tick: everything queued so far commits together. Returns its number."""
        if self._closed:
            raise RecordError(self.store.db, f"writer of session {self.session_id} is closed")
        self._ticks_sent += 1
        self._queue.put((_TICK, self._ticks_sent))
        return self._ticks_sent

    def subscriber(
        self,
        step_index: Callable[[], int | None] | None = None,
        *,
        record_ticks: bool = False,
    ) -> Callable[[Event], None]:
        """A ControlLoop subscriber: records every event, ends the tick on the loop's ``tick``.

        ``step_index()`` is asked (on the loop thread) for each event's step.
        The loop's own ``tick`` events are recorded only with ``record_ticks``.
        """

        def on_event(event: Event) -> None:
            if event.kind == "tick" and event.device == "loop":
                if record_ticks:
                    self.append_event(event, step_index() if step_index else None)
                self.end_tick()
            else:
                self.append_event(event, step_index() if step_index else None)

        return on_event

    # -- state, readable from any thread ----------------------------------------------------

    @property
    def error(self) -> RecordError | None:
        """The first database error; once set, nothing more is written."""
        return self._error

    @property
    def ticks_sent(self) -> int:
        return self._ticks_sent

    @property
    def ticks_committed(self) -> int:
        """Ticks durably in the store (every row up to that ``end_tick``)."""
        return self._ticks_committed

    @property
    def pending_ticks(self) -> int:
        """How many ended ticks are not committed yet: the writer's lag."""
        return self._ticks_sent - self._ticks_committed

    @property
    def commits(self) -> int:
        return self._commits

    @property
    def dropped(self) -> int:
        """Events and samples discarded after an error."""
        return self._dropped

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every ended tick is committed; False on timeout or error."""
        target = self._ticks_sent
        with self._done:
            self._done.wait_for(
                lambda: (
                    self._ticks_committed >= target
                    or self._error is not None
                    or not self._thread.is_alive()
                ),
                timeout_s,
            )
        return self._ticks_committed >= target and self._error is None

    def close(self, outcome: str | None = None, *, timeout_s: float | None = 30.0) -> None:
        """Commit everything queued, stop the thread, then end the session with ``outcome``.

        Raises the writer's RecordError if it failed (the session then stays
        ``running`` and is marked ``interrupted`` on the next start).
        """
        if not self._closed:
            self._closed = True
            self._queue.put((_CLOSE,))
        _open_writers.discard(self)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise RecordError(self.store.db, f"record writer did not finish within {timeout_s} s")
        if self._error is not None:
            raise self._error
        if outcome is not None:
            self.store.end_session(self.session_id, outcome)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close; while another exception is leaving, a writer error does not mask it."""
        if exc_type is None:
            self.close()
        else:
            with contextlib.suppress(RecordError):
                self.close()

    # -- writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        partial = _Batch()  # rows since the last end_tick
        complete = _Batch()  # whole ticks not yet committed
        closing = False
        while not closing:
            holding = self._batch_ticks > 1 and (
                complete.rows or complete.tick > self._ticks_committed
            )
            try:
                item = (
                    self._queue.get(timeout=BATCH_IDLE_COMMIT_S) if holding else self._queue.get()
                )
            except queue.Empty:  # the loop went quiet: what was held back is due now
                try:
                    self._commit(complete)
                    complete = _Batch()
                except Exception as exc:  # noqa: BLE001 - the writer thread must never die silently
                    self._dropped += complete.lost()
                    complete = _Batch()
                    self._fail(exc)
                continue
            op = item[0]
            if self._error is not None:
                if op in (_EVENT, _TRACE):
                    self._dropped += 1
                closing = op == _CLOSE
                continue
            try:
                if op == _TICK:
                    self._end_block_at_tick_end(partial, closing=False)
                    complete.take(partial, tick=item[1])
                elif op == _CLOSE:
                    self._end_block_at_tick_end(partial, closing=True)
                    complete.take(partial, tick=complete.tick)
                    closing = True
                else:
                    self._add(partial, item)
                due = complete.rows or complete.tick > self._ticks_committed
                if due and (
                    closing
                    or complete.rows >= self._max_batch_rows
                    or (
                        self._queue.empty()
                        and complete.tick - self._ticks_committed >= self._batch_ticks
                    )
                ):
                    self._commit(complete)
                    complete = _Batch()
            except Exception as exc:  # noqa: BLE001 - the writer thread must never die silently
                self._dropped += complete.lost() + partial.lost()
                complete, partial = _Batch(), _Batch()
                self._fail(exc)
        with self._done:
            self._done.notify_all()

    def _add(self, batch: _Batch, item: tuple[Any, ...]) -> None:
        op = item[0]
        if op == _EVENT:
            _, event, step_index, operator_id, wall_s = item
            if operator_id is None:
                candidate = event.data.get("operator_id")
                operator_id = candidate if isinstance(candidate, str) else None
            event_record = self._head.link(
                t_s=float(event.t_s),
                wall_at=utc_iso(wall_s),
                kind=str(event.kind),
                device=str(event.device),
                step_index=step_index,
                operator_id=operator_id,
                data=event.data,
            )
            batch.events.append(event_record)
            if event_record.kind == STEP_ENDED and event_record.device == SESSION_DEVICE:
                self._step_ended = True
        elif op == _TRACE:
            _, t_s, device, channel, value, step_index = item
            v = None if value is None else float(value)
            row = TracePoint(
                t_s=float(t_s),
                device=str(device),
                step_index=step_index,
                channel=str(channel),
                value=v if v is not None and math.isfinite(v) else None,
            )
            batch.traces.append(row)
            if self._block.rows and row.t_s - self._block.first_t_s > TRACE_BLOCK_MAX_S:
                # This sample would stretch the block past 10 s: the block ends before it.
                self._cut_block(batch)
            self._block.add(row)

    def _end_block_at_tick_end(self, batch: _Batch, *, closing: bool) -> None:
        """At a tick end: cut the open block if a step ended, it spans ``TRACE_BLOCK_MAX_S``,
        or the writer is closing."""
        block = self._block
        if closing or self._step_ended or block.last_t_s - block.first_t_s >= TRACE_BLOCK_MAX_S:
            self._step_ended = False
            self._cut_block(batch)

    def _cut_block(self, batch: _Batch) -> None:
        """Chain a ``trace_block`` event stating the open block into ``batch`` (none if empty)."""
        block = self._block
        if not block.rows:
            return
        self._block = _TraceBlock()
        event = Event(block.last_t_s, TRACE_BLOCK, TRACE_BLOCK_DEVICE, block.data())
        self._add(batch, (_EVENT, event, None, None, self._wall()))

    def _commit(self, batch: _Batch) -> None:
        if not batch.rows:  # a tick that recorded nothing is durable as it is
            self._ticks_done(batch)
            return
        with self.store.transaction() as conn:
            append(conn, self.session_id, batch.events, batch.traces)
        self._commits += 1
        self._ticks_done(batch)

    def _ticks_done(self, batch: _Batch) -> None:
        if batch.tick > self._ticks_committed:
            self._ticks_committed = batch.tick
        with self._done:
            self._done.notify_all()
        if self._on_commit is not None:
            try:
                self._on_commit(self._ticks_committed)
            except Exception as exc:  # noqa: BLE001 - a bad callback must not stop the record
                self.log.error("record_on_commit_failed", error=repr(exc))

    def _fail(self, exc: Exception) -> None:
        error = exc if isinstance(exc, RecordError) else self.store.error(exc)
        self._error = error
        self.log.error("record_write_failed", db=self.store.db, error=str(error))
        with self._done:
            self._done.notify_all()
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception as cb_exc:  # noqa: BLE001 - already failing; keep the first error
                self.log.error("record_on_error_failed", error=repr(cb_exc))


class _TraceBlock:
    """The digest state of the trace rows since the last ``trace_block`` event."""

    __slots__ = ("channels", "first_t_s", "last_t_s", "rows")

    def __init__(self) -> None:
        self.channels: dict[tuple[str, str], list[str]] = {}
        self.rows = 0
        self.first_t_s = math.inf
        self.last_t_s = -math.inf

    def add(self, row: TracePoint) -> None:
        key = (row.device, row.channel)
        text = trace_row_json(row.t_s, row.step_index, row.value)
        self.channels.setdefault(key, []).append(text)
        self.rows += 1
        t_s = row.t_s
        self.first_t_s = min(self.first_t_s, t_s)
        self.last_t_s = max(self.last_t_s, t_s)

    def data(self) -> dict[str, Any]:
        """The ``trace_block`` event's payload (docs/records.md gives its canonical form)."""
        return {
            "first_t_s": self.first_t_s,
            "last_t_s": self.last_t_s,
            "rows": self.rows,
            "channels": [
                {"device": d, "channel": c, "rows": len(texts), "sha256": trace_digest(texts)}
                for (d, c), texts in sorted(self.channels.items())
            ],
        }


class _Batch:
    """Rows for one commit, in queue order; ``tick`` is the last end_tick they include."""

    __slots__ = ("events", "tick", "traces")

    def __init__(self) -> None:
        self.events: list[EventRecord] = []  # linked after the writer's head, in seq order
        self.traces: list[TracePoint] = []
        self.tick = 0

    @property
    def rows(self) -> int:
        return len(self.events) + len(self.traces)

    def lost(self) -> int:
        """Events and samples in this batch (what a failed commit drops)."""
        return len(self.events) + len(self.traces)

    def take(self, other: _Batch, *, tick: int) -> None:
        """Move ``other``'s rows to the end of this batch; this batch now ends at ``tick``."""
        self.events += other.events
        self.traces += other.traces
        other.events, other.traces = [], []
        self.tick = max(self.tick, tick)
