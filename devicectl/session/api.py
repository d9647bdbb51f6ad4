"""Run a session from Python: the same path ``devicectl run`` and ``devicectl demo`` take.

    from devicectl.session.api import run_protocol_file
    outcome = run_protocol_file("protocols/pore-patrol.toml", operator_id="tech-042",
                                auto_confirm=True, db="records.sqlite")
    print(outcome.session_id, outcome.outcome)

With no ``devices``, every device is its in-process simulator in simulated
time. With ``devices={"rf": "/dev/ttyUSB0", ...}`` the session runs in real
time on those ports (devices the protocol does not use can be left out).

Log lines go to the log file (``$DEVICECTL_LOG`` or ``./devicectl-logs/``), never
to stdout, unless the program configured logging itself: see :mod:`devicectl.logs`.
"""

from __future__ import annotations

import errno
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import structlog

from devicectl.clock import Clock, RealClock, SimClock
from devicectl.control.base import ControllerCore
from devicectl.control.events import Alarm, Event
from devicectl.errors import ConfigError, DeviceConfigError, DeviceError
from devicectl.logs import ensure_logging
from devicectl.modality import modalities, modality
from devicectl.records.store import RecordStore
from devicectl.records.writer import RecordWriter
from devicectl.session import summary
from devicectl.session.protocol_file import (
    SessionProtocol,
    load_protocol_and_sha256,
    validate_protocol,
)
from devicectl.session.recorder import SessionRecorder
from devicectl.session.runner import SessionRunner, SessionState, step_kind
from devicectl.session.simulated import SimulatedTechnician, simulated_station
from devicectl.station import Station
from devicectl.transport import DEFAULT_TIMEOUT_S

MAX_SESSION_S = 4 * 3600.0
# The built-in protocols: package data of an installed wheel (the repository's
# protocols/ folder is installed as devicectl/protocols/), else, in a source
# checkout, the repository's protocols/ folder itself.
PACKAGED_PROTOCOLS = files("devicectl").joinpath("protocols")
SOURCE_PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


def builtin_protocol(name: str) -> Path:
    """A protocol shipped with devicectl (in the installed wheel, or in a source checkout)."""
    packaged = PACKAGED_PROTOCOLS.joinpath(name)
    # An installed wheel is unpacked on disk, so its data files are real paths.
    if isinstance(packaged, Path) and packaged.is_file():
        return packaged
    source = SOURCE_PROTOCOLS / name
    if source.is_file():
        return source
    raise ConfigError(
        f"built-in protocol {name!r} not found in the devicectl package ({packaged}) "
        f"or in {SOURCE_PROTOCOLS}"
    )


@dataclass(frozen=True)
class SessionOutcome:
    """What a scripted run reports (and ``--json`` prints)."""

    session_id: str
    outcome: str  # complete, aborted, fault
    protocol: str
    operator_id: str
    unattended: bool
    simulated_s: float
    steps: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    db: str
    # Per treated site, the session's totals (safety rule 8: dose belongs to the site).
    sites: list[dict[str, Any]] = field(default_factory=list)
    # True when the session ended because ``stop()`` asked it to (a signal).
    interrupted: bool = False
    # After an interruption: each device's safe state as read back, None when
    # output off was confirmed, else why not (then its watchdog cuts output).
    safe_states: dict[str, str | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "outcome": self.outcome,
            "protocol": self.protocol,
            "operator_id": self.operator_id,
            "unattended": self.unattended,
            "session_s": round(self.simulated_s, 2),
            "steps": self.steps,
            "faults": self.faults,
            "sites": self.sites,
            "db": self.db,
        }


@dataclass
class _Watch:
    faults: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        if event.kind == "alarm":
            alarm: Alarm = event.data["alarm"]
            if alarm.latches:
                self.faults.append(
                    {
                        "t_s": round(event.t_s, 2),
                        "device": alarm.device,
                        "code": alarm.code,
                        "message": alarm.message,
                    }
                )


ProgressFn = Callable[[SessionRunner, Station], None]


