"""A session as JSON lines, and the chain check of such a file.

Format (one canonical JSON object per line, keys sorted, NaN as ``"NaN"``):
1. ``{"record": "session", ...}``: the session row, including ``head_seq``,
   ``head_hash`` and ``chain``;
2. ``{"record": "step", ...}`` per step, by index;
3. ``{"record": "event", ...}`` per event, by seq, with ``prev_hash`` and ``hash``;
4. ``{"record": "trace", ...}`` per sample, by time (unless left out).

Guarantee: :func:`verify_jsonl` on an export gives the same verdict as
``RecordStore.verify`` on the store it came from (the chain, the session
and step lines against the chained events that state them, and the trace lines
against the chained ``trace_block`` digests when the export holds them), so an
exported record can be checked away from the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any

from devicectl.records.chain import canonical_json
from devicectl.records.summary import SessionRow, StepRow
from devicectl.records.verify import ChainRow, TraceRow, VerifyResult, verify_record

if TYPE_CHECKING:
    from devicectl.records.store import RecordStore


def export_jsonl(
    store: RecordStore, session_id: str, fh: IO[str], *, include_traces: bool = True
) -> int:
    """Write one session to ``fh``; returns the number of lines written."""
    sid = store.resolve(session_id)
    lines = 0

    def put(record: str, fields: dict[str, Any]) -> None:
        nonlocal lines
        fh.write(canonical_json({"record": record, **fields}) + "\n")
        lines += 1

    summary = store.session(sid)
    session_fields = asdict(summary)
    session_fields["head_seq"] = session_fields.pop("events")
    put("session", session_fields)
    for step in store.steps(sid):
        put("step", asdict(step))
    for event in store.iter_events(sid):
        put("event", asdict(event))
    if include_traces:
        for point in store.traces(sid):
            put("trace", {"session_id": sid, **asdict(point)})
    return lines


def verify_jsonl(lines: Iterable[str]) -> VerifyResult:
    """Check an export made by :func:`export_jsonl`: its chain and its summary lines."""
    session: dict[str, Any] | None = None
    rows: list[ChainRow] = []
    steps: list[StepRow] = []
    traces: list[TraceRow] = []
    for line in lines:
        if not line.strip():
            continue
        obj = json.loads(line)
        if obj.get("record") == "session":
            session = obj
        elif obj.get("record") == "step":
            steps.append(
                StepRow(
                    index=obj["index"],
                    kind=obj["kind"],
                    title=obj["title"],
                    outcome=obj["outcome"],
                    started_s=obj["started_s"],
                    ended_s=obj["ended_s"],
                    result=None if obj["result"] is None else canonical_json(obj["result"]),
                )
            )
        elif obj.get("record") == "event":
            rows.append(
                ChainRow(
                    seq=obj["seq"],
                    t_s=obj["t_s"],
                    wall_at=obj["wall_at"],
                    kind=obj["kind"],
                    device=obj["device"],
                    step_index=obj["step_index"],
                    operator_id=obj["operator_id"],
                    data=canonical_json(obj["data"]),
                    prev_hash=obj["prev_hash"],
                    hash=obj["hash"],
                )
            )
        elif obj.get("record") == "trace":
            value = obj["value"]
            traces.append(
                TraceRow(
                    t_s=obj["t_s"],
                    device=obj["device"],
                    channel=obj["channel"],
                    step_index=obj["step_index"],
                    value=None if value is None else float(value),
                )
            )
    if session is None:
        raise ValueError("not a devicectl session export: no session line")
    return verify_record(
        session["id"],
        rows,
        head_seq=session["head_seq"],
        head_hash=session["head_hash"],
        scheme=session["chain"],
        session=SessionRow(
            protocol_name=session["protocol_name"],
            protocol_sha256=session["protocol_sha256"],
            operator_id=session["operator_id"],
            unattended=session["unattended"],
            station=session["station"],
            software_version=session["software_version"],
            started_at=session["started_at"],
            ended_at=session["ended_at"],
            outcome=session["outcome"],
        ),
        steps=steps,
        # An export made without its traces has no trace lines: they are then not
        # checked (the verdict's note says so), rather than all called deleted.
        traces=traces or None,
    )
