"""The RF controller: a `transitions` state machine around one RF generator.

Lifecycle (the single-output lifecycle of ``lifecycle.py`` with an ``armed``
step; its table is the single source, ``devicectl diagram rf`` draws it)::

    idle -> ready (zone loaded and validated) -> armed -> delivering
    delivering -> paused (operator, or contact lost) -> delivering (resume)
    delivering -> complete (zone held for its hold time) -> ready (next zone)
    any -> fault (a latching alarm) ; any -> estop ; fault/estop -> idle (acknowledge)

Guarantees (safety rules of DESIGN.md):
- Output is switched on only when entering ``delivering``, whose only ways in
  are guarded transitions (``start``/``resume`` need contact, a fresh reading
  and a validated zone). Every exit from ``delivering`` runs
  :func:`make_safe` (output off, confirmed by readback, else port closed).
- A fault latches: only ``acknowledge`` with an operator id leaves it.
- Device errors on an energy path are never swallowed: they become a latched
  fault with the error in its message.
- Only the control loop thread calls into this object.

Timing comes from the loop's clock; nothing here sleeps or reads wall time.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transitions import Machine

from devicectl.clock import Clock
from devicectl.control.base import machine_from_table
from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.control.lifecycle import SingleOutputController, single_output_table
from devicectl.devices import RFGenerator, RFReading, RFStatus
from devicectl.errors import ConfigError, ControlError, DeviceError
from devicectl.modalities.rf.limits import RFLimits, RFZone
from devicectl.modalities.rf.regulator import PulseRegulator, RegulatorTuning
from devicectl.modalities.rf.site_dose import SiteDose, SiteDoseLedger
from devicectl.modalities.rf.supervisor import RFSupervisor, SupervisorContext

HOLD_ENTRY_MARGIN_C = 0.3  # the hold clock starts when the skin is within this of target


class RFState(enum.Enum):
    IDLE = "idle"
    READY = "ready"
    ARMED = "armed"
    DELIVERING = "delivering"
    PAUSED = "paused"
    COMPLETE = "complete"
    FAULT = "fault"
    ESTOP = "estop"


S = RFState

STATES, TRANSITIONS = single_output_table(RFState, armed=True, done="zone_done")


def build_machine(model: object, *, graph: bool = False) -> Machine:
    """The machine from this module's table (see ``machine_from_table``)."""
    return machine_from_table(model, STATES, TRANSITIONS, S.IDLE, graph=graph)


@dataclass(frozen=True)
class ZoneResult:
    """What a technician and the record want to know about one treated zone."""

    name: str
    target_c: float
    outcome: str  # "complete", "fault", "aborted", "estop"
    time_to_target_s: float | None
    held_s: float
    peak_c: float
    cem43: float  # this attempt's own dose
    # What the site has received in the whole session, this attempt included (rule 8).
    site_cem43: float = 0.0
    site_time_at_target_s: float = 0.0
    site_held_s: float = 0.0