def run_protocol_file(
    path: str | Path,
    *,
    operator_id: str,
    auto_confirm: bool = False,
    db: str | None = None,
    devices: dict[str, str] | None = None,
    drivers: dict[str, str] | None = None,
    seed: int = 7,
    faults: dict[str, list[str]] | None = None,
    progress: ProgressFn | None = None,
    progress_every_ticks: int = 20,
    port_timeout_s: float = DEFAULT_TIMEOUT_S,
    stop: Callable[[], bool] | None = None,
    station: str | Path | None = None,
    pin: str | None = None,
    station_token: str | None = None,
) -> SessionOutcome:
    """Run the protocol file at ``path``: here (see :func:`run_protocol`), or, with
    ``station``, on that running station service (``unix:/path``, a socket path,
    or a ``ws://``/``wss://`` URL with ``station_token``), signed in as
    ``operator_id`` with ``pin``: see :class:`~devicectl.station.client.StationSession`.
    The station owns its devices and its record, so ``db``, ``devices``, ``drivers``,
    ``seed``, ``faults`` and ``port_timeout_s`` are not given then; ``progress`` is
    called with the station's session and state in the runner's and station's shape
    (no device milestones)."""
    if station is not None:
        return run_on_station(
            path,
            station=station,
            operator_id=operator_id,
            pin=pin,
            token=station_token,
            auto_confirm=auto_confirm,
            progress=progress,
            stop=stop,
            local_options={
                "db": db is not None,
                "devices": bool(devices),
                "drivers": bool(drivers),
                "seed": seed != 7,
                "faults": bool(faults),
                "port_timeout_s": port_timeout_s != DEFAULT_TIMEOUT_S,
            },
        )
    protocol, sha = load_protocol_and_sha256(Path(path))
    return run_protocol(
        protocol,
        sha256=sha,
        operator_id=operator_id,
        auto_confirm=auto_confirm,
        db=db,
        devices=devices,
        drivers=drivers,
        seed=seed,
        faults=faults,
        progress=progress,
        progress_every_ticks=progress_every_ticks,
        port_timeout_s=port_timeout_s,
        stop=stop,
    )


