"""Trip latency and peak skin temperature over seeded RF fault scenarios.

Each run is one RF station on a SimClock (``tests/rf_scenario.py``'s RFRig:
controller, supervisor, SCPI driver, wire protocol and the in-process RF
simulator ``sim://rf?seed=N&fault=...``), 50 ms ticks. A 42 degC zone starts
at about 1.3 s; one fault is injected at a seeded time between 2 s and 30 s,
so it falls in the ramp (before about 17 s) or in the hold, and never on a
tick boundary. The kinds cycle runaway / sensor_open / sensor_drift /
sensor_stuck, with seeded parameters (runaway gain 4-8; drift rate +-0.3 to
+-1.0 degC/s; sensor 1 or 2).

Definitions (all times on the simulated clock):

- *observable*: the first tick whose reading, as the controller received it
  (recorded by wrapping ``controller.sample``), violates a latching limit of
  ``RFLimits``, re-evaluated independently of the supervisor
  (``first_observable`` in ``tests/rf_scenario.py``, shared with the pty fault
  matrix ``tests/test_hil_fault_matrix.py``): a device
  fault status bit, an implausible or NaN sensor, the two sensors disagreeing
  by more than ``sensor_disagree_max_c``, the hotter one at ``cutoff_c``, the
  least-squares slope over ``rise_window_s`` (8 samples or more) above
  ``rise_max_c_per_s`` (a slope equal to the limit up to float rounding
  counts as over it: the supervisor's running sums round differently), the
  same slope above ``hot_rise_max_c_per_s`` with the hotter sensor at or
  above ``alarm_c``, or
  a sensor repeating one value for ``stuck_s`` while the device reports
  output on. A run whose trip this re-evaluation does not
  explain counts as unexplained (and fails the run).
- *off*: the time of the first ``(t, False, reason)`` entry of the
  simulator's ``output_log`` after the fault starts, whoever turned it off
  (for ``sensor_open`` the firmware itself does, before the host can see it,
  so that latency is negative).
- *latency*: (off - observable) / period. Target: at most 1 period plus one
  round trip in every run; the in-process simulator's round trip is 0
  simulated seconds, so the bound is 1.0 period.
- *peak*: the simulator's ``peak_skin_c`` (highest true surface temperature)
  after the run continues 3 s past the trip. Target: below 45.0 degC in
  every run.

Also printed, for context: detection (the tick the supervisor latched its
fault) and the time from fault injection to off. The last line is one JSON
object; the exit code is 1 when a target is missed in any run.

    uv run python benchmarks/trip_latency.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from rf_scenario import RFRig, first_observable  # the tests' rig, found through sys.path

from devicectl.control.loop import DEFAULT_PERIOD_S
from devicectl.devices import RFReading
from devicectl.logs import configure_logging
from devicectl.modalities.rf.controller import RFState

KINDS = ("runaway", "sensor_open", "sensor_drift", "sensor_stuck")
TARGET_PERIODS = 1.0  # one period plus one round trip; the in-process round trip is 0 s
PEAK_LIMIT_C = 45.0
AFTER_TRIP_S = 3.0  # keep running after the trip so the true peak is seen
FAULT_WINDOW_S = 20.0  # give up on a run this long after its fault starts


@dataclass
class Run:
    seed: int
    fault: str
    fault_s: float
    observable_s: float | None
    observed_limit: str | None
    detected_s: float | None
    fault_code: str | None
    off_s: float | None
    off_reason: str | None
    peak_c: float


def scenario(seed: int) -> tuple[str, float]:
    """The fault text and its start for run ``seed``."""
    rng = random.Random(seed)
    kind = KINDS[(seed - 1) % len(KINDS)]
    start_s = round(rng.uniform(2.0, 30.0), 3)
    if start_s * 20 == int(start_s * 20):  # keep the fault off a tick boundary
        start_s += 0.013
    sensor = rng.choice((1, 2))
    if kind == "runaway":
        params = f"gain={rng.uniform(4.0, 8.0):.2f}"
    elif kind == "sensor_drift":
        rate = rng.uniform(0.3, 1.0) * rng.choice((-1, 1))
        params = f"sensor={sensor},rate={rate:.2f}"
    else:
        params = f"sensor={sensor}"
    return f"{kind}@{start_s}s:{params}", start_s


def run_one(seed: int) -> Run:
    fault, fault_s = scenario(seed)
    rig = RFRig.create(seed=seed, faults=(fault,))
    rf = rig.rf
    ticks: list[tuple[float, RFReading | None]] = []
    detected: list[float] = []
    sample, supervise = rf.sample, rf.supervise

    def recording_sample(now_s: float) -> None:
        sample(now_s)
        ticks.append((now_s, rf.reading))

    def recording_supervise(now_s: float) -> None:
        before = rf.state
        supervise(now_s)
        if before is not RFState.FAULT and rf.state is RFState.FAULT and not detected:
            detected.append(now_s)

    rf.sample = recording_sample  # type: ignore[method-assign]
    rf.supervise = recording_supervise  # type: ignore[method-assign]
    rig.start_zone(target_c=42.0, hold_s=120.0)
    rig.run_until((RFState.FAULT,), max_s=fault_s + FAULT_WINDOW_S - rig.station.clock.now())
    rig.run_for(AFTER_TRIP_S)
    sim = rig.sim
    off = next(((t, why) for t, on, why in sim.output_log if not on and t >= fault_s), None)
    observable_s, limit = first_observable(ticks, rf.limits, fault_s)
    alarm = rf.fault_alarm
    return Run(
        seed=seed,
        fault=fault,
        fault_s=fault_s,
        observable_s=observable_s,
        observed_limit=limit,
        detected_s=detected[0] if detected else None,
        fault_code=alarm.code if alarm is not None else None,
        off_s=off[0] if off else None,
        off_reason=off[1] if off else None,
        peak_c=sim.peak_skin_c,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="seeded runs (default 1000)")
    args = parser.parse_args()
    configure_logging(log_file=Path(tempfile.mkdtemp()) / "bench.jsonl")
    start = time.perf_counter()
    runs = [run_one(seed) for seed in range(1, args.runs + 1)]
    wall_s = time.perf_counter() - start
    period = DEFAULT_PERIOD_S  # what Station.simulated() uses

    latencies: list[float] = []
    from_detection: list[float] = []
    from_fault: list[float] = []
    bad: list[str] = []
    for r in runs:
        if r.off_s is None or r.observable_s is None:
            bad.append(f"seed {r.seed} {r.fault}: off {r.off_s}, observable {r.observable_s}")
            continue
        lat = (r.off_s - r.observable_s) / period
        latencies.append(lat)
        from_fault.append((r.off_s - r.fault_s) / period)
        if r.detected_s is not None:
            from_detection.append((r.off_s - r.detected_s) / period)
        if lat > TARGET_PERIODS + 1e-9 or r.peak_c >= PEAK_LIMIT_C:
            bad.append(f"seed {r.seed} {r.fault}: {lat:.2f} periods, peak {r.peak_c:.2f} degC")
    peaks = [r.peak_c for r in runs]
    max_periods = max(latencies) if latencies else math.nan
    peak_max = max(peaks)
    worst_peak = max(runs, key=lambda r: r.peak_c)

    print(
        f"{len(runs)} seeded RF fault runs ({', '.join(KINDS)}), "
        f"{period * 1000:.0f} ms ticks, {wall_s:.1f} wall s"
    )
    print(
        f"observable -> output off at the simulator: max {max_periods:.2f}, "
        f"p50 {statistics.median(latencies):.2f}, min {min(latencies):.2f} periods "
        f"(target <= {TARGET_PERIODS:.0f} period + round trip of 0 s)"
    )
    if from_detection:
        print(
            f"supervisor detection -> off: max {max(from_detection):.2f} periods "
            f"over {len(from_detection)} runs"
        )
    print(
        f"fault injection -> off: max {max(from_fault):.1f}, "
        f"p50 {statistics.median(from_fault):.1f} periods"
    )
    print(
        f"peak true skin: max {peak_max:.2f} degC ({worst_peak.fault}, seed {worst_peak.seed}); "
        f"target < {PEAK_LIMIT_C}"
    )
    agree = sum(1 for r in runs if r.detected_s is not None and r.detected_s == r.observable_s)
    print(f"observable tick == supervisor detection tick in {agree} of {len(runs)} runs")
    print("off by:", dict(Counter(r.off_reason for r in runs)))
    print("observable limit:", dict(Counter(r.observed_limit for r in runs)))
    print("supervisor fault:", dict(Counter(r.fault_code for r in runs)))
    print(f"runs over target: {len(bad)}")
    for line in bad[:10]:
        print("  " + line)
    met = not bad
    print(
        json.dumps(
            {
                "runs": len(runs),
                "max_periods": round(max_periods, 3),
                "p50_periods": round(statistics.median(latencies), 3),
                "peak_c_max": round(peak_max, 3),
                "max_periods_from_fault": round(max(from_fault), 3),
                "runs_over_target": len(bad),
                "target_periods": TARGET_PERIODS,
                "target_peak_c": PEAK_LIMIT_C,
                "met": met,
            }
        )
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
