"""The ``devicectl`` command line (Typer + Rich).

Errors that devicectl raises on purpose are shown as one clear line and a
non-zero exit code; ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from devicectl import plugins
from devicectl.control import realtime
from devicectl.errors import ConfigError, DevicectlError, ProtocolFileError
from devicectl.modality import modalities
from devicectl.session.summary import step_result
from devicectl.transport import DEFAULT_TIMEOUT_S, check_network_url


def _types_in_words() -> None:
    """Show each parameter's type in words in ``--help`` (TEXT, PATH, N, NUMBER,
    KIND=VALUE), and nothing for a flag that takes no value.

    Typer 0.29 prints the Python annotation (``<list[str]>``, ``<bool>``), which a
    technician reading the help should not have to decode. An explicit
    ``metavar`` still wins.
    """
    from typer.core import _TyperParameter

    words = {"str": "TEXT", "path": "PATH", "int": "N", "float": "NUMBER", "file": "PATH"}
    original = _TyperParameter.display_type

    def display_type(self: Any, ctx: Any) -> str:
        label = original(self, ctx)
        inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
        if inner == "bool":
            return ""
        listed = inner.startswith("list[") and inner.endswith("]")
        base = inner[5:-1] if listed else inner
        word = words.get(base, base.upper())
        if listed and ("--device" in self.opts or "--driver" in self.opts):
            return "KIND=" + ("URL" if "--device" in self.opts else "NAME")
        if listed and "--fault" in self.opts:
            return "DEVICE=SPEC"
        return word + ("..." if listed else "")

    _TyperParameter.display_type = display_type  # type: ignore[method-assign]


_types_in_words()

app = typer.Typer(
    help="Control clinic energy-based treatment devices (RF, IPL, LED) and their simulators.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}


@app.callback()
def main_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show log lines on the terminal.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file",
            help="JSON-lines log file "
            "(default $DEVICECTL_LOG or ./devicectl-logs/devicectl.jsonl).",
        ),
    ] = None,
) -> None:
    from devicectl.logs import configure_logging

    _state["debug"] = debug
    configure_logging(log_file=log_file, verbose=verbose)


def _session_progress(console: Console) -> tuple[Progress, Callable[..., None]]:
    """A Rich progress display with one line per step, fed from the runner on the loop."""
    progress = Progress(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=False,
    )
    tasks: dict[int, TaskID] = {}

    def show(runner: Any, station: Any) -> None:
        for step in runner.steps:
            if step.outcome == "pending" and step.index not in tasks:
                continue
            if step.index not in tasks:
                tasks[step.index] = progress.add_task(
                    f"{step.index}. {step.title}"[:28], total=1.0, status=""
                )
            done, status = _step_status(step, station)
            progress.update(tasks[step.index], completed=done, status=status)

    return progress, show


class _LineProgress:
    """Progress for a reader that is not a terminal (a log, a pipe, a CI job): one
    line when a step starts or ends and each time its modality's milestone moves
    on (the next zone), flushed at once. ``jsonl``: the same as JSON objects."""

    def __init__(self, stream: Any, fmt: str = "text") -> None:
        self.stream = stream
        self.fmt = fmt
        self._seen: dict[int, tuple[str, str | None]] = {}

    def __call__(self, runner: Any, station: Any) -> None:
        for step in runner.steps:
            if step.outcome == "pending":
                continue
            mod = modalities().get(step.kind)
            controller = station.loop.controllers.get(step.kind)
            milestone = (
                mod.milestone(controller, step)
                if mod is not None and controller is not None and step.outcome == "running"
                else None
            )
            key = (step.outcome, milestone)
            if self._seen.get(step.index) == key:
                continue
            self._seen[step.index] = key
            self._emit(station.clock.now(), runner, step, milestone)

    def _emit(self, t_s: float, runner: Any, step: Any, milestone: str | None) -> None:
        if self.fmt == "jsonl":
            line = json.dumps(
                {
                    "t_s": round(t_s, 2),
                    "session": runner.state.value,
                    "step": step.index,
                    "kind": step.kind,
                    "title": step.title,
                    "outcome": step.outcome,
                    "milestone": milestone,
                }
            )
        else:
            line = f"step {step.index} {step.title} ({step.kind}): {step.outcome}" + (
                f", {milestone}" if milestone else ""
            )
        print(line, file=self.stream, flush=True)


def _step_status(step: Any, station: Any) -> tuple[float, str]:
    if step.outcome in ("complete", "fault", "aborted"):
        return (1.0 if step.outcome == "complete" else 0.0), step.outcome
    controller = station.loop.controllers.get(step.kind)
    mod = modalities().get(step.kind)
    if mod is not None and controller is not None:
        return mod.progress_line(controller, step)
    return 0.0, "waiting for confirmation" if step.kind == "manual" else step.outcome


def _print_session_summary(outcome: Any, station: bool = False) -> None:
    table = Table(title=f"{outcome.protocol}: {outcome.outcome} (session {outcome.session_id[:8]})")
    for col in ("#", "step", "kind", "outcome", "result"):
        table.add_column(col)
    for step in outcome.steps:
        result = step_result(step["kind"], step["outcome"], step)
        table.add_row(str(step["step"]), step["title"], step["kind"], step["outcome"], result)
    console.print(table)
    if outcome.sites:
        sites = Table(title="Dose per site (whole session)")
        for col in ("site", "held", "at target", "peak", "CEM43", "attempts"):
            sites.add_column(col)
        for site in outcome.sites:
            peak = site["peak_c"]
            sites.add_row(
                site["site"],
                f"{site['held_s']:.0f} s",
                f"{site['time_at_target_s']:.0f} s",
                "-" if peak is None else f"{peak:.1f} degC",
                f"{site['cem43']:.2f}",
                str(site["attempts"]),
            )
        console.print(sites)
    for fault in outcome.faults:
        err_console.print(f"[red]fault: {fault['message']}[/red]")
    where = (
        f"record: kept by the station at {outcome.db} (session {outcome.session_id})"
        if station
        else f"record: {outcome.db}  (devicectl records show {outcome.session_id[:8]} "
        f"--db {outcome.db})"
    )
    console.print(
        where,
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _run_session(
    protocol: Path,
    devices: dict[str, str] | None,
    drivers: dict[str, str] | None,
    operator: str,
    yes: bool,
    as_json: bool,
    db: str | None,
    seed: int,
    faults: dict[str, list[str]] | None = None,
    port_timeout_s: float = DEFAULT_TIMEOUT_S,
    progress_format: str | None = None,
    station: StationLogin | None = None,
) -> int:
    """Run a session; its exit code. SIGINT, SIGTERM and SIGHUP are caught from
    before the devices are opened: each aborts the session with every device
    made safe and read back, prints one line, and exits 128 + the signal.
    With ``station`` the session runs on that station service, this process
    its client: a signal tells the station to abort (every device safe)."""
    from devicectl.session.signals import StopSignals

    with StopSignals() as signals:
        return _run_session_until(
            signals,
            protocol,
            devices,
            drivers,
            operator,
            yes,
            as_json,
            db,
            seed,
            faults,
            port_timeout_s,
            progress_format,
            station,
        )


def _run_session_until(
    signals: Any,
    protocol: Path,
    devices: dict[str, str] | None,
    drivers: dict[str, str] | None,
    operator: str,
    yes: bool,
    as_json: bool,
    db: str | None,
    seed: int,
    faults: dict[str, list[str]] | None,
    port_timeout_s: float,
    progress_format: str | None = None,
    station: StationLogin | None = None,
) -> int:
    from devicectl.session.api import run_protocol_file

    wall_start = time.perf_counter()
    events = _LineProgress(sys.stderr, "jsonl") if progress_format == "jsonl" else None
    live = not as_json and events is None and sys.stdout.isatty()
    display: Any = contextlib.nullcontext()
    show: Callable[..., None] | None = events
    if live:
        display, show = _session_progress(console)
    elif not as_json and events is None:
        show = _LineProgress(sys.stdout)
    if yes and not as_json:
        console.print(
            f"--yes: an unattended session (recorded as such); the station confirms "
            f"manual steps as auto, and records each prompt this run answers under {operator}"
            if station is not None
            else "--yes: manual steps are confirmed automatically (recorded as unattended)",
            style="yellow",
            markup=False,
        )
    remote: dict[str, Any] = {}
    if station is not None:
        remote = {"station": station.url, "pin": station.pin, "station_token": station.token}
    with display:
        try:
            outcome = run_protocol_file(
                protocol,
                operator_id=operator,
                auto_confirm=yes,
                db=db,
                devices=devices,
                drivers=drivers,
                seed=seed,
                faults=faults,
                progress=show,
                port_timeout_s=port_timeout_s,
                stop=signals,
                **remote,
            )
        except ConnectionError as exc:
            if station is None:
                raise
            err_console.print(
                f"devicectl: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
            )
            return 1
    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), indent=2))
    elif not outcome.interrupted:
        _print_session_summary(outcome, station=station is not None)
        wall_s = time.perf_counter() - wall_start
        console.print(f"{outcome.as_dict()['session_s']:.0f} session s in {wall_s:.1f} wall s")
    if outcome.interrupted and signals.received is not None:
        err_console.print(
            _interrupted_line(outcome, signals.received.name),
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return int(signals.exit_code)
    return 0 if outcome.outcome == "complete" else 1


def _interrupted_line(outcome: Any, signal_name: str) -> str:
    """The one line a signal leaves: the session, and each device's safe state."""
    states: dict[str, str | None] = outcome.safe_states
    unconfirmed = {d: why for d, why in states.items() if why is not None}
    head = f"devicectl: {signal_name}: session {outcome.session_id} {outcome.outcome}; "
    if not unconfirmed:
        return head + f"every device was confirmed safe ({', '.join(states) or 'none'})"
    confirmed = [d for d in states if d not in unconfirmed]
    return head + (
        "NOT confirmed safe: "
        + "; ".join(f"{d} ({why}; its watchdog cuts output)" for d, why in unconfirmed.items())
        + (f"; confirmed safe: {', '.join(confirmed)}" if confirmed else "")
    )


