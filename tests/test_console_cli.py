"""``devicectl console``: its help, and the command line ``--serve`` runs per browser tab.

A served console is a client of one station service; the page, its keys and the
emergency stop in a real browser are tested in ``test_console_browser.py``.
"""

from __future__ import annotations

import shlex
import sys

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
