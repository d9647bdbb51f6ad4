"""``devicectl console``: its help, and ``--serve`` answering a browser on 127.0.0.1
(the page, and keys over its websocket)."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
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


@pytest.fixture
def served_console(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """``devicectl console --fast --serve`` in its own process, answering on 127.0.0.1;
    yields its port and the JSON log file its consoles write (through DEVICECTL_LOG)."""
    port = _free_port()
    log = tmp_path / "log.jsonl"
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
        env={**os.environ, "DEVICECTL_LOG": str(log)},
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.2)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_answers_a_browser_on_loopback(served_console: tuple[int, Path]) -> None:
    port, _ = served_console
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        assert response.status == 200
        page = response.read().decode()
    assert "devicectl console" in page  # the page's title
    assert "ws://127.0.0.1" in page or f"127.0.0.1:{port}" in page


def _log_events(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]


def test_escape_in_the_browser_stops_every_device(served_console: tuple[int, Path]) -> None:
    """The browser's keys reach the console over textual-serve's websocket: the operator
    signs in, and Escape is the emergency stop there too, with the operator's id."""
    port, log = served_console

    async def until(found: Callable[[list[dict[str, object]]], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not found(_log_events(log)):
            assert time.monotonic() < deadline, f"{what}: not in {log}"
            await asyncio.sleep(0.2)

    async def browser() -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"ws://127.0.0.1:{port}/ws") as ws,
        ):
            await ws.send_json(["resize", {"width": 120, "height": 40}])
            screen = b""
            while b"Operator id" not in screen:  # the sign-in screen is drawn
                message = await ws.receive(timeout=60)
                assert message.type is aiohttp.WSMsgType.BINARY, message
                screen += message.data
            await ws.send_json(["stdin", "tech-042\r"])
            await until(
                lambda lines: any(line.get("operator_id") == "tech-042" for line in lines),
                "the operator signed in",
            )
            await ws.send_json(["stdin", "\x1b"])
            await until(
                lambda lines: any(line["event"] == "emergency_stop_all" for line in lines),
                "the emergency stop",
            )

    asyncio.run(browser())
    lines = _log_events(log)
    (stop,) = [line for line in lines if line["event"] == "emergency_stop_all"]
    assert stop["operator_id"] == "tech-042"
    assert sorted(stop["devices"]) == ["ipl", "led", "rf"]
    stopped = {
        line["device"] for line in lines if line["event"] == "state" and line["state"] == "estop"
    }
    assert stopped == {"rf", "ipl", "led"}