def _parse_pairs(items: list[str] | None, option: str) -> dict[str, str] | None:
    """``KIND=VALUE`` options (repeatable) as a dict; ConfigError naming a malformed one."""
    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        kind, eq, value = item.partition("=")
        known = modalities()
        if not eq or not value or kind.strip() not in known:
            raise ConfigError(
                f"{option} {item!r}: expected KIND=VALUE with KIND one of "
                f"{', '.join(known)} (e.g. {next(iter(known), 'KIND')}=/dev/ttyUSB0)"
            )
        out[kind.strip()] = value.strip()
    return out


def _parse_devices(items: list[str] | None) -> dict[str, str] | None:
    devices = _parse_pairs(items, "--device")
    for kind, url in (devices or {}).items():
        try:
            check_network_url(url)
        except ConfigError as exc:
            raise ConfigError(f"--device {kind}={url}: {exc}") from exc
    return devices


def _parse_faults(items: list[str] | None) -> dict[str, list[str]] | None:
    if not items:
        return None
    out: dict[str, list[str]] = {}
    for item in items:
        kind, eq, spec = item.partition("=")
        known = modalities()
        if not eq or kind not in known:
            raise ConfigError(
                f"--fault {item!r}: expected DEVICE=SPEC with DEVICE one of "
                f"{', '.join(known)}, e.g. {next(iter(known), 'KIND')}=no_reply@100s"
            )
        out.setdefault(kind, []).append(spec.replace("+", "%2B"))
    return out


