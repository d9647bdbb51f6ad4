"""Installing a station: a clinic PC gets devicectl from its wheel, not from a clone.

The wheel is built from this checkout (``uv build --wheel``) and installed into a
fresh virtual environment outside the repository, with the dependency versions of
``uv.lock`` (from uv's cache, or the package index). The installed commands then run
from a directory outside the repository, with no ``PYTHONPATH``: nothing of the
clone can stand in for what the wheel forgot to ship.

The tests of the installed wheel are slow (marked ``slow``): building and installing
take a few seconds with a warm uv cache, longer on a cold one, and the demo runs a
whole simulated Pore Patrol session. Everything is built and installed once per
module. With no network, ``UV_OFFLINE=1`` makes uv use its cache only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from devicectl.errors import ConfigError
from devicectl.session.api import builtin_protocol

ROOT = Path(__file__).resolve().parents[1]
# The only import packages the wheel may install: generic names such as ``drivers``
# or ``simulators`` would collide with any other package that uses them.
IMPORT_PACKAGES = {"devicectl", "devicectl_drivers", "devicectl_simulators"}
STEP_TIMEOUT_S = 180

# The tests of the installed wheel are slow: the first one builds the wheel and
# installs it with its dependencies into a fresh environment (module fixture).
SLOW_TIMEOUT_S = 300


@dataclass(frozen=True)
class Station:
    """A devicectl installed from its wheel, as on a clinic PC."""

    wheel: Path
    python: Path
    bin: Path
    site_packages: Path
    workdir: Path  # outside the repository: the commands' working directory
    env: dict[str, str]

    def run(self, *args: str, timeout: float = STEP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        """Run an installed ``devicectl`` command from outside the repository."""
        return subprocess.run(
            [str(self.bin / "devicectl"), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python_code(self, code: str) -> str:
        return self.python_code_args(code)

    def python_code_args(self, code: str, *args: str) -> str:
        """Run ``code`` with the installed interpreter (``sys.argv[1:]`` = ``args``)."""
        done = subprocess.run(
            [str(self.python), "-c", code, *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def _uv(*args: str, cwd: Path) -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build and install the wheel")
    done = subprocess.run(
        [uv, *args], cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S
    )
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Station:
    base = tmp_path_factory.mktemp("station")
    assert not base.resolve().is_relative_to(ROOT), base
    dist = base / "dist"
    _uv("build", "--wheel", "--out-dir", str(dist), str(ROOT), cwd=base)
    (wheel,) = dist.glob("devicectl-*.whl")

    constraints = base / "constraints.txt"
    _uv(
        "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes",
        "--output-file", str(constraints), cwd=ROOT,
    )  # fmt: skip
    venv = base / "venv"
    # The interpreter this suite runs on: the locked dependencies are cached for it.
    _uv("venv", "--python", sys.executable, str(venv), cwd=base)
    python = venv / "bin" / "python"
    _uv(
        "pip", "install", "--python", str(python), "--constraint", str(constraints), str(wheel),
        cwd=base,
    )  # fmt: skip

    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    workdir = base / "clinic"
    workdir.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DEVICECTL_DB", "DEVICECTL_LOG"}
    }
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    env["COLUMNS"] = "200"  # tables one row per line
    return Station(wheel, python, venv / "bin", site_packages, workdir, env)


def test_a_clone_finds_the_builtin_protocols_in_its_protocols_folder() -> None:
    assert builtin_protocol("pore-patrol.toml") == ROOT / "protocols" / "pore-patrol.toml"
    with pytest.raises(ConfigError, match=r"no-such-protocol\.toml"):
        builtin_protocol("no-such-protocol.toml")


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_the_wheel_installs_only_namespaced_import_packages(station: Station) -> None:
    with zipfile.ZipFile(station.wheel) as wheel:
        top = {name.split("/")[0] for name in wheel.namelist()}
    packages = {name for name in top if not name.endswith((".dist-info", ".data"))}
    assert packages == IMPORT_PACKAGES, sorted(top)
    for generic in ("drivers", "simulators"):
        assert not (station.site_packages / generic).exists(), generic
        assert not (station.site_packages / f"{generic}.py").exists(), generic


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_the_wheel_ships_the_builtin_protocols(station: Station) -> None:
    packaged = station.site_packages / "devicectl" / "protocols"
    shipped = sorted(path.name for path in (ROOT / "protocols").glob("*.toml"))
    assert shipped
    assert sorted(path.name for path in packaged.glob("*.toml")) == shipped
    for name in shipped:
        assert (packaged / name).read_bytes() == (ROOT / "protocols" / name).read_bytes()
    found = station.python_code(
        "from devicectl.session.api import builtin_protocol; "
        "print(builtin_protocol('pore-patrol.toml'))"
    )
    assert Path(found) == packaged / "pore-patrol.toml"


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_the_installed_code_is_the_wheel_not_the_clone(station: Station) -> None:
    files = station.python_code(
        "import devicectl, devicectl_drivers, devicectl_simulators\n"
        "for m in (devicectl, devicectl_drivers, devicectl_simulators): print(m.__file__)"
    ).split()
    assert len(files) == 3
    for file in files:
        assert Path(file).is_relative_to(station.site_packages), file
    listed = station.run("devices")
    assert listed.returncode == 0, listed.stderr
    for target in ("devicectl_drivers.rf_scpi:", "devicectl_simulators.rf_firmware:"):
        assert target in listed.stdout, listed.stdout


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_demo_runs_from_the_installed_wheel(station: Station) -> None:
    db = station.workdir / "records.sqlite"
    done = station.run("demo", "--json", "--db", str(db))
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["outcome"] == "complete", outcome
    assert outcome["protocol"] == "Pore Patrol"
    assert not outcome["faults"], outcome["faults"]
    verified = station.run("records", "verify", outcome["session_id"], "--db", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr


# A client of the installed package, run by the installed interpreter: the hello
# snapshot over the station's Unix socket (its token read from beside it), then
# GET /health on the same socket.
STATION_CLIENT = """
import json, socket, sys
from devicectl.station.client import SyncStationClient
path = sys.argv[1]
with SyncStationClient(path) as station:
    snapshot = station.hello["snapshot"]
    print(json.dumps({"api_version": station.hello["api_version"],
                      "simulated": station.hello["station"]["simulated"],
                      "devices": sorted(snapshot["devices"])}))