def run_protocol(
    protocol: SessionProtocol,
    *,
    operator_id: str,
    sha256: str | None = None,
    auto_confirm: bool = False,
    db: str | None = None,
    devices: dict[str, str] | None = None,
    drivers: dict[str, str] | None = None,
    seed: int = 7,
    faults: dict[str, list[str]] | None = None,
    progress: ProgressFn | None = None,
    progress_every_ticks: int = 20,
    port_timeout_s: float = DEFAULT_TIMEOUT_S,
    stop: Callable[[], bool] | None = None,
) -> SessionOutcome:
    """Run ``protocol`` to its end; a fault in an unattended run ends the session.

    ``stop`` (e.g. :class:`~devicectl.session.signals.StopSignals`) is asked at
    every tick boundary; once true the session is aborted: every device is made
    safe and read back on the loop's thread (``safe_states``), then the outcome
    ``aborted`` is written, and ``interrupted`` is True (safety rule 7).

    ``port_timeout_s`` is the reply timeout of real devices' ports (``devices``).
    A protocol built in Python is checked whole first, like a file (safety rule 4):
    ProtocolFileError lists every bad value before any device or record is opened.
    """
    ensure_logging()  # to the log file unless the program configured logging: never stdout
    validate_protocol(protocol)
    if not operator_id.strip():
        raise ConfigError("a session needs an operator id (--operator)")
    if not auto_confirm and progress_needs_operator(protocol):
        raise ConfigError(
            f"{protocol.name}: its manual steps need an operator's confirmation; "
            "run it from the console (devicectl console), or add --yes for an unattended run"
        )
    needed = sorted({step_kind(s) for s in protocol.steps} - {"manual"})
    attended = [
        k
        for k in needed
        if modality(k).needs_person_on_real_devices
        and not is_simulator_url((devices or {}).get(k, "sim://"))
    ]
    if devices and attended:
        raise ConfigError(
            f"{protocol.name}: a {modality(attended[0]).title} step on a real device needs a "
            "person at the chair (eye protection, every trigger): run it from the console "
            "(devicectl console)"
        )
    station, technician = build_station(
        needed, devices, drivers or {}, seed, faults, port_timeout_s=port_timeout_s
    )
    store = RecordStore.open(db)
    try:
        store.mark_interrupted()
        session_id = store.begin_session(
            protocol_name=protocol.name,
            protocol_sha256=sha256,
            operator_id=operator_id,
            unattended=auto_confirm,
            t_s=station.clock.now(),
        )
        # Every log line of this session (devices, runner, loop) carries its id.
        structlog.contextvars.bind_contextvars(session_id=session_id)
        writer = RecordWriter(store, session_id)
        runner = SessionRunner(
            station,
            protocol,
            operator_id=operator_id,
            auto_confirm=auto_confirm,
            technician=technician,
            simulated=all_simulators(devices),
        )
        watch = _Watch()
        station.loop.subscribe(watch)
        recorder = SessionRecorder(
            station,
            writer,
            step_index=lambda: runner.current + 1 if runner.current < len(runner.steps) else None,
            on_record_lost=lambda why: runner.abort(operator_id),
        )
        loop = station.loop
        # A RealClock reads seconds since boot: the session's length is a difference.
        started_s = station.clock.now()

        interrupted = False
        safe_states: dict[str, str | None] = {}

        def done() -> bool:
            nonlocal interrupted
            if stop is not None and stop():
                interrupted = True
                return True
            if progress is not None and loop.tick_count % progress_every_ticks == 0:
                progress(runner, station)
            if runner.state is SessionState.FAULTED and auto_confirm:
                # Nobody is at the chair to acknowledge: the session ends at the fault.
                runner.handle_end()
            return runner.finished

        try:
            # On real devices (a RealClock) the same real-time set-up as the station
            # service's loop thread: scheduling asked for and logged, GC bounded.
            with loop.real_time():
                loop.run(until=done, max_duration_s=MAX_SESSION_S)
        except KeyboardInterrupt:
            runner.abort(operator_id)
            raise
        finally:
            if not runner.finished:
                runner.abort(operator_id)
            if interrupted:
                # Rule 7: every device, whatever the runner left it in, commanded
                # off and read back before the outcome is written.
                safe_states = confirm_safe(station)
            loop.tick()  # record the last state changes
            recorder.close()
            outcome = {SessionState.COMPLETE: "complete", SessionState.ENDED: "fault"}.get(
                runner.state, "aborted"
            )
            writer.close(outcome)
        if progress is not None:
            progress(runner, station)
        return SessionOutcome(
            session_id=session_id,
            outcome=outcome,
            protocol=protocol.name,
            operator_id=operator_id,
            unattended=auto_confirm,
            simulated_s=station.clock.now() - started_s,
            steps=[_step_summary(s) for s in runner.steps],
            faults=watch.faults,
            db=store.db,
            sites=site_totals(station),
            interrupted=interrupted,
            safe_states=safe_states,
        )
    finally:
        structlog.contextvars.unbind_contextvars("session_id", "step")
        store.close()


def run_on_station(
    path: str | Path,
    *,
    station: str | Path,
    operator_id: str,
    pin: str | None,
    token: str | None = None,
    auto_confirm: bool = False,
    progress: Callable[[Any, Any], None] | None = None,
    stop: Callable[[], bool] | None = None,
    local_options: dict[str, bool] | None = None,
) -> SessionOutcome:
    """Run the protocol file at ``path`` on the running station service ``station``."""
    from devicectl.station.client import StationSession

    given = sorted(name for name, set_ in (local_options or {}).items() if set_)
    if given:
        raise ConfigError(
            f"{', '.join(given)}: not with a station (it owns its devices and its record)"
        )
    if pin is None:
        raise ConfigError(f"signing in to the station as {operator_id} needs their PIN")
    with StationSession(station, operator_id, pin, token=token) as session:
        outcome: SessionOutcome = session.run(
            path, answer_prompts=auto_confirm, progress=progress, stop=stop
        )
        return outcome


