"""The fault matrix through the pty path: every modality, every fault kind
its simulator supports, every phase of a delivery.

Each scenario serves the simulator on a real pty (``tests/pty_rig.py``: the
controller's real driver on ``serial.Serial(path)``, the simulator's physics and
watchdog on the station's SimClock), records the session into a SQLite record
store, injects one permanent fault (``KIND@START``, default parameters except
where ``PARAMS`` says why) at a
simulated time that falls inside the phase, and carries on with the session as an
operator would (start, resume, pull the IPL trigger) until the fault latches.
Then it asserts, from the simulator's side and from the record:

1. the controller is latched in ``fault`` with a HIGH latching alarm;
2. the alarm is the one the scenario's rule must raise (``EXPECTED_CODE``: the
   specific code, not any latching alarm), and it latched in exactly the tick at
   which the fault became *observable* (defined below): the supervisor checks every
   reading in the tick it arrives, so neither a tick late nor a tick early passes;
   for a device deaf from the onset (``no_reply``, ``reset``) that tick is also
   computed from the onset alone: the first tick at or after it misses its reply,
   and the ``stale_ticks``-th (2nd) such tick latches;
3. the output is off at the simulator and nothing turned it on again: it went off
   within one round trip of the latch when the safe state was confirmed by readback;
   when it could not be (the device does not
   answer, the port is closed), within the firmware watchdog's 250 ms of the
   host's last frame (at the latest the latch tick); for a device that went deaf at
   the onset (``no_reply``, ``reset``), within 250 ms of the onset;
4. the true peak skin temperature (RF, LED simulators) stayed below 45 degC; the
   IPL simulator has no skin model, so for IPL: no flash began after the latch,
   and the lamp is neither armed nor charged;
5. the record verifies (hash chain) and holds the latched alarm and the safe state.

Phases, per modality (controller state just before the onset):

===========  =====================  ==========================  ==================
phase        RF                     IPL                         LED
===========  =====================  ==========================  ==================
arming       ``armed`` (zone        ``armed``: charged, armed,  ``ready``: step
             loaded, output off)    waiting for the trigger     loaded (the canopy
                                                                has no arm step)
ramp/charge  ``delivering``,        ``charging`` after arm      ``delivering`` in
             phase ``ramp``         (the capacitor charging)    the first second
                                                                (irradiance
                                                                settling)
delivering   ``delivering``,        ``firing``: inside a        ``delivering``,
/hold        phase ``hold``         5-pulse train (2.04 s)      settled
             (42 degC reached)
paused       ``paused`` by the      ``paused`` by the operator  ``paused`` by the
             operator               from ``armed``              operator
===========  =====================  ==========================  ==================

In the phases where the output is off at the onset (arming, paused) a fault that
acts only under output (runaway, a frozen sensor, a misfire) cannot show until
the session carries on: 0.5 s after the onset the operator presses start,
resume or the trigger, as the session would, retried every 0.1 s while refused.

*Observable* is decided here from the readings as the controller received them
(recorded per tick) with the documented rules and ``RFLimits``/``IPLLimits``/
``LEDLimits``, independently of the supervisors' code: the first tick whose
reading shows the fault, or, for a rule that needs a window, the tick at which
the window is complete:

- a missed reply (``no_reply``, ``garble``, the silent ``reset`` boot): the
  ``stale_ticks``-th (2nd) consecutive tick with no valid reading;
- a device fault status bit (cut-off, watchdog, reset, sensor fault, string
  failure, block over-temperature), an implausible or NaN temperature, RF sensors
  disagreeing by more than 1.5 degC, a temperature at a host cut-off (RF 44, LED 41,
  IPL block 45 degC);
- RF rate of rise over 1 s above 2 degC/s (above 1 degC/s at or over the 43 degC
  alarm level), or a sensor repeating one value for
  3 s (LED: 10 s) with output on (``tests/rf_scenario.py::first_observable``,
  shared with ``benchmarks/trip_latency.py``);
- output off while ``delivering`` with contact (RF) or interlock (LED) closed;
  IPL energy (charging, charged, armed) while the controller is in no energy state;
- LED irradiance below half the setpoint for 1 s, after 1 s of settling;
- IPL, at the tick a train is complete (every pulse counted, disarmed): delivered
  fluence more than 20 % from the set one, or the third train in a row after
  which the crystal did not read warmer than before it; or a train not complete
  more than ``flash_confirm_s`` (0.5 s) plus its own length after FIRE;
- contact (RF, IPL) or canopy interlock (LED) lost while delivering (IPL: charging
  or armed): the first tick more than ``contact_timeout_s``/``interlock_timeout_s``
  after the first tick that showed it, still lost.

Round trip: on this path a request and its reply take no simulated time (the
loop thread is blocked in pyserial's wall-clock read while the clock stands
still; see ``tests/pty_rig.py``), so the bound is one period, 50 ms.

Where two rules could both fire, the scenario is built so that one must: the RF
software cut-off (44 degC) has its own scenario in ``EXTRA``, an output stage stuck
at 20 W that heats the skin past 44 degC slowly (under 1 degC/s), so that the
runaway rule cannot take it first.

Exclusions (``EXCLUDED``), each with its reason; the scenario count (87) is
asserted against modalities x kinds x 4 phases (92) minus these, and printed with
the worst measured latencies and peak at the end of the run (``-vv``: one line per
scenario). ``EXTRA`` scenarios run besides, each with its reason. About 30 s of
wall time for the whole matrix on 2 cores.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devicectl.clock import SimClock
from devicectl.control.events import AlarmPriority
from devicectl.control.loop import DEFAULT_PERIOD_S
from devicectl.devices import IPLReading, IPLStatus, LEDFault, LEDReading, RFReading, RFStatus
from devicectl.errors import ControlError, DeviceTimeout
from devicectl.modalities.ipl.limits import IPLLimits, IPLPass
from devicectl.modalities.led.limits import LEDLimits, LEDStep
from devicectl.modalities.rf.limits import RFLimits, RFZone
from devicectl.records import RecordStore
from devicectl.transport import open_port
from devicectl_drivers.rf_scpi import RFScpiDriver
from devicectl_simulators.faults import DEVICE_KINDS
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.rf_firmware import RFFirmware
from tests.pty_rig import PtyRig
from tests.rf_scenario import first_observable
from tests.run_stash import SUMMARY_KEY

PERIOD_S = DEFAULT_PERIOD_S
ROUND_TRIP_S = 0.0  # simulated seconds; see the module docstring
WATCHDOG_S = 0.25
PEAK_LIMIT_C = 45.0
EPS_S = 1e-9
TICK_EPS_S = 1e-6  # tick times are sums of 0.05 s steps
SEED = 7
CARRY_ON_AFTER_S = 0.5  # the operator carries on with the session this long after the onset
CARRY_ON_EVERY_S = 0.1
MAX_AFTER_ONSET_S = 45.0  # the longest rule: a 30 s contact timeout after three IPL trains
AFTER_LATCH_S = 1.0  # keep running: the output must stay off, the true peak is seen

PHASES: dict[str, tuple[str, ...]] = {
    "rf": ("arming", "ramp", "hold", "paused"),
    "ipl": ("arming", "charge", "delivering", "paused"),
    "led": ("arming", "ramp", "delivering", "paused"),
}

RF_ZONE = RFZone("forehead", target_c=42.0, hold_s=200.0)
IPL_PASS = IPLPass(
    filter_nm=560,
    fluence_j_cm2=5.0,
    flashes=20,
    pulse_width_ms=10.0,
    pulse_count=5,
    pulse_delay_ms=500.0,
)
LED_STEP = LEDStep(633, 100.0, 600.0)

EXCLUDED: dict[tuple[str, str, str], str] = {
    ("rf", "contact_loss", "arming"): (
        "output is off and stays off: start is refused without electrode contact "
        "(test_rf_controller.py::test_arm_refused_without_electrode_contact); contact "
        "loss is a latched fault only when it interrupts a delivery (rf.contact_timeout)"
    ),
    ("rf", "contact_loss", "paused"): (
        "output is off and stays off: resume is refused without contact; an operator "
        "pause is not a contact-loss pause, so no contact timeout runs"
    ),
    ("ipl", "contact_loss", "paused"): (
        "the lamp is disarmed and dumped; resume (arm) is refused without skin contact "
        "(test_ipl_firmware.py::test_nak_10_no_contact); an operator pause runs no "
        "contact timeout"
    ),
    ("led", "contact_loss", "arming"): (
        "output is off and stays off: start is refused with the canopy interlock open "
        "(test_led_controller.py::test_start_refused_with_the_canopy_interlock_open)"
    ),
    ("led", "led_overdrive", "arming"): (
        "output is off: an overdriven driver emits nothing until started; the ramp and "
        "delivering phases inject it"
    ),
    ("led", "led_overdrive", "paused"): (
        "output is off while paused: an overdriven driver emits nothing; the ramp and "
        "delivering phases inject it"
    ),
    ("led", "contact_loss", "paused"): (
        "output is off and stays off: resume is refused with the interlock open; an "
        "operator pause runs no interlock timeout"
    ),
}


@dataclass(frozen=True)
class Plan:
    """How a phase is reached: commands at simulated times, the onset, the state then."""

    steps: tuple[tuple[float, str], ...]  # (at simulated time, action)
    onset_s: float
    state: str  # the controller's state just before the onset
    rf_phase: str | None = None  # RF only: "ramp" or "hold" inside delivering


# Times come from the simulators' timelines with seed 7: the simulator boots until
# 1.0 s; RF reaches the hold at 25.45 s; the IPL pass charges 1.3-2.05 s and its
# first train fires 2.15-4.2 s.
PLANS: dict[tuple[str, str], Plan] = {
    ("rf", "arming"): Plan(((1.2, "load"), (1.2, "arm")), 1.5, "ARMED"),
    ("rf", "ramp"): Plan(((1.2, "load"), (1.2, "arm"), (1.2, "start")), 2.0, "DELIVERING", "ramp"),
    ("rf", "hold"): Plan(((1.2, "load"), (1.2, "arm"), (1.2, "start")), 27.0, "DELIVERING", "hold"),
    ("rf", "paused"): Plan(
        ((1.2, "load"), (1.2, "arm"), (1.2, "start"), (1.8, "pause")), 2.2, "PAUSED"
    ),
    ("ipl", "arming"): Plan(((1.2, "load"), (1.2, "arm")), 2.3, "ARMED"),
    ("ipl", "charge"): Plan(((1.2, "load"), (1.2, "arm")), 1.6, "CHARGING"),
    ("ipl", "delivering"): Plan(((1.2, "load"), (1.2, "arm"), (2.1, "fire")), 2.6, "FIRING"),
    ("ipl", "paused"): Plan(((1.2, "load"), (1.2, "arm"), (2.2, "pause")), 2.5, "PAUSED"),
    ("led", "arming"): Plan(((1.2, "load"),), 1.5, "READY"),
    ("led", "ramp"): Plan(((1.2, "load"), (1.2, "start")), 1.6, "DELIVERING"),
    ("led", "delivering"): Plan(((1.2, "load"), (1.2, "start")), 3.8, "DELIVERING"),
    ("led", "paused"): Plan(((1.2, "load"), (1.2, "start"), (3.0, "pause")), 3.5, "PAUSED"),
}

ARGS: dict[tuple[str, str], dict[str, Any]] = {
    ("rf", "load"): {"zone": RF_ZONE},
    ("ipl", "load"): {"ipl_pass": IPL_PASS},
    ("ipl", "arm"): {"eye_protection": True},
    ("led", "load"): {"step": LED_STEP},
}


# Fault parameters other than the defaults, and why.
PARAMS: dict[tuple[str, str], str] = {
    # Upward in every phase (it reads high: skin over its limit once lit). The default
    # drift (-0.3 degC/s) reads low and is caught only under the lit canopy
    # (led.sensor_fall): it runs in the delivering phase, in EXTRA below.
    ("led", "sensor_drift"): "rate=0.5",
    # At the 100 mW/cm2 step any overdrive over 10 % also crosses the 110 mW/cm2
    # absolute limit, which trips first (led.over_irradiance); the 5 s
    # led.irradiance_high check is shown at 90 mW/cm2 in test_led_supervisor.py.
    ("led", "led_overdrive"): "gain=1.19",
}


@dataclass(frozen=True)
class Scenario:
    modality: str
    kind: str
    phase: str
    params: str = ""

    @property
    def fault(self) -> str:
        onset = PLANS[(self.modality, self.phase)].onset_s
        return f"{self.kind}@{onset}s" + (f":{self.params}" if self.params else "")

    @property
    def id(self) -> str:
        return f"{self.modality}-{self.kind}-{self.phase}" + (
            f"-{self.params}" if self.params else ""
        )


SCENARIOS: list[Scenario] = [
    Scenario(modality, kind, phase, PARAMS.get((modality, kind), ""))
    for modality, kinds in DEVICE_KINDS.items()
    for kind in kinds
    for phase in PHASES[modality]
    if (modality, kind, phase) not in EXCLUDED
]

# Scenarios beyond one per modality x kind x phase, each with its reason.
EXTRA: list[Scenario] = [
    # The default LED drift reads low: only the skin falling under the lit canopy
    # shows it (led.sensor_fall; with one skin sensor nothing else can).
    Scenario("led", "sensor_drift", "delivering", "rate=-0.3"),
    # The output stage fails at a steady 20 W whatever the setpoint: the skin passes
    # 44 degC slowly (about 9 s from the hold, far under the 1 degC/s hot-rise rule),
    # so the software cut-off must be what latches (rf.overtemp), not the runaway.
    Scenario("rf", "runaway", "hold", "gain=1,floor_w=20"),
]

# The alarm each scenario must latch: per modality and kind, with the phases where
# another rule must come first, and the extra scenarios by id.
EXPECTED_CODE: dict[tuple[str, str], str] = {
    ("rf", "sensor_open"): "rf.sensor_fault",
    ("rf", "sensor_stuck"): "rf.sensor_disagree",  # a frozen sensor falls behind the other
    ("rf", "sensor_drift"): "rf.sensor_disagree",
    ("rf", "runaway"): "rf.runaway",
    ("rf", "no_reply"): "rf.stale",
    ("rf", "garble"): "rf.stale",
    ("rf", "contact_loss"): "rf.contact_timeout",
    ("rf", "reset"): "rf.stale",
    ("ipl", "sensor_open"): "ipl.sensor_fault",
    ("ipl", "sensor_stuck"): "ipl.crystal_stuck",
    ("ipl", "no_reply"): "ipl.stale",
    ("ipl", "garble"): "ipl.stale",
    ("ipl", "contact_loss"): "ipl.contact_timeout",
    ("ipl", "reset"): "ipl.stale",
    ("ipl", "misfire"): "ipl.energy_mismatch",
    ("led", "sensor_open"): "led.implausible",
    ("led", "sensor_stuck"): "led.sensor_stuck",
    ("led", "sensor_drift"): "led.skin_overtemp",
    ("led", "no_reply"): "led.stale",
    ("led", "garble"): "led.stale",
    ("led", "contact_loss"): "led.interlock_timeout",
    ("led", "reset"): "led.stale",
    ("led", "led_string_fail"): "led.string_fail",
    # 1.19 x the matrix's 100 mW/cm2 setpoint is past the absolute 110 first (the
    # 10 % over-setpoint rule has its own tests in test_led_supervisor.py)
    ("led", "led_overdrive"): "led.over_irradiance",
}
EXPECTED_CODE_BY_ID: dict[str, str] = {
    # at 42 degC both sensors read alike: only the frozen repetition shows (3 s)
    "rf-sensor_stuck-hold": "rf.sensor_stuck",
    # contact lost mid-train cuts the train short: it is never confirmed
    "ipl-contact_loss-delivering": "ipl.flash_unconfirmed",
    # under the lit canopy an open skin sensor trips the firmware's own skin cut-off
    "led-sensor_open-ramp": "led.firmware_skin_cutoff",
    "led-sensor_open-delivering": "led.firmware_skin_cutoff",
    "led-sensor_drift-delivering-rate=-0.3": "led.sensor_fall",
    "rf-runaway-hold-gain=1,floor_w=20": "rf.overtemp",
}


def expected_code(scenario: Scenario) -> str:
    return EXPECTED_CODE_BY_ID.get(scenario.id, EXPECTED_CODE[(scenario.modality, scenario.kind)])


def deaf_stale_tick(tick_times: list[float], onset_s: float, stale_ticks: int) -> float:
    """The tick a device deaf from ``onset_s`` must latch stale at, from the loop's tick
    times alone (not from what was read): the first tick at or after the onset (on the
    simulated clock, whose sums of 0.05 s can fall a hair either side of a round
    number) is the first without a reply; the ``stale_ticks``-th is the latch."""
    return [t for t in tick_times if t >= onset_s][stale_ticks - 1]


@dataclass
class Outcome:
    """What one scenario measured (simulated seconds)."""

    scenario: Scenario
    code: str
    onset_s: float
    observable_s: float
    observed: str
    latched_s: float
    off_s: float | None
    confirmed: bool  # the safe state at the latch was confirmed by readback
    peak_c: float | None
    wall_s: float

    def row(self) -> str:
        off = "-" if self.off_periods is None else f"{self.off_periods:+.2f}"
        peak = "-" if self.peak_c is None else f"{self.peak_c:.2f}"
        return (
            f"  {self.scenario.id:40} {self.code:24} observable "
            f"{self.observable_s - self.onset_s:6.2f} s after onset ({self.observed}); "
            f"latched +{self.detection_periods:.2f}, "
            f"off {off} periods; peak {peak}"
        )

    @property
    def detection_periods(self) -> float:
        return (self.latched_s - self.observable_s) / PERIOD_S

    @property
    def off_periods(self) -> float | None:
        """Output off at the simulator, in periods after observable (negative: before)."""
        return None if self.off_s is None else (self.off_s - self.observable_s) / PERIOD_S


@dataclass
class Results:
    outcomes: list[Outcome] = field(default_factory=list)

    def summary(self) -> str:
        done = self.outcomes
        if not done:
            return "HIL fault matrix: no scenario ran"
        worst_det = max(done, key=lambda o: o.detection_periods)
        peaks = [o for o in done if o.peak_c is not None]
        worst_peak = max(peaks, key=lambda o: o.peak_c or 0.0) if peaks else None
        lines = [
            f"HIL fault matrix over ptys: {len(done)} of {len(SCENARIOS)} scenarios run "
            f"({expected_count()} = modalities x kinds x phases - {len(EXCLUDED)} exclusions), "
            f"{sum(o.wall_s for o in done):.1f} wall s",
            f"  observable -> latched: worst {worst_det.detection_periods:.2f} periods "
            f"({worst_det.scenario.id})",
        ]
        for confirmed, how in ((True, "safe state confirmed"), (False, "device watchdog")):
            offs = [o for o in done if o.off_periods is not None and o.confirmed is confirmed]
            if offs:
                worst = max(offs, key=lambda o: o.off_periods or 0.0)
                periods = worst.off_periods or 0.0
                lines.append(
                    f"  observable -> output off at the simulator ({how}): worst "
                    f"{periods:+.2f} periods = {periods * PERIOD_S * 1000:+.0f} ms "
                    f"({worst.scenario.id}; {len(offs)} scenarios)"
                )
        if worst_peak is not None:
            lines.append(
                f"  peak true skin: worst {worst_peak.peak_c:.2f} degC ({worst_peak.scenario.id})"
            )
        return "\n".join(lines)


def expected_count() -> int:
    total = sum(len(DEVICE_KINDS[m]) * len(PHASES[m]) for m in DEVICE_KINDS)
    return total - len(EXCLUDED)


# -- observability: the documented rules, on the readings the controller received ---------


def _stale_at(ticks: list[tuple[float, Any]], stale_ticks: int, from_s: float) -> float | None:
    run = 0
    for t, reading in ticks:
        run = run + 1 if reading is None else 0
        if run >= stale_ticks and t >= from_s:
            return t
    return None


def _lost_timeout_at(
    ticks: list[tuple[float, Any]],
    states: list[str],
    lost: Callable[[Any], bool],
    pausing: tuple[str, ...],
    timeout_s: float,
    from_s: float,
) -> float | None:
    since: float | None = None
    for (t, reading), state in zip(ticks, states, strict=True):
        if reading is None:
            continue
        if not lost(reading):
            since = None
        elif since is None:
            if state in pausing:
                since = t
        elif t - since > timeout_s and t >= from_s:
            return t
    return None


def _stale_and_lost(
    rig: PtyRig,
    stale_ticks: int,
    lost: Callable[[Any], bool],
    pausing: tuple[str, ...],
    timeout_s: float,
    label: str,
    from_s: float,
) -> list[tuple[float, str]]:
    """The rules every modality has: stale readings, and contact (or interlock) lost
    while delivering and not back within its timeout."""
    found: list[tuple[float, str]] = []
    if (t := _stale_at(rig.ticks, stale_ticks, from_s)) is not None:
        found.append((t, "stale"))
    t = _lost_timeout_at(rig.ticks, rig.states, lost, pausing, timeout_s, from_s)
    if t is not None:
        found.append((t, label))
    return found


def _rf_no_contact(r: RFReading) -> bool:
    return not r.status & RFStatus.CONTACT_OK


def _ipl_no_contact(r: IPLReading) -> bool:
    return not r.has(IPLStatus.CONTACT_OK)


def _led_interlock_open(r: LEDReading) -> bool:
    return not r.interlock_closed


def _first(found: list[tuple[float, str]]) -> tuple[float, str] | tuple[None, None]:
    return min(found) if found else (None, None)


def rf_observable(rig: PtyRig, from_s: float) -> tuple[float, str] | tuple[None, None]:
    lim = RFLimits()
    ticks, states = rig.ticks, rig.states
    found = _stale_and_lost(
        rig,
        lim.stale_ticks,
        _rf_no_contact,
        ("DELIVERING",),
        lim.contact_timeout_s,
        "contact timeout",
        from_s,
    )
    t_rule, rule = first_observable(ticks, lim, from_s)
    if t_rule is not None and rule is not None:
        found.append((t_rule, rule))
    for (t, r), state in zip(ticks, states, strict=True):
        dropped = r is not None and not r.output_on and not _rf_no_contact(r)
        if t >= from_s and state == "DELIVERING" and dropped:
            found.append((t, "output dropped"))
            break
    return _first(found)


# The device fault bits, restated from docs/protocols/ipl.md rather than imported from
# the supervisor: this oracle must not share the supervisor's code.
_IPL_FAULT_BITS = int(
    IPLStatus.BLOCK_OVERTEMP
    | IPLStatus.WATCHDOG_TRIPPED
    | IPLStatus.POWER_ON_RESET
    | IPLStatus.SENSOR_FAULT
)
_IPL_ENERGY_BITS = int(IPLStatus.ARMED | IPLStatus.CHARGED | IPLStatus.CHARGING)
_IPL_ENERGY_STATES = ("CHARGING", "ARMED", "FIRING")


def ipl_observable(rig: PtyRig, from_s: float) -> tuple[float, str] | tuple[None, None]:
    lim = IPLLimits()
    ticks, states = rig.ticks, rig.states
    found = _stale_and_lost(
        rig,
        lim.stale_ticks,
        _ipl_no_contact,
        ("CHARGING", "ARMED"),
        lim.contact_timeout_s,
        "contact timeout",
        from_s,
    )
    for (t, r), state in zip(ticks, states, strict=True):
        if r is None or t < from_s:
            continue
        if int(r.status) & _IPL_FAULT_BITS:
            found.append((t, "device status"))
        temps = (r.crystal_temp_c, r.block_temp_c)
        if not all(lim.plausible_min_c <= v <= lim.plausible_max_c for v in temps):
            found.append((t, "implausible"))
        if r.block_temp_c >= lim.block_stop_c:
            found.append((t, "block overtemp"))
        if int(r.status) & _IPL_ENERGY_BITS and state not in _IPL_ENERGY_STATES:
            found.append((t, "energy unexpected"))
    found.extend(ipl_train_findings(rig, lim, from_s))
    return _first(found)


def ipl_train_findings(rig: PtyRig, lim: IPLLimits, from_s: float) -> list[tuple[float, str]]:
    """Per train fired (``fire`` device commands): complete (every pulse counted and
    disarmed) with the wrong fluence or the third without a crystal rise, or not
    complete ``flash_confirm_s`` + the train's length after FIRE."""
    p = IPL_PASS
    train_s = (p.pulse_count * p.pulse_width_ms + (p.pulse_count - 1) * p.pulse_delay_ms) / 1e3
    ticks = list(zip(rig.ticks, rig.states, strict=True))
    found: list[tuple[float, str]] = []
    without_rise = 0
    for event in rig.events:
        if event.kind != "device_command" or event.data.get("command") != "fire":
            continue
        fired = event.t_s
        before = next((r for (t, r), _ in ticks if t == fired), None)
        for (t, r), state in ticks:
            if t <= fired or r is None:
                continue
            if state != "FIRING" or before is None:
                break
            if r.shot_count >= before.shot_count + p.pulse_count and not r.has(IPLStatus.ARMED):
                rose = r.crystal_temp_c > before.crystal_temp_c
                without_rise = 0 if rose else without_rise + 1
                error = abs(r.last_fluence_j_cm2 - p.fluence_j_cm2) / p.fluence_j_cm2
                if t >= from_s and error > lim.energy_tolerance:
                    found.append((t, "energy mismatch"))
                if t >= from_s and without_rise >= 3:
                    found.append((t, "crystal stuck"))
                break
            if t - fired > lim.flash_confirm_s + train_s:
                if t >= from_s:
                    found.append((t, "flash unconfirmed"))
                break
    return found


