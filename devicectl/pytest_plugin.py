"""pytest plugin for hardware-in-the-loop (HIL) tests, loaded through ``pytest11``.

The same test runs against served simulators on pseudo-terminals (the default:
the controller talks to a real tty, in real time, through its ordinary driver)
or against real devices named on the command line::

    uv run pytest -m hil                                    # simulators on ptys
    uv run pytest -m hil --devicectl-device rf=/dev/ttyUSB0 # the RF is real

Fixtures (function scope):

``devicectl_port``
    A factory: ``devicectl_port("rf")`` gives a port URL. With
    ``--devicectl-device rf=URL`` it is that URL; otherwise the simulator
    registered as ``rf`` (``devicectl.simulators`` entry point) is served on a
    fresh pty for this test (``seed=``, ``faults=[...]`` and simulator options
    are accepted) and stopped after it. Asking for faults on a real device
    skips the test.
``devicectl_served``
    The :class:`~devicectl_simulators.pty_server.PtyServer` of every device served so
    far in this test, by kind: ``devicectl_served["rf"].inspect(lambda sim:
    sim.output_on)``.
``devicectl_is_simulated``
    False when any ``--devicectl-device`` is given: guard simulator-only
    assertions with it.
``devicectl_station``
    A :class:`HilStation`: a ``Station(RealClock())`` whose ``add("rf")`` builds
    a controller on ``devicectl_port("rf")``, whose ``start()`` runs the loop on
    its own thread, and whose ``command(...)`` goes through the loop's
    thread-safe ``submit``. At teardown every device gets an emergency stop,
    the loop thread is stopped and the ports are closed.

``devicectl_station_client``
    With ``--devicectl-station URL`` (or the ini option ``devicectl_station``):
    a :class:`~devicectl.station.client.SyncStationClient` of that running
    station service (``unix:/path``, a socket path, or a ``ws://``/``wss://`` URL
    with ``$DEVICECTL_STATION_TOKEN``), signed in as ``--devicectl-operator``
    (ini ``devicectl_operator``, default ``hil-test``) when ``$DEVICECTL_PIN`` is
    set (then its ``operator_id``). Without a station the test is skipped. With
    a station, ``devicectl_station`` is a :class:`StationHil` on this client
    instead of a station of its own: its ``command``/``submit`` go through the
    station API (session actions as device ``session``, ``estop``, ``fire``,
    ``acknowledge``), and at teardown it aborts a session it left under way.

Marker ``hil`` selects or deselects these tests (``-m hil``, ``-m "not hil"``).

Everything heavier than pytest is imported inside the fixtures: this module is
imported by every pytest run in an environment where devicectl is installed.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from devicectl.control.loop import ControlLoop
    from devicectl.station import Station
    from devicectl_simulators.pty_server import PtyServer

OPTION = "--devicectl-device"
STATION_OPTION = "--devicectl-station"
MARKER = "hil"
MARKER_HELP = (
    "hardware-in-the-loop test: runs against served simulators on ptys, "
    "or real devices given with --devicectl-device"
)
DEFAULT_SEED = 7
COMMAND_TIMEOUT_S = 2.0
TEARDOWN_TIMEOUT_S = 2.0
HIL_OPERATOR = "hil-test"

_DEVICES_KEY = pytest.StashKey[dict[str, str]]()

T = TypeVar("T")


# ---------------------------------------------------------------- hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("devicectl", "devicectl hardware-in-the-loop tests")
    group.addoption(
        OPTION,
        action="append",
        default=[],
        metavar="KIND=URL",
        dest="devicectl_devices",
        help=(
            "run HIL tests against the real device at URL instead of a served "
            "simulator, e.g. rf=/dev/ttyUSB0 (repeatable, one per kind)"
        ),
    )

    group.addoption(
        STATION_OPTION,
        default=None,
        metavar="URL",
        dest="devicectl_station",
        help="run HIL tests as clients of this running station service "
        "(unix:/path, a socket path, or a ws:// or wss:// URL)",
    )
    group.addoption(
        "--devicectl-operator",
        default=None,
        metavar="ID",
        dest="devicectl_operator",
        help="the operator a station client signs in as (PIN from $DEVICECTL_PIN)",
    )
    parser.addini("devicectl_station", "the station service HIL tests are clients of", default="")
    parser.addini("devicectl_operator", "the operator a station client signs in as", default="")


def station_url(config: pytest.Config) -> str | None:
    """The station of ``--devicectl-station`` or the ini option; None for none."""
    url = config.getoption("devicectl_station", default=None) or config.getini("devicectl_station")
    return str(url) if url else None


def parse_devices(values: Sequence[str]) -> dict[str, str]:
    """``["rf=/dev/ttyUSB0", ...]`` to ``{"rf": "/dev/ttyUSB0"}``; UsageError if malformed."""
    devices: dict[str, str] = {}
    for value in values:
        kind, sep, url = value.partition("=")
        kind, url = kind.strip(), url.strip()
        if not sep or not kind or not url:
            raise pytest.UsageError(f"{OPTION} {value!r}: expected KIND=URL, e.g. rf=/dev/ttyUSB0")
        if kind in devices:
            raise pytest.UsageError(f"{OPTION}: {kind!r} is given twice")
        devices[kind] = url
    return devices


def _known_kinds() -> set[str]:
    from devicectl.modality import modalities
    from devicectl.plugins import SIMULATOR_GROUP, list_plugins

    return set(modalities()) | {info.name for info in list_plugins(SIMULATOR_GROUP)}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: {MARKER_HELP}")
    devices = parse_devices(config.getoption("devicectl_devices", default=[]) or [])
    if devices:
        known = _known_kinds()
        unknown = sorted(set(devices) - known)
        if unknown:
            raise pytest.UsageError(
                f"{OPTION}: unknown device kind {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
    config.stash[_DEVICES_KEY] = devices


def pytest_report_header(config: pytest.Config) -> str | None:
    devices = config.stash.get(_DEVICES_KEY, {})
    if not devices:
        return None
    real = ", ".join(f"{kind}={url}" for kind, url in sorted(devices.items()))
    return f"devicectl: real devices {real} (other kinds: served simulators)"


# ---------------------------------------------------------------- ports


class DevicectlPorts:
    """``ports("rf")`` gives a URL: the real device's, or a pty serving a simulator."""

    def __init__(self, devices: dict[str, str]) -> None:
        self.devices = dict(devices)
        self.served: dict[str, PtyServer] = {}
        self._urls: dict[str, tuple[str, tuple[Any, ...]]] = {}

    def is_simulated(self, kind: str) -> bool:
        """True unless ``kind`` was given with ``--devicectl-device``."""
        return kind not in self.devices

    def __call__(
        self,
        kind: str,
        *,
        seed: int = DEFAULT_SEED,
        faults: Sequence[str] = (),
        **options: str,
    ) -> str:
        key = (seed, tuple(faults), tuple(sorted(options.items())))
        if kind in self._urls:
            url, previous = self._urls[kind]
            if previous != key:
                raise ValueError(
                    f"devicectl_port({kind!r}) was already asked for with other settings "
                    "in this test (one device per kind)"
                )
            return url
        if kind in self.devices:
            if faults:
                pytest.skip(f"fault injection needs a served simulator ({kind} is a real device)")
            url = self.devices[kind]
        else:
            url = self._serve(kind, seed, faults, options)
        self._urls[kind] = (url, key)
        return url

    def _serve(self, kind: str, seed: int, faults: Sequence[str], options: dict[str, str]) -> str:
        from devicectl.plugins import SIMULATOR_GROUP, load_plugin
        from devicectl_simulators.pty_server import PtyServer

        simulator_cls = load_plugin(SIMULATOR_GROUP, kind)
        factory = functools.partial(simulator_cls, seed=seed, faults=list(faults), **options)
        server = PtyServer(factory)
        path = server.start()
        self.served[kind] = server
        return path

    def close(self) -> None:
        """Stop every server; fail (after stopping them all) if one of them died."""
        errors: list[str] = []
        for kind, server in list(self.served.items()):
            server.stop()
            if server.error is not None:
                errors.append(f"{kind}: {server.error!r}")
        if errors:
            raise RuntimeError("a served simulator's thread failed: " + "; ".join(errors))