def station_refusal(
    protocol: SessionProtocol, *, simulated: bool, answer_prompts: bool
) -> str | None:
    """Why a run through a station may not answer this protocol's prompts itself
    (None: it may). A step that needs a person at the chair (IPL: eye protection,
    every trigger) is answered by a person unless every device is a simulator."""
    if not answer_prompts or simulated:
        return None
    for step in protocol.steps:
        kind = step_kind(step)
        if kind != "manual" and modality(kind).needs_person_on_real_devices:
            return (
                f"{protocol.name}: a {modality(kind).title} step on a real device needs a "
                "person at the chair (eye protection, every trigger): run it without --yes "
                "and answer at the console, or run it from the console (devicectl console)"
            )
    return None


def site_totals(station: Station) -> list[dict[str, Any]]:
    """Dose per treated site (CEM43, time at target, hold, peak), from every device
    that keeps a site ledger (safety rule 8)."""
    return summary.site_totals(station.loop.controllers.values())


def progress_needs_operator(protocol: SessionProtocol) -> bool:
    """True if a step waits for a person: a manual step to confirm, or an IPL pass
    (eye protection, and every flash's trigger)."""
    return any(
        (step_kind(s) == "manual" and getattr(s, "confirm", True))
        or (step_kind(s) != "manual" and modality(step_kind(s)).needs_person_on_real_devices)
        for s in protocol.steps
    )


PORT_TIMEOUT_MIN_S = 0.005
PORT_TIMEOUT_MAX_S = 0.2


def check_port_timeout(port_timeout_s: float) -> None:
    """A reply timeout the loop can live with: a lost reply must not hold the tick
    past the devices' 250 ms watchdog (ConfigError otherwise)."""
    if not PORT_TIMEOUT_MIN_S <= port_timeout_s <= PORT_TIMEOUT_MAX_S:  # NaN fails too
        raise ConfigError(
            f"--port-timeout must be {PORT_TIMEOUT_MIN_S}-{PORT_TIMEOUT_MAX_S} s (a lost "
            f"reply must not hold the loop past the 250 ms device watchdog), "
            f"not {port_timeout_s!r}"
        )


def is_simulator_url(url: str) -> bool:
    """A ``sim://`` URL is a simulator in this process, never a device on a patient."""
    return url.startswith("sim://")


def all_simulators(devices: dict[str, str] | None) -> bool:
    """No real device in this session: every device is a simulator (or none given)."""
    return not devices or all(is_simulator_url(url) for url in devices.values())


def with_faults(url: str, faults: list[str]) -> str:
    """``url`` with the simulator ``faults`` added as ``fault=`` query options."""
    if not faults:
        return url
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"fault={f}" for f in faults)


def _simulator_station(
    devices: dict[str, str],
    drivers: dict[str, str],
    sim_clock: Clock | None,
    port_timeout_s: float,
) -> tuple[Station, SimulatedTechnician]:
    station = Station(sim_clock or SimClock(), port_timeout_s=port_timeout_s)
    technician = SimulatedTechnician(station.clock)
    for kind, url in devices.items():
        technician.urls[kind] = url
        station.add(kind, url, driver=drivers.get(kind))
    return station, technician