_LED_FAULT_BITS = int(
    LEDFault.WATCHDOG_TRIPPED
    | LEDFault.PANEL_OVERTEMP
    | LEDFault.SKIN_OVERTEMP
    | LEDFault.STRING_FAIL
    | LEDFault.POWER_ON_RESET
)


def led_observable(rig: PtyRig, from_s: float) -> tuple[float, str] | tuple[None, None]:
    lim = LEDLimits()
    ticks, states = rig.ticks, rig.states
    found = _stale_and_lost(
        rig,
        lim.stale_ticks,
        _led_interlock_open,
        ("DELIVERING",),
        lim.interlock_timeout_s,
        "interlock timeout",
        from_s,
    )
    on_since: float | None = None
    low_since: float | None = None
    high_since: float | None = None
    stuck: tuple[float, float] | None = None  # (value, since) while output is on
    lit: list[tuple[float, float]] = []  # (t, skin) while delivering with output on
    for (t, r), state in zip(ticks, states, strict=True):
        if r is None:
            continue
        skin = r.skin_temp_c
        reasons = []
        if int(r.faults) & _LED_FAULT_BITS:
            reasons.append("device status")
        if not lim.plausible_min_c <= skin <= lim.plausible_max_c:
            reasons.append("implausible")
        elif skin > lim.skin_max_c:
            reasons.append("skin over limit")
        if r.output_on and state != "DELIVERING":
            reasons.append("output unexpected")
        # over irradiance: above the absolute limit, or setpoint x 1.2 + 2 while delivering
        if r.irradiance_mw_cm2 > lim.irradiance_max_mw_cm2 or (
            state == "DELIVERING"
            and r.irradiance_mw_cm2
            > LED_STEP.irradiance_mw_cm2 * (1 + lim.over_irradiance_fraction) + 2.0
        ):
            reasons.append("over irradiance")
        if state == "DELIVERING" and not r.output_on and r.interlock_closed:
            reasons.append("output dropped")
        # irradiance collapse: below half the setpoint for 1 s, after 1 s of settling
        if state == "DELIVERING" and r.output_on:
            on_since = t if on_since is None else on_since
            low = r.irradiance_mw_cm2 < LED_STEP.irradiance_mw_cm2 * lim.collapse_fraction
            if t - on_since < lim.settle_s or not low:
                low_since = None
            elif low_since is None:
                low_since = t
            elif t - low_since >= lim.collapse_s:
                reasons.append("irradiance collapse")
            # irradiance high: over setpoint + 10 % for 5 s, after settling
            high_limit = LED_STEP.irradiance_mw_cm2 * (1 + lim.irradiance_high_fraction)
            if t - on_since < lim.settle_s or r.irradiance_mw_cm2 <= high_limit:
                high_since = None
            elif high_since is None:
                high_since = t
            elif t - high_since >= lim.irradiance_high_s - 1e-9:
                reasons.append("irradiance high")
        else:
            on_since = low_since = high_since = None
        if r.output_on:
            if stuck is None or stuck[0] != skin:
                stuck = (skin, t)
            elif t - stuck[1] >= lim.stuck_s:
                reasons.append("stuck")
        else:
            stuck = None
        # skin falling under the lit canopy: least-squares slope over the window,
        # from 40 samples on, below -skin_fall_max_c_per_s (a tie counts, as for RF)
        if state == "DELIVERING" and r.output_on:
            lit.append((t, skin))
            while lit[0][0] < t - lim.skin_fall_window_s:
                lit.pop(0)
            if len(lit) >= 40:
                slope = _ls_slope(lit)
                if slope is not None and slope < -lim.skin_fall_max_c_per_s + SLOPE_TIE:
                    reasons.append("skin falling")
        else:
            lit = []
        if reasons and t >= from_s:
            found.append((t, reasons[0]))
            break
    return _first(found)


