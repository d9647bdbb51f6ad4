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

An attacker who rewrites every event after some point *and* the session head
can make a consistent chain (and so, for example, drop a ``session_ended``
event and call the session ``interrupted``); anchor ``head_hash`` outside the
database (print it, export it) when that matters.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from devicectl.records.chain import CHAIN_SCHEME, event_hash, genesis_hash, recanonicalize
from devicectl.records.summary import (
    SESSION_DEVICE,
    SESSION_STARTED,
    ChainedEvent,
    SessionRow,
    StepRow,
    check_summary,
)

SUMMARY_NOT_COMPARED_NOTE = (
    "session and step rows not compared with the chain: the chain itself does not verify"
)

_WINDOW = 16
_MAX_CROSS = 256


class ProblemKind(enum.Enum):
    EDITED = "edited"
    MISSING = "missing"
    OUT_OF_ORDER = "out of order"
    HEAD_MISMATCH = "head mismatch"
    UNKNOWN_SCHEME = "unknown chain scheme"
    SUMMARY = "summary row does not match the chain"


@dataclass(frozen=True)
class ChainRow:
    """One stored event, fields exactly as in the database (``data`` is JSON text)."""

    seq: int
    t_s: float
    wall_at: str
    kind: str
    device: str
    step_index: int | None
    operator_id: str | None
    data: str
    prev_hash: str
    hash: str


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

    def describe(self) -> str:
        """One line when ok (then one per note), else one line per problem after a heading."""
        if self.ok:
            lines = [f"session {self.session_id}: ok ({self.events} events, chain intact)"]
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


def _hash_at(row: ChainRow, data: str, seq: int) -> str:
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
    rows: Sequence[ChainRow],
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
    canon = [_canonical(r.data) for r in ordered]

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
    edited_rows: list[ChainRow] = []
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
    placed: dict[int, ChainRow] = {}
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


def verify_record(
    session_id: str,
    rows: Sequence[ChainRow],
    *,
    head_seq: int,
    head_hash: str,
    scheme: str,
    session: SessionRow,
    steps: Sequence[StepRow],
) -> VerifyResult:
    """The whole verdict on one session: :func:`verify_chain`, then its rows against it.

    The rows are compared with the chained events only when the chain is intact:
    a chain that does not verify is no reference (an edited or deleted step event
    would make a true row look wrong), and the verdict already fails, naming the
    events; a note then says the rows were not compared.
    """
    result = verify_chain(session_id, rows, head_seq=head_seq, head_hash=head_hash, scheme=scheme)
    if not result.ok:
        return replace(result, notes=(SUMMARY_NOT_COMPARED_NOTE,))
    intact = [
        ChainedEvent(r.seq, r.t_s, r.wall_at, r.kind, r.device, json.loads(r.data))
        for r in sorted(rows, key=lambda r: r.seq)
    ]  # every row's data parsed when it hashed (verify_chain checked it is JSON)
    has_started = any(r.kind == SESSION_STARTED and r.device == SESSION_DEVICE for r in rows)
    findings, notes = check_summary(session, steps, intact, has_session_started=has_started)
    problems = result.problems + tuple(
        Problem(ProblemKind.SUMMARY, f.seq, f.seq, f.detail) for f in findings
    )
    return replace(result, problems=problems, notes=tuple(notes))
