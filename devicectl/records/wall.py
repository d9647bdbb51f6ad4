"""Wall time for the record: the one place in ``records`` that reads the real date.

The control loop's clock (``devicectl.clock``) is monotonic and may be simulated;
a record also needs *when* it happened in the world. Wall time is only ever
stored, never used for timing. Callers may inject their own ``WallClock``
(tests do, to get repeatable hashes).
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable

WallClock = Callable[[], float]
"""Seconds since the Unix epoch, UTC."""

system_wall_clock: WallClock = time.time


def utc_iso(epoch_s: float) -> str:
    """ISO 8601 UTC text with microseconds, e.g. ``2025-01-31T09:15:02.123456+00:00``."""
    return _dt.datetime.fromtimestamp(epoch_s, _dt.UTC).isoformat(timespec="microseconds")