@pytest.fixture
def devicectl_port(request: pytest.FixtureRequest) -> Iterator[DevicectlPorts]:
    """Factory of port URLs: ``devicectl_port("rf", faults=["runaway@5s"])``."""
    ports = DevicectlPorts(request.config.stash.get(_DEVICES_KEY, {}))
    try:
        yield ports
    finally:
        ports.close()


@pytest.fixture
def devicectl_served(devicectl_port: DevicectlPorts) -> dict[str, PtyServer]:
    """The served simulators of this test by kind (filled as ports are asked for)."""
    return devicectl_port.served


@pytest.fixture
def devicectl_is_simulated(request: pytest.FixtureRequest) -> bool:
    """False when the run was given any real device (``--devicectl-device``)."""
    return not request.config.stash.get(_DEVICES_KEY, {})


# ---------------------------------------------------------------- station


class HilStation:
    """A real-time station on ports from ``devicectl_port``, its loop on its own thread.

    Add every device first (``add`` connects, waiting for the device to boot),
    then ``start``; ``command`` and ``wait_for`` start the loop if needed.
    Controllers belong to the loop thread once it runs: read their
    ``state``/``reading`` for checks, change them only through ``command``.
    """

    def __init__(self, ports: DevicectlPorts, period_s: float | None = None) -> None:
        from devicectl.clock import RealClock
        from devicectl.station import Station

        self.ports = ports
        self.station: Station = (
            Station(RealClock()) if period_s is None else Station(RealClock(), period_s)
        )
        self.controllers: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> ControlLoop:
        return self.station.loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def add(
        self,
        kind: str,
        *,
        seed: int = DEFAULT_SEED,
        faults: Sequence[str] = (),
        options: dict[str, str] | None = None,
        **controller_kwargs: Any,
    ) -> Any:
        """Build the ``kind`` controller (an installed modality) on
        ``devicectl_port(kind, ...)``."""
        from devicectl.modality import modalities

        if self._thread is not None:
            raise RuntimeError("add every device before the loop starts")
        known = modalities()
        if kind not in known:
            raise ValueError(f"no controller for {kind!r} (installed: {', '.join(known)})")
        url = self.ports(kind, seed=seed, faults=faults, **(options or {}))
        controller = self.station.add(kind, url, **controller_kwargs)
        self.controllers[controller.name] = controller
        return controller

    def start(self) -> None:
        """Run the control loop on its own thread (idempotent)."""
        if self._thread is None:
            self.station.loop.start()
            # kept to tell, at teardown, whether the thread is still alive
            self._thread = self.station.loop._thread

    def submit(
        self, device: str, action: str, operator_id: str | None = HIL_OPERATOR, **args: Any
    ) -> Any:
        """Queue a command on the loop (thread-safe); returns its Future."""
        from devicectl.control.events import Command

        self.start()
        return self.station.loop.submit(Command(device, action, args, operator_id))

    def command(
        self,
        device: str,
        action: str,
        operator_id: str | None = HIL_OPERATOR,
        *,
        timeout_s: float = COMMAND_TIMEOUT_S,
        **args: Any,
    ) -> Any:
        """Carry out a command on the loop thread and return its result (or raise its error)."""
        return self.submit(device, action, operator_id, **args).result(timeout=timeout_s)

    def wait_for(
        self, predicate: Callable[[], T], timeout_s: float = COMMAND_TIMEOUT_S, poll_s: float = 0.01
    ) -> T:
        """Start the loop, poll ``predicate`` until truthy; AssertionError after ``timeout_s``."""
        self.start()
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"not true within {timeout_s} s: {predicate!r}")
            time.sleep(poll_s)

    def close(self) -> None:
        """Emergency-stop every device, stop the loop thread, close the ports."""
        pending = list(self.controllers.values())
        thread = self._thread
        if thread is not None and thread.is_alive():
            futures = [(c, self.submit(c.name, "estop")) for c in pending]
            pending = []
            for controller, future in futures:
                try:
                    future.result(timeout=TEARDOWN_TIMEOUT_S)
                except Exception:  # noqa: BLE001 - stopped below on this thread instead
                    pending.append(controller)
        self.station.loop.stop(TEARDOWN_TIMEOUT_S)
        if thread is not None and thread.is_alive():
            raise RuntimeError("the control loop thread did not stop; devices left as they are")
        self._thread = None
        errors: list[str] = []
        for controller in pending:  # the loop thread is gone: this thread owns them now
            try:
                controller.emergency_stop(HIL_OPERATOR)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                errors.append(f"{controller.name}: emergency stop failed: {exc!r}")
        for controller in self.controllers.values():
            device = controller.device
            controller.device = None
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()
        if errors:
            raise RuntimeError("; ".join(errors))


