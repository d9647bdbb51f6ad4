"""A wrong ``--device`` is a configuration error, not a session.

Ports are opened and devices identified before a session record is created: a
port that cannot be opened, or the wrong device on it (an IPL simulator served
on the port given as ``rf=``), is one line naming the device and the port, exit
2, and no session in the record store. Through the installed script, against a
simulator served on a real pty.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devicectl.records.store import RecordStore
from tests.served_process import Served, devicectl_script

START_TIMEOUT_S = 15.0
PROTOCOL = """\
[session]
name = "Config check"
version = "1.0"

[[step]]
kind = "manual"
title = "Cleanse"
instructions = "Cleanse the face."

[[step]]
kind = "rf"
hold_s = 10
zones = ["forehead"]
"""


@pytest.fixture(scope="module")
def ipl_on_a_pty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("ipl-serve")
    proc = subprocess.Popen(
        [devicectl_script(), "sim", "serve", "ipl", "--pty", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
        env={**os.environ, "DEVICECTL_LOG": str(tmp / "serve.jsonl")},
    )
    server = Served(proc)
    try:
        serving = server.wait_for(lambda e: e["event"] == "serving", START_TIMEOUT_S)
        yield serving["port"]
    finally:
        server.cleanup()


def run_with_rf_at(tmp_path: Path, port: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    protocol = tmp_path / "p.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    db = tmp_path / "r.sqlite"
    done = subprocess.run(
        [devicectl_script(), "run", str(protocol), "--yes", "--db", str(db),
         "--device", f"rf={port}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "DEVICECTL_LOG": str(tmp_path / "run.jsonl")},
    )  # fmt: skip
    return done, db


def no_session_recorded(db: Path) -> bool:
    if not db.exists():
        return True
    with RecordStore.open(db) as store:
        return store.list_sessions() == []


def test_a_port_that_cannot_be_opened_is_one_line_exit_2_and_no_session(
    tmp_path: Path,
) -> None:
    port = str(tmp_path / "ttyUSB9")
    done, db = run_with_rf_at(tmp_path, port)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"devicectl: rf device at {port}: cannot open the port (No such file or directory)"
    ], done.stderr
    assert no_session_recorded(db)


def test_the_wrong_device_on_the_port_is_one_line_exit_2_and_no_session(
    tmp_path: Path, ipl_on_a_pty: str
) -> None:
    done, db = run_with_rf_at(tmp_path, ipl_on_a_pty)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(
        f"devicectl: rf device at {ipl_on_a_pty}: no RF device answers on this port"
    ), line
    assert no_session_recorded(db)
