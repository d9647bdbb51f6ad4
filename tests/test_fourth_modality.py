"""A fourth modality, added by a third party as a separate package, with no core change.

examples/devicectl-example-chiller is a skin-cooling handpiece: driver,
simulator, controller, supervisor, protocol-file step, runner plan, trace
channels, console panel and report section, registered through the
``devicectl.drivers``, ``devicectl.simulators`` and ``devicectl.modalities``
entry points of its own pyproject.toml. It is installed the way a clinic would
install any package, into a temporary target directory that only the
subprocesses of this module see (``PYTHONPATH``): the test process's own
registry, and every other test, stay without it.

- a protocol with a manual, an RF and a chiller step runs with ``devicectl run
  --yes`` on simulators in simulated time, and its record holds the chiller
  step complete and its traces;
- the same chiller step runs on the simulator served on a real pty
  (``devicectl sim serve chiller``), given as ``--device chiller=/dev/pts/N``;
- a chiller that stops answering (``devicectl run --fault chiller=no_reply@6s``)
  faults the session: every device is secured, the RF never energises, the
  cooling done is the step's, and every chiller alarm links to its README;
- the console's snapshot code gives the chiller's own view and panel (state,
  plate and skin temperature) and its skin trace;
- nothing under devicectl/ names the chiller;
- in this process, on ``sim://chiller``: each supervisor fault, and a deaf
  device, leaves the output off at the device (a deaf one by its own watchdog).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from served_process import Served, devicectl_script

from devicectl.control.events import Command
from devicectl.errors import ControlError
from devicectl.records.store import RecordStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "devicectl-example-chiller"
RUN_TIMEOUT_S = 120

CHILLER_STEP = """
[[step]]
kind = "chiller"
title = "Cool the forehead"
setpoint_c = 5.0
duration_s = 4
"""
MANUAL_STEP = """
[[step]]
kind = "manual"
title = "Cleanse"
instructions = "Cleanse and dry the face."
"""
RF_STEP = """
[[step]]
kind = "rf"
title = "RF forehead"
target_c = 41.0
hold_s = 10
zones = ["forehead"]
"""


def protocol(tmp: Path, name: str, *steps: str) -> Path:
    path = tmp / f"{name}.toml"
    head = f'[session]\nname = "{name}"\nversion = "1.0"\n'
    path.write_text(head + "".join(steps), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package built and installed (with its entry points) into a directory."""
    target = tmp_path_factory.mktemp("chiller-site")
    uv = shutil.which("uv")
    installer = [uv, "pip"] if uv is not None else [sys.executable, "-m", "pip"]
    cmd = [*installer, "install", "--no-deps", "--target", str(target), str(EXAMPLE)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("devicectl_example_chiller-*.dist-info/entry_points.txt"))
    return target


def env_with(site: Path, tmp: Path) -> dict[str, str]:
    paths = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "DEVICECTL_LOG": str(tmp / "devicectl.jsonl"),
        "COLUMNS": "200",  # rich tables unwrapped
    }


def devicectl(site: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [devicectl_script(), *args],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env_with(site, tmp),
        timeout=RUN_TIMEOUT_S,
    )


def chiller_step_of(outcome: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in outcome["steps"] if s["kind"] == "chiller"]
    return step


