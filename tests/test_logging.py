"""Logging: JSON lines to a file with level, timestamp, event and the bound device;
debug lines only when verbose; and what a controller run logs (captured in memory)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from devicectl.logs import configure_logging, default_log_path
from devicectl.modalities.rf.controller import RFState
from devicectl.session.api import run_protocol_file
from tests.rf_scenario import OPERATOR, RFRig

Configure = Callable[..., Path]


@pytest.fixture
def reconfigure(_logging_to_file: Path) -> Iterator[Configure]:
    """configure_logging for one test; the session's configuration comes back after it."""
    yield configure_logging
    configure_logging(log_file=_logging_to_file)


def read_json_lines(path: Path) -> list[dict[str, object]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_lines_are_json_with_level_timestamp_event_and_device(
    tmp_path: Path, reconfigure: Configure
) -> None:
    path = reconfigure(log_file=tmp_path / "nested" / "dir" / "log.jsonl")
    assert path == tmp_path / "nested" / "dir" / "log.jsonl"
    log = structlog.get_logger("devicectl.test").bind(device="rf")
    log.info("hello", answer=42)
    log.warning("careful", value=1.5)
    log.error("alarm", code="rf.overtemp", priority="HIGH")
    log.debug("hidden", power_w=10.0)

    lines = read_json_lines(path)
    assert [line["event"] for line in lines] == ["hello", "careful", "alarm"]
    assert [line["level"] for line in lines] == ["info", "warning", "error"]
    for line in lines:
        assert line["device"] == "rf"
        stamp = datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))
        assert stamp.utcoffset() is not None and stamp.utcoffset().total_seconds() == 0
    assert lines[0]["answer"] == 42
    assert lines[2]["code"] == "rf.overtemp"


def test_lines_carry_context_vars(tmp_path: Path, reconfigure: Configure) -> None:
    path = reconfigure(log_file=tmp_path / "log.jsonl")
    structlog.contextvars.bind_contextvars(session_id="S-1")
    try:
        structlog.get_logger("devicectl.test").bind(device="led").info("step")
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = read_json_lines(path)
    assert line["session_id"] == "S-1" and line["device"] == "led"


