"""A ``devicectl sim serve`` process, as the HIL tests start and watch it.

Shared by the tests that run simulators as separate devices
(``test_sim_serve.py``) and that kill a controller mid-delivery
(``test_hil_kill.py``): the served process prints one JSON line per event
(``ready`` with its port, ``output`` changes with its own monotonic times), and
the tests wait on those lines.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any


def devicectl_script() -> str:
    found = shutil.which("devicectl") or str(Path(sys.executable).with_name("devicectl"))
    assert Path(found).exists(), "the devicectl console script is not installed"
    return found


class Served:
    """A ``devicectl sim serve`` subprocess and the JSON lines it has printed."""

    def __init__(self, proc: subprocess.Popen[str], tmp: Path | None = None) -> None:
        self.proc = proc
        self.tmp = tmp  # where its log files go, if the test gave it one
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    self.other.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"no such event within {timeout_s} s; events {self.events}, "
                        f"other output {self.other}, exit {self.proc.poll()}"
                    )
                self._cond.wait(min(remaining, 0.05))

    def outputs(self) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["event"] == "output"]

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        return code

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            with suppress(Exception):
                stream.close()  # type: ignore[union-attr]
