"""Simulated seconds per wall second: the RF demo and the full session.

Two workloads, each on in-process simulators in simulated time (a SimClock,
50 ms ticks), with the same controllers, supervisors, drivers, wire protocols
and simulators as a real session:

- ``rf-demo``: the five-zone RF treatment of ``devicectl.modalities.rf.demo.run_rf_demo``
  (about 1,040 simulated seconds). Target: 2,000x.
- ``pore-patrol`` (default): the whole ``protocols/pore-patrol.toml`` session
  as ``devicectl run --yes`` runs it: RF, IPL and LED on one loop, every device
  sampled and supervised every tick, the runner, and the hash-chained record
  written to a SQLite store by its writer thread (about 2,000 simulated
  seconds). Target: 3,000x.
- ``rf-wire`` (a ceiling, no target): only the RF driver's ``read()`` against
  the simulator, once per 50 ms of simulated time, for the demo's simulated
  duration, with output on at a steady 5 W as in a zone's hold (the
  simulator steps its physics finer while heating): no controller, supervisor
  or loop. No tick that samples a heating RF device over its wire protocol can
  be faster than this.
- ``wire-all`` (a ceiling, no target): the same for the full session's three
  devices: one ``read()`` each of the RF (output on at 5 W), IPL (idle) and
  LED (idle) drivers per 50 ms, for the full session's simulated duration. No
  tick of the full session, which samples all three every tick, can be faster.

Each workload runs once to warm up (imports, first-use caches), then
``--runs`` times; the figure is the best run, with the median beside it. The
last line is one JSON object with ``sim_s_per_wall_s``; the exit code is 1 when
the best run misses the workload's target.

    uv run python benchmarks/sim_speed.py [--workload NAME] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devicectl.clock import SimClock
from devicectl.logs import configure_logging
from devicectl.modalities.rf.demo import run_rf_demo
from devicectl.modality import modality
from devicectl.session.api import builtin_protocol, run_protocol_file
from devicectl.station import device_opener

DEMO_SIMULATED_S = 1040.0  # what the five-zone demo simulates


@dataclass(frozen=True)
class Run:
    simulated_s: float
    ticks: int
    ok: bool


@dataclass(frozen=True)
class Workload:
    describe: str
    target: float | None
    run: Callable[[Path, int], Run]


def _rf_demo(_: Path, __: int) -> Run:
    result = run_rf_demo()
    return Run(result.simulated_s, result.ticks, result.ok)


def _pore_patrol(folder: Path, index: int) -> Run:
    outcome = run_protocol_file(
        str(builtin_protocol("pore-patrol.toml")),
        operator_id="bench",
        auto_confirm=True,
        db=str(folder / f"records-{index}.sqlite"),
    )
    ticks = round(outcome.simulated_s / 0.05)
    return Run(outcome.simulated_s, ticks, outcome.outcome == "complete")


PORE_PATROL_SIMULATED_S = 1993.0  # what the full session simulates (about)


def _wire(kinds: tuple[str, ...], simulated_s: float) -> Run:
    """One ``read()`` per device per 50 ms simulated tick, RF output on at 5 W
    (the simulator steps its physics finer while heating), nothing else."""
    clock = SimClock()
    rf, *others = (
        device_opener(f"sim://{kind}?seed=7", clock, modality(kind).default_driver)()
        for kind in kinds
    )
    clock.sleep(1.5)  # every simulated device boots in 1 s
    for driver in (rf, *others):
        driver.clear_status()
    rf.set_power(5.0)
    rf.output_on()
    ticks = round(simulated_s / 0.05)
    on = True
    for _ in range(ticks):
        clock.sleep(0.05)
        on = rf.read().output_on and on
        for driver in others:
            driver.read()
    for driver in (rf, *others):
        driver.close()
    return Run(ticks * 0.05, ticks, on)  # output stayed on: the figure is the heating case


WORKLOADS = {
    "rf-demo": Workload("five-zone RF demo", 2000.0, _rf_demo),
    "pore-patrol": Workload("Pore Patrol session (RF, IPL, LED, record)", 3000.0, _pore_patrol),
    "rf-wire": Workload(
        "RF driver reads alone (a ceiling)", None, lambda _, __: _wire(("rf",), DEMO_SIMULATED_S)
    ),
    "wire-all": Workload(
        "RF, IPL and LED driver reads alone (a ceiling)",
        None,
        lambda _, __: _wire(("rf", "ipl", "led"), PORE_PATROL_SIMULATED_S),
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workload", choices=sorted(WORKLOADS), default="pore-patrol", help="what to run"
    )
    parser.add_argument("--runs", type=int, default=3, help="measured runs (default 3)")
    args = parser.parse_args()
    workload = WORKLOADS[args.workload]
    folder = Path(tempfile.mkdtemp(prefix="devicectl-sim-speed-"))
    configure_logging(log_file=folder / "bench.jsonl")
    workload.run(folder, 0)  # warm-up: imports, alembic, first-use caches
    ratios = []
    run = Run(0.0, 0, False)
    for index in range(1, args.runs + 1):
        start = time.perf_counter()
        run = workload.run(folder, index)
        wall_s = time.perf_counter() - start
        if not run.ok:
            print(f"{workload.describe} did not complete: the figure would mean nothing")
            return 2
        ratios.append(run.simulated_s / wall_s)
    best = max(ratios)
    median = statistics.median(ratios)
    us_per_tick = run.simulated_s / best / run.ticks * 1e6
    print(
        f"{workload.describe}: {run.simulated_s:.0f} simulated s, {run.ticks} ticks of 50 ms; "
        f"best {best:.0f}x, median {median:.0f}x over {len(ratios)} runs "
        f"({us_per_tick:.1f} wall us per tick); "
        + (f"target {workload.target:.0f}x" if workload.target else "no target")
    )
    met = workload.target is None or best >= workload.target
    print(
        json.dumps(
            {
                "workload": args.workload,
                "sim_s_per_wall_s": round(best, 1),
                "median_sim_s_per_wall_s": round(median, 1),
                "runs": len(ratios),
                "target": workload.target,
                "met": met,
            }
        )
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
