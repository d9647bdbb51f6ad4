"""A session's outcome in words: each step's result and each treated site's dose.

One implementation for every place that shows an outcome (the run summary of
``devicectl run``, the console at the end of a session, the station's session
view), so they never disagree. A step's result is its modality's
``summary_line`` (a manual step: who confirmed it); a site's dose is what the
devices that keep a site ledger (safety rule 8) hold for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from devicectl.modality import modalities


def step_result(kind: str, outcome: str, detail: Mapping[str, Any]) -> str:
    """A step's result in one or more lines; "" for a step that never ran."""
    if outcome == "pending":
        return ""
    if detail.get("confirmed_by"):
        return f"confirmed by {detail['confirmed_by']}"
    mod = modalities().get(kind)
    return mod.summary_line(detail) if mod is not None else ""


def site_totals(controllers: Iterable[Any]) -> list[dict[str, Any]]:
    """Dose per treated site (CEM43, time at target, hold, peak), from every
    controller that keeps a site ledger, in the order the sites were first treated."""
    totals: list[dict[str, Any]] = []
    for controller in controllers:
        sites = getattr(controller, "sites", None)
        if sites is not None:
            totals += [site.as_dict() for site in sites.totals()]
    return totals


def session_ended_s(runner: Any) -> float | None:
    """When a finished session's last step ended (None while it runs)."""
    if not runner.finished:
        return None
    ended = [s.ended_s for s in runner.steps if s.ended_s is not None]
    return float(max(ended)) if ended else None
