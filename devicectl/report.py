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

import base64
import html
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is a file
import matplotlib.pyplot as plt

from devicectl.control.limits import IPLLimits, RFLimits
from devicectl.control.site_dose import site_key
from devicectl.records.models import EventRecord, TracePoint, dig
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


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return (
        "<img alt='plot' src='data:image/png;base64,"
        + base64.b64encode(buf.getvalue()).decode()
        + "'>"
    )


def _xy(points: list[TracePoint]) -> tuple[list[float], list[float]]:
    """Times and values of the points that hold a valid reading."""
    kept = [(p.t_s, p.value) for p in points if p.value is not None]
    return [t for t, _ in kept], [v for _, v in kept]


def _series(points: list[TracePoint]) -> dict[tuple[str, str], list[TracePoint]]:
    out: dict[tuple[str, str], list[TracePoint]] = defaultdict(list)
    for p in points:
        if p.value is not None:
            out[(p.device, p.channel)].append(p)
    return out


def _rf_zones(events: list[EventRecord]) -> list[tuple[str, float, float]]:
    """(zone name, start, end) of every RF zone, from the recorded load commands and results."""
    zones: list[tuple[str, float, float]] = []
    current: tuple[str, float] | None = None
    for e in events:
        if e.device != "rf" or not isinstance(e.data, dict):
            continue
        if e.kind == "command" and e.data.get("action") == "load":
            current = (str(dig(e.data, "args", "zone", "name")), e.t_s)
        elif e.kind == "zone_result" and current is not None:
            zones.append((current[0], current[1], e.t_s))
            current = None
    return zones


def _site_rows(events: list[EventRecord]) -> list[list[Any]]:
    """Per RF site, its session totals as the last zone result on it recorded them.

    Dose belongs to the site (safety rule 8): a zone resumed after a fault, or
    treated again in a later step, adds to the same row.
    """
    sites: dict[str, list[Any]] = {}
    for e in events:
        if e.device != "rf" or e.kind != "zone_result":
            continue
        name = dig(e.data, "result", "name")
        if not isinstance(name, str):
            continue
        key = site_key(name)
        attempts = (sites[key][5] + 1) if key in sites else 1
        peak = dig(e.data, "result", "peak_c")
        prior_peak = sites[key][3] if key in sites else None
        if _is_number(prior_peak) and (not _is_number(peak) or prior_peak > peak):
            peak = prior_peak
        sites[key] = [
            sites[key][0] if key in sites else name,
            dig(e.data, "result", "site_held_s"),
            dig(e.data, "result", "site_time_at_target_s"),
            peak,
            dig(e.data, "result", "site_cem43"),
            attempts,
        ]
    return [
        [
            row[0],
            *(f"{v:.1f}" if _is_number(v) and not math.isnan(v) else "?" for v in row[1:4]),
            f"{row[4]:.2f}" if _is_number(row[4]) else "?",
            row[5],
        ]
        for row in sites.values()
    ]


def _rf_plots(points: list[TracePoint], events: list[EventRecord]) -> list[str]:
    """One panel per RF zone: both skin sensors against the target and the limits."""
    series = _series(points)
    limits = RFLimits()
    figures = []
    for name, start, end in _rf_zones(events):

        def window(channel: str, start: float = start, end: float = end) -> list[TracePoint]:
            return [p for p in series.get(("rf", channel), []) if start <= p.t_s <= end]

        s1, s2, target = window("skin1_c"), window("skin2_c"), window("target_c")
        if not s1:
            continue
        fig, ax = plt.subplots(figsize=(9, 3.0))
        shift = [
            ([p.t_s - start for p in pts], [p.value for p in pts if p.value is not None])
            for pts in (s1, s2)
        ]
        ax.plot(*shift[0], label="skin sensor 1")
        ax.plot(*shift[1], label="skin sensor 2", alpha=0.7)
        if target and target[0].value is not None:
            ax.axhline(target[0].value, color="green", linestyle="--", label="target")
        ax.axhline(limits.alarm_c, color="orange", linestyle=":", label=f"alarm {limits.alarm_c}")
        ax.axhline(limits.cutoff_c, color="red", linestyle=":", label=f"cut-off {limits.cutoff_c}")
        ax.set_xlabel("time in zone, s")
        ax.set_ylabel("degC")
        ax.set_title(f"RF zone {name}: skin temperature")
        ax.legend(loc="lower right", fontsize="small")
        figures.append(_png(fig))
    return figures


def _ipl_plot(events: list[EventRecord]) -> list[str]:
    pairs = [
        (dig(e.data, "record", "set_fluence_j_cm2"), dig(e.data, "record", "delivered_j_cm2"))
        for e in events
        if e.kind == "flash" and e.device == "ipl"
    ]
    # A flash whose payload was edited out of shape is left out (verify names it).
    kept = [(float(a), float(b)) for a, b in pairs if _is_number(a) and _is_number(b)]
    if not kept:
        return []
    set_f = [a for a, _ in kept]
    got = [b for _, b in kept]
    tol = IPLLimits().energy_tolerance
    fig, ax = plt.subplots(figsize=(9, 3.2))
    n = range(1, len(kept) + 1)
    ax.plot(n, got, "o", label="delivered (photodiode)")
    ax.plot(n, set_f, "-", color="green", label="set")
    ax.fill_between(
        n,
        [s * (1 - tol) for s in set_f],
        [s * (1 + tol) for s in set_f],
        color="green",
        alpha=0.1,
        label=f"+-{tol:.0%}",
    )
    ax.set_xlabel("flash")
    ax.set_ylabel("J/cm2")
    ax.set_title("IPL delivered fluence per flash")
    ax.legend(loc="lower right", fontsize="small")
    return [_png(fig)]


_ALARM_FIELDS = ("priority", "code", "message")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _led_plot(points: list[TracePoint]) -> list[str]:
    series = _series(points)
    dose = series.get(("led", "dose_j_cm2"), [])
    if not dose:
        return []
    irr = series.get(("led", "irradiance_mw_cm2"), [])
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(*_xy(dose), label="dose J/cm2")
    ax.set_xlabel("session time, s")
    ax.set_ylabel("J/cm2")
    ax2 = ax.twinx()
    ax2.plot(
        *_xy(irr),
        color="red",
        alpha=0.4,
        label="irradiance mW/cm2",
    )
    ax2.set_ylabel("mW/cm2")
    ax.set_title("LED dose over time")
    return [_png(fig)]


def _table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{classes[i]}'" if classes else ""
        body.append(
            f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


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
        _table(
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
    site_rows = _site_rows(events)
    if site_rows:
        parts.append("<h2>RF dose per site (whole session)</h2>")
        parts.append(
            _table(["site", "held s", "at target s", "peak degC", "CEM43", "attempts"], site_rows)
        )
    alarms = [
        [f"{e.t_s:.2f}", *(str(dig(e.data, "alarm", k) or "?") for k in _ALARM_FIELDS)]
        for e in events
        if e.kind == "alarm"
    ]
    parts.append("<h2>Alarms</h2>")
    if alarms:
        parts.append(
            _table(
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
        _table(
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
    plots = _rf_plots(points, events) + _ipl_plot(events) + _led_plot(points)
    parts.append("<h2>Plots</h2>")
    parts.extend(plots or ["<p>no traces recorded</p>"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>devicectl report {s.id[:8]}</title><style>{_CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )


def write_report(store: RecordStore, session_id: str, out: Path) -> Path:
    out.write_text(render_report(store, session_id), encoding="utf-8")
    return out
