"""Scripts against a running station: ``devicectl run --station`` and
``run_protocol_file(station=...)``, each a signed-in client of a service started here
(``devicectl station serve`` in its own process, on a Unix socket in tmp), its RF a
simulator served on a pty by this process, in real time. One session per service:
each test starts its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devicectl.errors import ConfigError
from devicectl.plugins import SIMULATOR_GROUP, load_plugin
from devicectl.records.store import RecordStore
from devicectl.session.api import run_protocol_file, station_refusal
from devicectl.session.protocol_file import loads_protocol
from devicectl.station.auth import Operator, OperatorStore
from devicectl.station.client import station_target
from devicectl_simulators.pty_server import PtyServer
from tests.served_process import Served, devicectl_script

# Real time: the service, its device and the session; run with the other real-time modules.
pytestmark = [pytest.mark.timeout(240), pytest.mark.xdist_group("realtime")]

START_S = 60.0
PIN = "2468"
SKIN0_C = "36.5"  # the simulated skin at rest, warm (see ``rig_for``; below the 37 degC core)
PROTOCOL = """\
[session]
name = "Station RF short"
version = "1.0"
description = "A confirmation and one short RF zone (a low target: seconds in real time)."

[[step]]
kind = "manual"
title = "Cleanse"
instructions = "Cleanse the face."

[[step]]
kind = "rf"
title = "RF forehead"
target_c = 39.0
hold_s = 2

