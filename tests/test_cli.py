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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from devicectl import cli
from devicectl.cli import app
from devicectl.logs import configure_logging
from devicectl.modalities.rf.limits import FACE_ZONES

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


# -- demo, run, records, report ---------------------------------------------------------


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    """One full Pore Patrol demo (about 15 s of wall time), shared by the tests below."""
    tmp = tmp_path_factory.mktemp("demo")
    db, log = tmp / "records.sqlite", tmp / "demo.jsonl"
    result = CliRunner().invoke(
        cli.app, ["--log-file", str(log), "demo", "--json", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), db, log


def test_demo_runs_the_full_pore_patrol_session(
    demo_run: tuple[dict[str, Any], Path, Path],
) -> None:
    summary, _, log = demo_run
    assert summary["outcome"] == "complete" and summary["protocol"] == "Pore Patrol"
    assert summary["unattended"] is True
    steps = summary["steps"]
    assert [s["kind"] for s in steps] == [
        "manual",
        "manual",
        "rf",
        "ipl",
        "manual",
        "led",
        "manual",
    ]
    assert all(s["outcome"] == "complete" for s in steps)
    zones = steps[2]["zones"]
    assert [z["name"] for z in zones] == list(FACE_ZONES)
    for zone in zones:
        assert 10.0 <= zone["time_to_target_s"] <= 40.0
        assert 41.5 <= zone["peak_c"] < 43.0 and 0.0 < zone["cem43"] < 2.0
    assert steps[3]["flashes_done"] == 40
    assert 110.0 <= steps[5]["dose_j_cm2"] <= 121.0
    assert summary["faults"] == []
    lines = json_lines(log)
    assert {"rf", "ipl", "led", "session"} <= {str(line.get("device")) for line in lines}


def test_records_commands_on_the_demo_session(demo_run: tuple[dict[str, Any], Path, Path]) -> None:
    summary, db, log = demo_run
    sid = summary["session_id"]
    runner = CliRunner()
    listed = runner.invoke(cli.app, ["--log-file", str(log), "records", "list", "--db", str(db)])
    assert listed.exit_code == 0 and sid[:12] in listed.output and "complete" in listed.output
    shown = runner.invoke(
        cli.app, ["--log-file", str(log), "records", "show", sid[:8], "--db", str(db)]
    )
    assert (
        shown.exit_code == 0
        and "Pore Patrol" in shown.output
        and "operator actions" in shown.output
    )
    verified = runner.invoke(
        cli.app, ["--log-file", str(log), "records", "verify", "--db", str(db)]
    )
    assert verified.exit_code == 0 and "ok" in verified.output
    exported = runner.invoke(
        cli.app, ["--log-file", str(log), "records", "export", sid, "--jsonl", "--db", str(db)]
    )
    assert exported.exit_code == 0
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) > 100


def test_records_verify_of_a_store_with_no_session_says_so(tmp_path: Path) -> None:
    from devicectl.records.store import RecordStore

    db = tmp_path / "empty.sqlite"
    RecordStore.open(str(db)).close()
    result = CliRunner().invoke(
        cli.app, ["--log-file", str(tmp_path / "log.jsonl"), "records", "verify", "--db", str(db)]
    )
    assert result.exit_code == 0
    assert "no sessions in" in result.output and "nothing verified" in result.output


def test_report_renders_for_the_pore_patrol_session(
    demo_run: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    summary, db, log = demo_run
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli.app,
        [
            "--log-file",
            str(log),
            "report",
            summary["session_id"][:8],
            "-o",
            str(out),
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "Pore Patrol" in page and "events chain verified (" in page
    assert re.search(r"\d+ trace blocks / \d+ trace rows covered", page), page[:1500]
    for zone in FACE_ZONES:
        # each zone's plot says in its alt text what it shows, for a reader who cannot see it
        assert f"alt='RF zone {zone}: both skin sensors" in page
    assert page.count("data:image/png;base64,") == len(FACE_ZONES) + 2  # zones, IPL, LED
    assert "Operator actions" in page and "Alarms" in page


@pytest.mark.parametrize("command", ["report", "export"])
@pytest.mark.parametrize("where", ["missing-dir", "a-directory"])
def test_an_output_file_that_cannot_be_written_is_one_clear_line(
    demo_run: tuple[dict[str, Any], Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    where: str,
) -> None:
    """A mistyped ``-o`` is the technician's slip, not a crash: it used to end in an
    OSError traceback (exit 1) instead of one line naming the file (exit 2)."""
    summary, db, log = demo_run
    out = tmp_path / "no" / "such" / "x.out" if where == "missing-dir" else tmp_path
    argv = ["records", "export"] if command == "export" else ["report"]
    code, stdout, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log),
        *argv,
        summary["session_id"][:8],
        "-o",
        str(out),
        "--db",
        str(db),
    )
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert str(out) in err and "Traceback" not in stdout + err


def test_demo_with_a_runaway_ends_in_fault_and_shows_it(log_file: Path, tmp_path: Path) -> None:
    result = invoke(
        log_file, "demo", "--json", "--db", str(tmp_path / "r.sqlite"), "--fault", "rf=runaway@40s"
    )
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "fault"
    assert summary["steps"][2]["outcome"] == "fault"
    assert [f["code"] for f in summary["faults"]][:1] == ["rf.runaway"]


def test_demo_with_a_bad_fault_spec_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    code, out, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log_file),
        "demo",
        "--db",
        str(tmp_path / "r.sqlite"),
        "--fault",
        "rf=bogus@1s",
    )
    assert code == 2
    assert "Traceback" not in out + err
    assert err.strip().startswith("devicectl:")
    assert "bogus" in err


