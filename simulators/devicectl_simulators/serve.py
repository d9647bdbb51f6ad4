"""Run one simulator in real time as its own process: ``devicectl sim serve``.

The simulator is served on a pseudo-terminal (:class:`~devicectl_simulators.pty_server.PtyServer`,
opened by a host like any serial port), on a raw TCP socket (``socket://``) or
on an RFC 2217 TCP port (``rfc2217://``, see :mod:`devicectl_simulators.tcp_server`).
It runs on a :class:`~devicectl.clock.RealClock` (``time.monotonic``), so its
watchdog and physics run in wall time whatever the host does.

Everything it has to say goes out as JSON lines, each flushed at once:

- first ``{"event": "serving", "device": "rf", "port": "/dev/pts/5", ...}``:
  ``port`` is what a host opens (a pty path, or a ``socket://``/``rfc2217://``
  URL); network modes add ``host`` and ``tcp_port``;
- ``{"event": "output", "device": "rf", "t": 12345.678, "on": false,
  "reason": "watchdog"}`` for every change of the real output at the device,
  from the simulator's own ``output_log``: ``t`` is the simulator's clock
  (``time.monotonic()`` of the serving process: the same clock as any other
  process's ``time.monotonic()`` on Linux), ``reason`` is the simulator's
  (``host``, ``watchdog``, ``cutoff``, ``contact``, ``sensor``, ``reset``, ...);
- ``connected``/``disconnected``/``refused`` for TCP hosts;
- ``{"event": "stopped", ...}`` last.

The ``serving`` line always goes to ``stdout``; the whole stream goes to the
log (``stdout`` too unless a log file is given). SIGTERM and SIGINT end it
cleanly: the port is closed and :func:`serve` returns.

Nothing here knows a simulator by name: the caller hands in its factory
(``devicectl/cli.py`` finds it through the ``devicectl.simulators`` entry points).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from devicectl.clock import Clock
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.stream import ServedDevice
from devicectl_simulators.tcp_server import TcpServer

MODES = ("pty", "tcp", "rfc2217", "modbus-tcp")
MODBUS_DEVICES = ("led",)  # the simulators that speak Modbus RTU
LOG_POLL_S = 0.01


class ServeError(ValueError):
    """A bad serve request (mode, address, host): nothing was started."""


def parse_host_port(text: str, option: str = "--tcp") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port); ServeError if malformed."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ServeError(
            f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:4001 (port 0: any free one)"
        )
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True if every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


def check_host(host: str, allow_remote: bool, option: str = "--tcp") -> None:
    if not allow_remote and not is_loopback(host):
        raise ServeError(
            f"{option}: {host!r} is not a loopback address; a simulator is served on "
            "loopback only (127.0.0.1, ::1, localhost) unless --allow-remote is given"
        )


class _JsonLog:
    """JSON lines to one or two text streams, each line flushed."""

    def __init__(self, streams: Sequence[TextIO]) -> None:
        self._streams = list(streams)
        self._lock = threading.Lock()

    def write(self, record: dict[str, object], *, only: TextIO | None = None) -> None:
        line = json.dumps(record) + "\n"
        with self._lock:
            for stream in [only] if only is not None else self._streams:
                with contextlib.suppress(OSError, ValueError):  # a reader that went away
                    stream.write(line)
                    stream.flush()


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (main thread only; elsewhere: nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum: int, frame: object) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def serve(
    device: str,
    factory: Callable[..., ServedDevice],
    *,
    mode: str = "pty",
    address: str | None = None,
    seed: int = 0,
    faults: Sequence[str] = (),
    options: dict[str, str] | None = None,
    allow_remote: bool = False,
    log: TextIO | None = None,
    stdout: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Serve ``factory(clock, seed=, faults=, **options)`` until SIGTERM/SIGINT or ``stop``.

    ``address`` is ``HOST:PORT`` for ``tcp`` and ``rfc2217`` (port 0: any free
    one). Raises :class:`ServeError` (a ValueError) for a bad request, the
    simulator's own ValueError for a bad fault or option, OSError if the port
    cannot be opened. Returns 0 after a clean stop.
    """
    if mode not in MODES:
        raise ServeError(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})")
    out = stdout if stdout is not None else sys.stdout
    jlog = _JsonLog([out] if log is None or log is out else [out, log])
    log_only = log if log is not None else out
    stop_event = stop if stop is not None else threading.Event()
    fault_list = list(faults)
    opts = dict(options or {})

    def make(clock: Clock) -> ServedDevice:
        return factory(clock, seed=seed, faults=fault_list, **opts)

    def on_event(record: dict[str, object]) -> None:
        jlog.write({**record, "device": device, "t": time.monotonic()}, only=log_only)

    server: PtyServer | TcpServer
    record: dict[str, object] = {"event": "serving", "device": device, "mode": mode}
    if mode == "pty":
        if address is not None:
            raise ServeError("--pty takes no address")
        server = PtyServer(make)
    else:
        if address is None:
            raise ServeError(f"--{mode} needs HOST:PORT")
        host, port = parse_host_port(address, f"--{mode}")
        check_host(host, allow_remote, f"--{mode}")
        if mode == "modbus-tcp" and device not in MODBUS_DEVICES:
            raise ServeError(
                f"--modbus-tcp serves Modbus RTU simulators ({', '.join(MODBUS_DEVICES)}), "
                f"not {device}"
            )
        server = TcpServer(
            make,
            host,
            port,
            rfc2217=(mode == "rfc2217"),
            modbus_tcp=(mode == "modbus-tcp"),
            on_event=on_event,
        )

    with _stop_on_signals(stop_event):
        if isinstance(server, PtyServer):
            record["port"] = server.start()
        else:
            bound_host, bound_port = server.start()
            record.update(port=server.url, host=bound_host, tcp_port=bound_port)
        try:
            record.update(seed=seed, faults=fault_list, pid=os.getpid(), t=time.monotonic())
            jlog.write(record)  # stdout, and the log file if there is one
            emitted = 0
            while True:
                stopping = stop_event.wait(LOG_POLL_S)
                if server.error is not None:
                    raise RuntimeError(f"the {device} simulator server failed: {server.error!r}")
                emitted = _emit_output_changes(server, device, emitted, jlog, log_only)
                if stopping:
                    break
        finally:
            server.stop()
    emitted = _emit_output_changes(server, device, emitted, jlog, log_only)
    jlog.write({"event": "stopped", "device": device, "t": time.monotonic()}, only=log_only)
    return 0


def _emit_output_changes(
    server: PtyServer | TcpServer, device: str, emitted: int, jlog: _JsonLog, stream: TextIO
) -> int:
    """Write the simulator's output changes after the first ``emitted``; the new count."""
    fresh: list[tuple[float, bool, str]] = server.inspect(
        lambda sim: list(getattr(sim, "output_log", ())[emitted:])
    )
    for t, on, reason in fresh:
        jlog.write(
            {"event": "output", "device": device, "t": t, "on": bool(on), "reason": reason},
            only=stream,
        )
    return emitted + len(fresh)