SLOPE_TIE = 1e-9  # the supervisor's running sums round differently from this fresh sum


def _ls_slope(points: list[tuple[float, float]]) -> float | None:
    n = len(points)
    mt = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mt) ** 2 for x, _ in points)
    sxy = sum((x - mt) * (y - my) for x, y in points)
    return sxy / sxx if sxx > 0 else None


OBSERVABLE: dict[str, Callable[[PtyRig, float], tuple[float, str] | tuple[None, None]]] = {
    "rf": rf_observable,
    "ipl": ipl_observable,
    "led": led_observable,
}
DEAF_AT_ONSET = ("no_reply", "reset")  # the device hears nothing from the onset on
REPLIES_LOST = (*DEAF_AT_ONSET, "garble")
# Wall-clock read timeouts (they cost no simulated time): generous for every reply a
# healthy device gives, so a loaded machine cannot fake a fault; from the onset of a
# fault that loses replies by design, short, because each lost reply costs the timeout
# times the driver's tries (a stale latch and an unconfirmed safe state take about a
# dozen) and nothing measured depends on how long the host waited in wall time.
TIMEOUT_S = 0.5
TIMEOUT_REPLIES_LOST_S = 0.02


# -- running one scenario ----------------------------------------------------------------


def carry_on(rig: PtyRig) -> None:
    """What the session does next, as an operator would; a refusal is tried again later."""
    controller = rig.controller
    state = controller.state.name
    try:
        if state == "PAUSED" and controller.pause_reason == "operator":
            rig.command("resume")
        elif (state, rig.modality) in (("ARMED", "rf"), ("READY", "led")):
            rig.command("start")
        elif state == "ARMED" and rig.modality == "ipl" and controller._may_fire():
            rig.command("fire")
    except ControlError:
        pass  # refused while the fault shows (no contact, no fresh reading...): safe