[[step.zones]]
name = "forehead"
"""
IPL_STEP = """
[[step]]
kind = "ipl"
title = "IPL cheeks"
filter_nm = 560
fluence_j_cm2 = 12.0
pulse_width_ms = 10.0
flashes = 2
"""


class Rig:
    def __init__(self, tmp: Path, rf: PtyServer) -> None:
        self.tmp = tmp
        self.rf = rf
        self.sock = tmp / "station.sock"
        self.db = tmp / "records.sqlite"
        self.operators = tmp / "operators.json"
        self.protocol = tmp / "rf-short.toml"
        self.protocol.write_text(PROTOCOL)
        self.service: Served | None = None

    def start(self) -> Served:
        env = {**os.environ, "DEVICECTL_LOG": str(self.tmp / "station.jsonl")}
        proc = subprocess.Popen(
            [
                *(devicectl_script(), "station", "serve", "--device", f"rf={self.rf.path}"),
                *("--unix", str(self.sock)),
                # The longest reply timeout: a busy test machine is not a lost device.
                *("--port-timeout", "0.2"),
                *("--operators", str(self.operators), "--db", str(self.db)),
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "station.stderr", "ab"),  # noqa: SIM115 - closed with the process
            text=True,
            cwd=self.tmp,
            env=env,
        )
        self.service = Served(proc, self.tmp)
        self.service.wait_for(lambda e: e.get("event") == "serving", START_S)
        return self.service

    def run(self, *args: str, pin: str | None = None) -> subprocess.Popen[str]:
        env = {**os.environ, "DEVICECTL_LOG": str(self.tmp / "run.jsonl")}
        env.pop("DEVICECTL_PIN", None)
        if pin is not None:
            env["DEVICECTL_PIN"] = pin
        return subprocess.Popen(
            [devicectl_script(), "run", str(self.protocol), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.tmp,
            env=env,
        )

    def output_on(self) -> bool:
        return bool(self.rf.inspect(lambda sim: sim.output_on))

    def wait_output(self, on: bool, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.output_on() != on:
            assert time.monotonic() < deadline, f"RF output never {on}"
            time.sleep(0.05)


@contextlib.contextmanager
def rig_for(tmp_path: Path) -> Iterator[Rig]:
    """A served RF simulator and enrolled operators; the service is started by the test."""
    store = OperatorStore(tmp_path / "operators.json")
    store.add("sup", "1357", "supervisor")
    store.add("tech", PIN, "operator", by=Operator("sup", "supervisor"))
    factory = load_plugin(SIMULATOR_GROUP, "rf")
    # The skin rests warm (36.5 degC, not 33.5): the zone reaches its 42 degC sooner in
    # real time. What is tested is the station's clients, not the heating.
    server = PtyServer(functools.partial(factory, seed=3, skin0=SKIN0_C))
    server.start()
    rig = Rig(tmp_path, server)
    try:
        yield rig
    finally:
        if rig.service is not None:
            rig.service.cleanup()
        server.stop()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    with rig_for(tmp_path) as made:
        yield made


def test_run_station_completes_and_the_record_names_the_operator(rig: Rig) -> None:
    service = rig.start()
    proc = rig.run(
        *("--station", f"unix:{rig.sock}", "--operator", "tech", "--yes", "--pin-stdin", "--json")
    )
    out, err = proc.communicate(PIN + "\n", timeout=180)
    assert proc.returncode == 0, out + err
    outcome = json.loads(out)
    assert outcome["outcome"] == "complete"
    assert outcome["operator_id"] == "tech"
    assert [s["outcome"] for s in outcome["steps"]] == ["complete", "complete"]
    # The same keys as a local run of the same file (simulators in simulated time).
    local = subprocess.run(
        [devicectl_script(), "run", str(rig.protocol), "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=rig.tmp,
        env={**os.environ, "DEVICECTL_LOG": str(rig.tmp / "local.jsonl")},
    )
    assert local.returncode == 0, local.stderr
    local_outcome = json.loads(local.stdout)
    assert outcome.keys() == local_outcome.keys()
    assert all(
        set(s) <= set(t) for s, t in zip(outcome["steps"], local_outcome["steps"], strict=True)
    )
    assert service.terminate() == 0
    with RecordStore.open(rig.db) as store:
        session = store.session(outcome["session_id"])
        assert session.operator_id == "tech"
        assert session.outcome == "complete"
        # --yes: an unattended session; what the runner did by itself is "auto", the
        # prompts this run answered are the signed-in operator's.
        assert session.unattended is True
        events = store.events(outcome["session_id"])
        confirmed = [e.data["operator_id"] for e in events if e.kind == "operator_confirmed"]
        assert confirmed == ["auto"], confirmed
        rf_commands = {
            (e.data["action"], e.data["operator_id"])
            for e in events
            if e.kind == "command" and e.device == "rf"
        }
        assert {("load", "auto"), ("arm", "tech"), ("start", "tech")} <= rf_commands, rf_commands
        assert not {who for _, who in rf_commands} - {"auto", "tech"}, rf_commands
        assert store.verify(outcome["session_id"])[0].ok


def test_sigint_while_attached_aborts_at_the_station_every_device_safe(rig: Rig) -> None:
    service = rig.start()
    proc = rig.run("--station", str(rig.sock), "--operator", "tech", "--yes", pin=PIN)
    try:
        rig.wait_output(True, timeout_s=90)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    lines = [line for line in err.splitlines() if line.startswith("devicectl:")]
    assert len(lines) == 1 and "SIGINT" in lines[0] and "aborted" in lines[0], err
    assert "every device was confirmed safe (rf)" in lines[0]
    assert not rig.output_on()
    assert service.terminate() == 0
    session_id = lines[0].split("session ")[1].split()[0]
    with RecordStore.open(rig.db) as store:
        assert store.session(session_id).outcome == "aborted"


def test_the_python_api_runs_on_a_station_and_stop_aborts(rig: Rig) -> None:
    rig.start()
    seen: list[str] = []

    def progress(runner: Any, station: Any) -> None:
        seen.append(runner.state.value)

    outcome = run_protocol_file(
        rig.protocol,
        operator_id="tech",
        auto_confirm=True,
        station=f"unix://{rig.sock}",
        pin=PIN,
        progress=progress,
        stop=rig.output_on,  # abort once the RF delivers
    )
    assert outcome.interrupted and outcome.outcome == "aborted"
    assert outcome.operator_id == "tech"
    assert outcome.safe_states == {"rf": None}
    assert "waiting_confirm" in seen
    assert not rig.output_on()


def test_a_wrong_pin_and_local_options_are_configuration_errors(rig: Rig) -> None:
    rig.start()
    proc = rig.run("--station", str(rig.sock), "--operator", "tech", "--yes", "--pin-stdin")
    out, err = proc.communicate("0000\n", timeout=60)
    assert proc.returncode == 2, out + err
    assert "wrong PIN" in err
    proc = rig.run("--station", str(rig.sock), "--operator", "tech", "--db", "x.sqlite")
    out, err = proc.communicate("", timeout=60)
    assert proc.returncode == 2 and "--db: not with --station" in err, out + err


def test_an_ipl_step_needs_a_person_on_a_real_station() -> None:
    protocol = loads_protocol(PROTOCOL + IPL_STEP, "rf-ipl.toml")
    refusal = station_refusal(protocol, simulated=False, answer_prompts=True)
    assert refusal is not None and "needs a person at the chair" in refusal
    assert station_refusal(protocol, simulated=True, answer_prompts=True) is None
    # Without --yes the prompts are answered at the console, by a person.
    assert station_refusal(protocol, simulated=False, answer_prompts=False) is None


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("unix:/run/st.sock", "/run/st.sock"),
        ("unix:///run/st.sock", "/run/st.sock"),
        ("st.sock", "st.sock"),
        ("wss://chair-3.local:8765/", "wss://chair-3.local:8765/"),
    ],
)
def test_station_urls(url: str, target: str) -> None:
    assert station_target(url) == target


def test_a_station_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected unix:"):
        station_target("http://chair-3.local/")
