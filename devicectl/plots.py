"""Plot helpers shared by the report's sections (matplotlib, Agg, PNG as base64).

Every figure closes after it is encoded; an image always carries alt text that
says what it shows and what it found (the numbers), for a reader who cannot see
it. Time axes are session time (seconds from the session's start, shown as
mm:ss): the report hands the sections events and traces already shifted to it.
A plot with more than one line has a legend (:func:`legend`).
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is a file
import matplotlib.pyplot as plt

from devicectl.records.models import TracePoint


def png(fig: Any, alt: str = "plot") -> str:
    """``fig`` as an embedded ``<img>`` with ``alt`` text; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return (
        f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,"
        + base64.b64encode(buf.getvalue()).decode()
        + "'>"
    )


def mmss(seconds: float) -> str:
    """Session seconds as ``mm:ss`` (``h:mm:ss`` from an hour; ``-`` sign kept)."""
    sign = "-" if seconds < 0 else ""
    whole = int(abs(seconds) + 0.5)
    h, rest = divmod(whole, 3600)
    m, sec = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{sec:02d}" if h else f"{sign}{m:02d}:{sec:02d}"


def session_time_axis(ax: Any) -> None:
    """Label ``ax``'s x axis as session time, ticks in mm:ss."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: mmss(x)))
    ax.set_xlabel("session time, mm:ss")


def legend(*axes: Any, loc: str = "best") -> None:
    """One legend for every labelled line of ``axes`` (a twin axis included), on the
    first axis, whenever there is more than one."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if len(handles) > 1:
        axes[0].legend(handles, labels, loc=loc, fontsize="small")


def xy(points: list[TracePoint]) -> tuple[list[float], list[float]]:
    """Times and values of the points that hold a valid reading."""
    kept = [(p.t_s, p.value) for p in points if p.value is not None]
    return [t for t, _ in kept], [v for _, v in kept]


def series(points: list[TracePoint]) -> dict[tuple[str, str], list[TracePoint]]:
    """Points with a value, by (device, channel)."""
    out: dict[tuple[str, str], list[TracePoint]] = defaultdict(list)
    for p in points:
        if p.value is not None:
            out[(p.device, p.channel)].append(p)
    return out


def is_number(value: Any) -> bool:
    """A recorded payload value that is a real number (not a bool, not edited text)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    """An HTML table; ``classes`` gives each row a CSS class (alarm priority)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{classes[i]}'" if classes else ""
        body.append(
            f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
