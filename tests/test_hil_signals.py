"""Hardware in the loop: SIGTERM, SIGHUP or SIGINT mid-RF-delivery.

The RF simulator is served in its own process on a pty (``devicectl sim serve rf
--pty``) and ``devicectl run`` drives it in real time as a second process. Once
the served simulator reports the output on and the record holds the delivering
state, the controller gets the signal. The host itself must turn the output off
(the serve log's reason ``host``, not ``watchdog``) well inside the device's
250 ms watchdog, print one line naming the session and saying every device was
confirmed safe, exit 128 + the signal, and leave the session ``aborted`` (not
``running``) in a record that verifies. On real ports ``run`` sets up real time as
the station service does, and its log names the scheduling it got.

Clocks: as in ``test_hil_kill.py``, the serve log's ``t`` is the serving
process's ``time.monotonic()``, one system-wide clock on Linux.
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

from devicectl.records.store import RecordStore
from tests.served_process import Served, devicectl_script
from tests.test_hil_kill import PROTOCOLS, START_TIMEOUT_S, WATCHDOG_S, delivering_recorded

# The host acts at its next tick boundary (one 50 ms period) and sends OUTP OFF at
# once; on a loaded machine allow scheduling slack, but stay below the watchdog.
HOST_OFF_MAX_S = WATCHDOG_S


@pytest.fixture(scope="module")
def rf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("hil-signal-serve")
    proc = subprocess.Popen(
        [devicectl_script(), "sim", "serve", "rf", "--pty", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
        env={**os.environ, "DEVICECTL_LOG": str(tmp / "serve.jsonl")},
    )
    server = Served(proc)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_a_signal_mid_rf_delivery_turns_output_off_from_the_host_and_ends_the_session(
    rf_server: Served, tmp_path: Path, sig: signal.Signals
) -> None:
    port = rf_server.wait_for(lambda e: e["event"] == "serving", START_TIMEOUT_S)["port"]
    before = len(rf_server.outputs())
    protocol = tmp_path / "proto.toml"
    protocol.write_text(PROTOCOLS["rf"], encoding="utf-8")
    db = tmp_path / "r.sqlite"
    env = {**os.environ, "DEVICECTL_LOG": str(tmp_path / "controller.jsonl")}
    stderr_path = tmp_path / "controller.stderr"
    with stderr_path.open("wb") as stderr:
        controller = subprocess.Popen(
            [devicectl_script(), "run", str(protocol), "--device", f"rf={port}", "--yes",
             "--db", str(db), "--operator", "tech-s"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=tmp_path,
            env=env,
        )  # fmt: skip
    try:
        rf_server.wait_for(  # this run's output on, switched by the host
            lambda e: any(o["on"] and o["reason"] == "host" for o in rf_server.outputs()[before:]),
            START_TIMEOUT_S,
        )
        deadline = time.monotonic() + 5.0
        while not delivering_recorded(db, "rf"):
            assert controller.poll() is None, stderr_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the delivering state was never recorded"
            time.sleep(0.02)
        assert controller.poll() is None, stderr_path.read_text(errors="replace")
        os.kill(controller.pid, sig)
        signal_s = time.monotonic()
        controller.wait(timeout=15)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait(timeout=10)

    err = stderr_path.read_text(errors="replace")
    assert controller.returncode == 128 + sig, (controller.returncode, err)
    outputs = rf_server.outputs()[before:]
    assert [(e["on"], e["reason"]) for e in outputs] == [(True, "host"), (False, "host")], outputs
    assert 0.0 <= outputs[-1]["t"] - signal_s <= HOST_OFF_MAX_S, (outputs[-1], signal_s)

    with RecordStore.open(db) as store:
        (session,) = store.list_sessions()
        assert session.outcome == "aborted"
        assert store.verify(session.id)[0].ok
    assert err.splitlines() == [
        f"devicectl: {sig.name}: session {session.id} aborted; every device was confirmed safe (rf)"
    ], err
    assert_real_time_logged(tmp_path / "controller.jsonl")


def assert_real_time_logged(log_path: Path) -> None:
    """On real ports the loop got the station service's real-time set-up, and said so:
    one ``realtime`` line naming the scheduling, and the GC policy on."""
    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    (scheduling,) = [e for e in log if e.get("event") == "realtime"]
    if scheduling["policy"] == "SCHED_FIFO":
        assert scheduling["priority"] > 0, scheduling
    else:  # refused: the best nice value it was allowed, and why
        assert scheduling["policy"] == "SCHED_OTHER" and scheduling["fifo_refused"], scheduling
    assert [e for e in log if e.get("event") == "gc_policy"], "no GC policy in a real-time run"
