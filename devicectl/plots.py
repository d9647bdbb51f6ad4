"""Plot helpers shared by the report's sections (matplotlib, Agg, PNG as base64).

Every figure closes after it is encoded; an image always carries alt text that
says what it shows, for a reader who cannot see it.
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
