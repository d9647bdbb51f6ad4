"""``devicectl report``: one self-contained HTML page for one session.

Everything comes from the durable record (never from a live controller): the
session row, the steps, operator actions, alarms, and plots drawn with
matplotlib from the sampled traces and the recorded events:

- RF: skin temperature (both sensors) against the target and the alarm and
  cut-off limits, one panel per zone step;
- IPL: delivered fluence per flash against the set fluence and its +-20 % band;
- LED: dose over time, with the irradiance.

The page opens with what a clinic's QA engineer signs: the outcome, the
operator, unattended or attended, every fault with the reading of the tick that
raised it, and exactly what ``records verify`` covered
(:meth:`~devicectl.records.verify.VerifyResult.coverage`, or its first problem).

Times are session time: seconds from the session's start (its
``session_started`` event), shown as mm:ss. The loop clock of a real-time
session is the machine's uptime, so its raw ``t_s`` never reaches the page;
the modality sections get events and traces already shifted.

Images are embedded as base64 PNG, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import html
from dataclasses import replace
from pathlib import Path
from typing import Any

from devicectl.modality import modalities
from devicectl.plots import is_number, mmss, table
from devicectl.records.models import EventRecord, StepRecord, TracePoint, dig
from devicectl.records.store import RecordStore
from devicectl.records.verify import VerifyResult

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f0f0; } .high { color: #b00; font-weight: bold; }
.medium { color: #a60; } .low { color: #068; } img { max-width: 100%; }
.ok { color: #070; } .bad { color: #b00; font-weight: bold; }
.signoff { border: 2px solid #444; padding: 0.5em 1em; margin: 1em 0; }
.signoff th { width: 14em; } .sign td { height: 2.2em; min-width: 14em; }
"""


_ALARM_FIELDS = ("priority", "code", "message")


def verify_banner(verify: VerifyResult) -> str:
    """What the page says was verified, exactly: the events chain (N events) and the trace
    blocks (N blocks / M rows), or ``RECORD DOES NOT VERIFY`` with its first problem.

    What an ok does not cover (an unfinished session, rows or traces older than
    their chaining) is said next to it, so a partly covered record never reads as
    a blanket "verified".
    """
    if verify.ok:
        text = f"<span class='ok'>{html.escape(verify.coverage())}</span>"
    else:
        first = verify.problems[0]
        more = len(verify.problems) - 1
        text = (
            "<span class='bad'>RECORD DOES NOT VERIFY: "
            f"{html.escape(str(first))}{f' (and {more} more problems)' if more else ''}</span>"
        )
    return text + "".join(f" ({html.escape(note)})" for note in verify.notes)


def session_origin(
    events: list[EventRecord], steps: tuple[StepRecord, ...], points: list[TracePoint]
) -> float:
    """The loop-clock time the session started: its ``session_started`` event, else
    (a record older than it) the earliest time the record holds."""
    for e in events:
        if e.kind == "session_started":
            return e.t_s
    times = [e.t_s for e in events[:1]] + [p.t_s for p in points[:1]]
    times += [st.started_s for st in steps if st.started_s is not None]
    return min(times) if times else 0.0


def _reading_text(reading: Any) -> str:
    """A recorded reading as ``key=value`` pairs (its own time left out)."""
    if not isinstance(reading, dict):
        return "-" if reading is None else str(reading)
    pairs = []
    for key, value in reading.items():
        if key == "t_s":
            continue
        pairs.append(f"{key}={value:g}" if is_number(value) else f"{key}={value}")
    return ", ".join(pairs) or "-"


def _value_limit(data: Any) -> str:
    value, limit = dig(data, "alarm", "value"), dig(data, "alarm", "limit")
    if is_number(value) and is_number(limit):
        return f"{value:g} (limit {limit:g})"
    return "-"


def _faults(events: list[EventRecord]) -> list[EventRecord]:
    """The alarms that latched a fault."""
    return [e for e in events if e.kind == "alarm" and dig(e.data, "alarm", "latches") is True]