class RFController(SingleOutputController[RFGenerator, RFReading]):
    """One RF generator's lifecycle, regulation and supervision."""

    modality = "rf"
    OPERATOR_ACTIONS = ("load", "arm", "start", "pause", "resume", "abort", "estop", "acknowledge")
    S = RFState
    DONE_TRIGGER = "zone_done"
    PLAN_ARG, PLAN_TYPE, PLAN_NAME, RESULT_EVENT = "zone", RFZone, "zone", "zone_result"
    PAUSE_WATCHED = "contact lost"
    results: list[ZoneResult]

    def __init__(
        self,
        opener: Callable[[], RFGenerator],
        clock: Clock,
        *,
        name: str = "rf",
        limits: RFLimits | None = None,
        tuning: RegulatorTuning | None = None,
        emit: Callable[[Event], None] | None = None,
    ) -> None:
        self.limits = limits or RFLimits()
        self.tuning = tuning or RegulatorTuning()
        if not self.tuning.max_power_w <= self.limits.power_max_w:
            # The regulator would ask for power the supervisor then calls a fault: a
            # tuning beyond the limit is a configuration error, refused before any I/O.
            raise ConfigError(
                f"{name}: regulator max_power_w {self.tuning.max_power_w} W is above the "
                f"power limit {self.limits.power_max_w} W"
            )
        self.supervisor = RFSupervisor(self.limits, device=name)
        self.zone: RFZone | None = None
        self.regulator: PulseRegulator | None = None
        self.commanded_power_w = 0.0
        self.phase = "ramp"  # within delivering: "ramp" then "hold"
        self.sites = SiteDoseLedger()
        self._prior_cem43 = 0.0
        self._ctx_key: tuple[object, ...] | None = None
        self._ctx = SupervisorContext(False, 0.0, False, self.limits.target_max_c)
        self._zone_started_s: float | None = None
        self._delivering_s = 0.0
        self._time_to_target_s: float | None = None
        self._held_s = 0.0
        self._peak_c = -math.inf
        super().__init__(opener, clock, name=name, emit=emit, machine_factory=build_machine)

    # -- the tick phases, called by the ControlLoop ---------------------------------

    def _check(self, now_s: float) -> None:
        state = self.state
        delivering = state is S.DELIVERING
        power = self.commanded_power_w if delivering else 0.0
        zone = self.zone
        key = (state, power, zone)
        if key != self._ctx_key:  # the context changes a few times per zone, not per tick
            self._ctx_key = key
            self._ctx = SupervisorContext(
                output_expected=delivering,
                commanded_power_w=power,
                zone_active=delivering or state is S.PAUSED,
                target_c=zone.target_c if zone is not None else self.limits.target_max_c,
            )
        reading = self.reading
        alarms = self.supervisor.check(now_s, reading, self._ctx)
        if reading is not None and self._ctx.zone_active:
            skin = reading.skin_max_c
            if skin > self._peak_c:
                self._peak_c = skin
        self._apply_alarms(alarms)

    def _condition_lost(self, reading: RFReading) -> Alarm | None:
        if reading.contact_ok:
            return None
        zone = self.zone
        assert zone is not None
        return Alarm(
            self.name,
            "rf.contact_lost",
            AlarmPriority.MEDIUM,
            f"{self.name}: electrode contact lost in zone {zone.name!r}; zone paused",
            latches=False,
            value=reading.impedance_ohm,
        )

    def _pause_condition_back(self, reading: RFReading | None) -> bool:
        return reading is not None and reading.contact_ok

    def _pause_timeout(self) -> tuple[float, Alarm]:
        timeout_s = self.limits.contact_timeout_s
        return timeout_s, self._host_fault(
            "contact_timeout", f"contact not restored within {timeout_s:.0f} s"
        )

    def _deliver(self, now_s: float, reading: RFReading) -> None:
        """Regulate and account the zone; runs after supervision and commands."""
        zone = self.zone
        assert zone is not None and self.regulator is not None
        # Time since the last tick that had a reading: a missed reading's tick
        # still counts, when the next reading arrives.
        last = self._last_step_s
        self._last_step_s = now_s
        dt = now_s - last if last is not None else 0.0
        self._delivering_s += dt
        skin = reading.skin_max_c
        if self.phase == "ramp" and skin >= zone.target_c - HOLD_ENTRY_MARGIN_C:
            self.phase = "hold"
            self._time_to_target_s = self._delivering_s
            self._emit("target_reached", zone=zone.name, time_to_target_s=self._delivering_s)
            self.log.info("target_reached", zone=zone.name, t_s=round(self._delivering_s, 2))
        elif self.phase == "hold":
            self._held_s += dt
            if self._held_s >= zone.hold_s:
                self._fire(self.DONE_TRIGGER)
                return
        power = self.regulator.update(now_s, skin)
        if power is not None and power != self.commanded_power_w:
            self._command_power(power)

    def _command_power(self, power_w: float) -> None:
        assert self.device is not None
        try:
            with self.audit.command("set_power", power_w=power_w):
                self.device.set_power(power_w)
        except DeviceError as exc:
            self._trip(self._host_fault("command_failed", f"set power {power_w} W: {exc}"))
            return
        self.commanded_power_w = power_w
        self.log.debug("set_power", power_w=power_w)

    # -- operator commands -----------------------------------------------------

    def load_zone(self, zone: RFZone) -> bool:
        """Load ``zone``; refused when its site has already reached a dose limit.

        The site's dose and time at target so far this session carry into the
        zone's supervision, so the limits apply to the site's total (rule 8).
        """
        return self.load_plan(zone)

    def _begin_plan(self, zone: RFZone) -> None:
        prior = self.sites.get(zone.name)
        if prior is not None:
            self._refuse_spent_site(zone, prior)
        self.zone = zone
        self.regulator = PulseRegulator(zone.target_c, self.tuning)
        self._prior_cem43 = prior.cem43 if prior is not None else 0.0
        self.supervisor.begin_zone(
            self._prior_cem43, prior.time_at_target_s if prior is not None else 0.0
        )
        self.phase = "ramp"
        self._delivering_s = 0.0
        self._time_to_target_s = None
        self._held_s = 0.0
        self._peak_c = -math.inf
        self._zone_started_s = None

    def _refuse_spent_site(self, zone: RFZone, prior: SiteDose) -> None:
        lim = self.limits
        spent = []
        if prior.cem43 >= lim.cem43_max:
            spent.append(f"{prior.cem43:.2f} CEM43 of {lim.cem43_max:g}")
        if prior.time_at_target_s >= lim.time_at_target_max_s:
            spent.append(
                f"{prior.time_at_target_s:.0f} s at target of {lim.time_at_target_max_s:g}"
            )
        if spent:
            raise ControlError(
                f"{self.name}: site {prior.site!r} has had {' and '.join(spent)} this "
                f"session: zone {zone.name!r} is not treated again"
            )

    # -- guards ----------------------------------------------------------------

    def _refusal_reason(self) -> str:
        if self.zone is None:
            return "no zone loaded"
        if self.device is None:
            return "device not connected"
        unchecked = self._unchecked_reading()
        if unchecked:
            return unchecked
        reading = self.reading
        assert reading is not None  # _unchecked_reading refuses None
        if not reading.contact_ok:
            return "no electrode contact"
        if not reading.skin_max_c < self.limits.alarm_c:
            return f"skin {reading.skin_max_c} degC is not below the alarm limit"
        return ""

    # -- device specifics of the safe state ----------------------------------------

    def _shows_energy(self, reading: RFReading) -> bool:
        # Either word of the reading saying "on" counts: a contradiction must not
        # hide energy from the latched watch (the supervisor calls it implausible).
        return reading.output_on or bool(reading.status & RFStatus.OUTPUT_ON)

    # -- delivering -----------------------------------------------------------------

    def _prepare_output(self, now_s: float) -> dict[str, Any]:
        assert self.regulator is not None and self.reading is not None
        if self._zone_started_s is None:
            self._zone_started_s = now_s
        self.regulator.reset()
        return {"power_w": self.regulator.update(now_s, self.reading.skin_max_c) or 0.0}

    def _output_on(self, device: RFGenerator, args: dict[str, Any]) -> None:
        device.set_power(args["power_w"])
        self.commanded_power_w = args["power_w"]
        device.output_on()

    def _exit_delivering(self, event: Any) -> None:
        self.commanded_power_w = 0.0
        super()._exit_delivering(event)

    def _on_pause(self) -> None:
        if self.regulator is not None:
            self.regulator.reset()

    # -- the zone's result -------------------------------------------------------------

    def _plan_result(self, outcome: str) -> ZoneResult:
        zone = self.zone
        assert zone is not None
        peak_c = self._peak_c if self._peak_c > -math.inf else math.nan
        site = self.sites.record(
            zone.name,
            cem43_total=self.supervisor.dose.dose,
            time_at_target_total_s=self.supervisor.time_at_target_s,
            held_s=self._held_s,
            peak_c=peak_c,
        )
        return ZoneResult(
            name=zone.name,
            target_c=zone.target_c,
            outcome=outcome,
            time_to_target_s=self._time_to_target_s,
            held_s=self._held_s,
            peak_c=peak_c,
            cem43=max(0.0, self.supervisor.dose.dose - self._prior_cem43),
            site_cem43=site.cem43,
            site_time_at_target_s=site.time_at_target_s,
            site_held_s=site.held_s,
        )

    # -- what front-ends show ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        reading = self.reading
        return {
            "state": self.state.value,
            "zone": self.zone.name if self.zone else None,
            "phase": self.phase,
            "skin1_c": reading.skin1_c if reading else None,
            "skin2_c": reading.skin2_c if reading else None,
            "power_w": self.commanded_power_w,
            "held_s": self._held_s,
            "cem43": self.supervisor.dose.dose,
            "fault": self.fault_alarm.message if self.fault_alarm else None,
        }