OperatorOpt = Annotated[
    str, typer.Option("--operator", help="Operator id, recorded with every action.")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Record store: a SQLite path or postgresql:// URL "
        "(default $DEVICECTL_DB or ./devicectl-records.sqlite).",
    ),
]


@dataclass(frozen=True)
class StationLogin:
    """Where a client run finds its station, and how it signs in."""

    url: str
    pin: str
    token: str | None = None


StationOpt = Annotated[
    str | None,
    typer.Option(
        "--station",
        metavar="URL",
        help="Run on this running station service (devicectl station serve): "
        "unix:/path/to/station.sock, a socket path, or a ws:// or wss:// URL. "
        "None: the whole station runs in this process.",
    ),
]
PinStdinOpt = Annotated[
    bool,
    typer.Option(
        "--pin-stdin",
        help="Read the operator's PIN from standard input (else $DEVICECTL_PIN, "
        "else asked on the terminal).",
    ),
]
StationTokenOpt = Annotated[
    Path | None,
    typer.Option(
        "--station-token-file",
        help="The station token for a ws:// or wss:// --station (a Unix socket's is "
        "read from PATH.token beside it).",
    ),
]


def _station_login(
    station: str | None, operator: str, pin_stdin: bool, token_file: Path | None
) -> StationLogin | None:
    """The sign-in for ``--station`` (None without it): the PIN from standard input
    (``--pin-stdin``), else ``$DEVICECTL_PIN``, else asked on the terminal."""
    if station is None:
        if pin_stdin or token_file is not None:
            raise ConfigError("--pin-stdin and --station-token-file go with --station URL")
        return None
    env_pin = os.environ.get("DEVICECTL_PIN")
    pin = (
        env_pin
        if env_pin is not None and not pin_stdin
        else _read_secret(f"PIN of {operator}", pin_stdin)
    )
    token = None
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"--station-token-file {token_file}: {exc.strerror}") from exc
    return StationLogin(station, pin, token)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Simulator seed (runs are reproducible).")] = 7,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a simulator fault: DEVICE=SPEC, e.g. rf=runaway@100s "
            "(see docs/simulators.md)."
        ),
    ] = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead.")] = False,
) -> None:
    """Run the full Pore Patrol session on simulated devices, in simulated time (seconds)."""
    from devicectl.session.api import builtin_protocol

    code = _run_session(
        builtin_protocol("pore-patrol.toml"),
        None,
        None,
        "demo",
        True,
        as_json,
        db,
        seed,
        _parse_faults(fault),
    )
    raise typer.Exit(code)


PortTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--port-timeout",
        help="Seconds a real device's reply may take before it counts as lost "
        "(0.005-0.2; raise it for a USB adapter with a high latency timer).",
    ),
]


