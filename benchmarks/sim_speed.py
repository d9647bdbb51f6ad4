"""Simulated seconds per wall second for the five-zone RF demo.

Runs the same code as ``devicectl demo`` (controller, supervisor, driver, wire
protocol, simulator) on a SimClock, a few times, and prints the best and the
median ratio measured in this run. The last line is one JSON object; the exit
code is 1 when the best run misses the target (2,000x).

    uv run python benchmarks/sim_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devicectl.demo import run_rf_demo
from devicectl.logs import configure_logging

TARGET_SIM_S_PER_WALL_S = 2000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="demo runs to measure (default 5)")
    args = parser.parse_args()
    configure_logging(log_file=Path(tempfile.mkdtemp()) / "bench.jsonl")
    ratios = []
    simulated_s = 0.0
    ticks = 0
    for _ in range(args.runs):
        start = time.perf_counter()
        result = run_rf_demo()
        wall_s = time.perf_counter() - start
        if not result.ok:
            print(
                "demo did not complete every zone: the figure would mean nothing", file=sys.stderr
            )
            return 2
        simulated_s, ticks = result.simulated_s, result.ticks
        ratios.append(simulated_s / wall_s)
    best = max(ratios)
    median = statistics.median(ratios)
    us_per_tick = simulated_s / best / ticks * 1e6 if ticks else float("nan")
    print(
        f"five-zone RF demo: {simulated_s:.0f} simulated s, {ticks} ticks of 50 ms; "
        f"best {best:.0f}x, median {median:.0f}x over {len(ratios)} runs "
        f"({us_per_tick:.1f} wall us per tick); target {TARGET_SIM_S_PER_WALL_S:.0f}x"
    )
    met = best >= TARGET_SIM_S_PER_WALL_S
    print(
        json.dumps(
            {
                "sim_s_per_wall_s": round(best, 1),
                "median_sim_s_per_wall_s": round(median, 1),
                "runs": len(ratios),
                "target": TARGET_SIM_S_PER_WALL_S,
                "met": met,
            }
        )
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
