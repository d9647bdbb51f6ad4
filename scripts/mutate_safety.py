# ruff: noqa: E501  (the mutation table keeps one mutation per line, exact source lines)
"""Mutation check of the safety checks: does the suite notice each one broken?

Each entry of ``MUTATIONS`` names one source file, one line of it (matched exactly,
leading and trailing spaces aside) and what that line becomes: a limit moved past
its value, a check removed, a stale count one tick late, an e-stop no longer put
first. A few break one thing that takes two lines (a check and the fallback behind
it): their ``also`` names the other lines of the same file and what they become. For each mutant, one at a time, the script copies the tree to a temporary
directory (the working tree is never touched), applies the one change there, and
runs the test files listed for it with ``-x`` and a per-test timeout. A mutant
whose tests all pass **survived**: a safety check can break without a test failing.

    uv run python scripts/mutate_safety.py            # every mutant, after a clean baseline
    uv run python scripts/mutate_safety.py --list     # what would be applied
    uv run python scripts/mutate_safety.py --only rf.stale_late --only ipl.unexpected_flash_gone
    uv run python scripts/mutate_safety.py --no-baseline
    uv run python scripts/mutate_safety.py --count --only rf.cutoff_gone   # how many tests fail

``--count`` runs each mutant's files to the end instead of stopping at the first
failure, and prints how many tests the mutant fails: a check that only one test
sees breaks as soon as that test is changed.

The exit status is 0 only if every mutant was killed. A line that is not found
(or found more than once) in its file is reported as ``PATTERN NOT FOUND`` or
``PATTERN AMBIGUOUS`` and also fails the run: after a change to the production code
the entry must be brought up to date, not silently skipped. When a mutant
survives, add a test that kills it (a test that fails with the mutation applied and
passes without it), then run the script again.

The run is sequential (the machine's cores are shared); a full run takes minutes,
mostly in the HIL fault matrix of the mutants it has to see.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.pyc"
)
PER_TEST_TIMEOUT_S = 120
PER_MUTANT_TIMEOUT_S = 900

RF = ("tests/test_supervisor.py", "tests/test_rf_faults.py", "tests/test_rf_controller.py")
IPL = (
    "tests/test_ipl_supervisor.py",
    "tests/test_ipl_uncommanded.py",
    "tests/test_ipl_controller.py",
)
LED = ("tests/test_led_supervisor.py", "tests/test_led_controller.py")
MATRIX = ("tests/test_hil_fault_matrix.py",)
PROTOCOL = ("tests/test_protocol_file.py", "tests/test_protocol_file_properties.py")
CHAIN = ("tests/test_records_chain.py", "tests/test_records_store.py")
LOOP = ("tests/test_control_loop.py",)
SECOND = ("tests/test_safety_second_angles.py",)
SESSION = ("tests/test_session_safety.py",)
OBSERVER = ("tests/test_rf_observer.py",)


@dataclass(frozen=True)
class Mutation:
    id: str
    path: str
    line: str  # the exact source line, stripped
    becomes: str  # its replacement, stripped (the indentation is kept)
    tests: tuple[str, ...]
    # More (line, becomes) pairs in the same file, for a mutation that takes
    # two lines to break one thing (a check and the fallback behind it).
    also: tuple[tuple[str, str], ...] = ()

    def changes(self) -> tuple[tuple[str, str], ...]:
        return ((self.line, self.becomes), *self.also)


M = Mutation
SUP, IPS, LDS = (
    "devicectl/modalities/rf/supervisor.py",
    "devicectl/modalities/ipl/supervisor.py",
    "devicectl/modalities/led/supervisor.py",
)
LIMITS = "devicectl/control/limit_rules.py"
RF_LIMITS = "devicectl/modalities/rf/limits.py"
IPL_LIMITS = "devicectl/modalities/ipl/limits.py"
LED_LIMITS = "devicectl/modalities/led/limits.py"
RF_CTL = "devicectl/modalities/rf/controller.py"
OBS = "devicectl/modalities/rf/observer.py"
RUNNER = "devicectl/session/runner.py"
MUTATIONS: tuple[Mutation, ...] = (
    # -- RF supervisor: its checks as composed (checks.py), with their limits
    M("rf.stale_late", SUP, 'self._stale = Stale(d, "rf.stale", lim.stale_ticks)', 'self._stale = Stale(d, "rf.stale", lim.stale_ticks + 1)', (*RF, *MATRIX)),
    M("rf.cutoff_gone", SUP, "_add(out, self._overtemp.check(temp))", "pass", (*RF, *MATRIX)),
    M("rf.cutoff_late", SUP, 'd, "rf.overtemp", "skin at the software cut-off", lim.cutoff_c, "degC"', 'd, "rf.overtemp", "skin at the software cut-off", lim.cutoff_c + 0.5, "degC"', (*RF, *MATRIX)),
    M("rf.disagree_wide", SUP, "lim.sensor_disagree_max_c,", "lim.sensor_disagree_max_c + 0.5,", (*RF, *MATRIX)),
    M("rf.disagree_gone", SUP, "_add(out, self._disagree.check(abs(t1 - t2)))", "pass", (*RF, *MATRIX)),
    M("rf.runaway_rate", SUP, 'd, "rf.runaway", "skin rising", lim.rise_max_c_per_s, lim.rise_window_s, min_samples=8', 'd, "rf.runaway", "skin rising", lim.rise_max_c_per_s + 1.0, lim.rise_window_s, min_samples=8', (*RF, *MATRIX)),
    M("rf.hot_rise_gone", SUP, "if runaway is None and temp >= lim.alarm_c:", "if False:", (*RF, *MATRIX)),
    M("rf.power_limit", SUP, 'd, "rf.power", "power over the limit", lim.power_max_w, "W", inclusive=False', 'd, "rf.power", "power over the limit", lim.power_max_w + 10.0, "W", inclusive=False', RF),
    M("rf.output_unexpected_gone", SUP, "if reading.output_on and not ctx.output_expected:", "if False:", RF),
    M("rf.stuck_late", SUP, 'Stuck(d, "rf.sensor_stuck", "skin sensor 1", lim.stuck_s, "degC"),', 'Stuck(d, "rf.sensor_stuck", "skin sensor 1", lim.stuck_s + 2.0, "degC"),', (*RF, *MATRIX)),
    M("rf.stuck_late_2", SUP, 'Stuck(d, "rf.sensor_stuck", "skin sensor 2", lim.stuck_s, "degC"),', 'Stuck(d, "rf.sensor_stuck", "skin sensor 2", lim.stuck_s + 2.0, "degC"),', RF),
    M("rf.cem43_limit", SUP, '"CEM43",', '"CEM43", level=lim.cem43_max * 2,', RF),
    M("rf.time_at_target", SUP, "lim.time_at_target_max_s,", "lim.time_at_target_max_s + 60.0,", RF),
    # -- RF skin observer (rule 10): two sensors drifting low together
    M("rf.implausible_heating_gone", OBS, "failed=self._error_c_s >= self.params.max_error_c_s,", "failed=False,", (*OBSERVER, *RF)),
    M("rf.implausible_heating_margin", OBS, "margin_c: float = 0.5", "margin_c: float = 1.0", OBSERVER),
    # -- site dose (rule 8): a site's dose carries across zones, a spent site is refused
    M("rf.site_prior_dose_gone", SUP, "self.dose.dose = prior_cem43", "self.dose.dose = 0.0", (*SESSION, *RF)),
    M("rf.site_prior_time_gone", SUP, "self._at_target.total = prior_time_at_target_s", "self._at_target.total = 0.0", (*SESSION, *RF)),
    M("rf.site_carry_gone", RF_CTL, "self._prior_cem43, prior.time_at_target_s if prior is not None else 0.0", "0.0, 0.0", (*SESSION, *RF)),
    M("rf.spent_site_refusal_gone", RF_CTL, "self._refuse_spent_site(zone, prior)", "pass", (*SESSION, *RF)),
    M("rf.spent_site_cem43_gone", RF_CTL, "if prior.cem43 >= lim.cem43_max:", "if False:", (*SESSION, *RF)),
    M("rf.spent_site_time_gone", RF_CTL, "if prior.time_at_target_s >= lim.time_at_target_max_s:", "if False:", (*SESSION, *RF)),
    # -- IPL supervisor
    M("ipl.stale_late", IPS, 'self._stale = Stale(d, "ipl.stale", lim.stale_ticks)', 'self._stale = Stale(d, "ipl.stale", lim.stale_ticks + 1)', (*IPL, *MATRIX)),
    M("ipl.unexpected_flash_gone", IPS, "if fired > allowed:", "if False:", IPL),
    M("ipl.unexpected_flash_one_extra", IPS, "if fired > allowed:", "if fired > allowed + 1:", IPL),
    M("ipl.energy_unexpected_gone", IPS, "if status & _ENERGY_BITS and not ctx.energy_expected:", "if False:", IPL),
    M("ipl.energy_tolerance", IPS, "if error > self.limits.energy_tolerance:", "if error > self.limits.energy_tolerance * 2:", (*IPL, *MATRIX)),
    M("ipl.block_stop_late", IPS, 'd, "ipl.block_overtemp", "lamp block at the stop temperature", lim.block_stop_c, "degC"', 'd, "ipl.block_overtemp", "lamp block at the stop temperature", lim.block_stop_c + 1.0, "degC"', IPL),
    # an IPL train cut short by the session counts as fired: never more than planned
    M("ipl.interrupted_train_uncounted", "devicectl/modalities/ipl/__init__.py", 'interrupting=action == "abort" and controller.state is ipl_controller.IPLState.FIRING,', "interrupting=False,", SESSION),
    # -- LED supervisor
    M("led.stale_late", LDS, 'self._stale = Stale(d, "led.stale", lim.stale_ticks)', 'self._stale = Stale(d, "led.stale", lim.stale_ticks + 1)', (*LED, *MATRIX)),
    M("led.dose_limit", LDS, 'self._dose = Dose(d, "led.dose", "dose", lim.dose_max_j_cm2, "J/cm2")', 'self._dose = Dose(d, "led.dose", "dose", lim.dose_max_j_cm2, "J/cm2", level=lim.dose_max_j_cm2 * 1.1)', (*LED, *SECOND)),
    M("led.duration_limit", LDS, "level=lim.duration_max_s + lim.duration_grace_s,", "level=lim.duration_max_s + lim.duration_grace_s + 60.0,", LED),
    M("led.skin_limit", LDS, "lim.skin_max_c,", "lim.skin_max_c + 1.0,", (*LED, *MATRIX)),
    M("led.irradiance_high_gone", LDS, "if high_s is not None:", "if False:", LED),
    M("led.irradiance_high_wide", LDS, "high_limit = setpoint * (1 + lim.irradiance_high_fraction)", "high_limit = setpoint * (1 + lim.irradiance_high_fraction + 0.05)", LED),
    M("led.irradiance_high_slow", LDS, "self._high = Sustained(lim.irradiance_high_s - 1e-9)", "self._high = Sustained(lim.irradiance_high_s + 2.0)", LED),
    # -- protocol limits (validated before anything is armed)
    M("limits.rf_target_max", RF_LIMITS, "elif self.target_c > limits.target_max_c:", "elif self.target_c > limits.target_max_c + 0.01:", PROTOCOL),
    M("limits.rf_target_min", RF_LIMITS, "elif self.target_c < limits.target_min_c:", "elif self.target_c < limits.target_min_c - 0.01:", PROTOCOL),
    M("limits.rf_hold_max", RF_LIMITS, "elif self.hold_s > limits.hold_max_s:", "elif self.hold_s > limits.hold_max_s + 0.01:", PROTOCOL),
    M("limits.rf_hold_positive", RF_LIMITS, "if not math.isfinite(self.hold_s) or self.hold_s <= 0:", "if not math.isfinite(self.hold_s) or self.hold_s < 0:", PROTOCOL),
    M("limits.range_upper", LIMITS, "if value > high:", "if value > high + 0.001:", PROTOCOL),
    M("limits.range_lower", LIMITS, "if value < low:", "if value < low - 0.001:", PROTOCOL),
    M("limits.ipl_fluence_per_trigger", IPL_LIMITS, "if not found and self.fluence_j_cm2 * self.pulse_count > lim.fluence_max_j_cm2:", "if not found and self.fluence_j_cm2 * self.pulse_count > lim.fluence_max_j_cm2 + 0.01:", PROTOCOL),
    M("limits.led_plan_dose", LED_LIMITS, "if dose > limits.dose_max_j_cm2:", "if dose > limits.dose_max_j_cm2 + 0.01:", PROTOCOL),
    M("limits.rf_cutoff_value", RF_LIMITS, "cutoff_c: float = 44.0", "cutoff_c: float = 44.5", (*RF, *MATRIX)),
    M("limits.rf_disagree_value", RF_LIMITS, "sensor_disagree_max_c: float = 1.5", "sensor_disagree_max_c: float = 2.0", (*RF, *MATRIX)),
    M("limits.rf_runaway_value", RF_LIMITS, "rise_max_c_per_s: float = 2.0", "rise_max_c_per_s: float = 2.5", (*RF, *MATRIX)),
    # -- controllers: the IPL interval and arming temperature, the LED step's end
    M("ipl.interval", "devicectl/modalities/ipl/controller.py", "self.clock.now() - self._fired_at_s < self.limits.min_interval_s", "self.clock.now() - self._fired_at_s < self.limits.min_interval_s - 0.5", IPL),
    M("ipl.crystal_arm_value", IPL_LIMITS, "crystal_arm_max_c: float = 10.0", "crystal_arm_max_c: float = 11.0", (*IPL, *MATRIX)),
    M("led.step_end", "devicectl/modalities/led/controller.py", "if self.on_time_s >= plan.duration_s:", "if self.on_time_s >= plan.duration_s + 1.0:", LED),
    # -- the record's hash chain
    M("chain.link_unchecked", "devicectl/records/verify.py", "if row.prev_hash != pred.hash:", "if False:", (*CHAIN, *SECOND)),
    # -- emergency stop ordering in the loop
    M("estop.not_first", "devicectl/control/loop.py", 'key=lambda item: item[0].action != "estop",', "key=lambda item: 0,", (*LOOP, *SECOND)),
    M("estop.deferred", "devicectl/control/loop.py", 'if pending[0][0].action == "estop":', "if False:", LOOP),
    # -- the session (rules 7 and 9): one fault makes every device safe, a hold refuses energy
    M("session.secure_no_action", RUNNER, "if action is not None:", "if False:", SESSION),
    M("session.secure_skipped", RUNNER, "if action is not None:", "if False:", SESSION, also=(("if controller.latched or controller.energised:", "if False:"),)),
    M("session.hold_not_set", RUNNER, "controller.session_hold = hold", "pass", SESSION),
    M("session.hold_check_gone", "devicectl/control/base.py", "if action in self.ENERGY_ACTIONS and self.session_hold is not None:", "if False:", SESSION),
)  # fmt: skip


def apply(tree: Path, m: Mutation) -> str | None:
    """Apply ``m`` in ``tree`` (every line of it, or none); None, or why it could not be applied."""
    path = tree / m.path
    if not path.exists():
        return f"FILE NOT FOUND: {m.path}"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for line, becomes in m.changes():
        hits = [i for i, text in enumerate(lines) if text.strip() == line]
        if not hits:
            return f"PATTERN NOT FOUND in {m.path}: {line!r}"
        if len(hits) > 1:
            return f"PATTERN AMBIGUOUS in {m.path} (lines {[i + 1 for i in hits]}): {line!r}"
        i = hits[0]
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines[i] = indent + becomes + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    return None


def pytest_cmd(tests: tuple[str, ...], stop_at_first: bool = True) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *(["-x"] if stop_at_first else []),
        "-q", f"--timeout={PER_TEST_TIMEOUT_S}", *tests,
    ]  # fmt: skip


def import_path(tree: Path) -> str:
    """The copy's import roots: the ``devicectl``, ``devicectl_drivers`` and
    ``devicectl_simulators`` packages live in the tree, ``drivers/`` and ``simulators/``."""
    return os.pathsep.join(str(tree / folder) for folder in (".", "drivers", "simulators"))


def run(tree: Path, tests: tuple[str, ...], stop_at_first: bool = True) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": import_path(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            pytest_cmd(tests, stop_at_first),
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=PER_MUTANT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return -1, "the test run took longer than the mutant's timeout"
    tail = [line for line in done.stdout.splitlines() if line.strip()][-3:]
    return done.returncode, " | ".join(tail)


def check_copy_is_imported(tree: Path) -> None:
    """The tests in the copy must import the copy, not the installed working tree."""
    code = (
        "import devicectl, devicectl_drivers, devicectl_simulators; "
        "print(devicectl.__file__, devicectl_drivers.__file__, devicectl_simulators.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": import_path(tree)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for path in out.split():
        if not Path(path).resolve().is_relative_to(tree.resolve()):
            raise SystemExit(f"the copy would import {path}, not its own code: abort")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--only", action="append", default=[], metavar="ID")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument(
        "--count", action="store_true", help="run every test of a mutant (no -x): count failures"
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.id in args.only]
    unknown = set(args.only) - {m.id for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation ids: {sorted(unknown)}")
    if args.list:
        for m in chosen:
            for line, becomes in m.changes():
                print(f"{m.id:34} {m.path}: {line!r} -> {becomes!r}")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutate-safety-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=IGNORE)
        check_copy_is_imported(tree)
        if not args.no_baseline:
            every = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
            code, tail = run(tree, every)
            print(f"baseline (no mutation): {'passed' if code == 0 else 'FAILED'}  {tail}")
            if code != 0:
                return 2
        survived: list[str] = []
        broken: list[str] = []
        for m in chosen:
            original = (tree / m.path).read_bytes() if (tree / m.path).exists() else None
            problem = apply(tree, m)
            if problem is not None:
                print(f"{m.id:34} {problem}")
                broken.append(m.id)
                continue
            started = time.perf_counter()
            try:
                code, tail = run(tree, m.tests, stop_at_first=not args.count)
            finally:
                assert original is not None
                (tree / m.path).write_bytes(original)
            took = time.perf_counter() - started
            verdict = "SURVIVED" if code == 0 else "killed"
            if code == 0:
                survived.append(m.id)
            print(f"{m.id:34} {verdict:8} {took:6.1f} s  {tail}", flush=True)
        killed = len(chosen) - len(survived) - len(broken)
        print(
            f"\n{len(chosen)} mutants: {killed} killed, {len(survived)} survived"
            + (f" ({', '.join(survived)})" if survived else "")
            + (f", {len(broken)} not applied ({', '.join(broken)})" if broken else "")
        )
        return 0 if not survived and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