def reach_phase(rig: PtyRig, plan: Plan) -> None:
    for at_s, action in plan.steps:
        rig.run_to(at_s)
        if action == "fire":
            assert rig.run_until(lambda: rig.controller._may_fire(), max_s=1.0), (
                rig.controller.status()
            )
        rig.command(action, **ARGS.get((rig.modality, action), {}))
    rig.run_to(plan.onset_s - PERIOD_S)
    controller = rig.controller
    assert controller.state.name == plan.state, (controller.state, controller.fault_alarm)
    if plan.rf_phase is not None:
        assert controller.phase == plan.rf_phase, controller.status()


def run_scenario(scenario: Scenario, store: RecordStore) -> Outcome:
    started = time.perf_counter()
    plan = PLANS[(scenario.modality, scenario.phase)]
    onset = plan.onset_s
    rig = PtyRig.create(
        scenario.modality,
        seed=SEED,
        faults=(scenario.fault,),
        timeout_s=TIMEOUT_S,
        store=store,
        session_name=f"fault matrix {scenario.id}",
    )
    if scenario.kind in REPLIES_LOST:
        rig.reply_timeout_from(onset, TIMEOUT_REPLIES_LOST_S)
    try:
        reach_phase(rig, plan)
        controller = rig.controller
        next_action = onset + CARRY_ON_AFTER_S
        deadline = onset + MAX_AFTER_ONSET_S
        while not controller.latched and rig.now() + PERIOD_S <= deadline:
            rig.run_to(min(next_action, deadline), stop=lambda: controller.latched)
            if not controller.latched and rig.now() >= next_action - EPS_S:
                carry_on(rig)
                next_action = rig.now() + CARRY_ON_EVERY_S
        assert controller.latched, f"{scenario.id}: no fault latched, {controller.status()}"
        latched = rig.latched_at()
        assert latched is not None, controller.fault_alarm
        latched_s, alarm = latched
        rig.run_for(AFTER_LATCH_S)
        assert controller.state.name == "FAULT", controller.state
        assert alarm.latches and alarm.priority is AlarmPriority.HIGH, alarm

        observable_s, observed = OBSERVABLE[scenario.modality](rig, onset - EPS_S)
        assert observable_s is not None and observed is not None, (
            f"{scenario.id}: {alarm.code} latched at {latched_s:.2f} s but no reading "
            "shows a fault by the documented rules"
        )
        assert alarm.code == expected_code(scenario), (
            f"{scenario.id}: {alarm.code} latched, {expected_code(scenario)} expected "
            f"(observable: {observed})"
        )
        assert abs(latched_s - observable_s) <= TICK_EPS_S, (
            f"{scenario.id}: observable ({observed}) at {observable_s:.3f} s, "
            f"{alarm.code} latched at {latched_s:.3f} s: not in the same tick"
        )
        if scenario.kind in DEAF_AT_ONSET:
            stale_ticks = {"rf": RFLimits, "ipl": IPLLimits, "led": LEDLimits}[
                scenario.modality
            ]().stale_ticks
            due = deaf_stale_tick([t for t, _ in rig.ticks], onset, stale_ticks)
            assert abs(latched_s - due) <= TICK_EPS_S, (
                f"{scenario.id}: stale latched at {latched_s:.3f} s, due at {due:.3f} s"
            )

        # -- output off at the simulator, and kept off --
        log: list[tuple[float, bool, str]] = rig.sim(lambda s: list(s.output_log))
        assert not rig.sim(lambda s: s.output_on), log
        assert not any(on for t, on, _ in log if t > latched_s + EPS_S), log
        offs = [t for t, on, _ in log if not on]
        # None: the output was already off before the onset and stayed off
        off_s = offs[-1] if offs and offs[-1] >= onset - EPS_S else None
        at_trip = [d for t, d in rig.safe_state_results() if abs(t - latched_s) <= EPS_S]
        confirmed = bool(at_trip) and all(d["confirmed"] for d in at_trip)
        if confirmed:
            bound = latched_s + ROUND_TRIP_S  # the safe state is commanded in the latch tick
        elif scenario.kind in DEAF_AT_ONSET:
            bound = onset + WATCHDOG_S  # its last valid frame came before the onset
        else:
            bound = latched_s + WATCHDOG_S  # the port closed in the latch tick
        if offs:
            assert offs[-1] <= bound + EPS_S, (
                f"{scenario.id}: output off at {offs[-1]:.3f} s, bound {bound:.3f} s "
                f"(observable {observable_s:.3f}, latched {latched_s:.3f}, confirmed {confirmed})"
            )

        # -- the patient --
        peak: float | None = None
        if scenario.modality == "ipl":
            assert not rig.sim(lambda s: s.charged), "the lamp still holds a charge"
            flashes = rig.sim(lambda s: list(s.flashes))
            assert all(start <= latched_s + EPS_S for start, _, _ in flashes), flashes
        else:
            peak = float(rig.sim(lambda s: s.peak_skin_c))
            assert peak < PEAK_LIMIT_C, f"{scenario.id}: true skin peak {peak:.2f} degC"
    finally:
        rig.close("fault")

    # -- the record --
    assert rig.session_id is not None
    result = store.verify(rig.session_id)[0]
    assert result.ok, result.describe()
    events = store.events(rig.session_id)
    codes = [
        e.data["alarm"]["code"]
        for e in events
        if e.kind == "alarm" and isinstance(e.data.get("alarm"), dict)
    ]
    assert alarm.code in codes, (alarm.code, codes)
    assert any(e.kind == "device_command" and e.data.get("command") == "safe_state" for e in events)
    assert store.session(rig.session_id).outcome == "fault"
    return Outcome(
        scenario=scenario,
        code=alarm.code,
        onset_s=onset,
        observable_s=observable_s,
        observed=observed,
        latched_s=latched_s,
        off_s=off_s,
        confirmed=confirmed,
        peak_c=peak,
        wall_s=time.perf_counter() - started,
    )