def build_station(
    needed: list[str],
    devices: dict[str, str] | None,
    drivers: dict[str, str],
    seed: int,
    faults: dict[str, list[str]] | None,
    sim_clock: Clock | None = None,
    port_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[Station, SimulatedTechnician | None]:
    """The station a session runs on: the ``needed`` devices on their simulators
    (on ``sim_clock``, default a fresh SimClock) when ``devices`` is empty, else
    the given ports in real time, with ``port_timeout_s`` (checked by
    :func:`check_port_timeout`). ConfigError names a missing or unknown device."""
    check_port_timeout(port_timeout_s)
    if not devices:
        return simulated_station(seed=seed, faults=faults, devices=tuple(needed), clock=sim_clock)
    missing = [d for d in needed if d not in devices]
    if missing:
        raise ConfigError(
            f"the protocol needs {', '.join(missing)}: give --device {missing[0]}=URL, "
            f"or --device {missing[0]}=sim://{missing[0]} to mix its simulator in "
            "(or no --device at all, to run every device on its simulator)"
        )
    real_faults = sorted(k for k in faults or {} if not is_simulator_url(devices.get(k, "")))
    if real_faults:
        raise ConfigError(
            f"--fault {real_faults[0]}=...: {real_faults[0]} is not a simulator "
            f"({devices.get(real_faults[0], 'not in this session')}); faults are injected "
            "only into simulators"
        )
    devices = {k: with_faults(url, (faults or {}).get(k, [])) for k, url in devices.items()}
    if all_simulators(devices):
        # Every device a simulator: simulated time, as without --device.
        return _simulator_station(devices, drivers, sim_clock, port_timeout_s)
    registered = modalities()
    unknown = [d for d in devices if d not in registered]
    if unknown:
        raise ConfigError(
            f"unknown device kind {unknown[0]!r} (installed: {', '.join(registered)})"
        )
    station = Station(RealClock(), port_timeout_s=port_timeout_s)
    try:
        for device, url in devices.items():
            station.add(device, url, driver=drivers.get(device))
        check_connected(station, devices)
    except BaseException:
        close_devices(station)
        raise
    return station, None


def check_connected(station: Station, devices: dict[str, str]) -> None:
    """Every device of ``devices`` is open and identified on its port, before any
    session is recorded. A port that cannot be opened, or on which no device of
    its kind answers (another device, or none), is a configuration error: one
    :class:`DeviceConfigError` line naming the device and the port, not a fault
    in a session that never treated anyone."""
    for kind, url in devices.items():
        controller = station.loop.controllers[kind]
        if not isinstance(controller, ControllerCore):
            continue  # a plug-in controller without the shared core: it reports itself
        error = controller.connect_error
        if controller.device is not None or error is None:
            continue
        if controller.connect_stage == "open":
            raise DeviceConfigError(kind, url, f"cannot open the port ({_root_reason(error)})")
        raise DeviceConfigError(
            kind,
            url,
            f"no {kind.upper()} device answers on this port: is another device, or none, "
            f"connected there? ({type(error).__name__})",
        )


def confirm_safe(station: Station) -> dict[str, str | None]:
    """Every device of the station commanded to its safe state and read back, on
    the calling thread (the loop's, between ticks): device -> None when output
    off was confirmed, else why not (its port is then closed and the device's
    watchdog cuts output). Never raises for a device error: each device's
    result is reported, and every device is tried."""
    results: dict[str, str | None] = {}
    for name, controller in station.loop.controllers.items():
        if not isinstance(controller, ControllerCore):
            continue
        result = controller.confirm_safe()
        results[name] = None if result.confirmed else (result.error or "not confirmed")
    return results


def close_devices(station: Station) -> None:
    """Close every port the station's controllers hold (nothing was energised yet)."""
    for controller in station.loop.controllers.values():
        if not isinstance(controller, ControllerCore):
            continue
        device = controller.device
        if device is not None:
            try:
                device.close()
            except DeviceError as exc:
                structlog.get_logger("devicectl.session").warning(
                    "close_failed", device=controller.name, error=str(exc)
                )
            controller.device = None


def _root_reason(error: BaseException) -> str:
    """The operating system's own words for a failed open (the innermost
    ``strerror`` of the exception chain), else the error's text."""
    reason = str(error)
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and isinstance(seen.strerror, str) and seen.strerror:
            reason = seen.strerror
            if seen.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
                reason += ": in use by another program?"
        seen = seen.__cause__ or seen.__context__
    return reason


def _step_summary(progress: Any) -> dict[str, Any]:
    detail = {k: _clean(v) for k, v in progress.detail.items()}
    return {
        "step": progress.index,
        "kind": progress.kind,
        "title": progress.title,
        "outcome": progress.outcome,
        **detail,
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
