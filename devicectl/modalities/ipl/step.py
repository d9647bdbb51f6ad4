"""The IPL step of a protocol file: one pass (filter, fluence, pulses, flashes).

Values are checked by :meth:`IPLPass.problems`; this module adds the file's
shape (a train of several pulses must say the delay between them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from devicectl.modalities.ipl.limits import IPLLimits, IPLPass
from devicectl.step_table import StepTable, field_of

KEYS: Final = (
    "kind",
    "title",
    "filter_nm",
    "fluence_j_cm2",
    "pulse_width_ms",
    "flashes",
    "pulse_count",
    "pulse_delay_ms",
)
# Rough-duration figures (progress display only): the charge time of
# docs/protocols/ipl.md (0.4 s + 1.6 s x fluence / 25).
CHARGE_BASE_S: Final = 0.4
CHARGE_FULL_S: Final = 1.6
CHARGE_FULL_J_CM2: Final = 25.0


@dataclass(frozen=True)
class IPLStep:
    """One IPL pass."""

    kind: ClassVar[str] = "ipl"
    title: str
    ipl_pass: IPLPass


def read_step(t: StepTable, lim: IPLLimits, memo: dict[str, Any]) -> IPLStep | None:
    """An :class:`IPLStep` from its table, or None with every problem recorded."""
    title = t.text("title", default="IPL")
    filter_nm = t.whole("filter_nm")
    fluence = t.number("fluence_j_cm2")
    width = t.number("pulse_width_ms")
    flashes = t.whole("flashes", default=1)
    count = t.whole("pulse_count", default=1)
    delay = t.number("pulse_delay_ms", default=0.0)
    if count is not None and 1 < count <= lim.pulse_count_max and not t.has("pulse_delay_ms"):
        t.field_problem(
            "pulse_delay_ms",
            f"is missing: a train of {count} pulses needs the delay between them "
            f"({lim.pulse_delay_min_ms}-{lim.pulse_delay_max_ms} ms)",
        )
    probe = IPLPass(
        lim.filters_nm[0] if filter_nm is None else filter_nm,
        lim.fluence_min_j_cm2 if fluence is None else fluence,
        lim.pulse_width_min_ms if width is None else width,
        1 if flashes is None else flashes,
        1 if count is None else count,
        0.0 if delay is None else delay,
    )
    lines = probe.problems(lim)
    skip: set[str] = set()
    if "pulse_count" in t.bad or any(field_of(p) == "pulse_count" for p in lines):
        skip.add("pulse_delay_ms")  # the delay's rule depends on a valid pulse count
    t.limit_lines(lines, frozenset(skip))
    if (
        title is None
        or filter_nm is None
        or fluence is None
        or width is None
        or flashes is None
        or count is None
        or delay is None
        or "pulse_delay_ms" in t.bad
    ):
        return None
    return IPLStep(title, IPLPass(filter_nm, fluence, width, flashes, count, delay))


def step_problems(step: IPLStep, lim: IPLLimits, memo: dict[str, Any]) -> list[str]:
    return step.ipl_pass.problems(lim)


def planned_s(step: IPLStep, lim: IPLLimits) -> float:
    """Per flash, the charge time or the minimum interval, whichever is longer."""
    p = step.ipl_pass
    charge_s = CHARGE_BASE_S + CHARGE_FULL_S * p.fluence_j_cm2 / CHARGE_FULL_J_CM2
    return p.flashes * max(lim.min_interval_s, charge_s)