SHORT_PROTOCOL = """
[session]
name = "Short"
version = "1"

[[step]]
kind = "manual"
title = "Cleanse"
instructions = "Cleanse the face."

[[step]]
kind = "rf"
target_c = 42.0
hold_s = 20
zones = ["forehead"]
"""


def test_run_a_protocol_file_unattended(log_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    result = invoke(
        log_file,
        "run",
        str(path),
        "--yes",
        "--operator",
        "tech-9",
        "--json",
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "complete" and summary["operator_id"] == "tech-9"
    assert summary["steps"][0]["confirmed_by"] == "auto"
    # every log line of the session is bound with its id (and the device's lines with the device)
    lines = [line for line in json_lines(log_file) if line.get("session_id")]
    assert {line["session_id"] for line in lines} == {summary["session_id"]}
    assert any(line.get("device") == "rf" and line["event"] == "state" for line in lines)


def test_run_rejects_a_bad_file_whole_with_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        SHORT_PROTOCOL.replace("target_c = 42.0", "target_c = 47.0").replace(
            'zones = ["forehead"]', 'zones = ["forehead"]\ncolour = "blue"'
        ),
        encoding="utf-8",
    )
    code, out, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log_file),
        "run",
        str(path),
        "--yes",
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert "bad.toml: step 2 (rf): target_c 47.0 is above the limit 42.0" in lines
    assert any(line.startswith("bad.toml: step 2 (rf):") and "colour" in line for line in lines)
    assert "Traceback" not in out + err
    assert not (tmp_path / "r.sqlite").exists()  # nothing ran, nothing recorded


def test_run_a_missing_file_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    code, _out, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log_file),
        "run",
        str(tmp_path / "nope.toml"),
        "--yes",
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "nope.toml" in err


def test_run_with_a_port_that_does_not_exist_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    code, out, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log_file),
        "run",
        str(path),
        "--yes",
        "--device",
        "rf=/dev/ttyNOPE0",
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert code != 0
    assert "Traceback" not in out + err
    assert "/dev/ttyNOPE0" in err


@pytest.mark.parametrize(
    "url", ["socket://nohost", "socket://host:notaport", "rfc2217://host:70000", "socket://:80"]
)
def test_a_network_device_url_without_host_and_port_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
    url: str,
) -> None:
    # pyserial's own message for these was "'<=' not supported between instances of
    # 'int' and 'NoneType'", reported as a device fault after the session started.
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    db = tmp_path / "r.sqlite"
    args = ["--log-file", str(log_file), "run", str(path), "--yes", "--device", f"rf={url}"]
    code, _out, err = run_main(monkeypatch, capsys, *args, "--db", str(db))
    assert code == 2
    assert err.strip().splitlines() == [
        f"devicectl: --device rf={url}: cannot open {url}: expected "
        f"{url.split(':')[0]}://HOST:PORT with PORT 1-65535"
    ]
    assert not db.exists()  # refused before any session was opened


