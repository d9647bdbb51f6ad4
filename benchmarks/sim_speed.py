"""Simulated seconds per wall second of the full session, the RF demo and their wire ceilings.

Four workloads, each on in-process simulators in simulated time (a SimClock,
50 ms ticks), with the same controllers, supervisors, drivers, wire protocols
and simulators as a real session:

- ``pore-patrol``: the whole ``protocols/pore-patrol.toml`` session as
  ``devicectl run --yes`` runs it: RF, IPL and LED on one loop, every device
  sampled and supervised every tick, the runner, and the hash-chained record
  written to a SQLite store by its writer thread (about 1,993 simulated
  seconds). Its loop thread's CPU time per tick (``time.thread_time``, from
  the first tick to the last) is measured too.
- ``rf-demo``: the five-zone RF treatment of
  ``devicectl.modalities.rf.demo.run_rf_demo`` (about 1,040 simulated seconds).
- ``rf-wire`` (a ceiling): only the RF driver's ``read()`` against the
  simulator, once per 50 ms of simulated time, for the demo's simulated
  duration, with output on at a steady 5 W as in a zone's hold: no
  controller, supervisor or loop.
- ``wire-all`` (a ceiling): the same for the full session's three devices:
  one ``read()`` each of the RF (output on at 5 W), IPL (idle) and LED (idle)
  drivers per 50 ms, for the full session's simulated duration.

The workloads run interleaved: one warm-up of each (imports, first-use
caches), then ``--runs`` rounds, each running every chosen workload once, so
that a ratio of two workloads compares runs that shared the machine's load.
With ``--baseline DIR`` (a checkout of older code, e.g. a git worktree of an
earlier commit) every run of a workload is followed by the same workload on
that code, in a worker process of the same interpreter.

Targets (checked for the workloads measured; the exit code is 1 when one is
missed, 2 when a run did not complete):

- ``pore-patrol`` at least 1,200 simulated s per wall s (best run; meant for
  a quiet machine, the median is reported beside it);
- the loop thread's CPU per ``pore-patrol`` tick at most 40 us (median run);
- ``pore-patrol`` over ``wire-all`` at least 0.75, and ``rf-demo`` over
  ``rf-wire`` at least 0.75 (median of the rounds' ratios);
- with ``--baseline``: ``wire-all`` at least 1.5 times as fast as on the
  baseline (median of the per-round ratios).

The last line is one JSON object with every figure.

    uv run python benchmarks/sim_speed.py [--workload NAME ...] [--runs N] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from devicectl.clock import SimClock
from devicectl.logs import configure_logging
from devicectl.modalities.rf.demo import run_rf_demo
from devicectl.modality import modality
from devicectl.session.api import builtin_protocol, run_protocol_file
from devicectl.station import device_opener

DEMO_SIMULATED_S = 1040.0  # what the five-zone demo simulates
PORE_PATROL_SIMULATED_S = 1993.0  # what the full session simulates (about)

PORE_PATROL_TARGET = 1200.0  # simulated s per wall s, best run
LOOP_CPU_TARGET_US = 40.0  # the loop thread's CPU per pore-patrol tick
RATIO_TARGET = 0.75  # a workload over its wire ceiling
BASELINE_SPEEDUP_TARGET = 1.5  # wire-all against the baseline code


@dataclass(frozen=True)
class Run:
    simulated_s: float
    ticks: int
    ok: bool
    wall_s: float = 0.0
    loop_cpu_s: float | None = None  # the loop thread's CPU time over loop_ticks
    loop_ticks: int = 0


@dataclass(frozen=True)
class Workload:
    describe: str
    run: Callable[[Path, int], Run]


def _rf_demo(_: Path, __: int) -> Run:
    result = run_rf_demo()
    return Run(result.simulated_s, result.ticks, result.ok)


def _pore_patrol(folder: Path, index: int) -> Run:
    marks: list[tuple[float, int]] = []  # (loop thread CPU s, tick count) while it runs

    def progress(_: Any, station: Any) -> None:
        marks.append((time.thread_time(), station.loop.tick_count))

    outcome = run_protocol_file(
        str(builtin_protocol("pore-patrol.toml")),
        operator_id="bench",
        auto_confirm=True,
        db=str(folder / f"records-{index}.sqlite"),
        progress=progress,
        progress_every_ticks=200,
    )
    ticks = round(outcome.simulated_s / 0.05)
    marks = marks[:-1]  # the last call comes after the loop, with the record closed
    cpu_s = marks[-1][0] - marks[0][0] if len(marks) > 1 else None
    loop_ticks = marks[-1][1] - marks[0][1] if len(marks) > 1 else 0
    return Run(outcome.simulated_s, ticks, outcome.outcome == "complete", 0.0, cpu_s, loop_ticks)


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
    cpu0 = time.thread_time()
    for _ in range(ticks):
        clock.sleep(0.05)
        on = rf.read().output_on and on
        for driver in others:
            driver.read()
    cpu_s = time.thread_time() - cpu0
    for driver in (rf, *others):
        driver.close()
    # output stayed on: the figure is the heating case
    return Run(ticks * 0.05, ticks, on, 0.0, cpu_s, ticks)


WORKLOADS = {
    "pore-patrol": Workload("Pore Patrol session (RF, IPL, LED, record)", _pore_patrol),
    "wire-all": Workload(
        "RF, IPL and LED driver reads alone (a ceiling)",
        lambda _, __: _wire(("rf", "ipl", "led"), PORE_PATROL_SIMULATED_S),
    ),
    "rf-demo": Workload("five-zone RF demo", _rf_demo),
    "rf-wire": Workload(
        "RF driver reads alone (a ceiling)", lambda _, __: _wire(("rf",), DEMO_SIMULATED_S)
    ),
}
RATIOS = (("pore-patrol", "wire-all"), ("rf-demo", "rf-wire"))


def _timed(name: str, folder: Path, index: int) -> Run:
    start = time.perf_counter()
    run = WORKLOADS[name].run(folder, index)
    wall_s = time.perf_counter() - start
    return Run(run.simulated_s, run.ticks, run.ok, wall_s, run.loop_cpu_s, run.loop_ticks)


def _worker() -> int:
    """Run workloads named on stdin ("NAME INDEX" lines), one JSON line each on stdout."""
    folder = Path(tempfile.mkdtemp(prefix="devicectl-sim-speed-baseline-"))
    configure_logging(log_file=folder / "bench.jsonl")
    for line in sys.stdin:
        name, index = line.split()
        print(json.dumps(asdict(_timed(name, folder, int(index)))), flush=True)
    return 0


class _Baseline:
    """The same workloads on older code: a worker process with ``DIR`` first on its path."""

    def __init__(self, folder: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]),
        }
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker"],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, name: str, index: int) -> Run:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{name} {index}\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the baseline worker ended")
        return Run(**json.loads(line))

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(60)


def _rate(run: Run) -> float:
    return run.simulated_s / run.wall_s


def _target(value: float | None, target: float, *, at_most: bool = False) -> dict[str, Any]:
    met = value is not None and (value <= target if at_most else value >= target)
    shown = None if value is None else round(value, 3)
    return {"value": shown, "target": target, "at_most": at_most, "met": met}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workload",
        action="append",
        choices=list(WORKLOADS),
        help="a workload to run (repeatable; default: all four, interleaved)",
    )
    parser.add_argument("--runs", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a checkout of older code: each run is followed by the same workload on it",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker()
    names = list(dict.fromkeys(args.workload or WORKLOADS))
    folder = Path(tempfile.mkdtemp(prefix="devicectl-sim-speed-"))
    configure_logging(log_file=folder / "bench.jsonl")
    baseline = _Baseline(args.baseline.resolve()) if args.baseline else None
    runs: dict[str, list[Run]] = {name: [] for name in names}
    base_runs: dict[str, list[Run]] = {name: [] for name in names}
    try:
        for index in range(args.runs + 1):  # round 0 is the warm-up
            for name in names:
                run = _timed(name, folder, index)
                base = baseline.run(name, index) if baseline else None
                if not run.ok or (base is not None and not base.ok):
                    print(
                        f"{WORKLOADS[name].describe} did not complete: "
                        "the figure would mean nothing"
                    )
                    return 2
                if index:
                    runs[name].append(run)
                    if base is not None:
                        base_runs[name].append(base)
    finally:
        if baseline is not None:
            baseline.close()

    report: dict[str, Any] = {"runs": args.runs, "workloads": {}, "ratios": {}, "targets": {}}
    for name in names:
        rates = [_rate(r) for r in runs[name]]
        last = runs[name][-1]
        entry: dict[str, Any] = {
            "sim_s_per_wall_s": round(max(rates), 1),
            "median_sim_s_per_wall_s": round(statistics.median(rates), 1),
            "all": [round(r, 1) for r in rates],
        }
        cpu = [
            r.loop_cpu_s / r.loop_ticks * 1e6 for r in runs[name] if r.loop_cpu_s and r.loop_ticks
        ]
        if cpu:
            entry["loop_cpu_us_per_tick"] = round(statistics.median(cpu), 1)
        if base_runs[name]:
            base_rates = [_rate(r) for r in base_runs[name]]
            entry["baseline_sim_s_per_wall_s"] = round(max(base_rates), 1)
            entry["baseline_median_sim_s_per_wall_s"] = round(statistics.median(base_rates), 1)
            speedups = [a / b for a, b in zip(rates, base_rates, strict=True)]
            entry["speedup_vs_baseline"] = round(statistics.median(speedups), 3)
            base_cpu = [
                r.loop_cpu_s / r.loop_ticks * 1e6
                for r in base_runs[name]
                if r.loop_cpu_s and r.loop_ticks
            ]
            if base_cpu:
                entry["baseline_loop_cpu_us_per_tick"] = round(statistics.median(base_cpu), 1)
        report["workloads"][name] = entry
        print(
            f"{WORKLOADS[name].describe}: {last.simulated_s:.0f} simulated s, {last.ticks} ticks; "
            f"best {max(rates):.0f}x, median {statistics.median(rates):.0f}x over {len(rates)} runs"
            + (f"; loop CPU {entry['loop_cpu_us_per_tick']} us per tick" if cpu else "")
            + (
                f"; baseline best {entry['baseline_sim_s_per_wall_s']:.0f}x, "
                f"speedup {entry['speedup_vs_baseline']}"
                if base_runs[name]
                else ""
            )
        )
    for top, ceiling in RATIOS:
        if top in runs and ceiling in runs:
            per_round = [_rate(a) / _rate(b) for a, b in zip(runs[top], runs[ceiling], strict=True)]
            ratio = statistics.median(per_round)
            report["ratios"][f"{top}/{ceiling}"] = round(ratio, 3)
            report["targets"][f"{top}/{ceiling}"] = _target(ratio, RATIO_TARGET)
            print(
                f"{top} over {ceiling}: median {ratio:.3f} (rounds: "
                + ", ".join(f"{r:.3f}" for r in per_round)
                + ")"
            )
    workloads = report["workloads"]
    if "pore-patrol" in workloads:
        pp = workloads["pore-patrol"]
        report["targets"]["pore-patrol"] = _target(pp["sim_s_per_wall_s"], PORE_PATROL_TARGET)
        report["targets"]["loop_cpu_us_per_tick"] = _target(
            pp.get("loop_cpu_us_per_tick"), LOOP_CPU_TARGET_US, at_most=True
        )
        report["loop_cpu_us_per_tick"] = pp.get("loop_cpu_us_per_tick")
    if "wire-all" in workloads and "speedup_vs_baseline" in workloads["wire-all"]:
        report["targets"]["wire-all/baseline"] = _target(
            workloads["wire-all"]["speedup_vs_baseline"], BASELINE_SPEEDUP_TARGET
        )
    missed = [name for name, t in report["targets"].items() if not t["met"]]
    for name, t in report["targets"].items():
        sign = "<=" if t["at_most"] else ">="
        print(
            f"target {name}: {t['value']} ({sign} {t['target']}): {'met' if t['met'] else 'MISSED'}"
        )
    report["met"] = not missed
    print(json.dumps(report))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
