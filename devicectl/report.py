"""``devicectl report``: one self-contained HTML page for one session.

Everything comes from the durable record (never from a live controller): the
session row, the steps, operator actions, alarms, and plots drawn with
matplotlib from the sampled traces and the recorded events:

- RF: skin temperature (both sensors) against the target and the alarm and
  cut-off limits, one panel per zone step;
- IPL: delivered fluence per flash against the set fluence and its +-20 % band;
- LED: dose over time, with the irradiance.

Images are embedded as base64 PNG, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import html
from pathlib import Path

from devicectl.modality import modalities
from devicectl.plots import table
from devicectl.records.models import dig
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


def render_report(store: RecordStore, session_id: str) -> str:
    """The HTML page for ``session_id`` (a prefix is enough)."""
    sid = store.resolve(session_id)
    detail = store.session_detail(sid)
    events = store.events(sid)
    points = store.traces(sid)
    verify = store.verify(sid)[0]
    s = detail.session
    chain = verify_banner(verify)
    parts = [
        f"<h1>{html.escape(s.protocol_name)}</h1>",
        f"<p class='meta'>session {s.id} &middot; operator {html.escape(s.operator_id)}"
        f"{' (unattended)' if s.unattended else ''} &middot; {s.started_at} to "
        f"{s.ended_at or '-'} &middot; outcome <b>{s.outcome}</b> &middot; {s.events} events "
        f"&middot; {chain}</p>",
        "<h2>Steps</h2>",
        table(
            ["#", "kind", "title", "outcome", "start s", "end s"],
            [
                [
                    st.index,
                    st.kind,
                    st.title,
                    st.outcome,
                    "-" if st.started_s is None else f"{st.started_s:.1f}",
                    "-" if st.ended_s is None else f"{st.ended_s:.1f}",
                ]
                for st in detail.steps
            ],
        ),
    ]
    alarms = [
        [f"{e.t_s:.2f}", *(str(dig(e.data, "alarm", k) or "?") for k in _ALARM_FIELDS)]
        for e in events
        if e.kind == "alarm"
    ]
    parts.append("<h2>Alarms</h2>")
    if alarms:
        parts.append(
            table(
                ["t s", "priority", "code", "message"],
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
            ["t s", "operator", "device", "what"],
            [
                [
                    f"{e.t_s:.2f}",
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
    # Each modality's section (results and plots), for the devices the session used.
    used = {e.device for e in events} | {p.device for p in points}
    sections = [
        (mod, mod.report_parts(points, events, mod.limits()))
        for name, mod in modalities().items()
        if name in used
    ]
    sections = [(mod, body) for mod, body in sections if body]
    parts.append("<h2>Devices</h2>")
    if not sections:
        parts.append("<p>no traces recorded</p>")
    for mod, body in sections:
        parts.append(f"<h3>{html.escape(mod.title)}</h3>")
        parts.extend(body)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>devicectl report {s.id[:8]}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )


def write_report(store: RecordStore, session_id: str, out: Path) -> Path:
    out.write_text(render_report(store, session_id), encoding="utf-8")
    return out
