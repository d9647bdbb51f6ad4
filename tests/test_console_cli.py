"""``devicectl console``: its help, and ``--serve`` answering a browser on 127.0.0.1."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from devicectl.cli import app
from devicectl.console.serve import console_command


def test_console_help_names_every_option_and_the_emergency_stop_key() -> None:
    result = CliRunner().invoke(app, ["console", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--device", "--operator", "--fast", "--speed", "--serve", "--port", "--db"):
        assert option in result.output
    assert "Escape is the EMERGENCY STOP" in result.output


def test_serve_runs_the_same_command_line_without_serve_and_port() -> None:
    command = console_command(
        ["--verbose", "console", "p.toml", "--serve", "--port", "9", "--fast"]
    )
    argv = shlex.split(command)
    assert argv[0] == sys.executable
    assert argv[-4:] == ["--verbose", "console", "p.toml", "--fast"]
    assert "--serve" not in argv and "--port" not in argv
    assert "--port=9" not in shlex.split(console_command(["console", "--port=9", "--serve"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_a_browser_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DEVICECTL_LOG": str(tmp_path / "log.jsonl")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from devicectl.cli import main; main()",
            "console",
            "--fast",
            "--db",
            str(tmp_path / "r.sqlite"),
            "--serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        page = ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200
                    page = response.read().decode()
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.2)
        assert "devicectl console" in page  # the page's title
        assert "ws://127.0.0.1" in page or f"127.0.0.1:{port}" in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