def test_session_s_of_a_real_time_run_is_its_duration_not_the_clock_reading(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    """With real devices the loop's clock is the monotonic clock (seconds since boot):
    the summary's session_s used to print that reading (hours) instead of how long
    the session ran. A real-time run: an RF simulator served on a pty, a protocol
    of one manual step (confirmed by --yes), so it ends at once."""
    from tests.served_process import Served, devicectl_script

    proc = subprocess.Popen(
        [devicectl_script(), "sim", "serve", "rf", "--pty", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DEVICECTL_LOG": str(tmp_path / "serve.jsonl")},
    )
    server = Served(proc)
    try:
        port = server.wait_for(lambda e: e["event"] == "serving", 15.0)["port"]
        path = tmp_path / "manual.toml"
        path.write_text(SHORT_PROTOCOL.split('[[step]]\nkind = "rf"')[0], encoding="utf-8")
        started = time.perf_counter()
        code, out, err = run_main(
            monkeypatch,
            capsys,
            "--log-file",
            str(log_file),
            "run",
            str(path),
            "--yes",
            "--json",
            "--device",
            f"rf={port}",
            "--db",
            str(tmp_path / "r.sqlite"),
        )
        wall_s = time.perf_counter() - started
    finally:
        server.cleanup()
    summary = json.loads(out)
    assert code == 0 and "Traceback" not in err, err
    assert summary["outcome"] == "complete"
    assert 0.0 <= summary["session_s"] <= wall_s + 0.5


# -- devices, diagram ------------------------------------------------------------------------


def test_devices_lists_the_builtin_driver_and_simulator(
    log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.console, "width", 160)  # one table row per line
    result = invoke(log_file, "devices")
    assert result.exit_code == 0, result.output
    rows = set()
    for line in result.output.splitlines():
        cells = [c for c in CELL_SPLIT.split(line.strip()) if c]
        if len(cells) == 4:
            rows.add(tuple(cells))
    driver = ("driver", "rf_scpi", "devicectl_drivers.rf_scpi:RFScpiDriver", "devicectl")
    simulator = ("simulator", "rf", "devicectl_simulators.rf_firmware:RFFirmware", "devicectl")
    assert driver in rows, rows
    assert simulator in rows, rows


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
    assert {"demo", "devices", "diagram", "run", "records", "report"} <= set(_command_names())


@pytest.mark.parametrize("sub", ["list", "show", "verify", "export"])
def test_help_for_every_records_command(log_file: Path, sub: str) -> None:
    result = invoke(log_file, "records", sub, "--help")
    assert result.exit_code == 0 and "Usage" in result.output and "--db" in result.output


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
        cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
        doc = cmd.help or (cmd.callback.__doc__ if cmd.callback else "") or ""
        expected = doc.strip().splitlines()[0]
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


def test_installed_script_runs_a_protocol(devicectl_script: str, tmp_path: Path) -> None:
    log = tmp_path / "sub" / "run.jsonl"
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    proc = _run(devicectl_script, tmp_path, "--log-file", str(log), "run", str(path), "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "Short: complete" in proc.stdout
    assert "forehead" in proc.stdout
    assert (tmp_path / "devicectl-records.sqlite").exists()  # the documented default store
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


def test_run_with_a_driver_that_is_not_installed_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    code, out, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log_file),
        "run",
        str(path),
        "--yes",
        "--device",
        "rf=sim://rf",
        "--driver",
        "rf=nosuch",
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "nosuch" in err and "rf_scpi" in err and "Traceback" not in out + err


def test_a_record_store_that_cannot_be_opened_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "r.sqlite"
    code, out, err = run_main(
        monkeypatch, capsys, "--log-file", str(log_file), "records", "list", "--db", str(missing)
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "r.sqlite" in err and "Traceback" not in out + err


@pytest.mark.parametrize("value", ["0.5", "0", "nan", "-0.05"])
def test_run_refuses_a_port_timeout_the_loop_cannot_live_with(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
    value: str,
) -> None:
    code, _out, err = run_main(
        monkeypatch,
        capsys,
        "--log-file",
        str(log_file),
        "run",
        str(Path(__file__).resolve().parents[1] / "protocols" / "rf-express.toml"),
        "--yes",
        "--db",
        str(tmp_path / "r.sqlite"),
        f"--port-timeout={value}",
    )
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.startswith("devicectl:")]
    assert len(lines) == 1 and "--port-timeout must be 0.005-0.2 s" in lines[0], err
    assert "Traceback" not in err


def test_a_real_device_station_opens_its_ports_with_the_port_timeout() -> None:
    import functools

    from devicectl.session.api import build_station
    from devicectl_simulators.pty_server import PtyServer
    from devicectl_simulators.rf_firmware import RFFirmware

    # A device on a port (a simulator served on a pty, as hardware would be): a
    # sim:// URL would be a simulator in simulated time, not a real device.
    with PtyServer(functools.partial(RFFirmware, seed=11)) as server:
        assert server.path is not None
        station, technician = build_station(
            ["rf"], {"rf": server.path}, {}, 7, None, port_timeout_s=0.12
        )
        rf = station.loop.controllers["rf"]
        assert technician is None and station.port_timeout_s == 0.12
        assert rf.device is not None and rf.device._port.timeout == 0.12
        rf.device.close()


def test_sim_device_urls_make_a_simulated_station() -> None:
    from devicectl.clock import SimClock
    from devicectl.session.api import build_station

    station, technician = build_station(["rf"], {"rf": "sim://rf?seed=11"}, {}, 7, None)
    assert isinstance(station.clock, SimClock)
    assert technician is not None and technician.urls == {"rf": "sim://rf?seed=11"}


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        if hasattr(command, "commands"):
            found += _commands(command, path)
        else:
            found.append(path)
    return found


def test_help_gives_types_in_words_on_every_command() -> None:
    """TEXT, PATH, N, KIND=URL, and nothing after a flag: never ``<list[str]>``."""
    import typer.main

    paths = _commands(typer.main.get_command(app))
    assert ("run",) in paths and ("records", "verify") in paths
    for path in paths:
        result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
        assert result.exit_code == 0, (path, result.output)
        assert not re.search(r"<[a-z_\[\]|, ]+>", result.output), (path, result.output)
    run_help = CliRunner().invoke(app, ["run", "--help"], terminal_width=100).output
    assert re.search(r"--device\s+KIND=URL", run_help)
    assert re.search(r"--seed\s+N\b", run_help)
    assert re.search(r"--yes\s{4,}Confirm", run_help)  # a flag: no type shown


TWO_ZONES = SHORT_PROTOCOL.replace('zones = ["forehead"]', 'zones = ["forehead", "chin"]')


def test_run_shows_one_line_per_step_and_zone_when_not_a_terminal(
    log_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "two.toml"
    path.write_text(TWO_ZONES, encoding="utf-8")
    db = tmp_path / "r.sqlite"
    result = invoke(log_file, "run", str(path), "--yes", "--db", str(db))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("step ")]
    assert progress == [
        "step 1 Cleanse (manual): complete",
        "step 2 RF (rf): running, zone forehead",
        "step 2 RF (rf): running, zone chin",
        "step 2 RF (rf): complete",
    ]
    # The hint names the store it used, so it works for any --db.
    hint = next(line for line in lines if line.startswith("record: "))
    assert f"--db {db}" in hint


def test_run_progress_jsonl_goes_to_stderr(log_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    path.write_text(TWO_ZONES, encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "--log-file",
            str(log_file),
            "run",
            str(path),
            "--yes",
            "--json",
            "--progress",
            "jsonl",
            "--db",
            str(tmp_path / "r.sqlite"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "complete"  # stdout: the summary only
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [(e["step"], e["outcome"], e["milestone"]) for e in events] == [
        (1, "complete", None),
        (2, "running", "zone forehead"),
        (2, "running", "zone chin"),
        (2, "complete", None),
    ]
    assert all(isinstance(e["t_s"], float | int) for e in events)


def test_run_injects_a_fault_into_a_simulator(log_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    result = invoke(
        log_file,
        "run",
        str(path),
        "--yes",
        "--json",
        "--fault",
        "rf=runaway@15s",
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["outcome"] == "fault"
    assert summary["faults"][0]["code"] in ("rf.runaway", "rf.implausible_heating")


def test_a_sim_device_url_is_a_simulator_in_simulated_time(log_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL, encoding="utf-8")
    start = time.perf_counter()
    result = invoke(
        log_file,
        "run",
        str(path),
        "--yes",
        "--json",
        "--device",
        "rf=sim://rf?seed=3",
        "--fault",
        "rf=runaway@15s",
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    wall_s = time.perf_counter() - start
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    # simulated time: the ~15 s to the fault took far less wall time (not a timing claim:
    # a real-time run could not finish under the session's own length at all)
    assert summary["session_s"] > 14.0 and wall_s < summary["session_s"]
    assert summary["outcome"] == "fault"


def test_a_fault_for_a_real_device_and_a_partial_device_list_are_clear(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    log_file: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "rf-led.toml"
    path.write_text(
        SHORT_PROTOCOL + '\n[[step]]\nkind = "led"\nwavelength_nm = 633\nirradiance_mw_cm2 = 50\n'
        "duration_s = 10\n",
        encoding="utf-8",
    )
    db = tmp_path / "r.sqlite"
    args = ("--log-file", str(log_file), "run", str(path), "--yes", "--db", str(db))
    code, _out, err = run_main(monkeypatch, capsys, *args, "--device", "rf=sim://rf")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "led=sim://led to mix its simulator in" in err
    code, _out, err = run_main(
        monkeypatch,
        capsys,
        *args,
        "--device",
        "rf=/dev/ttyUSB9",
        "--device",
        "led=sim://led",
        "--fault",
        "rf=runaway@5s",
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "rf is not a simulator" in err and "only into simulators" in err
    assert not db.exists()  # nothing recorded for a configuration error