def test_run_manual_rf_and_chiller_in_simulated_time(site: Path, tmp_path: Path) -> None:
    path = protocol(tmp_path, "Heat then cool", MANUAL_STEP, RF_STEP, CHILLER_STEP)
    db = tmp_path / "records.sqlite"
    done = devicectl(site, tmp_path, "run", str(path), "--yes", "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr + done.stdout
    outcome = json.loads(done.stdout)
    assert outcome["outcome"] == "complete"
    assert [s["kind"] for s in outcome["steps"]] == ["manual", "rf", "chiller"]
    assert all(s["outcome"] == "complete" for s in outcome["steps"])
    chiller = chiller_step_of(outcome)
    assert chiller["setpoint_c"] == 5.0
    assert 4.0 <= chiller["cooling_s"] < 4.2
    assert outcome["faults"] == []

    with RecordStore.open(str(db)) as store:
        sid = outcome["session_id"]
        (row,) = [s for s in store.steps(sid) if s.kind == "chiller"]
        assert (row.outcome, row.title) == ("complete", "Cool the forehead")
        channels = {(p.device, p.channel) for p in store.traces(sid)}
        assert {
            ("chiller", c) for c in ("plate_c", "skin_c", "setpoint_c", "cooling_s")
        } <= channels
        skin = [p.value for p in store.traces(sid) if p.channel == "skin_c" and p.value is not None]
        assert min(skin) < max(skin) - 1.0  # the plate cooled the skin
        assert min(skin) >= 10.0  # never below the skin minimum
        assert all(not r.problems for r in store.verify(sid))
        results = [
            e.data["result"]
            for e in store.events(sid)
            if e.device == "chiller" and e.kind == "step_result"
        ]
        assert [r["outcome"] for r in results] == ["complete"]
        # Every driver call is recorded once, by the core's audit.
        commands = [
            e.data["command"]
            for e in store.events(sid)
            if e.device == "chiller" and e.kind == "device_command"
        ]
        assert commands.count("output_on") == 1 and commands.count("set_setpoint") == 1


def test_the_chiller_step_on_a_served_pty(site: Path, tmp_path: Path) -> None:
    served = Served(
        subprocess.Popen(
            [devicectl_script(), "sim", "serve", "chiller", "--pty", "--seed", "3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=env_with(site, tmp_path),
        ),
        tmp_path,
    )
    try:
        port = served.wait_for(lambda e: e["event"] == "serving", 30.0)["port"]
        assert port.startswith("/dev/")
        path = protocol(tmp_path, "Cool", MANUAL_STEP, CHILLER_STEP)
        db = tmp_path / "records.sqlite"
        done = devicectl(
            site,
            tmp_path,
            "run",
            str(path),
            "--yes",
            "--json",
            "--db",
            str(db),
            "--device",
            f"chiller={port}",
        )
        assert done.returncode == 0, done.stderr + done.stdout
        outcome = json.loads(done.stdout)
        assert outcome["outcome"] == "complete"
        chiller = chiller_step_of(outcome)
        assert chiller["outcome"] == "complete" and chiller["cooling_s"] >= 4.0
        # At the device: cooling on by the host, off by the host at the step's end.
        served.wait_for(lambda e: e["event"] == "output" and not e["on"], 5.0)
        assert [(e["on"], e["reason"]) for e in served.outputs()] == [
            (True, "host"),
            (False, "host"),
        ]
        assert served.terminate() == 0
    finally:
        served.cleanup()


def test_a_chiller_that_stops_answering_faults_the_session_safely(
    site: Path, tmp_path: Path
) -> None:
    path = protocol(
        tmp_path,
        "Cool then heat",
        MANUAL_STEP,
        CHILLER_STEP.replace("duration_s = 4", "duration_s = 30"),
        RF_STEP,
    )
    db = tmp_path / "records.sqlite"
    done = devicectl(
        site,
        tmp_path,
        "run",
        str(path),
        "--yes",
        "--json",
        "--db",
        str(db),
        "--fault",
        "chiller=no_reply@6s",
    )
    assert done.returncode == 1, done.stderr + done.stdout
    outcome = json.loads(done.stdout)
    assert outcome["outcome"] == "fault"
    (fault,) = outcome["faults"][:1]
    assert (fault["device"], fault["code"]) == ("chiller", "chiller.stale")
    chiller = chiller_step_of(outcome)
    # The cooling up to the fault is the step's: noted when the session secured it.
    assert chiller["outcome"] == "fault" and 0.0 < chiller["cooling_s"] < 30.0
    assert [s["outcome"] for s in outcome["steps"]] == ["complete", "fault", "pending"]
    with RecordStore.open(str(db)) as store:
        sid = outcome["session_id"]
        events = store.events(sid)
        secured = [e for e in events if e.kind == "session_secured"]
        assert secured and secured[0].data["hold"] == "faulted"
        assert set(secured[0].data["confirmed"]) == {"rf", "chiller"}
        alarms = [e.data["alarm"] for e in events if e.kind == "alarm" and e.device == "chiller"]
        assert alarms[0]["code"] == "chiller.stale"
        # Every fault of the chiller, the core's own included, links to its README.
        assert {a["doc"] for a in alarms} == {"examples/devicectl-example-chiller/README.md#faults"}
        # The RF never energised: no output-on command ever reached it.
        commands = [e.data for e in events if e.kind == "device_command" and e.device == "rf"]
        assert commands and not any(c["command"] == "output_on" for c in commands)
        (ended,) = [e for e in events if e.kind == "step_ended" and e.data["kind"] == "chiller"]
        assert ended.data["outcome"] == "fault" and ended.data["detail"]["cooling_s"] > 0.0
        assert all(not r.problems for r in store.verify(sid))


CONSOLE_SCRIPT = """
import json, sys
from devicectl.console.backend import ConsoleBackend, ConsoleConfig
from devicectl.console.panels import device_renderer
from devicectl.console.snapshot import take_snapshot
from devicectl.control.events import Command
from devicectl.modality import modalities
from devicectl_example_chiller.limits import ChillerStep

backend = ConsoleBackend(ConsoleConfig(sys.argv[1], fast=True, speed=0, record=False))
try:
    loop, clock = backend.station.loop, backend.station.clock
    chiller = loop.controllers["chiller"]
    loop.run(until=lambda: chiller.reading is not None, max_duration_s=2.0)
    chiller.handle(Command("chiller", "load", {"step": ChillerStep(5.0, 60.0)}, "tech-1"))
    chiller.handle(Command("chiller", "start", {}, "tech-1"))
    loop.run(max_duration_s=10.0)
    snapshot = take_snapshot(clock.now(), 1, loop.controllers, backend.desk.runner)
    again = take_snapshot(clock.now(), 1, loop.controllers, backend.desk.runner)
    view = snapshot.device("chiller")
    panel = device_renderer("chiller", modalities()["chiller"])(view)
    trace = backend.devices["chiller"].console_trace(chiller)
    shown = {
        "panel": panel.plain,
        "styles": [str(span.style) for span in panel.spans],
        "view": type(view).__name__,
        "state": view.state,
        "plate_c": view.plate_c,
        "skin_c": view.skin_c,
        "min_skin_c": view.min_skin_c,
        "unchanged_equal": snapshot == again,
        "trace": trace,
        "states": snapshot.device_states(),
    }
finally:
    backend.close()
print("SHOWN " + json.dumps(shown))  # the log goes to stdout too
"""


def test_the_console_shows_the_chillers_own_panel(site: Path, tmp_path: Path) -> None:
    """The console's snapshot code, with the chiller registered by its entry point,
    gives the chiller's own view, and its panel shows state, plate and skin."""
    path = protocol(tmp_path, "Cool", MANUAL_STEP, CHILLER_STEP)
    script = tmp_path / "console_panel.py"
    script.write_text(textwrap.dedent(CONSOLE_SCRIPT), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env_with(site, tmp_path),
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("SHOWN ")]
    shown = json.loads(line.removeprefix("SHOWN "))
    assert shown["view"] == "ChillerView"
    assert shown["state"] == "cooling"
    assert shown["states"] == {"chiller": "cooling"}
    assert shown["unchanged_equal"]  # an unchanged device is not redrawn
    plate, skin = shown["plate_c"], shown["skin_c"]
    assert 4.0 < plate < 20.0 and 20.0 < skin < 33.5  # 10 s on a 5 degC plate
    lines = shown["panel"].splitlines()
    assert lines[0].startswith("CHILLER") and "COOLING" in lines[0]
    assert "■ COOLING ON" in lines[0]  # the device's own report, not the state
    assert shown["styles"][0] == "bold white on red"  # the state badge: energy on
    assert lines[1] == f"plate {plate:.1f} °C (set 5.0)"
    assert lines[2].startswith(f"skin {skin:.1f} °C (min {shown['min_skin_c']:.1f}, limit 10)")
    assert lines[3].startswith("cooling 00:1")
    assert shown["trace"] == ["Chiller skin", skin]


def test_nothing_under_devicectl_names_the_chiller() -> None:
    named = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "devicectl").rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and b"chiller" in path.read_bytes().lower()
    ]
    assert named == []


