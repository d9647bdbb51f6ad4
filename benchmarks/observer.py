"""Skin observer (rule 10): detection of common-mode sensor drift, and false alarms.

Detection sweep: both RF skin sensors drift low at the same rate R from 30 s
(``sensor_drift@30s:sensor=1,rate=R`` and the same on sensor 2) in a 42 degC
zone held 280 s, for R in -0.005, -0.01, -0.02, -0.03 degC/s and several
seeds, each with a seeded skin rest temperature (``skin0`` 32.0-34.5 degC).
For each run: the latched code, the detection time after the drift starts,
and the simulator's true skin surface at detection and its peak up to it.
Target: ``rf.implausible_heating`` (or another latching check) before the
true skin reaches 44.0 degC, in every run.

False-alarm sweep: 1,000 RF zones with no fault (seeds 1-1000; seeded skin
rest 32.0-34.5 degC and seeded hold 60-280 s; the RF simulator's ambient is
fixed at 24 degC, its skin-to-room coupling follows from the rest
temperature), then full Pore Patrol sessions (``protocols/pore-patrol.toml``,
unattended, seeds 1-50: five RF zones, IPL, 20 minutes of LED). Target: no
latching alarm at all. Also printed: the largest integrated excess the
observer reached in a clean zone, against its limit (the headroom).

    uv run python benchmarks/observer.py [--quick]

``--quick`` runs 3 seeds per rate, 50 zones and 3 sessions. The last line is
one JSON object; the exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from rf_scenario import RFRig  # the tests' rig, found through sys.path

from devicectl.logs import configure_logging
from devicectl.modalities.rf.controller import RFState
from devicectl.session.api import builtin_protocol, run_protocol_file

RATES_C_PER_S = (-0.005, -0.01, -0.02, -0.03)
DRIFT_START_S = 30.0
DRIFT_HOLD_S = 280.0
TRUE_LIMIT_C = 44.0


def skin0_for(seed: int) -> float:
    return round(random.Random(f"skin0:{seed}").uniform(32.0, 34.5), 2)


@dataclass
class Detection:
    rate: float
    seed: int
    code: str | None
    after_drift_s: float | None
    true_at_c: float | None
    peak_c: float


def detect_one(rate: float, seed: int) -> Detection:
    faults = tuple(f"sensor_drift@{DRIFT_START_S:g}s:sensor={s},rate={rate}" for s in (1, 2))
    rig = RFRig.create(seed=seed, faults=faults, skin0_c=skin0_for(seed))
    rig.start_zone(target_c=42.0, hold_s=DRIFT_HOLD_S)
    rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=DRIFT_HOLD_S + 60.0)
    sim = rig.sim
    if rig.rf.state is not RFState.FAULT:
        return Detection(rate, seed, None, None, None, sim.peak_skin_c)
    alarm = rig.rf.fault_alarm
    return Detection(
        rate,
        seed,
        alarm.code if alarm is not None else None,
        rig.station.clock.now() - DRIFT_START_S,
        sim.skin_true_c,
        sim.peak_skin_c,
    )


def clean_zone(seed: int) -> tuple[str | None, float]:
    """(latched code or None, the largest integrated excess of the observer)."""
    hold_s = round(random.Random(f"hold:{seed}").uniform(60.0, 280.0), 1)
    rig = RFRig.create(seed=seed, skin0_c=skin0_for(seed))
    rf = rig.rf
    worst = [0.0]
    supervise = rf.supervise

    def watching(now_s: float) -> None:
        supervise(now_s)
        worst[0] = max(worst[0], rf.supervisor.observer.error_c_s)

    rf.supervise = watching  # type: ignore[method-assign]
    rig.start_zone(target_c=42.0, hold_s=hold_s)
    rig.run_until((RFState.FAULT, RFState.COMPLETE), max_s=hold_s + 60.0)
    alarm = rf.fault_alarm if rf.state is RFState.FAULT else None
    return (alarm.code if alarm is not None else None), worst[0]


def session(seed: int, folder: Path) -> list[str]:
    outcome = run_protocol_file(
        builtin_protocol("pore-patrol.toml"),
        operator_id="bench",
        auto_confirm=True,
        db=str(folder / f"session-{seed}.db"),
        seed=seed,
    )
    return [f"{f['device']} {f['code']}" for f in outcome.faults] + (
        [] if outcome.outcome == "complete" else [f"outcome {outcome.outcome}"]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 50 zones, 3 sessions")
    args = parser.parse_args()
    seeds = range(1, 4) if args.quick else range(1, 11)
    zones = 50 if args.quick else 1000
    sessions = 3 if args.quick else 50
    folder = Path(tempfile.mkdtemp())
    configure_logging(log_file=folder / "bench.jsonl")
    bad: list[str] = []

    start = time.perf_counter()
    print(f"detection: both sensors drift from {DRIFT_START_S:g} s, zone hold {DRIFT_HOLD_S:g} s")
    detections: list[Detection] = []
    for rate in RATES_C_PER_S:
        runs = [detect_one(rate, seed) for seed in seeds]
        detections += runs
        missed = [r for r in runs if r.true_at_c is None or r.peak_c >= TRUE_LIMIT_C]
        bad += [f"rate {r.rate} seed {r.seed}: {r.code}, peak {r.peak_c:.2f}" for r in missed]
        caught = [r for r in runs if r.after_drift_s is not None and r.true_at_c is not None]
        if caught:
            times = [r.after_drift_s for r in caught if r.after_drift_s is not None]
            trues = [r.true_at_c for r in caught if r.true_at_c is not None]
            print(
                f"  rate {rate:+.3f} degC/s: {len(caught)}/{len(runs)} caught "
                f"({', '.join(sorted({str(r.code) for r in caught}))}); after drift start "
                f"{min(times):.1f}-{max(times):.1f} s (median {statistics.median(times):.1f}); "
                f"true skin at detection {min(trues):.2f}-{max(trues):.2f} degC, "
                f"peak to then max {max(r.peak_c for r in runs):.2f} degC"
            )
        else:
            print(f"  rate {rate:+.3f} degC/s: 0/{len(runs)} caught")

    zone_codes: list[str] = []
    worst_excess = 0.0
    for seed in range(1, zones + 1):
        code, excess = clean_zone(seed)
        worst_excess = max(worst_excess, excess)
        if code is not None:
            zone_codes.append(f"zone seed {seed}: {code}")
    bad += zone_codes
    print(
        f"clean zones: {zones}, latched alarms {len(zone_codes)}; largest integrated excess "
        f"{worst_excess:.2f} degC*s (limit 10.0)"
    )

    session_faults: list[str] = []
    for seed in range(1, sessions + 1):
        session_faults += [f"session seed {seed}: {f}" for f in session(seed, folder)]
    bad += session_faults
    print(f"Pore Patrol sessions: {sessions}, latched alarms or unfinished {len(session_faults)}")
    wall_s = time.perf_counter() - start
    print(f"wall time {wall_s:.0f} s; runs over target: {len(bad)}")
    for line in bad[:10]:
        print("  " + line)
    caught_trues = [d.true_at_c for d in detections if d.true_at_c is not None]
    print(
        json.dumps(
            {
                "detection_runs": len(detections),
                "detected": len(caught_trues),
                "true_at_detection_max_c": round(max(caught_trues), 3) if caught_trues else None,
                "peak_max_c": round(max(d.peak_c for d in detections), 3),
                "clean_zones": zones,
                "clean_zone_alarms": len(zone_codes),
                "clean_zone_max_excess_c_s": round(worst_excess, 3),
                "sessions": sessions,
                "session_alarms": len(session_faults),
                "met": not bad,
            }
        )
    )
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
