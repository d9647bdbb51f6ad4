"""The ``devicectl`` command line: in-process with Typer's CliRunner, through
``devicectl.cli.main`` (the console-script entry, which owns the exit code for
devicectl's own errors), and once as a real installed script in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from devicectl import cli
from devicectl.cli import app
from devicectl.control.limits import FACE_ZONES
from devicectl.logs import configure_logging

SUMMARY_COLUMNS = ("zone", "outcome", "time to target s", "held s", "peak degC", "CEM43")
CELL_SPLIT = re.compile(r"\s*[│┃|]\s*")


@pytest.fixture(autouse=True)
def _isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _logging_to_file: Path
) -> Iterator[None]:
    """Nothing lands in the working tree; the session's logging comes back afterwards
    (every CLI run reconfigures structlog for the whole process)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVICECTL_LOG", str(tmp_path / "env-default.jsonl"))
    yield
    configure_logging(log_file=_logging_to_file)


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "cli.jsonl"


def invoke(log_file: Path, *args: str) -> typer.testing.Result:
    return CliRunner().invoke(app, ["--log-file", str(log_file), *args])


def summary_rows(output: str) -> dict[str, list[str]]:
    """Summary-table rows by zone name: the cells after the zone."""
    rows = {}
    for line in output.splitlines():
        cells = [c for c in CELL_SPLIT.split(line.strip()) if c]
        if len(cells) == len(SUMMARY_COLUMNS) and cells[0] in FACE_ZONES:
            rows[cells[0]] = cells[1:]
    return rows