@app.command()
def run(
    protocol: Annotated[
        Path, typer.Argument(help="Protocol file (TOML), e.g. protocols/pore-patrol.toml.")
    ],
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            help="KIND=URL for a real device, e.g. rf=/dev/ttyUSB0, "
            "ipl=socket://host:4001 (repeatable). None: simulators in simulated time.",
        ),
    ] = None,
    driver: Annotated[
        list[str] | None,
        typer.Option(
            "--driver",
            help="KIND=NAME: the driver for a --device, by its entry-point name "
            "(see devicectl devices; default rf_scpi, ipl_cobs, led_modbus).",
        ),
    ] = None,
    operator: OperatorOpt = "operator",
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="Confirm manual steps automatically (unattended; recorded as such)."
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a machine-readable summary.")
    ] = False,
    db: DbOpt = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Inject a simulator fault: DEVICE=SPEC, e.g. rf=runaway@100s (simulators "
            "only: no --device, or a sim:// one; see docs/simulators.md)."
        ),
    ] = None,
    progress: Annotated[
        str | None,
        typer.Option(
            "--progress",
            help="jsonl: progress events as JSON lines on stderr while it runs "
            "(step started/ended, each zone). Default: a live display on a terminal, "
            "one line per step and zone otherwise.",
        ),
    ] = None,
    port_timeout: PortTimeoutOpt = DEFAULT_TIMEOUT_S,
    station: StationOpt = None,
    pin_stdin: PinStdinOpt = False,
    station_token_file: StationTokenOpt = None,
) -> None:
    """Run a protocol file: validate it whole, then walk its steps on the devices.

    With --station URL the session runs on that station service, signed in as
    --operator: this command loads the protocol, starts the session, answers its
    prompts with --yes (IPL on real devices: never), follows it and prints the
    outcome; Ctrl-C or SIGTERM tells the station to abort (every device safe)."""
    if progress not in (None, "jsonl"):
        raise ConfigError(f"--progress {progress!r}: the only format is jsonl")
    if station is not None:
        local = [
            name
            for name, given in (
                ("--device", bool(device)),
                ("--driver", bool(driver)),
                ("--fault", bool(fault)),
                ("--db", db is not None),
                ("--seed", seed != 7),
                ("--port-timeout", port_timeout != DEFAULT_TIMEOUT_S),
            )
            if given
        ]
        if local:
            raise ConfigError(
                f"{', '.join(local)}: not with --station (the station owns its devices "
                "and its record)"
            )
    login = _station_login(station, operator, pin_stdin, station_token_file)
    raise typer.Exit(
        _run_session(
            protocol,
            _parse_devices(device),
            _parse_pairs(driver, "--driver"),
            operator,
            yes,
            as_json,
            db,
            seed,
            _parse_faults(fault),
            port_timeout_s=port_timeout,
            progress_format=progress,
            station=login,
        )
    )