def test_log_file_appends_and_defaults_to_the_environment(
    tmp_path: Path, reconfigure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_path = tmp_path / "from-env.jsonl"
    monkeypatch.setenv("DEVICECTL_LOG", str(env_path))
    assert default_log_path() == env_path
    assert reconfigure() == env_path
    structlog.get_logger("t").info("first")
    assert reconfigure() == env_path
    structlog.get_logger("t").info("second")
    assert [line["event"] for line in read_json_lines(env_path)] == ["first", "second"]
    monkeypatch.delenv("DEVICECTL_LOG")
    assert default_log_path() == Path("devicectl-logs") / "devicectl.jsonl"


def _run_a_zone_into_regulation() -> RFRig:
    """Full power on the ramp, then the regulator changes the power tick by tick."""
    rig = RFRig.create()
    rig.start_zone(hold_s=60.0)
    rig.run_for(35.0)
    assert rig.rf.state is RFState.DELIVERING and rig.rf.phase == "hold"
    return rig


def test_set_power_lines_only_when_verbose(tmp_path: Path, reconfigure: Configure) -> None:
    quiet = reconfigure(log_file=tmp_path / "quiet.jsonl", verbose=False)
    _run_a_zone_into_regulation()
    quiet_lines = read_json_lines(quiet)
    assert quiet_lines, "the run logged nothing at all"
    assert not [line for line in quiet_lines if line["event"] == "set_power"]
    assert all(line["level"] != "debug" for line in quiet_lines)
    assert any(line["event"] == "state" for line in quiet_lines)

    console = io.StringIO()
    loud = reconfigure(log_file=tmp_path / "loud.jsonl", verbose=True, console=console)
    _run_a_zone_into_regulation()
    powers = [line for line in read_json_lines(loud) if line["event"] == "set_power"]
    assert powers
    for line in powers:
        assert line["level"] == "debug" and line["device"] == "rf"
        assert isinstance(line["power_w"], float) and 0.0 <= line["power_w"] <= 50.0
    # the terminal gets readable lines, not JSON
    shown = console.getvalue().splitlines()
    assert any("set_power" in line for line in shown)
    assert not any(line.lstrip().startswith("{") for line in shown)


def test_quiet_logging_prints_nothing_on_the_terminal(
    tmp_path: Path, reconfigure: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    reconfigure(log_file=tmp_path / "log.jsonl")
    structlog.get_logger("t").bind(device="rf").warning("not on the terminal")
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_controller_logs_each_state_change_and_the_alarm_of_a_fault() -> None:
    with capture_logs() as logs:
        rig = RFRig.create(faults=("runaway@8s",))
        rig.start_zone(hold_s=60.0)
        assert rig.run_until((RFState.FAULT,), max_s=30.0)
        rig.run_for(5.0)
        rig.station.command("rf", "acknowledge", OPERATOR)
    states = [e for e in logs if e["event"] == "state"]
    assert [(e["source"], e["state"], e["trigger"]) for e in states] == [
        ("IDLE", "ready", "load"),
        ("READY", "armed", "arm"),
        ("ARMED", "delivering", "start"),
        ("DELIVERING", "fault", "fault"),
        ("FAULT", "idle", "acknowledge"),
    ]
    assert all(e["device"] == "rf" and e["log_level"] == "info" for e in states)
    alarms = [e for e in logs if e["event"] == "alarm"]
    assert alarms, [e["event"] for e in logs]
    runaway = [e for e in alarms if e["code"] == "rf.runaway"]
    assert len(runaway) == 1
    assert runaway[0]["priority"] == "HIGH"
    assert runaway[0]["log_level"] == "error"
    assert runaway[0]["latches"] is True and runaway[0]["device"] == "rf"
    assert runaway[0]["value"] > runaway[0]["limit"] == 2.0
    # the alarm is logged while delivering, before the state change it causes
    at = {id(e): i for i, e in enumerate(logs)}
    assert at[id(states[2])] < at[id(runaway[0])] < at[id(states[3])]
    results = [e for e in logs if e["event"] == "zone_result"]
    assert [r["outcome"] for r in results] == ["fault"]


def test_a_non_latching_alarm_is_logged_as_a_warning() -> None:
    with capture_logs() as logs:
        rig = RFRig.create(faults=("contact_loss@5s%2B2s",))
        rig.start_zone(hold_s=60.0)
        assert rig.run_until((RFState.PAUSED, RFState.FAULT), max_s=10.0)
    (alarm,) = [e for e in logs if e["event"] == "alarm"]
    assert alarm["code"] == "rf.contact_lost"
    assert alarm["priority"] == "MEDIUM" and alarm["log_level"] == "warning"
    assert alarm["latches"] is False


def test_session_lines_carry_session_id_and_the_running_step(
    tmp_path: Path, reconfigure: Configure
) -> None:
    """A device's own lines (its state changes, commands, power) name the session and
    the protocol step they belong to; lines between steps name no step."""
    protocol = tmp_path / "short.toml"
    protocol.write_text(
        '[session]\nname = "Short"\nversion = "1"\n\n'
        '[[step]]\nkind = "manual"\ntitle = "Cleanse"\ninstructions = "Cleanse."\n\n'
        '[[step]]\nkind = "rf"\ntitle = "RF"\ntarget_c = 40.0\nhold_s = 5\nzones = ["chin"]\n',
        encoding="utf-8",
    )
    path = reconfigure(log_file=tmp_path / "log.jsonl", verbose=False)
    outcome = run_protocol_file(
        protocol, operator_id="tech-1", auto_confirm=True, db=str(tmp_path / "r.sqlite")
    )
    assert outcome.outcome == "complete"
    lines = read_json_lines(path)
    rf_lines = [line for line in lines if line.get("device") == "rf"]
    in_step = [line for line in rf_lines if line["event"] in ("state", "command")]
    assert {line["event"] for line in in_step} == {"state", "command"}
    assert all(line["step"] == 2 for line in in_step), in_step
    assert all(line["session_id"] == outcome.session_id for line in in_step)
    manual = [line for line in lines if line["event"] == "manual_step_confirmed"]
    assert [line["step"] for line in manual] == [1]
    # Before the first step (devices connecting, before the session is opened) and
    # after the last, no step is bound.
    connected = [line for line in lines if line["event"] == "device_connected"]
    assert connected and all("step" not in line for line in connected)
    assert "step" not in structlog.contextvars.get_contextvars()