def _signoff(
    s: Any, verify: VerifyResult, faults: list[EventRecord], duration: float | None
) -> list[str]:
    outcome_cls = "ok" if s.outcome == "complete" else "bad"
    rows = [
        ("Outcome", f"<b class='{outcome_cls}'>{html.escape(s.outcome)}</b>"),
        ("Protocol", html.escape(s.protocol_name)),
        ("Session", html.escape(s.id)),
        ("Operator", html.escape(s.operator_id)),
        (
            "Run",
            "unattended (the device steps ran by themselves; actions by <code>auto</code>)"
            if s.unattended
            else "attended (an operator confirmed each step)",
        ),
        (
            "Time (UTC)",
            f"{html.escape(s.started_at)} to {html.escape(s.ended_at or '-')}"
            + ("" if duration is None else f" ({mmss(duration)} session time)"),
        ),
        (
            "Station, software",
            f"{html.escape(s.station)}, devicectl {html.escape(s.software_version)}",
        ),
        ("Faults", str(len(faults)) if faults else "none"),
        ("Record verification", verify_banner(verify)),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    parts = ["<section class='signoff'><h2>Summary for sign-off</h2>", f"<table>{body}</table>"]
    if faults:
        parts.append("<h3>Faults, with the reading of the tick that raised each</h3>")
        parts.append(
            table(
                ["time", "device", "code", "value", "message", "reading"],
                [
                    [
                        mmss(e.t_s),
                        e.device,
                        str(dig(e.data, "alarm", "code") or "?"),
                        _value_limit(e.data),
                        str(dig(e.data, "alarm", "message") or "?"),
                        _reading_text(dig(e.data, "reading"))
                        + (
                            f" (reading error: {dig(e.data, 'reading_error')})"
                            if dig(e.data, "reading_error")
                            else ""
                        ),
                    ]
                    for e in faults
                ],
                ["high"] * len(faults),
            )
        )
    parts.append(
        "<table class='sign'><tr><th>Reviewed by (QA)</th><td></td><th>Date</th><td></td>"
        "<th>Signature</th><td></td></tr></table></section>"
    )
    return parts


def render_report(store: RecordStore, session_id: str) -> str:
    """The HTML page for ``session_id`` (a prefix is enough)."""
    sid = store.resolve(session_id)
    detail = store.session_detail(sid)
    raw_events = store.events(sid)
    raw_points = store.traces(sid)
    verify = store.verify(sid)[0]
    s = detail.session
    t0 = session_origin(raw_events, detail.steps, raw_points)
    events = [replace(e, t_s=e.t_s - t0) for e in raw_events]
    points = [replace(p, t_s=p.t_s - t0) for p in raw_points]
    end = next((e.t_s for e in events if e.kind == "session_ended"), None)
    parts = [
        f"<h1>{html.escape(s.protocol_name)}: session report</h1>",
        f"<p class='meta'>session {s.id} &middot; {s.events} events &middot; times are "
        "session time (mm:ss from the session's start)</p>",
        *_signoff(s, verify, _faults(events), end),
        "<h2>Steps</h2>",
        table(
            ["#", "kind", "title", "outcome", "start", "end", "duration"],
            [
                [
                    st.index,
                    st.kind,
                    st.title,
                    st.outcome,
                    "-" if st.started_s is None else mmss(st.started_s - t0),
                    "-" if st.ended_s is None else mmss(st.ended_s - t0),
                    "-"
                    if st.started_s is None or st.ended_s is None
                    else mmss(st.ended_s - st.started_s),
                ]
                for st in detail.steps
            ],
        ),
    ]
    # Each modality's section (step results and plots), for the devices the session used.
    used = {e.device for e in events} | {p.device for p in points}
    sections = [
        (mod, mod.report_parts(points, events, mod.limits()))
        for name, mod in modalities().items()
        if name in used
    ]
    sections = [(mod, body) for mod, body in sections if body]
    parts.append("<h2>Step results by device</h2>")
    if not sections:
        parts.append("<p>no device step ran</p>")
    for mod, body in sections:
        parts.append(f"<h3>{html.escape(mod.title)}</h3>")
        parts.extend(body)
    alarms = [
        [
            mmss(e.t_s),
            *(str(dig(e.data, "alarm", k) or "?") for k in _ALARM_FIELDS),
            _value_limit(e.data),
            _reading_text(dig(e.data, "reading")),
        ]
        for e in events
        if e.kind == "alarm"
    ]
    parts.append("<h2>Alarms</h2>")
    if alarms:
        parts.append(
            table(
                ["time", "priority", "code", "message", "value", "reading"],
                alarms,
                [row[1].lower() for row in alarms],
            )
        )
    else:
        parts.append("<p>none</p>")
    actions = [e for e in events if e.operator_id]
    parts.append("<h2>Operator actions</h2>")
    parts.append(
        table(
            ["time", "operator", "device", "what"],
            [
                [
                    mmss(e.t_s),
                    e.operator_id,
                    e.device,
                    e.data.get("action") or e.kind if isinstance(e.data, dict) else e.kind,
                ]
                for e in actions
            ],
        )
        if actions
        else "<p>none</p>"
    )
    if actions:  # long in a session of many flashes: folded, one click away
        parts[-1] = f"<details><summary>{len(actions)} actions</summary>{parts[-1]}</details>"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>devicectl report {s.id[:8]}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )


def write_report(store: RecordStore, session_id: str, out: Path) -> Path:
    out.write_text(render_report(store, session_id), encoding="utf-8")
    return out