@app.command("console")
def console_command(
    protocol: Annotated[
        Path | None,
        typer.Argument(help="Protocol file (TOML); default: the built-in Pore Patrol."),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            help="KIND=URL for a real device, e.g. rf=/dev/ttyUSB0 (repeatable). "
            "None: every device is its simulator.",
        ),
    ] = None,
    driver: Annotated[
        list[str] | None,
        typer.Option("--driver", help="KIND=NAME: the driver for a --device (see run --help)."),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Pre-fill the sign-in with this operator id."),
    ] = None,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Simulators in simulated time, paced at --speed times real time "
            "(a 20-minute LED step in 20 s at 60).",
        ),
    ] = False,
    speed: Annotated[
        float,
        typer.Option(help="With --fast: simulated seconds per wall second (0: no pacing)."),
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject a simulator fault: DEVICE=SPEC, e.g. rf=runaway@100s."),
    ] = None,
    db: DbOpt = None,
    station: Annotated[
        str | None,
        typer.Option(
            "--station",
            help="Be a client of this station service (devicectl station serve): its Unix "
            "socket path (token read from PATH.token) or a ws:// or wss:// URL "
            "(give --token-file). Sign-in asks the operator's PIN.",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="With a --station URL: the file of the station token."),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Serve this console to a browser (a tablet at the chair) on 127.0.0.1 "
            "with textual-serve, instead of running it in this terminal; needs --station: "
            "every browser tab is a client of that one station.",
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="With --serve: the HTTP port.")] = 8000,
    port_timeout: PortTimeoutOpt = DEFAULT_TIMEOUT_S,
) -> None:
    """The technician console: run a whole session at the chair, with keys or buttons.

    With --station, the console is a client of that station service, which owns
    the devices and the session: quitting or losing the console never stops a
    session, and another console (or a reloaded browser page) shows it. Without
    --station, the devices are simulators in this process (--fast: simulated
    time). Real devices (--device) are served only by `devicectl station serve`:
    the console refuses --device without --station.

    Sign in with your operator id first (and PIN, on a station); every action is
    recorded with it.
    Escape is the EMERGENCY STOP on every screen: every device to its safe
    state at once. Keys: C confirm, A arm, S start, F flash, N next zone,
    P pause, R resume, K acknowledge the oldest alarm, X abort, E end a
    faulted session, H help, ctrl+q quit. SIGINT, SIGTERM or SIGHUP abort the
    session (on a station: when signed in there) with every device read back,
    and exit 128 + the signal.
    """
    from devicectl.session.api import builtin_protocol

    path = protocol if protocol is not None else builtin_protocol("pore-patrol.toml")
    devices = _parse_devices(device)
    drivers = _parse_pairs(driver, "--driver") or {}
    faults = _parse_faults(fault)
    if devices and (fast or faults):
        raise ConfigError("--fast and --fault are for simulators: leave out --device")
    if station is not None:
        if devices or fast or faults or db is not None:
            raise ConfigError(
                "--device, --fast, --fault and --db belong to the station service "
                "(devicectl station serve), not to a console of it: leave them out with --station"
            )
    elif devices:
        raise ConfigError(
            "the console does not open devices itself: serve them with "
            "`devicectl station serve --device KIND=URL ...` and connect with "
            "`devicectl console --station PATH`"
        )
    elif serve:
        raise ConfigError(
            "--serve needs --station: every browser tab is a client of one station service "
            "(`devicectl station serve`), never a station of its own"
        )
    if serve:
        from devicectl.console.serve import serve_console

        serve_console(sys.argv[1:], port=port)
        return
    from devicectl.console.app import ConsoleApp

    if station is not None:
        from devicectl.console.remote import StationBackend

        token = None
        if token_file is not None:
            try:
                token = token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"--token-file {token_file}: {exc.strerror}") from exc
        remote = StationBackend(station, token=token, protocol=protocol)
        raise typer.Exit(_run_console(ConsoleApp(remote, operator=operator)))
    from devicectl.console.backend import ConsoleBackend, ConsoleConfig

    backend = ConsoleBackend(
        ConsoleConfig(
            path,
            devices=devices,
            drivers=drivers,
            fast=fast,
            speed=speed,
            seed=seed,
            faults=faults,
            port_timeout_s=port_timeout,
            db=db,
        )
    )
    raise typer.Exit(_run_console(ConsoleApp(backend, operator=operator)))


def _run_console(console_app: Any) -> int:
    """Run the console; its exit code. SIGINT, SIGTERM and SIGHUP abort its session
    with every device read back (``devicectl.console.signals``), print one line
    and exit 128 + the signal, as ``run`` and ``demo`` do."""
    from devicectl.console.signals import ConsoleSignals

    with ConsoleSignals(console_app) as signals:
        console_app.run()
    if signals.received is None:
        return int(console_app.return_code or 0)
    stopped = signals.stopped
    if stopped is not None and stopped.session_id is not None:
        line = _interrupted_line(stopped, signals.received.name)
    else:
        states = stopped.safe_states if stopped is not None else {}
        devices = ", ".join(f"{d} {why or 'off'}" for d, why in states.items())
        line = f"devicectl: {signals.received.name}: console stopped; no session of its own" + (
            f" (devices: {devices})" if devices else ""
        )
    err_console.print(line, style="red", markup=False, highlight=False, soft_wrap=True)
    return int(signals.exit_code)


records_app = typer.Typer(help="Inspect, verify and export session records.", no_args_is_help=True)
app.add_typer(records_app, name="records")


@records_app.command("list")
def records_list(db: DbOpt = None) -> None:
    """List the sessions in the record store (fits an 80-column terminal)."""
    from rich import box

    from devicectl.records.store import RecordStore

    with RecordStore.open(db, readonly=True) as store:
        sessions = store.list_sessions()
        table = Table(
            title=f"sessions in {store.db}",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            caption="* unattended run" if any(s.unattended for s in sessions) else None,
            caption_justify="left",
        )
        table.add_column("session", no_wrap=True)
        table.add_column("protocol", overflow="fold")
        table.add_column("operator", overflow="fold")
        table.add_column("started UTC", no_wrap=True)
        table.add_column("outcome", no_wrap=True)
        table.add_column("events", justify="right", no_wrap=True)
        for s in sessions:
            table.add_row(
                s.id[:12],
                s.protocol_name,
                s.operator_id + ("*" if s.unattended else ""),
                _minute_utc(s.started_at),
                s.outcome,
                str(s.events),
            )
        console.print(table)


def _minute_utc(iso: str) -> str:
    """``2026-12-06T12:28:35.768+00:00`` as ``2026-12-06 12:28`` (the record is in UTC)."""
    from datetime import UTC, datetime

    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso  # an edited row is shown as stored (verify names it)


