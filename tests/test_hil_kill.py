"""Hardware in the loop: the controller is killed with SIGKILL mid-delivery.

For RF (heating a zone) and LED (633 nm on), each simulator is served in its own
process (``devicectl sim serve KIND --pty``) and ``devicectl run`` drives it as a
second, separate process. Once the served simulator reports the output on (reason
``host``) and the record holds the delivering state, the controller is killed
with SIGKILL: nobody sends ``OUTP OFF``, only the device's own 250 ms watchdog is
left. The serve log must show the output off (reason ``watchdog``) within 250 ms
of the kill (plus scheduling slack), and the record store must still verify, hold
the delivering state and mark the dead session interrupted.

Clocks: the serve log's ``t`` is the simulator's :class:`~devicectl.clock.RealClock`
time, i.e. ``time.monotonic()`` of the serving process (see the module docstring of
``simulators/devicectl_simulators/serve.py``: ``output`` events carry the simulator's ``output_log``
times, and the simulator runs on a ``RealClock``, whose ``now()`` is
``time.monotonic()``). On Linux ``time.monotonic()`` is ``CLOCK_MONOTONIC``, one
system-wide clock shared by every process, so it compares directly with this
test's own ``time.monotonic()`` at the kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicectl.records.store import RecordStore
from tests.served_process import Served, devicectl_script

WATCHDOG_S = 0.25
SLACK_S = 0.35  # scheduling slack on a loaded machine, on top of the watchdog
START_TIMEOUT_S = 15.0
OPERATOR = "tech-k"

PROTOCOLS = {
    "rf": """\
[session]
name = "HIL kill RF"
version = "1.0"
description = "One RF zone, long enough to be killed in."

[[step]]
kind = "rf"
title = "RF forehead"
target_c = 42.0
hold_s = 60

[[step.zones]]
name = "forehead"
""",
    "led": """\
[session]
name = "HIL kill LED"
version = "1.0"
description = "One red LED exposure, long enough to be killed in."

[[step]]
kind = "led"
title = "Red LED"
wavelength_nm = 633
irradiance_mw_cm2 = 50.0
duration_s = 60
""",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Both served simulators, started at once: their imports and 1 s boots overlap."""
    tmp = tmp_path_factory.mktemp("hil-kill-serve")
    env = {**os.environ, "DEVICECTL_LOG": str(tmp / "serve-devicectl.jsonl")}
    started: dict[str, Served] = {}
    try:
        for kind in ("rf", "led"):
            proc = subprocess.Popen(
                [devicectl_script(), "sim", "serve", kind, "--pty", "--seed", "3"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                cwd=tmp,
                env=env,
            )
            started[kind] = Served(proc)
        yield started
    finally:
        for server in started.values():
            server.cleanup()


def delivering_recorded(db: Path, kind: str) -> bool:
    """True once the record store holds a committed ``delivering`` state of ``kind``."""
    if not db.exists():
        return False
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select count(*) from events where device = :d and kind = 'state' "
                    "and data like '%delivering%'"
                ),
                {"d": kind},
            ).scalar()
        return bool(rows)
    except sa.exc.OperationalError:
        return False  # schema not there yet, or the writer holds the lock this instant
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["rf", "led"])
def test_sigkill_mid_delivery_watchdog_cuts_output_and_record_verifies(
    servers: dict[str, Served], tmp_path: Path, kind: str
) -> None:
    server = servers[kind]
    serving = server.wait_for(lambda e: e["event"] == "serving", START_TIMEOUT_S)
    assert serving["device"] == kind and serving["mode"] == "pty"
    port = serving["port"]
    assert port.startswith("/dev/") and os.path.exists(port)

    protocol = tmp_path / "proto.toml"
    protocol.write_text(PROTOCOLS[kind], encoding="utf-8")
    db = tmp_path / "r.sqlite"
    env = {**os.environ, "DEVICECTL_LOG": str(tmp_path / "controller-devicectl.jsonl")}
    stderr_path = tmp_path / "controller.stderr"
    with stderr_path.open("wb") as stderr:
        controller = subprocess.Popen(
            [
                devicectl_script(),
                "run",
                str(protocol),
                "--device",
                f"{kind}={port}",
                "--yes",
                "--db",
                str(db),
                "--operator",
                OPERATOR,
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=tmp_path,
            env=env,
        )
    try:
        server.wait_for(
            lambda e: e["event"] == "output" and e["on"] and e["reason"] == "host",
            START_TIMEOUT_S,
        )
        time.sleep(0.5)  # deliver for a moment
        deadline = time.monotonic() + 5.0
        while not delivering_recorded(db, kind):  # committed per tick: there by now
            assert controller.poll() is None, stderr_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the delivering state was never recorded"
            time.sleep(0.02)
        assert controller.poll() is None, stderr_path.read_text(errors="replace")
        assert not any(not e["on"] for e in server.outputs()), server.outputs()
        os.kill(controller.pid, signal.SIGKILL)
        kill_s = time.monotonic()
        controller.wait(timeout=10)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=10)
    assert controller.returncode == -signal.SIGKILL

    off = server.wait_for(lambda e: e["event"] == "output" and not e["on"], timeout_s=5.0)
    outputs = server.outputs()
    assert [(e["on"], e["reason"]) for e in outputs] == [(True, "host"), (False, "watchdog")], (
        outputs
    )
    # The last frame went out before the kill, so the watchdog fires at most 250 ms
    # after the kill; >= 0: the controller was still feeding it when it was killed.
    assert off["t"] - kill_s >= 0.0, (off, kill_s)
    assert off["t"] - kill_s <= WATCHDOG_S + SLACK_S, (off, kill_s)

    with RecordStore.open(db) as store:
        (session,) = store.list_sessions()
        assert session.outcome == "running"  # nobody closed it
        result = store.verify(session.id)[0]
        assert result.ok, result.describe()
        events = store.events(session.id)
        assert len(events) == session.events
        states = [e for e in events if e.device == kind and e.kind == "state"]
        assert any("delivering" in json.dumps(e.data) for e in states), states
        assert store.mark_interrupted() == [session.id]  # its process is gone
        assert store.session(session.id).outcome == "interrupted"
        assert store.verify(session.id)[0].ok

    assert server.terminate() == 0
    assert server.events[-1]["event"] == "stopped"
