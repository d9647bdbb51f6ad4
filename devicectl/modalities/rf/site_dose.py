"""Thermal dose per treatment site, for the whole session (safety rule 8).

A site is where the handpiece sits (forehead, left cheek), named by its zone.
Dose belongs to the site, not to the attempt: CEM43 and time at target add up
across pauses, faults, resumes and repeated steps, and the zone limits apply to
the total. A site at its limit is refused, never treated again.

Two zone names are one site when their :func:`~devicectl.modalities.rf.limits.zone_key`
is equal (NFKC, case folded, spaces collapsed): the same key the protocol-file
check of repeated zones uses. Names that would only match after removing
invisible or confusable characters are refused before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devicectl.modalities.rf.limits import zone_key as site_key

__all__ = ["SiteDose", "SiteDoseLedger", "site_key"]


@dataclass(frozen=True)
class SiteDose:
    """What one site has received so far in this session."""

    site: str  # the zone name as first given
    cem43: float
    time_at_target_s: float
    held_s: float
    peak_c: float
    attempts: int

    def as_dict(self) -> dict[str, float | int | str | None]:
        return {
            "site": self.site,
            "cem43": self.cem43,
            "time_at_target_s": self.time_at_target_s,
            "held_s": self.held_s,
            "peak_c": self.peak_c if math.isfinite(self.peak_c) else None,
            "attempts": self.attempts,
        }


class SiteDoseLedger:
    """Running totals per site; only the RF controller (loop thread) writes it."""

    def __init__(self) -> None:
        self._sites: dict[str, SiteDose] = {}

    def get(self, zone_name: str) -> SiteDose | None:
        return self._sites.get(site_key(zone_name))

    def record(
        self,
        zone_name: str,
        *,
        cem43_total: float,
        time_at_target_total_s: float,
        held_s: float,
        peak_c: float,
    ) -> SiteDose:
        """Close one attempt on ``zone_name``: totals replace, hold and peak accumulate."""
        key = site_key(zone_name)
        prior = self._sites.get(key)
        peak = peak_c if prior is None else _max(prior.peak_c, peak_c)
        entry = SiteDose(
            site=prior.site if prior is not None else zone_name,
            cem43=cem43_total,
            time_at_target_s=time_at_target_total_s,
            held_s=(prior.held_s if prior is not None else 0.0) + held_s,
            peak_c=peak,
            attempts=(prior.attempts if prior is not None else 0) + 1,
        )
        self._sites[key] = entry
        return entry

    def totals(self) -> list[SiteDose]:
        """Every site treated so far, in the order first treated."""
        return list(self._sites.values())


def _max(a: float, b: float) -> float:
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return max(a, b)