probe = socket.socket(socket.AF_UNIX)
probe.settimeout(10)
probe.connect(path)
probe.sendall(b"GET /health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n")
raw = b""
while chunk := probe.recv(65536):
    raw += chunk
print(raw.split(b"\\r\\n\\r\\n", 1)[1].decode().strip())
"""


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TIMEOUT_S)
def test_station_serve_runs_from_the_installed_wheel(station: Station) -> None:
    sock = station.workdir / "station.sock"
    served = subprocess.Popen(
        [
            *(str(station.bin / "devicectl"), "station", "serve", "--unix", str(sock)),
            *("--db", str(station.workdir / "station.sqlite")),
            *("--operators", str(station.workdir / "operators.json")),
        ],
        cwd=station.workdir,
        env={**station.env, "DEVICECTL_LOG": str(station.workdir / "station.jsonl")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert served.stdout is not None
        line = served.stdout.readline()  # one JSON line once serving (or EOF if it failed)
        assert line, served.stderr.read() if served.stderr else ""
        serving = json.loads(line)
        assert serving["event"] == "serving" and serving["unix"] == str(sock), serving
        hello, health = station.python_code_args(STATION_CLIENT, str(sock)).splitlines()
        assert json.loads(hello) == {
            "api_version": 1,
            "simulated": True,
            "devices": ["ipl", "led", "rf"],
        }
        assert json.loads(health)["ok"] is True
        served.send_signal(signal.SIGTERM)
        assert served.wait(timeout=30) == 0
    finally:
        if served.poll() is None:
            served.kill()
            served.wait(timeout=10)
        for stream in (served.stdout, served.stderr):
            if stream is not None:
                stream.close()
    assert not sock.exists()  # removed at a clean stop, with its token file
