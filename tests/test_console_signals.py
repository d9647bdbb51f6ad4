"""SIGTERM, SIGHUP or SIGINT to a console process mid-RF-delivery.

The RF simulator is served in its own process on a pty, a station service
(``devicectl station serve``) owns it, and ``devicectl console --station`` runs
as its own process in a terminal of its own (a pty, as a technician's). The
technician signs in by typing at that terminal; an API client answers the RF
prompts so the output turns on at the device. Then the console gets the signal:
it must abort the session at the station, with every device read back (the
RF output off, switched by the host, not by its watchdog), print one line naming
the session, exit 128 + the signal, and leave the session ``aborted`` in a
record that verifies, as ``devicectl run`` does (``test_hil_signals.py``).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from devicectl.records.store import RecordStore
from tests.served_process import devicectl_script
from tests.test_console_station import SimRig
from tests.test_console_station import rig as rig  # the fixture: served RF, station service
from tests.test_station_service import PIN, START_S

pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("realtime")]

ROWS, COLUMNS = 50, 130
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[@-_]")


class Terminal:
    """A process on a pty of its own; everything it writes is kept (``text``)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, start_new_session=True
        )
        os.close(slave)
        self._out = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the process closed its end
                return
            if not chunk:
                return
            with self._lock:
                self._out += chunk

    def type(self, text: str) -> None:
        for char in text:  # a person's pace: one key per read
            os.write(self.master, char.encode())
            time.sleep(0.05)

    @property
    def text(self) -> str:
        with self._lock:
            raw = bytes(self._out)
        return ANSI.sub(b"", raw).decode(errors="replace")

    def assert_stop_line(self, sig: signal.Signals, session_id: str, devices: str) -> None:
        """The one line the console leaves after a signal (once it has exited)."""
        self._reader.join(timeout=5)
        expected = (
            f"devicectl: {sig.name}: session {session_id} aborted; "
            f"every device was confirmed safe ({devices})"
        )
        assert expected in " ".join(self.text.split()), self.text[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self.master)


def terminal_env(tmp: Path) -> dict[str, str]:
    """A terminal of ``ROWS`` x ``COLUMNS``; the console's log in ``tmp``."""
    return {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": str(COLUMNS),
        "LINES": str(ROWS),
        "DEVICECTL_LOG": str(tmp / "console.jsonl"),
    }


def wait_until(cond: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_a_signal_to_the_console_aborts_its_session_with_every_device_read_back(
    rig: SimRig, sig: signal.Signals
) -> None:
    env = terminal_env(rig.tmp)
    argv = [devicectl_script(), "console", "--station", str(rig.sock), str(rig.tmp / "rf.toml")]
    console = Terminal(argv, rig.tmp, env)
    try:
        with rig.client() as watcher:
            watcher.call("sign_in", operator_id="tech", pin=PIN)
            wait_until(lambda: "Operator id" in console.text, START_S, "no sign-in screen")
            time.sleep(0.5)  # its input focused
            console.type("tech\r")
            time.sleep(0.5)
            console.type(PIN + "\r")
            # Signed in, the console loads its protocol and starts the session.
            session = watcher.wait_for(lambda s: bool(s.get("session")), 30.0)["session"]
            session_id = session["session_id"]
            assert session["operator_id"] == "tech"
            for gate in ("arm", "start"):
                watcher.wait_for(lambda s, g=gate: (s.get("session") or {}).get("awaiting") == g)
                watcher.call(gate)
            wait_until(rig.output_on, 30.0, "RF output never on")
            assert console.proc.poll() is None, console.text[-2000:]
            os.kill(console.proc.pid, sig)
            console.proc.wait(timeout=20)
            watcher.wait_for(lambda s: s["session"]["state"] == "aborted", 5.0)
        assert console.proc.returncode == 128 + sig, (console.proc.returncode, console.text[-3000:])
        assert not rig.output_on()
        assert rig.output_log()[-1][2] == "host"  # commanded off, not the watchdog
        console.assert_stop_line(sig, session_id, "rf")
    finally:
        console.close()
    assert rig.service is not None and rig.service.terminate() == 0
    with RecordStore.open(rig.db) as store:
        assert store.session(session_id).outcome == "aborted"
        assert store.verify(session_id)[0].ok


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_a_console_of_its_own_simulators_aborts_and_closes_the_record(
    tmp_path: Path, sig: signal.Signals
) -> None:
    db = tmp_path / "r.sqlite"
    env = terminal_env(tmp_path)
    console = Terminal(
        [devicectl_script(), "console", "--fast", "--speed", "1", "--db", str(db)], tmp_path, env
    )
    try:
        wait_until(lambda: "Operator id" in console.text, START_S, "no sign-in screen")
        time.sleep(0.5)
        console.type("tech-042\r")

        def session_running() -> bool:
            if not db.exists():
                return False
            with RecordStore.open(db) as store:
                return bool(store.list_sessions())

        wait_until(session_running, 30.0, "no session started")
        assert console.proc.poll() is None, console.text[-2000:]
        os.kill(console.proc.pid, sig)
        console.proc.wait(timeout=20)
        assert console.proc.returncode == 128 + sig, (console.proc.returncode, console.text[-3000:])
        with RecordStore.open(db) as store:
            (session,) = store.list_sessions()
            assert session.outcome == "aborted"
            assert store.verify(session.id)[0].ok
        console.assert_stop_line(sig, session.id, "ipl, led, rf")
    finally:
        console.close()