@pytest.mark.parametrize(
    ("fault", "plate_min_c", "code"),
    [
        ("sensor_open@3s", None, "chiller.sensor_fault"),
        ("overcool@3s", None, "chiller.plate_overcool"),
        # With the plate check out of the way the skin limit trips, before the
        # firmware's own 8 degC cut-off.
        ("overcool@3s", -20.0, "chiller.skin_too_cold"),
        # A deaf device: the host sees no reading; the device's own watchdog cuts
        # its output, since the host's "off" cannot reach it.
        ("no_reply@3s", None, "chiller.stale"),
    ],
)
def test_the_chiller_supervisor_trips_and_the_output_is_off_at_the_device(
    site: Path, monkeypatch: pytest.MonkeyPatch, fault: str, plate_min_c: float | None, code: str
) -> None:
    """The controller and supervisor in this process, on ``sim://chiller`` (found
    through the simulator entry point, which is not cached), without the
    modality registry: other tests keep their three modalities."""
    monkeypatch.syspath_prepend(str(site))
    from devicectl_example_chiller.controller import ChillerController
    from devicectl_example_chiller.driver import ChillerDriver
    from devicectl_example_chiller.limits import ChillerLimits, ChillerStep

    from devicectl.clock import SimClock
    from devicectl.control.loop import ControlLoop
    from devicectl.transport import open_port
    from devicectl.urlhandlers.protocol_sim import simulator_for

    clock = SimClock()
    url = f"sim://chiller?seed=1&fault={fault}"
    loop = ControlLoop(clock)
    limits = ChillerLimits() if plate_min_c is None else ChillerLimits(plate_min_c=plate_min_c)
    chiller = ChillerController(
        lambda: ChillerDriver(open_port(url, clock=clock), now=clock.now),
        clock,
        limits=limits,
        emit=loop.emit,
    )
    loop.add(chiller)
    assert chiller.device is not None, chiller.fault_alarm
    loop.run(until=lambda: chiller.reading is not None, max_duration_s=1.0)
    chiller.handle(Command("chiller", "load", {"step": ChillerStep(4.0, 120.0)}, "tech-1"))
    chiller.handle(Command("chiller", "start", {}, "tech-1"))
    assert chiller.state.value == "cooling" and chiller.energised
    loop.run(until=lambda: chiller.latched, max_duration_s=60.0)
    assert chiller.state.value == "fault"
    assert chiller.fault_alarm is not None and chiller.fault_alarm.code == code
    assert chiller.results[-1].outcome == "fault"
    if code == "chiller.skin_too_cold":
        assert 9.0 < chiller.reading.skin_c < 10.0  # type: ignore[union-attr]
    clock.sleep(1.0)  # well past the device's watchdog
    simulator = simulator_for(url, clock)
    simulator.advance()
    assert not simulator.output_on
    assert chiller.last_safe_state is not None
    if code == "chiller.stale":
        assert not chiller.last_safe_state.confirmed and chiller.last_safe_state.port_closed
        assert [(on, why) for _, on, why in simulator.output_log] == [
            (True, "host"),
            (False, "watchdog"),
        ]
    else:
        assert chiller.last_safe_state.confirmed
    with pytest.raises(ControlError, match="fault latched"):
        chiller.handle(Command("chiller", "start", {}, "tech-1"))