@pytest.fixture
def devicectl_station(
    request: pytest.FixtureRequest, devicectl_port: DevicectlPorts
) -> Iterator[Any]:
    """A real-time :class:`HilStation`; every device is put safe at teardown. With
    ``--devicectl-station`` a :class:`StationHil` on ``devicectl_station_client``."""
    if station_url(request.config) is not None:
        remote = StationHil(request.getfixturevalue("devicectl_station_client"))
        try:
            yield remote
        finally:
            remote.close()
        return
    station = HilStation(devicectl_port)
    try:
        yield station
    finally:
        station.close()


# ---------------------------------------------------------------- a station service


class StationHil:
    """The ``devicectl_station`` of a run against a station service: commands through
    its API, as the signed-in operator of ``client``."""

    remote = True

    def __init__(self, client: Any) -> None:
        self.client = client
        self.devices: list[str] = list(client.hello.get("station", {}).get("devices", []))

    def add(self, kind: str, **_ignored: Any) -> str:
        """Check the station has a ``kind`` device (its controller lives in the station)."""
        if kind not in self.devices:
            pytest.skip(f"the station has no {kind} device ({', '.join(self.devices)})")
        return kind

    def start(self) -> None:
        """The station's loop is always running."""

    @property
    def state(self) -> dict[str, Any]:
        return dict(self.client.state)

    def submit(self, device: str, action: str, operator_id: str | None = None, **args: Any) -> Any:
        """Carry out a command through the station API; a done Future of its answer."""
        from concurrent.futures import Future

        future: Future[Any] = Future()
        try:
            if action == "estop":
                future.set_result(self.client.call("estop"))
            elif action == "acknowledge":
                future.set_result(self.client.call("acknowledge", device=device))
            elif action == "fire" or device == "session":
                future.set_result(self.client.call(action, **args))
            else:
                raise ValueError(f"{device}: {action}: not in the station API (docs/api.md)")
        except Exception as exc:  # noqa: BLE001 - handed over as the Future's error
            future.set_exception(exc)
        return future

    def command(
        self,
        device: str,
        action: str,
        operator_id: str | None = None,
        *,
        timeout_s: float = COMMAND_TIMEOUT_S,
        **args: Any,
    ) -> Any:
        return self.submit(device, action, operator_id, **args).result(timeout=timeout_s)

    def wait_for(
        self, predicate: Callable[[], T], timeout_s: float = COMMAND_TIMEOUT_S, poll_s: float = 0.01
    ) -> T:
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"not true within {timeout_s} s: {predicate!r}")
            time.sleep(poll_s)

    def close(self) -> None:
        """Abort a session this operator left under way (every device safe)."""
        session = self.client.state.get("session") or {}
        me = getattr(self.client, "operator_id", None)
        if session.get("state") not in (None, "complete", "aborted", "ended") and (
            session.get("operator_id") == me or me is None
        ):
            with contextlib.suppress(Exception):
                self.client.call("abort")


@pytest.fixture
def devicectl_station_client(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A client of the ``--devicectl-station`` service, signed in when $DEVICECTL_PIN is set."""
    import os

    from devicectl.station.client import SyncStationClient, station_target

    url = station_url(request.config)
    if url is None:
        pytest.skip(f"no station service given ({STATION_OPTION} URL)")
    client = SyncStationClient(
        station_target(url), token=os.environ.get("DEVICECTL_STATION_TOKEN") or None
    )
    try:
        pin = os.environ.get("DEVICECTL_PIN")
        if pin is not None:
            operator = (
                request.config.getoption("devicectl_operator", default=None)
                or request.config.getini("devicectl_operator")
                or HIL_OPERATOR
            )
            signed = client.call("sign_in", operator_id=operator, pin=pin)
            client.operator_id = signed["operator_id"]  # who this client acts as
        yield client
    finally:
        client.close()