@records_app.command("show")
def records_show(
    session: Annotated[str, typer.Argument(help="Session id (a prefix is enough).")],
    db: DbOpt = None,
) -> None:
    """Show a session: steps, alarms and operator actions."""
    from devicectl.records.models import dig
    from devicectl.records.store import RecordStore

    with RecordStore.open(db, readonly=True) as store:
        d = store.session_detail(session)
        s = d.session
        console.print(
            f"[bold]{s.protocol_name}[/bold] session {s.id}: {s.outcome}, operator "
            f"{s.operator_id}{' (unattended)' if s.unattended else ''}, {s.started_at} "
            f"to {s.ended_at or '-'}, {s.events} events"
        )
        steps = Table(title="steps")
        for col in ("#", "kind", "title", "outcome"):
            steps.add_column(col)
        for st in d.steps:
            steps.add_row(str(st.index), st.kind, st.title, st.outcome)
        console.print(steps)
        alarms = Table(title="alarms")
        for col in ("t s", "priority", "code", "message"):
            alarms.add_column(col)
        for e in d.alarms:
            alarms.add_row(
                f"{e.t_s:.2f}",
                *(str(dig(e.data, "alarm", key) or "?") for key in ("priority", "code", "message")),
            )
        console.print(alarms)
        actions = Table(title="operator actions")
        for col in ("t s", "operator", "device", "what"):
            actions.add_column(col)
        for e in d.operator_actions:
            what = e.data.get("action", e.kind) if isinstance(e.data, dict) else e.kind
            actions.add_row(f"{e.t_s:.2f}", e.operator_id or "", e.device, str(what))
        console.print(actions)