# -- the tests -----------------------------------------------------------------------------


def test_sim_time_stands_still_while_a_reply_is_in_flight() -> None:
    """The premise of the matrix: over a real pty, a round trip takes no simulated time,
    a missed reply costs wall time only, and the simulator's watchdog acts at the
    simulated time it is due (250 ms after the last valid frame, exactly)."""
    clock = SimClock()
    server = PtyServer(
        functools.partial(RFFirmware, seed=1, faults=("no_reply@1.3s",)), clock=clock
    )
    path = server.start()
    try:
        clock.sleep(1.0)  # the simulator's silent boot
        driver = RFScpiDriver(open_port(path, clock=clock), now=clock.now)
        try:
            driver.clear_status()
            driver.set_power(5.0)
            driver.output_on()
            reading = driver.read()
            assert clock.now() == 1.0 and reading.t_s == 1.0 and reading.output_on
            clock.sleep_until(1.2)
            assert driver.read().output_on  # the last valid frame: 1.2 s
            clock.sleep_until(1.3)  # no_reply starts
            wall = time.perf_counter()
            with pytest.raises(DeviceTimeout):
                driver.read()
            assert time.perf_counter() - wall >= 0.05  # pyserial's wall-clock timeout...
            assert clock.now() == 1.3  # ...moved no simulated time
            clock.sleep_until(1.44)
            assert server.inspect(lambda sim: sim.output_on)
            clock.sleep_until(1.46)
            log = server.inspect(lambda sim: sim.output_log)
            assert [(on, why) for _, on, why in log] == [(True, "host"), (False, "watchdog")]
            assert log[-1][0] == pytest.approx(1.2 + WATCHDOG_S, abs=1e-9)
        finally:
            driver.close()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    with RecordStore.open(Path(tmp_path_factory.mktemp("hil-matrix")) / "records.sqlite") as s:
        yield s


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> Iterator[Results]:
    """Collects every scenario's measurements; the summary is printed at the end of the
    run (``pytest_terminal_summary`` in ``tests/conftest.py``)."""
    collected = Results()
    yield collected
    request.config.stash.setdefault(SUMMARY_KEY, []).extend(collected.summary().splitlines())
    if request.config.getoption("verbose") > 1:
        request.config.stash[SUMMARY_KEY].extend(o.row() for o in collected.outcomes)


