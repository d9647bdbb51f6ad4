"""CEM43 vectors from the issue: one minute held at each temperature."""

from __future__ import annotations

import pytest

from devicectl.modalities.rf.cem43 import CEM43Accumulator, cem43_rate_per_min


@pytest.mark.parametrize(
    ("temp_c", "expected"),
    [(41.0, 0.0625), (42.0, 0.25), (43.0, 1.0), (44.0, 2.0), (45.0, 4.0)],
)
def test_one_minute_held(temp_c: float, expected: float) -> None:
    acc = CEM43Accumulator()
    # 20 Hz samples for one minute, like the control loop
    for i in range(1201):
        acc.add(i * 0.05, temp_c)
    assert acc.dose == pytest.approx(expected, rel=1e-9)
    assert cem43_rate_per_min(temp_c) == pytest.approx(expected)


def test_pause_adds_nothing_for_the_gap() -> None:
    acc = CEM43Accumulator()
    acc.add(0.0, 43.0)
    acc.add(30.0, 43.0)
    acc.pause()
    acc.add(100.0, 43.0)  # 70 s gap while paused: not counted
    acc.add(130.0, 43.0)
    assert acc.dose == pytest.approx(1.0)


def test_reset_starts_a_new_zone() -> None:
    acc = CEM43Accumulator()
    acc.add(0.0, 44.0)
    acc.add(60.0, 44.0)
    acc.reset()
    assert acc.dose == 0.0
    acc.add(60.0, 42.0)
    acc.add(120.0, 42.0)
    assert acc.dose == pytest.approx(0.25)
