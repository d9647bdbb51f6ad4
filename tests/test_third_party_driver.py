"""A fourth device, added by a third party as a separate package (its driver here;
the whole modality in test_fourth_modality.py).

The example package in examples/devicectl-example-chiller is installed the way a
clinic would install any package (pip/uv build it and write its entry points),
into a temporary target directory; devicectl then finds its driver through the
``devicectl.drivers`` entry-point group, loads it, and drives it over a scripted
port. Nothing in devicectl names it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devicectl.errors import ProtocolError
from devicectl.plugins import DRIVER_GROUP, SIMULATOR_GROUP, list_plugins, load_plugin

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "devicectl-example-chiller"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    uv = shutil.which("uv")
    if uv is not None:
        cmd = [uv, "pip", "install", "--no-deps", "--target", str(target), str(EXAMPLE)]
    else:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--target",
            str(target),
            str(EXAMPLE),
        ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("devicectl_example_chiller-*.dist-info/entry_points.txt"))
    return target


def test_the_installed_driver_is_found_and_works(
    installed_example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "chiller_ascii" not in {p.name for p in list_plugins(DRIVER_GROUP)}
    monkeypatch.syspath_prepend(str(installed_example))
    found = {p.name: p for p in list_plugins(DRIVER_GROUP)}
    assert found["chiller_ascii"].distribution == "devicectl-example-chiller"
    assert found["chiller_ascii"].target == "devicectl_example_chiller.driver:ChillerDriver"
    assert {"rf_scpi", "ipl_cobs", "led_modbus"} <= set(found)  # built-ins still there
    simulators = {p.name: p for p in list_plugins(SIMULATOR_GROUP)}
    assert simulators["chiller"].distribution == "devicectl-example-chiller"
    driver_cls = load_plugin(DRIVER_GROUP, "chiller_ascii")
    assert driver_cls.modality == driver_cls.implements == "chiller"

    # CHL/1 lines: <body>*<XOR of the body's bytes, two hex digits>\n
    port = _AnsweringPort({b"MEAS?*25\n": b"MEAS 4.5 18.2 5.0 1 00*1A\n"})
    driver = driver_cls(port, now=lambda: 12.5)
    reading = driver.read()
    assert (reading.t_s, reading.plate_c, reading.skin_c, reading.output_on) == (
        12.5,
        4.5,
        18.2,
        True,
    )
    # One bit flipped on the wire (fault byte 00 -> 01): the checksum no longer matches.
    port.answers[b"MEAS?*25\n"] = b"MEAS 4.5 18.2 5.0 1 01*1A\n"
    with pytest.raises(ProtocolError, match="bad checksum"):
        driver.read()
    driver.close()
    assert port.closed


class _AnsweringPort:
    """The device end, as scripted bytes: each write is answered from ``answers``."""

    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self._out = b""
        self.closed = False

    def reset_input_buffer(self) -> None:
        self._out = b""

    def write(self, data: bytes) -> int:
        self._out += self.answers[data]
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def read(self, size: int = 1) -> bytes:
        out, self._out = self._out[:size], self._out[size:]
        return out

    def close(self) -> None:
        self.closed = True