def test_the_matrix_covers_every_kind_and_phase_but_the_documented_exclusions() -> None:
    assert len(SCENARIOS) == expected_count()
    assert len({s.id for s in SCENARIOS}) == len(SCENARIOS)
    for modality, kind, phase in EXCLUDED:
        assert kind in DEVICE_KINDS[modality] and phase in PHASES[modality]
    assert set(PLANS) == {(m, p) for m, phases in PHASES.items() for p in phases}
    assert len(SCENARIOS) == 89  # (8 + 7 + 9) kinds x 4 phases = 96, minus 7 exclusions
    for scenario in [*SCENARIOS, *EXTRA]:
        assert expected_code(scenario).startswith(scenario.modality + ".")
    assert set(EXPECTED_CODE_BY_ID) <= {s.id for s in [*SCENARIOS, *EXTRA]}


@pytest.mark.hil
@pytest.mark.parametrize(
    "scenario",
    [*SCENARIOS, *EXTRA],
    ids=lambda s: s.id,
)
def test_fault_ends_safe_within_its_bound(
    scenario: Scenario, store: RecordStore, results: Results, request: pytest.FixtureRequest
) -> None:
    """One scenario; every assertion is in :func:`run_scenario` (see the module doc)."""
    if request.config.getoption("devicectl_devices", default=None):
        pytest.skip("the fault matrix injects simulator faults: it runs on simulators only")
    results.outcomes.append(run_scenario(scenario, store))
