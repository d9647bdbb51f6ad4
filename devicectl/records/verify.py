"""Checking a session's record: its hash chain, and its summary rows against the chain.

:func:`verify_chain` works on the rows as stored (no database needed), so the
same check runs on SQLite, PostgreSQL or an export. :func:`verify_record` adds
the check of the session and step rows (see :mod:`devicectl.records.summary`):
every verify (``RecordStore.verify``, ``records verify``, the report's banner,
``verify_jsonl``) goes through it.

What it guarantees to find, and how it names it:
- an event whose stored fields no longer produce its stored hash: ``EDITED`` at
  that seq (unless the fields produce the hash *at another seq*, see below);
- an event edited and re-hashed: its successor no longer links to it, so
  ``EDITED`` at that seq; for the last event the session head (``head_seq``,
  ``head_hash``, written in the same transaction as the events) catches it;
- deleted events, anywhere including the end: ``MISSING`` with the range;
- events swapped or renumbered (a row whose fields hash correctly at another
  seq, tried within 16 of its place and among the other failing rows):
  ``OUT_OF_ORDER`` naming the event's true seq and where it is stored.

What :func:`verify_record` adds (``SUMMARY`` problems, one per disagreeing
field, naming the row, the field, both values and the event's seq):
- a session row whose outcome, operator id, unattended flag, protocol name or
  sha256, station, software version, start or end time differs from its
  chained ``session_started``/``session_ended`` event, or that says it ended
  (complete, fault, aborted) when no ``session_ended`` event was chained;
- a step row whose kind, title, outcome, start, end or result differs from what
  its chained ``step_started``/``step_ended`` events imply, a step row with no
  such event, or a chained step with no row.
They are compared only when the chain verifies (else the chain's problems are
the verdict, and a note says the rows were not compared). A session that was
never closed (killed) verifies, with a note that it is unfinished. A record
written before the summary was chained (no ``session_started`` event) verifies
on its chain alone, with a note that its rows are not covered: it is not failed
for lacking what it could not have.

What :func:`verify_record` adds for the traces (``TRACE`` problems, naming the
block by its ``trace_block`` event's seq and time range, and the device and
channel), for records whose ``session_started`` event states ``trace_scheme``:
every stored trace row belongs to the block whose range holds its ``t_s``
(``last_t_s`` of the previous block < ``t_s`` <= its own ``last_t_s``); per
device and channel, more rows than chained are ``inserted``, fewer ``deleted``,
as many with another digest ``edited``. Rows after the last block are inserted
ones in a session that was closed (it has ``session_ended``); in one that was
not (killed), they are what the writer had not yet stated, and a note says so.
A record older than the trace blocks (no ``trace_scheme``) verifies with a note
that its traces are not covered. Traces are compared only when the chain verifies.

An attacker who rewrites every event after some point *and* the session head
can make a consistent chain (and so, for example, drop a ``session_ended``
event and call the session ``interrupted``); anchor ``head_hash`` outside the
database (print it, export it) when that matters.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from devicectl.records.chain import (
    CHAIN_SCHEME,
    TRACE_BLOCK,
    TRACE_BLOCK_DEVICE,
    TRACE_SCHEME,
    event_hash,
    genesis_hash,
    recanonicalize,
    trace_digest,
    trace_row_json,
)
from devicectl.records.models import (
    EventRecord,
    RecordSource,
    SessionSummary,
    StepRecord,
    TracePoint,
)
from devicectl.records.summary import (
    SESSION_DEVICE,
    SESSION_ENDED,
    SESSION_STARTED,
    check_summary,
)

SUMMARY_NOT_COMPARED_NOTE = (
    "session and step rows not compared with the chain: the chain itself does not verify"
)
TRACES_NOT_COMPARED_NOTE = (
    "trace rows not compared with their blocks: the chain itself does not verify"
)
TRACES_NOT_COVERED_NOTE = (
    "traces not covered: this record was written before its trace rows were chained "
    "(no trace_scheme in session_started); only its events are verified"
)
TRACES_NOT_GIVEN_NOTE = "trace rows not checked: this export does not hold them"

_WINDOW = 16
_MAX_CROSS = 256


class ProblemKind(enum.Enum):
    EDITED = "edited"
    MISSING = "missing"
    OUT_OF_ORDER = "out of order"
    HEAD_MISMATCH = "head mismatch"
    UNKNOWN_SCHEME = "unknown chain scheme"
    SUMMARY = "summary row does not match the chain"
    TRACE = "trace rows do not match their chained block"


@dataclass(frozen=True)
class Problem:
    """One finding; ``seq``..``end_seq`` (inclusive) is the event or range it names."""

    kind: ProblemKind
    seq: int
    end_seq: int
    detail: str

    def __str__(self) -> str:
        if self.kind is ProblemKind.SUMMARY:  # the detail names the row, field and seq
            return f"{self.kind.value}: {self.detail}"
        if self.kind is ProblemKind.TRACE:  # "trace block seq N (t a-b s): device channel: ..."
            return self.detail
        where = f"seq {self.seq}" if self.seq == self.end_seq else f"seq {self.seq}-{self.end_seq}"
        return f"{where} {self.kind.value}: {self.detail}"


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one session: ``ok`` or the list of problems, by seq.

    ``notes`` say what an ``ok`` does not cover (an unfinished session, a record
    whose summary rows predate the chained summary); they never make it fail.
    """

    session_id: str
    events: int  # rows stored
    head_seq: int  # what the session says was committed
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()
    trace_blocks: int = 0  # chained trace_block events whose rows were checked
    trace_rows: int = 0  # trace rows those blocks cover (checked against their digests)

    @property
    def ok(self) -> bool:
        return not self.problems

    def _seqs(self, kind: ProblemKind) -> tuple[int, ...]:
        out: list[int] = []
        for p in self.problems:
            if p.kind is kind:
                out.extend(range(p.seq, p.end_seq + 1))
        return tuple(out)

    @property
    def edited(self) -> tuple[int, ...]:
        return self._seqs(ProblemKind.EDITED)

    @property
    def missing(self) -> tuple[int, ...]:
        return self._seqs(ProblemKind.MISSING)

    @property
    def out_of_order(self) -> tuple[int, ...]:
        return self._seqs(ProblemKind.OUT_OF_ORDER)

    @property
    def summary(self) -> tuple[Problem, ...]:
        """The session- and step-row disagreements with the chain."""
        return tuple(p for p in self.problems if p.kind is ProblemKind.SUMMARY)

    @property
    def traces(self) -> tuple[Problem, ...]:
        """The trace blocks whose rows disagree with their chained digests."""
        return tuple(p for p in self.problems if p.kind is ProblemKind.TRACE)

    def coverage(self) -> str:
        """What an ok verdict covers, e.g. ``events chain verified (120 events); 3 trace
        blocks / 1,200 trace rows covered``."""
        text = f"events chain verified ({self.events} events)"
        if self.trace_blocks:
            text += f"; {self.trace_blocks} trace blocks / {self.trace_rows} trace rows covered"
        return text

    def describe(self) -> str:
        """One line when ok (then one per note), else one line per problem after a heading."""
        if self.ok:
            lines = [f"session {self.session_id}: ok ({self.coverage()})"]
        else:
            lines = [f"session {self.session_id}: {len(self.problems)} problem(s)"]
            lines += [f"  {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _canonical(data: str) -> str | None:
    try:
        return recanonicalize(data)
    except (ValueError, TypeError):
        return None


def _hash_at(row: EventRecord, data: str, seq: int) -> str:
    return event_hash(
        row.prev_hash,
        seq,
        row.t_s,
        row.wall_at,
        row.kind,
        row.device,
        row.step_index,
        row.operator_id,
        data,
    )


def verify_chain(
    session_id: str,
    rows: Sequence[EventRecord],
    *,
    head_seq: int,
    head_hash: str,
    scheme: str = CHAIN_SCHEME,
) -> VerifyResult:
    """Check one session's stored events (any order) against its chain and head."""
    problems: list[Problem] = []

    def add(kind: ProblemKind, seq: int, detail: str, end_seq: int | None = None) -> None:
        problems.append(Problem(kind, seq, seq if end_seq is None else end_seq, detail))

    if scheme != CHAIN_SCHEME:
        add(ProblemKind.UNKNOWN_SCHEME, 0, f"{scheme!r} is not {CHAIN_SCHEME!r}")
        return VerifyResult(session_id, len(rows), head_seq, tuple(problems))

    ordered = sorted(rows, key=lambda r: r.seq)
    stored = {r.seq for r in ordered}
    canon = [_canonical(r.data_json) for r in ordered]

    # 1. Which rows hash correctly at their own seq.
    true_seq: dict[int, int] = {}  # stored seq -> seq its fields hash at
    failing: list[int] = []  # indexes into ordered
    for i, row in enumerate(ordered):
        data = canon[i]
        if data is not None and _hash_at(row, data, row.seq) == row.hash:
            true_seq[row.seq] = row.seq
        else:
            failing.append(i)

    # 2. A failing row may be a moved one: try nearby seqs and the other failing places.
    last_claimed = max([head_seq, *stored], default=0)
    gaps = [s for s in range(1, last_claimed + 1) if s not in stored]
    cross = [ordered[i].seq for i in failing] if len(failing) <= _MAX_CROSS else []
    cross += gaps if len(gaps) <= _MAX_CROSS else []
    edited_rows: list[EventRecord] = []
    for i in failing:
        row, data = ordered[i], canon[i]
        if data is None:
            add(ProblemKind.EDITED, row.seq, "data is not valid JSON")
            edited_rows.append(row)
            continue
        near = [row.seq + d for d in range(-_WINDOW, _WINDOW + 1) if d]
        found = next(
            (
                s
                for s in dict.fromkeys(near + cross)
                if s > 0 and _hash_at(row, data, s) == row.hash
            ),
            None,
        )
        if found is None:
            add(ProblemKind.EDITED, row.seq, "fields do not match the event's hash")
            edited_rows.append(row)
        else:
            true_seq[row.seq] = found

    # 3. Place every intact event at its true seq; the rest are moved or copies.
    placed: dict[int, EventRecord] = {}
    by_seq = {r.seq: r for r in ordered}
    for stored_seq in sorted(true_seq, key=lambda s: (true_seq[s] != s, s)):
        seq = true_seq[stored_seq]
        if seq in placed:
            add(
                ProblemKind.OUT_OF_ORDER,
                seq,
                f"a copy of event {seq} is stored at seq {stored_seq}",
            )
            continue
        placed[seq] = by_seq[stored_seq]
        if seq != stored_seq:
            add(ProblemKind.OUT_OF_ORDER, seq, f"event {seq} is stored at seq {stored_seq}")

    # 4. Missing events: every seq up to the highest claimed is held by some row.
    covered = set(placed) | {r.seq for r in edited_rows}
    last = max([head_seq, *covered], default=0)
    run_start: int | None = None
    for s in range(1, last + 2):
        if s <= last and s not in covered:
            run_start = s if run_start is None else run_start
        elif run_start is not None:
            detail = "deleted" if s <= last else "deleted (the end of the chain)"
            add(ProblemKind.MISSING, run_start, detail, end_seq=s - 1)
            run_start = None

    # 5. Links: each intact event must follow the hash of its intact predecessor.
    genesis = genesis_hash(session_id)
    edited_seqs = {r.seq for r in edited_rows}
    for seq in sorted(placed):
        row = placed[seq]
        if seq == 1:
            if row.prev_hash != genesis:
                add(ProblemKind.EDITED, 1, "does not start from this session's genesis hash")
            continue
        pred = placed.get(seq - 1)
        if pred is None or (seq - 1) in edited_seqs:
            continue  # already reported as missing or edited
        if row.prev_hash != pred.hash:
            add(
                ProblemKind.EDITED,
                seq - 1,
                f"re-hashed after an edit: event {seq} no longer links to it",
            )

    # 6. The head, committed with the events, must point at the last one.
    if placed and max(placed) > head_seq:
        add(
            ProblemKind.HEAD_MISMATCH,
            head_seq + 1,
            f"events after the session head (head_seq {head_seq})",
            end_seq=max(placed),
        )
    head_row = placed.get(head_seq)
    if head_seq == 0 and head_hash != genesis:
        add(ProblemKind.HEAD_MISMATCH, 0, "empty session's head is not its genesis hash")
    elif head_row is not None and head_seq not in edited_seqs and head_row.hash != head_hash:
        add(
            ProblemKind.EDITED,
            head_seq,
            "the last event does not match the session head hash (event or head rewritten)",
        )

    unique = {(p.kind, p.seq, p.end_seq): p for p in problems}
    ordered_problems = sorted(unique.values(), key=lambda p: (p.seq, p.kind.value))
    return VerifyResult(session_id, len(rows), head_seq, tuple(ordered_problems))


def verify_session(source: RecordSource, session_id: str) -> VerifyResult:
    """The verdict on one session of ``source`` (a store's snapshot, an export ...)."""
    traces = source.iter_traces(session_id)
    return verify_record(
        source.session(session_id),
        list(source.iter_events(session_id)),
        source.steps(session_id),
        None if traces is None else list(traces),
    )


def verify_record(
    session: SessionSummary,
    rows: Sequence[EventRecord],
    steps: Sequence[StepRecord],
    traces: Sequence[TracePoint] | None = None,
) -> VerifyResult:
    """The whole verdict on one session: :func:`verify_chain`, then its rows against it.

    ``rows`` are the session's stored events (any order); ``traces`` its stored
    trace rows, checked against the chained ``trace_block`` events
    (:func:`check_traces`); None when they are not at hand (an export without
    them), which a note says.

    The rows are compared with the chained events only when the chain is intact:
    a chain that does not verify is no reference (an edited or deleted step event
    would make a true row look wrong), and the verdict already fails, naming the
    events; a note then says the rows were not compared.
    """
    result = verify_chain(
        session.id,
        rows,
        head_seq=session.events,
        head_hash=session.head_hash,
        scheme=session.chain,
    )
    if not result.ok:
        return replace(result, notes=(SUMMARY_NOT_COMPARED_NOTE, TRACES_NOT_COMPARED_NOTE))
    intact = sorted(rows, key=lambda r: r.seq)  # every row's data is JSON: it hashed
    has_started = any(r.kind == SESSION_STARTED and r.device == SESSION_DEVICE for r in rows)
    findings, notes = check_summary(session, steps, intact, has_session_started=has_started)
    problems = result.problems + tuple(
        Problem(ProblemKind.SUMMARY, f.seq, f.seq, f.detail) for f in findings
    )
    if traces is None:
        return replace(result, problems=problems, notes=(*notes, TRACES_NOT_GIVEN_NOTE))
    check = check_traces(intact, traces)
    return replace(
        result,
        problems=problems + check.problems,
        notes=(*notes, *check.notes),
        trace_blocks=check.blocks,
        trace_rows=check.rows,
    )


@dataclass(frozen=True)
class TraceCheck:
    """The traces' part of a verdict: problems, notes, and what was covered."""

    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    blocks: int
    rows: int


def _t(t_s: float) -> str:
    return str(round(t_s, 3))


def check_traces(events: Sequence[EventRecord], traces: Sequence[TracePoint]) -> TraceCheck:
    """Trace rows against the chained ``trace_block`` digests (see the module doc).

    ``events`` are the session's intact events in seq order.
    """
    started = next(
        (e for e in events if e.kind == SESSION_STARTED and e.device == SESSION_DEVICE), None
    )
    promised = started is not None and (
        isinstance(started.data, Mapping) and started.data.get("trace_scheme") == TRACE_SCHEME
    )
    if not promised:
        return TraceCheck((), (TRACES_NOT_COVERED_NOTE,) if traces else (), 0, 0)
    finished = any(e.kind == SESSION_ENDED and e.device == SESSION_DEVICE for e in events)
    blocks = [e for e in events if e.kind == TRACE_BLOCK and e.device == TRACE_BLOCK_DEVICE]
    problems: list[Problem] = []
    lasts: list[float] = []
    for block in blocks:
        last = block.data.get("last_t_s") if isinstance(block.data, Mapping) else None
        if not isinstance(last, int | float) or (lasts and last < lasts[-1]):
            problems.append(
                Problem(
                    ProblemKind.TRACE,
                    block.seq,
                    block.seq,
                    f"trace block seq {block.seq} is malformed or goes back in time",
                )
            )
            return TraceCheck(tuple(problems), (), 0, 0)
        lasts.append(float(last))
    # Each row to the first block whose last_t_s >= its t_s; beyond the last: the tail.
    stored: list[dict[tuple[str, str], list[str]]] = [{} for _ in blocks]
    tail: list[TracePoint] = []
    for row in traces:
        i = bisect.bisect_left(lasts, row.t_s)
        if i == len(blocks):
            tail.append(row)
            continue
        text = trace_row_json(row.t_s, row.step_index, row.value)
        stored[i].setdefault((row.device, row.channel), []).append(text)
    covered = good = 0
    for block, rows_by_channel in zip(blocks, stored, strict=True):
        data = block.data
        label = (
            f"trace block seq {block.seq} (t {_t(float(data.get('first_t_s', 0.0)))}-"
            f"{_t(float(data['last_t_s']))} s)"
        )
        chained: dict[tuple[str, str], tuple[int, str]] = {}
        for entry in data.get("channels") or []:
            if isinstance(entry, Mapping):
                key = (str(entry.get("device")), str(entry.get("channel")))
                chained[key] = (int(entry.get("rows", 0)), str(entry.get("sha256")))
        findings: list[str] = []
        for key in sorted(set(chained) | set(rows_by_channel)):
            want_rows, want_digest = chained.get(key, (0, ""))
            texts = rows_by_channel.get(key, [])
            name = f"{key[0]} {key[1]}"
            if len(texts) > want_rows:
                findings.append(f"{name}: {len(texts) - want_rows} row(s) inserted")
            elif len(texts) < want_rows:
                findings.append(f"{name}: {want_rows - len(texts)} row(s) deleted")
            elif trace_digest(texts) != want_digest:
                findings.append(f"{name}: row(s) edited ({len(texts)} rows, digest differs)")
        if findings:
            problems.append(
                Problem(ProblemKind.TRACE, block.seq, block.seq, f"{label}: {'; '.join(findings)}")
            )
        else:
            good += 1
            covered += sum(len(t) for t in rows_by_channel.values())
    notes: list[str] = []
    if tail:
        first, last = min(r.t_s for r in tail), max(r.t_s for r in tail)
        where = f"{len(tail)} trace row(s) at t {_t(first)}-{_t(last)} s"
        after = f"after the last trace block (t {_t(lasts[-1])} s)" if lasts else "and no block"
        if finished:
            seq = blocks[-1].seq if blocks else 0
            problems.append(
                Problem(
                    ProblemKind.TRACE,
                    seq,
                    seq,
                    f"{where} {after}: inserted (the session "
                    "was closed, so its writer chained every row it wrote)",
                )
            )
        else:
            notes.append(
                f"{where} {after} not covered: the session was not closed (its writer "
                "had not chained them yet)"
            )
    return TraceCheck(tuple(problems), tuple(notes), good, covered)
