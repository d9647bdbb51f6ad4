"""Second, independent tests of safety checks that each had only one.

- an emergency stop queued behind a start in the same tick, with the real RF
  controller and simulator (the loop test uses fake controllers): the stop runs
  first and the output never comes on;
- a record whose event was forged to link to an earlier event, with its own hash
  made consistent: only the link check can see it, and the command line says so;
- the LED supervisor's dose against an independent integral of random irradiance
  with missed readings: the dose alarm comes in the exact tick the integral passes
  the limit, never before.

The RF software cut-off and the stale timing have their second angle in the HIL
fault matrix (``test_hil_fault_matrix.py``: a slow heating past 44 degC must latch
``rf.overtemp``; every stale latch is checked to the tick).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection
from typer.testing import CliRunner

from devicectl import cli
from devicectl.control.events import Command
from devicectl.devices import LEDFault, LEDReading
from devicectl.modalities.led.limits import LEDLimits
from devicectl.modalities.led.supervisor import LEDContext, LEDSupervisor
from devicectl.modalities.rf.controller import RFState
from devicectl.modalities.rf.limits import RFZone
from devicectl.records import RecordStore
from devicectl.records.chain import event_hash
from tests.records_scenario import write_session
from tests.rf_scenario import OPERATOR, RFRig

ChainedEventLike = Any  # an event as RecordStore.events returns it


# -- e-stop ordering, real controller ---------------------------------------------------


def test_an_estop_queued_behind_a_start_runs_first_and_no_energy_is_delivered() -> None:
    rig = RFRig.create()
    rig.station.command("rf", "load", OPERATOR, zone=RFZone("forehead", 42.0, 60.0))
    rig.station.command("rf", "arm", OPERATOR)
    assert rig.rf.state is RFState.ARMED
    loop = rig.station.loop
    start = loop.submit(Command("rf", "start", {}, OPERATOR))
    stop = loop.submit(Command("rf", "estop", {}, OPERATOR))
    loop.tick()
    assert stop.done() and start.done()
    assert stop.exception() is None
    assert start.exception() is not None  # refused: the stop went first and latched
    assert rig.rf.state is RFState.ESTOP
    rig.run_for(1.0)
    assert not rig.sim.output_on
    assert not any(on for _, on, _ in rig.sim.output_log), rig.sim.output_log


# -- the hash chain's link, through the command line ---------------------------------------


def test_an_event_relinked_to_an_earlier_one_fails_verify_on_the_command_line(
    tmp_path: Path,
) -> None:
    db = tmp_path / "records.sqlite"
    with RecordStore.open(db) as store:
        sid = write_session(store, ticks=10, per_tick=3)
        events = store.events(sid)
        victim, skipped_to, successor = events[9], events[7], events[10]

        def stored_data(conn: Connection, seq: int) -> str:
            return str(
                conn.exec_driver_sql(
                    f"SELECT data FROM events WHERE session_id = '{sid}' AND seq = {seq}"
                ).scalar_one()
            )

        def relink(conn: Connection, e: ChainedEventLike, prev_hash: str) -> str:
            """Point event ``e`` at ``prev_hash`` and make its own hash consistent."""
            new_hash = event_hash(
                prev_hash,
                e.seq,
                e.t_s,
                e.wall_at,
                e.kind,
                e.device,
                e.step_index,
                e.operator_id,
                stored_data(conn, e.seq),
            )
            conn.exec_driver_sql(
                f"UPDATE events SET prev_hash = '{prev_hash}', hash = '{new_hash}' "
                f"WHERE session_id = '{sid}' AND seq = {e.seq}"
            )
            return new_hash

        with store.engine.begin() as conn:
            # seq 10 now claims to follow seq 8, and seq 11 follows the forged seq 10:
            # every row's own hash is consistent; only the links can tell
            forged = relink(conn, victim, skipped_to.hash)
            relink(conn, successor, forged)
        [result] = store.verify(sid)
        assert not result.ok
        assert 9 in result.edited, result.describe()
        assert "no longer links" in result.describe()
    out = CliRunner().invoke(
        cli.app,
        ["--log-file", str(tmp_path / "log.jsonl"), "records", "verify", "--db", str(db)],
    )
    assert out.exit_code != 0, out.output
    assert "no longer links" in out.output or "edited" in out.output, out.output


# -- LED dose against an independent integral -------------------------------------------------

PERIOD_S = 0.05
ON = LEDContext(output_expected=True, setpoint_mw_cm2=110.0, step_active=True)


def led_reading(t: float, irr: float) -> LEDReading:
    return LEDReading(t, 633, 110.0, irr, True, 30.0, 34.0, True, t, LEDFault.NONE)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(90.0, 110.0), st.booleans(), st.booleans()),
        min_size=20,
        max_size=20,
    ),
    st.floats(0.5, 3.0),
)
def test_the_dose_alarm_comes_in_the_tick_an_independent_integral_passes_the_limit(
    pattern: list[tuple[float, bool, bool]], dose_max: float
) -> None:
    """Irradiance per tick repeats ``pattern`` (value, reading missed, second miss);
    a gap of missed readings is charged at the irradiance of the reading closing it."""
    lim = LEDLimits(dose_max_j_cm2=dose_max, duration_max_s=10_000.0)
    sup = LEDSupervisor(lim)
    dose = 0.0
    last_t: float | None = None
    expected_tick: int | None = None
    tripped_tick: int | None = None
    for i in range(4000):
        t = i * PERIOD_S
        irr, missed, _ = pattern[i % len(pattern)]
        missed = missed and i > 0 and pattern[(i - 1) % len(pattern)][2]  # short gaps only
        if missed:
            alarms = sup.check(t, None, ON)
        else:
            alarms = sup.check(t, led_reading(t, irr), ON)
            if last_t is not None:
                dose += irr * (t - last_t) / 1000.0
            last_t = t
            if expected_tick is None and dose > dose_max:
                expected_tick = i
        if tripped_tick is None and any(a.code == "led.dose" for a in alarms):
            tripped_tick = i
        if expected_tick is not None and tripped_tick is not None:
            break
    assert expected_tick is not None
    assert tripped_tick == expected_tick, (tripped_tick, expected_tick, dose)
    assert sup.dose_j_cm2 == pytest.approx(dose, rel=1e-9)