@records_app.command("verify")
def records_verify(
    session: Annotated[
        str | None, typer.Argument(help="Session id; all sessions if omitted.")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Check the record: any edited, deleted or reordered event, any session or step
    row that disagrees with the chained events (outcome, operator, steps), and any
    trace block whose rows were edited, deleted or inserted, is named."""
    from rich.markup import escape

    from devicectl.records.store import RecordStore

    with RecordStore.open(db, readonly=True) as store:
        results = store.verify(session)
        where = store.db
    if not results:
        # A QA check on the wrong file must not look like a clean bill of health.
        console.print(f"no sessions in {escape(str(where))}: nothing verified")
    bad = 0
    for r in results:
        if r.ok:
            console.print(f"[green]{r.session_id[:12]} ok[/green] ({escape(r.coverage())})")
        else:
            bad += 1
            for problem in r.problems:
                err_console.print(
                    f"[red]{r.session_id[:12]}: {escape(str(problem))}[/red]", soft_wrap=True
                )
        for note in r.notes:  # what an ok does not cover (unfinished, older record)
            console.print(f"  {r.session_id[:12]} note: {escape(note)}", soft_wrap=True)
    raise typer.Exit(1 if bad else 0)


@records_app.command("export")
def records_export(
    session: Annotated[str, typer.Argument(help="Session id (a prefix is enough).")],
    jsonl: Annotated[
        bool,
        typer.Option(
            "--jsonl/--no-jsonl",
            help="JSON lines, the one format (--no-jsonl is refused: nothing else to write).",
        ),
    ] = True,
    traces: Annotated[
        bool,
        typer.Option(
            "--traces/--no-traces",
            help="Include the sampled traces (--no-traces: session, steps and events only; "
            "verify then notes the traces were not checked).",
        ),
    ] = True,
    out: Annotated[Path | None, typer.Option("-o", "--out", help="File (default: stdout).")] = None,
    db: DbOpt = None,
) -> None:
    """Export a session's record as JSON lines."""
    from devicectl.records.store import RecordStore

    if not jsonl:
        raise ConfigError(
            "records export --no-jsonl: JSON lines is the only export format; "
            "drop --no-jsonl (or use --no-traces for a smaller file)"
        )
    with RecordStore.open(db, readonly=True) as store:
        if out is None:
            store.export_jsonl(session, sys.stdout, include_traces=traces)
        else:
            try:
                fh = out.open("w", encoding="utf-8")
            except OSError as exc:
                raise _output_error(out, exc) from exc
            with fh:
                n = store.export_jsonl(session, fh, include_traces=traces)
            console.print(f"{n} lines written to {out}")


@app.command()
def report(
    session: Annotated[str, typer.Argument(help="Session id (a prefix is enough).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="HTML file to write.")] = Path(
        "report.html"
    ),
    db: DbOpt = None,
) -> None:
    """Write a self-contained HTML report of a session (steps, alarms, plots)."""
    from devicectl.records.store import RecordStore
    from devicectl.report import render_report

    with RecordStore.open(db, readonly=True) as store:
        page = render_report(store, session)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise _output_error(out, exc) from exc
    console.print(f"report written to {out}")


def _output_error(out: Path, exc: OSError) -> ConfigError:
    """A ``-o`` file that cannot be written (no such directory, a directory, no
    permission) is a bad option: one line naming it, not a traceback."""
    return ConfigError(f"-o {out}: cannot write: {exc.strerror or exc}")


@app.command()
def devices() -> None:
    """List the drivers and simulators found through entry points."""
    table = Table(title="devicectl plugins")
    for col in ("kind", "name", "target", "package"):
        # A narrow terminal wraps an entry point's target instead of cutting it short.
        table.add_column(col, overflow="fold")
    for group, kind in ((plugins.DRIVER_GROUP, "driver"), (plugins.SIMULATOR_GROUP, "simulator")):
        for info in plugins.list_plugins(group):
            table.add_row(kind, info.name, info.target, info.distribution)
    console.print(table)


@app.command()
def diagram(
    modality: Annotated[
        str, typer.Argument(help="Which controller: an installed modality (devicectl devices).")
    ],
    fmt: Annotated[str, typer.Option("--format", help="mermaid or dot.")] = "mermaid",
) -> None:
    """Print a controller's state machine, generated from the live transition table."""
    from devicectl.diagram import diagram as draw

    typer.echo(draw(modality, fmt))


sim_app = typer.Typer(help="Run simulators as separate devices.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


@sim_app.command("serve")
def sim_serve(
    device: Annotated[
        str, typer.Argument(help="Simulator name (entry point), e.g. rf, ipl or led.")
    ],
    pty: Annotated[
        bool, typer.Option("--pty", help="Serve on a pseudo-terminal (the default).")
    ] = False,
    tcp: Annotated[
        str | None,
        typer.Option("--tcp", metavar="HOST:PORT", help="Serve raw bytes for socket:// URLs."),
    ] = None,
    rfc2217: Annotated[
        str | None,
        typer.Option("--rfc2217", metavar="HOST:PORT", help="Serve RFC 2217 for rfc2217:// URLs."),
    ] = None,
    modbus_tcp: Annotated[
        str | None,
        typer.Option(
            "--modbus-tcp",
            metavar="HOST:PORT",
            help="Serve Modbus/TCP (MBAP) for stock Modbus/TCP clients (the LED simulator).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 0,
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="Inject a fault: SPEC, e.g. runaway@10s (repeatable)."),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", help="KEY=VALUE simulator option, e.g. skin0=33 (repeatable)."),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="Write the JSON-lines events here instead of stdout."),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback HOST.")
    ] = False,
) -> None:
    """Run a simulator in real time as its own device, until Ctrl-C or SIGTERM.

    Prints JSON lines: first {"event": "serving", "port": ...} (the path or URL
    to open), then every change of the output at the device.
    """
    from devicectl.errors import PortError
    from devicectl_simulators.serve import serve

    modes = (("pty", pty), ("tcp", tcp), ("rfc2217", rfc2217), ("modbus-tcp", modbus_tcp))
    chosen = [m for m, on in modes if on]
    if len(chosen) > 1:
        raise ConfigError(
            "choose one of --pty, --tcp HOST:PORT, --rfc2217 HOST:PORT, --modbus-tcp HOST:PORT"
        )
    mode = chosen[0] if chosen else "pty"
    options: dict[str, str] = {}
    for item in option or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE, e.g. skin0=33")
        options[key.strip()] = value
    factory = plugins.load_plugin(plugins.SIMULATOR_GROUP, device)
    try:
        handle = None if log is None else log.open("a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--log {log}: {exc}") from exc
    # It stands in for a device's firmware, which never waits for a page the kernel
    # wrote out: a stalled reply would trip the host's staleness check, not the device's.
    realtime.lock_memory()
    try:
        serve(
            device,
            factory,
            mode=mode,
            address={"tcp": tcp, "rfc2217": rfc2217, "modbus-tcp": modbus_tcp}.get(mode),
            seed=seed,
            faults=list(fault or []),
            options=options,
            allow_remote=allow_remote,
            log=handle,
        )
    except ValueError as exc:
        raise ConfigError(f"sim serve {device}: {exc}") from exc
    except OSError as exc:
        raise PortError(f"sim serve {device}: cannot serve: {exc}") from exc
    finally:
        if handle is not None:
            handle.close()


station_app = typer.Typer(
    help="The station service: one process per chair owns the devices; screens are clients.",
    no_args_is_help=True,
)
app.add_typer(station_app, name="station")

OperatorsOpt = Annotated[
    Path | None,
    typer.Option(
        "--operators",
        help="Operators file (default $DEVICECTL_OPERATORS or ./devicectl-operators.json).",
    ),
]


@station_app.command("serve")
def station_serve(
    device: Annotated[
        list[str] | None,
        typer.Option(
            "--device",
            help="KIND=URL for a real device, e.g. rf=/dev/ttyUSB0 (repeatable). "
            "None: every device is its simulator, in real time.",
        ),
    ] = None,
    driver: Annotated[
        list[str] | None,
        typer.Option("--driver", help="KIND=NAME: the driver for a --device (see run --help)."),
    ] = None,
    unix: Annotated[
        Path | None,
        typer.Option(
            "--unix",
            help="Unix socket to serve on (its token is written to PATH.token, mode 0600). "
            "Default ./devicectl-station.sock when no --tcp is given.",
        ),
    ] = None,
    tcp: Annotated[
        str | None,
        typer.Option("--tcp", metavar="HOST:PORT", help="Also serve on TCP (e.g. 127.0.0.1:8765)."),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="TLS certificate (PEM) for --tcp.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="TLS private key (PEM) for --tcp.")
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            help="A web origin allowed besides the station's own, e.g. https://tablet.local "
            "(repeatable).",
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Where to write the station token (default PATH.token)."),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow --tcp on a non-loopback address.")
    ] = False,
    operators: OperatorsOpt = None,
    db: DbOpt = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    port_timeout: PortTimeoutOpt = DEFAULT_TIMEOUT_S,
) -> None:
    """Serve this chair's station to its clients (docs/api.md), until SIGTERM or Ctrl-C.

    Prints one JSON line once serving: {"event": "serving", "unix": ..., "url": ...}.
    """
    import ipaddress

    from devicectl.station.service import ServeConfig, parse_hostport, run_service

    hostport = parse_hostport(tcp) if tcp is not None else None
    if hostport is not None and not allow_remote:
        host = hostport[0]
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(f"--tcp {tcp}: not a loopback address; add --allow-remote (and TLS)")
    if unix is None and hostport is None:
        unix = Path("devicectl-station.sock")
    config = ServeConfig(
        devices=_parse_devices(device),
        drivers=_parse_pairs(driver, "--driver") or {},
        unix=unix,
        tcp=hostport,
        tls_cert=tls_cert,
        tls_key=tls_key,
        db=db,
        operators=operators,
        token_file=token_file,
        allow_origins=tuple(allow_origin or ()),
        seed=seed,
        port_timeout_s=port_timeout,
    )

    def ready(where: dict[str, Any]) -> None:
        print(json.dumps(where), flush=True)

    raise typer.Exit(run_service(config, ready))


operators_app = typer.Typer(help="Enrol the operators who may sign in.", no_args_is_help=True)
app.add_typer(operators_app, name="operators")


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise ConfigError(f"{prompt}: nothing on standard input")
        return line.rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"{prompt}: ")
    return first


@operators_app.command("add")
def operators_add(
    operator_id: Annotated[str, typer.Argument(metavar="ID", help="The operator's id.")],
    role: Annotated[str, typer.Option("--role", help="operator or supervisor.")] = "operator",
    supervisor: Annotated[
        str | None,
        typer.Option(
            "--supervisor",
            help="The supervisor enrolling them (their PIN is read first). "
            "Not needed for the first operator, who must be a supervisor.",
        ),
    ] = None,
    pin_stdin: Annotated[
        bool,
        typer.Option("--pin-stdin", help="Read the PIN(s) from standard input, one per line."),
    ] = False,
    operators: OperatorsOpt = None,
) -> None:
    """Enrol an operator: the PIN is stored only as a slow salted hash (scrypt)."""
    from devicectl.station.auth import OperatorStore

    store = OperatorStore(operators)
    by = None
    if supervisor is not None:
        by = store.verify(supervisor, _read_secret(f"PIN of supervisor {supervisor}", pin_stdin))
        if by is None:
            raise ConfigError(f"supervisor {supervisor!r}: unknown, or wrong PIN")
    pin = _read_secret(f"new PIN for {operator_id}", pin_stdin)
    if not pin_stdin and sys.stdin.isatty():
        import getpass

        if getpass.getpass("again: ") != pin:
            raise ConfigError("the two PINs differ")
    added = store.add(operator_id, pin, role, by=by)
    console.print(f"enrolled {added.id} ({added.role}) in {store.path}", markup=False)


@operators_app.command("list")
def operators_list(operators: OperatorsOpt = None) -> None:
    """List enrolled operators and their roles."""
    from devicectl.station.auth import OperatorStore

    store = OperatorStore(operators)
    for op in store.list():
        typer.echo(f"{op.id}\t{op.role}")


def main() -> None:
    try:
        app()
    except ProtocolFileError as exc:
        if _state["debug"]:
            raise
        for line in exc.problems:
            err_console.print(line, style="red", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except DevicectlError as exc:
        if _state["debug"]:
            raise
        err_console.print(
            f"devicectl: {exc}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(2)