def json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Run the console-script entry ``devicectl.cli.main`` in-process."""
    monkeypatch.setattr(sys, "argv", ["devicectl", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    code = info.value.code
    return (0 if code is None else int(code)), out, err


# -- demo ---------------------------------------------------------------------------------


def test_demo_completes_five_zones(log_file: Path) -> None:
    result = invoke(log_file, "demo", "--hold-s", "20")
    assert result.exit_code == 0, result.output
    out = result.output
    rows = summary_rows(out)
    assert list(rows) == list(FACE_ZONES)
    for zone, (outcome, to_target, held, peak, cem43) in rows.items():
        assert outcome == "complete", zone
        assert 10.0 <= float(to_target) <= 40.0
        assert float(held) == pytest.approx(20.0, abs=0.1)
        assert 41.5 <= float(peak) < 43.0
        assert 0.0 < float(cem43) < 2.0
    for column in SUMMARY_COLUMNS:
        assert column in out
    assert "RF treatment summary" in out
    assert re.search(r"\d+ simulated s in [\d.]+ wall s", out)
    assert "did not complete" not in out

    lines = json_lines(log_file)
    rf = [line for line in lines if line.get("device") == "rf"]
    assert rf, lines[:5]
    assert {"state", "zone_result", "device_connected"} <= {line["event"] for line in rf}
    outcomes = [line["outcome"] for line in rf if line["event"] == "zone_result"]
    assert outcomes == ["complete"] * len(FACE_ZONES)


def test_demo_with_a_runaway_fails_and_shows_the_fault(log_file: Path) -> None:
    result = invoke(log_file, "demo", "--hold-s", "20", "--fault", "runaway@40s")
    assert result.exit_code != 0
    rows = summary_rows(result.output)
    assert list(rows) == [FACE_ZONES[0]], result.output
    assert rows[FACE_ZONES[0]][0] == "fault"
    assert float(rows[FACE_ZONES[0]][3]) < 45.0  # peak
    assert "did not complete every zone" in result.output
    alarms = [line for line in json_lines(log_file) if line["event"] == "alarm"]
    assert "rf.runaway" in {a["code"] for a in alarms}


def test_demo_with_a_bad_fault_spec_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_file: Path
) -> None:
    code, out, err = run_main(
        monkeypatch, capsys, "--log-file", str(log_file), "demo", "--fault", "bogus@1s"
    )
    assert code == 2
    assert "Traceback" not in out + err
    assert err.strip().startswith("devicectl:")
    assert "bogus" in err


# -- devices, diagram ------------------------------------------------------------------------


def test_devices_lists_the_builtin_driver_and_simulator(log_file: Path) -> None:
    result = invoke(log_file, "devices")
    assert result.exit_code == 0, result.output
    rows = set()
    for line in result.output.splitlines():
        cells = [c for c in CELL_SPLIT.split(line.strip()) if c]
        if len(cells) == 4:
            rows.add(tuple(cells))
    assert ("driver", "rf_scpi", "drivers.rf_scpi:RFScpiDriver", "devicectl") in rows, rows
    assert ("simulator", "rf", "simulators.rf_firmware:RFFirmware", "devicectl") in rows, rows


def test_diagram_prints_a_mermaid_state_diagram(log_file: Path) -> None:
    result = invoke(log_file, "diagram", "rf")
    assert result.exit_code == 0, result.output
    assert "stateDiagram-v2" in result.output
    assert "IDLE --> READY: load" in result.output
    assert "DELIVERING --> PAUSED: pause" in result.output


def test_diagram_as_dot(log_file: Path) -> None:
    result = invoke(log_file, "diagram", "rf", "--format", "dot")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("digraph")
    assert '"IDLE" -> "READY" [label="load"];' in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("diagram", "xyz"), ("xyz", "rf")),
        (("diagram", "rf", "--format", "png"), ("png", "mermaid")),
    ],
)
def test_diagram_errors_exit_2_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    args: tuple[str, ...],
    words: tuple[str, ...],
) -> None:
    code, out, err = run_main(monkeypatch, capsys, "--log-file", str(log_file), *args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("devicectl:")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in err


def test_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], log_file: Path
) -> None:
    from devicectl.errors import ConfigError

    argv = ["devicectl", "--log-file", str(log_file), "--debug", "diagram", "xyz"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setitem(cli._state, "debug", False)
    with pytest.raises(ConfigError, match="xyz"):
        cli.main()


# -- help -------------------------------------------------------------------------------------


def _command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_known() -> None:
    assert {"demo", "devices", "diagram"} <= set(_command_names())


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9$./']+", text)


@pytest.mark.parametrize("command", [None, *_command_names()])
def test_help_for_every_command(log_file: Path, command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    result = invoke(log_file, *args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if command is None:
        expected = app.info.help or ""
        for name in _command_names():
            assert name in result.output
    else:
        callback = typer.main.get_command(app).commands[command].callback  # type: ignore[attr-defined]
        expected = (callback.__doc__ or "").strip().splitlines()[0]
    assert expected, command
    # the help text is shown (rich wraps it, so compare word by word)
    out_words = " ".join(_words(result.output))
    assert " ".join(_words(expected)) in out_words


# -- the real installed script -----------------------------------------------------------------


@pytest.fixture(scope="module")
def devicectl_script() -> str:
    path = shutil.which("devicectl")
    if path is None:
        venv_bin = Path(sys.executable).parent / "devicectl"
        path = str(venv_bin) if venv_bin.exists() else None
    if path is None:
        pytest.skip("the devicectl console script is not installed")
    return path


def _run(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEVICECTL_LOG": str(tmp_path / "env.jsonl"), "NO_COLOR": "1"}
    return subprocess.run(
        [script, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_installed_script_runs_the_demo(devicectl_script: str, tmp_path: Path) -> None:
    log = tmp_path / "sub" / "run.jsonl"
    proc = _run(devicectl_script, tmp_path, "--log-file", str(log), "demo", "--hold-s", "20")
    assert proc.returncode == 0, proc.stderr
    rows = summary_rows(proc.stdout)
    assert list(rows) == list(FACE_ZONES)
    assert all(cells[0] == "complete" for cells in rows.values())
    for column in SUMMARY_COLUMNS:
        assert column in proc.stdout
    lines = json_lines(log)
    assert any(line.get("device") == "rf" for line in lines)
    assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
    assert not (tmp_path / "env.jsonl").exists()  # --log-file wins over $DEVICECTL_LOG


def test_installed_script_error_is_one_line_exit_2(devicectl_script: str, tmp_path: Path) -> None:
    proc = _run(devicectl_script, tmp_path, "diagram", "xyz")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "xyz" in proc.stderr and "Traceback" not in proc.stderr
    # without --log-file the log goes to $DEVICECTL_LOG
    assert (tmp_path / "env.jsonl").exists()
    assert not (tmp_path / "devicectl-logs").exists()


def test_installed_script_with_debug_shows_the_traceback(
    devicectl_script: str, tmp_path: Path
) -> None:
    proc = _run(devicectl_script, tmp_path, "--debug", "diagram", "xyz")
    assert proc.returncode not in (0, 2)
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr
