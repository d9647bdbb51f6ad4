"""Tick jitter and CPU use of the real-time control loop driving three served simulators.

The RF, IPL and LED simulators are each served on a real pty in real time:
by default each in its own ``devicectl sim serve`` process, as separate devices
are (``--servers process``); or as ``PtyServer`` threads in this process
(``--servers thread``), where they share the GIL with the loop and a tick can
start late by a GIL hand-over that real devices would never cause. A
``Station(RealClock())`` opens them with its
usual drivers and its control loop runs on its own thread at 20 Hz (every
tick samples each device, supervises and regulates; no delivery is started).
A subscriber on the loop thread records each ``tick`` event's ``t_s`` (the
clock at the tick's start) and the loop thread's CPU time
(``time.thread_time``). The period error of a tick is
``|(start - previous start) - period|``; the CPU use is the loop thread's CPU
seconds over the wall seconds between the first and last recorded tick.
``--load N`` runs N CPU-burning processes for the whole run (always stopped at
the end): the loop must keep time on a machine that is busy. The loop's
process is set up as in real use (``realtime.py``: SCHED_FIFO for the loop
thread when allowed, automatic full collections off, every collection timed).
Served as processes, the simulators stand for devices with their own CPUs: when
the process may (root or CAP_SYS_NICE), their threads get SCHED_FIFO too, so
the load falls on the host alone.

By default (``--client console``) the loop runs as the station service runs
it: ``StationService`` owns the devices, serves the API on a Unix socket from
its own asyncio thread in this process, and a real Textual console
(``devicectl console --station``) is attached as a client in a pseudo-terminal
of 160x48, rendering the readings and states the service streams to it (readings
at 5 Hz). The console's output is drained and counted (``client_received``), so
a console that stops drawing shows. ``--client events`` attaches a plain API
client process instead, counting the events it receives
(``client_received``); ``--client none`` runs the bare ``Station`` loop with no
service.

``--session`` (with a client) runs a real RF session through the service for
the whole run: ``devicectl run --station`` signed in as an enrolled operator
answers its prompts, and the RF handpiece heats zone after zone of the
simulated skin, holding 42 °C. The session's record is written as in use:
every tick committed by the record writer's thread, in the loop's process,
before the next tick ends (safety rule 6). The writer's thread CPU is
reported (``writer_cpu_pct``) with the loop's, to tell whether the writer
belongs in a process of its own: it does if the loop's figures with a
session are worse than without.

When ``cyclictest`` (Debian's ``rt-tests``) is installed, it runs alongside
as a witness of the machine itself: one C thread per CPU at ``SCHED_FIFO``
priority 95, waking every 1 ms, reporting its longest wake-up latency per
CPU (``machine_max_latency_ms``). A stall it sees too is the machine's (a
virtual CPU held off by its host), which no setting of this process can
remove; a stall only the loop sees is the loop's own.

Watchdog trips are counted from the devices' side, two ways, and the larger
count is reported: every output change a simulator logs with the reason
``watchdog`` (``sim serve``'s ``output`` lines, or the served simulator's
``output_log``); and every time a device's latched watchdog bit (RF and IPL
``status``, LED ``faults``) appears in the readings the loop takes. A
watchdog that trips with the output already off (no delivery runs here)
changes no output; only the bit shows it.

Targets: p99 period error at most 2 ms, max at most 25 ms, CPU at most 10 %
of one core, no watchdog trip, longest GC pause at most 5 ms. The last line
is one JSON object; the exit code is 1 when a target is missed.

    uv run python benchmarks/jitter.py [--seconds S] [--servers process|thread] [--load N]
        [--client console|events|none]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from devicectl.clock import RealClock
from devicectl.control.base import ControllerCore
from devicectl.control.events import Event
from devicectl.control.realtime import FIFO_PRIORITY
from devicectl.logs import configure_logging
from devicectl.station import Station
from devicectl.station.auth import Operator, OperatorStore
from devicectl.station.client import SyncStationClient
from devicectl.station.service import ServeConfig, StationService
from devicectl_simulators.ipl_firmware import IPLFirmware
from devicectl_simulators.led_firmware import LEDFirmware
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.rf_firmware import RFFirmware

PERIOD_S = 0.05
TARGET_P99_MS = 2.0
TARGET_MAX_MS = 25.0
TARGET_CPU_PCT = 10.0
TARGET_GC_MAX_MS = 5.0
SIM_PRIORITY = FIFO_PRIORITY + 10  # the simulators stand for hardware: above the host
# Lock memory, a thread per CPU pinned to it, priority 95, every 1 ms, summary only.
CYCLICTEST = ("cyclictest", "-m", "-S", "-p", "95", "-i", "1000", "-q", "-h", "1000")
_RECEIVED = {"console": "bytes drawn", "events": "events"}
SETTLE_S = 1.0  # ticks in the first second after start are not counted


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


_DEVICECTL = (sys.executable, "-c", "from devicectl.cli import main; main()")


def _burn(stop: Any) -> None:
    """One CPU hog: spin until ``stop`` is set."""
    while not stop.is_set():
        for _ in range(10_000):
            pass


class _Load:
    """N processes burning CPU for the run; ``stop`` always ends them."""

    def __init__(self, n: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self.procs = [
            context.Process(target=_burn, args=(self._stop,), daemon=True) for _ in range(n)
        ]

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def stop(self) -> None:
        self._stop.set()
        for proc in self.procs:
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)


def _watchdog_bit(reading: Any) -> bool:
    """Whether a reading shows its device's latched watchdog bit."""
    flags = getattr(reading, "status", None)
    if flags is None:
        flags = getattr(reading, "faults", None)
    bit = getattr(type(flags), "WATCHDOG_TRIPPED", None)
    return bit is not None and bool(flags & bit)


def _fifo_all_threads(pid: int, priority: int) -> bool:
    """SCHED_FIFO for every thread of process ``pid``; False if not allowed."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(priority))
    except OSError:
        return False
    return True


_CONSOLE_CLIENT = """
import fcntl, os, signal, struct, subprocess, sys, termios, threading

master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "48"}
console = subprocess.Popen(
    [sys.executable, "-c", "from devicectl.cli import main; main()",
     "console", "--station", sys.argv[1]],
    stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
)
os.close(slave)
drawn = 0
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

def drain():
    global drawn
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            return
        if not chunk:
            return
        drawn += len(chunk)

threading.Thread(target=drain, daemon=True).start()
while not stop.wait(0.5):
    if console.poll() is not None:
        print("exited", console.returncode, flush=True)
        sys.exit(1)
console.terminate()
try:
    console.wait(5.0)
except subprocess.TimeoutExpired:
    console.kill()
print(drawn, flush=True)
"""


class _ConsoleClient:
    """``devicectl console --station SOCKET`` in a 160x48 pseudo-terminal.

    A small process of its own owns the pseudo-terminal and drains what the
    console draws, so nothing of the client runs in the station's process.
    """

    def __init__(self, socket_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CONSOLE_CLIENT, str(socket_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.received = 0  # bytes the console drew, known once stopped

    @property
    def error(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else f"the console exited ({code})"

    def stop(self) -> None:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=15.0)
        with contextlib.suppress(ValueError, IndexError):
            self.received = int(out.strip().splitlines()[-1])


_EVENTS_CLIENT = """
import asyncio, signal, sys
from devicectl.station.client import StationClient

async def main():
    client = await StationClient.connect(sys.argv[1])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    count = 0

    async def follow():
        nonlocal count
        async for _ in client.events():
            count += 1

    task = asyncio.ensure_future(follow())
    await stop.wait()
    task.cancel()
    print(count, flush=True)

asyncio.run(main())
"""


class _EventsClient:
    """A plain API client process that counts the events the station streams to it."""

    def __init__(self, socket_path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EVENTS_CLIENT, str(socket_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.received = 0  # events, known once stopped

    @property
    def error(self) -> str | None:
        code = self.proc.poll()
        return None if code is None else f"the events client exited {code}"

    def stop(self) -> None:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10.0)
        with contextlib.suppress(ValueError):
            self.received = int(out.strip().splitlines()[-1])


class _Service:
    """The station service on a Unix socket, served from its own thread of this process."""

    def __init__(self, devices: dict[str, str], workdir: Path) -> None:
        self.socket = workdir / "station.sock"
        self.service = StationService(
            ServeConfig(
                devices=devices,
                unix=self.socket,
                db=str(workdir / "record.sqlite"),
                operators=workdir / "operators.json",
            )
        )
        self._ready = threading.Event()
        self.exit_code: int | None = None
        self._thread = threading.Thread(target=self._serve, name="station-service", daemon=True)

    def _serve(self) -> None:
        try:
            self.exit_code = asyncio.run(self.service.serve(lambda _where: self._ready.set()))
        finally:
            self._ready.set()

    def start(self) -> None:
        """Serve (this starts the loop); returns once the socket accepts clients."""
        self._thread.start()
        self._ready.wait(30.0)
        if not self.socket.exists():
            raise RuntimeError(f"the station service did not start (exit {self.exit_code})")

    def stop(self) -> None:
        self.service.stop()
        self._thread.join(30.0)


SESSION_PIN = "2468"
SESSION_SETTLE_S = 15.0  # the session starts and the first zone heats before measuring
SESSION_ZONES = 12  # more than a 10-minute run can finish


def _session_protocol(workdir: Path) -> Path:
    """An RF step over more zones than the run can finish: energy flows throughout."""
    zones = ", ".join(f'"zone {n}"' for n in range(1, SESSION_ZONES + 1))
    path = workdir / "jitter-rf.toml"
    path.write_text(
        "[session]\n"
        'name = "Jitter RF"\n'
        'version = "1.0"\n\n'
        "[[step]]\n"
        'kind = "rf"\n'
        'title = "RF zones, back to back"\n'
        "target_c = 42.0\n"
        "hold_s = 60\n"
        f"zones = [{zones}]\n",
        encoding="utf-8",
    )
    return path


def _enrol(workdir: Path) -> None:
    store = OperatorStore(workdir / "operators.json")
    store.add("bench-sup", "1357", "supervisor")
    store.add("bench", SESSION_PIN, "operator", by=Operator("bench-sup", "supervisor"))


class _SessionDriver:
    """``devicectl run --station`` answering the session's prompts, in its own process."""

    def __init__(self, socket_path: Path, protocol: Path) -> None:
        # A watchdog that tripped while the station was starting under load is
        # latched: acknowledged here, as the operator would at the console.
        with SyncStationClient(socket_path) as station:
            station.call("sign_in", operator_id="bench", pin=SESSION_PIN)
            self.acknowledged = station.call("acknowledge")["acknowledged"]
        self._stderr = protocol.with_suffix(".stderr")
        with self._stderr.open("w") as stderr:
            self.proc = subprocess.Popen(
                [
                    *(*_DEVICECTL, "run", str(protocol), "--station", f"unix:{socket_path}"),
                    *("--operator", "bench", "--yes", "--pin-stdin", "--json"),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )
        assert self.proc.stdin is not None
        self.proc.stdin.write(SESSION_PIN + "\n")
        self.proc.stdin.close()

    @property
    def error(self) -> str | None:
        code = self.proc.poll()
        if code is None:
            return None
        tail = self._stderr.read_text(errors="replace")[-500:]
        return f"the session ended before the run did (exit {code}): {tail}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # aborts the session, every device read back
        try:
            self.proc.wait(30.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)


class _WriterCPU:
    """CPU seconds of the record writer threads of this process, sampled while they live."""

    def __init__(self) -> None:
        self._seen: dict[int, float] = {}  # native thread id: latest CPU seconds
        self._tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> None:
        for thread in threading.enumerate():
            if thread.name.startswith("devicectl-records-") and thread.native_id is not None:
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
                    fields = stat.rsplit(")", 1)[1].split()
                    self._seen[thread.native_id] = (int(fields[11]) + int(fields[12])) / self._tick

    @property
    def cpu_s(self) -> float:
        return sum(self._seen.values())


class _Witness:
    """``cyclictest`` on every CPU for the run, if installed: the machine's own latency floor."""

    def __init__(self, seconds: float) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.max_latency_ms: list[float] | None = None
        if shutil.which("cyclictest") is None:
            return
        self.proc = subprocess.Popen(
            [*CYCLICTEST, "-D", f"{math.ceil(seconds)}s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)  # cyclictest prints its summary on SIGINT
        out, _ = self.proc.communicate(timeout=15.0)
        for line in out.splitlines():
            if line.startswith("# Max Latencies:"):
                self.max_latency_ms = [int(us) / 1000 for us in line.split(":")[1].split()]


class _ServedProcesses:
    """The three simulators, each a ``devicectl sim serve NAME --pty`` process."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.error: str | None = None
        self.fifo = True
        self.watchdog_trips = 0

    def start(self) -> list[str]:
        paths = []
        for name in ("rf", "ipl", "led"):
            proc = subprocess.Popen(
                [*_DEVICECTL, "sim", "serve", name, "--pty", "--seed", "7"],
                stdout=subprocess.PIPE,
                text=True,
            )
            self.procs.append(proc)
            assert proc.stdout is not None
            first = json.loads(proc.stdout.readline() or "{}")
            if first.get("event") != "serving":
                raise RuntimeError(f"sim serve {name} did not start: {first!r}")
            paths.append(str(first["port"]))
            self.fifo = _fifo_all_threads(proc.pid, SIM_PRIORITY) and self.fifo
        return paths

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc.returncode not in (0, -15):
                self.error = f"sim serve exited {proc.returncode}"
            assert proc.stdout is not None
            for line in proc.stdout.read().splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == "output" and record.get("reason") == "watchdog":
                        self.watchdog_trips += 1


class _ServedThreads:
    """The three simulators as ``PtyServer`` threads of this process."""

    def __init__(self, clock: RealClock) -> None:
        factories = (RFFirmware, IPLFirmware, LEDFirmware)
        self.servers = [PtyServer(factory, clock=clock) for factory in factories]
        self.fifo = False
        self.watchdog_trips = 0

    @property
    def error(self) -> str | None:
        errors = [server.error for server in self.servers if server.error is not None]
        return repr(errors) if errors else None

    def start(self) -> list[str]:
        return [server.start() for server in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            log = server.inspect(lambda sim: list(getattr(sim, "output_log", ())))
            self.watchdog_trips += sum(1 for _, _, reason in log if reason == "watchdog")
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="measured run time (default 60)"
    )
    parser.add_argument(
        "--servers",
        choices=("process", "thread"),
        default="process",
        help="simulators in their own processes (default) or as threads of this one",
    )
    parser.add_argument(
        "--load", type=int, default=0, help="CPU-burning processes during the run (default 0)"
    )
    parser.add_argument(
        "--client",
        choices=("console", "events", "none"),
        default="console",
        help="the station service with a Textual console attached (default), with a plain "
        "API client counting events, or the bare loop with no service",
    )
    parser.add_argument(
        "--session",
        action="store_true",
        help="run an RF session through the service for the whole run (needs a client)",
    )
    args = parser.parse_args()
    if args.session and args.client == "none":
        parser.error("--session runs through the station service: give --client")
    workdir = Path(tempfile.mkdtemp())
    configure_logging(log_file=workdir / "bench.jsonl")
    clock = RealClock()
    servers: _ServedProcesses | _ServedThreads = (
        _ServedProcesses() if args.servers == "process" else _ServedThreads(clock)
    )
    ticks: list[tuple[float, float]] = []  # (t_s at tick start, loop thread CPU s at tick end)
    alarms: list[Any] = []
    tick_threads: list[int] = []  # the thread of each tick event
    energised: list[bool] = []  # per tick: some device was delivering energy
    watchdog_bits: dict[str, bool] = {}  # per device: the bit in its last reading
    bit_trips: list[str] = []  # a device each time its watchdog bit appeared
    station: Station | None = None
    service: _Service | None = None
    client: _ConsoleClient | _EventsClient | None = None
    client_error: str | None = None
    driver: _SessionDriver | None = None
    driver_error: str | None = None
    writer_cpu = _WriterCPU()
    writer_cpu_s = 0.0
    process_cpu_s = wall_s = 0.0
    load = _Load(args.load)
    witness: _Witness | None = None
    try:
        rf_path, ipl_path, led_path = servers.start()
        load.start()
        witness = _Witness(SETTLE_S + args.seconds + 60.0)
        if args.client == "none":
            station = Station(clock, period_s=PERIOD_S)
            controllers: list[ControllerCore[Any, Any]] = [
                station.add_rf(rf_path),  # each waits out its simulator's boot
                station.add_ipl(ipl_path),
                station.add_led(led_path),
            ]
        else:
            if args.session:
                _enrol(workdir)
            service = _Service({"rf": rf_path, "ipl": ipl_path, "led": led_path}, workdir)
            station = service.service.station
            controllers = [
                c for c in station.loop.controllers.values() if isinstance(c, ControllerCore)
            ]
        for controller in controllers:
            if controller.device is None:
                failure = controller.fault_alarm
                print(f"{controller.name} did not connect: {failure}", file=sys.stderr)
                return 2

        def on_event(event: Event) -> None:
            if event.kind == "tick":
                ticks.append((event.t_s, time.thread_time()))
                energised.append(any(c.energised for c in controllers))
                tick_threads.append(threading.get_ident())
                for controller in controllers:
                    bit = _watchdog_bit(controller.reading)
                    if bit and not watchdog_bits.get(controller.name, False):
                        bit_trips.append(controller.name)
                    watchdog_bits[controller.name] = bit
            elif event.kind == "alarm":
                alarms.append(event.data.get("alarm"))

        station.loop.subscribe(on_event)
        if service is None:
            station.loop.start()
        else:
            service.start()
            client = (
                _ConsoleClient(service.socket)
                if args.client == "console"
                else _EventsClient(service.socket)
            )
            if args.session:
                driver = _SessionDriver(service.socket, _session_protocol(workdir))
        time.sleep(SETTLE_S + (SESSION_SETTLE_S if driver is not None else 0.0))
        settled = len(ticks)
        writer_cpu.sample()
        writer_cpu0 = writer_cpu.cpu_s
        process_cpu0 = time.process_time()
        wall0 = time.monotonic()
        while (left_s := wall0 + args.seconds - time.monotonic()) > 0:
            time.sleep(min(1.0, left_s))
            writer_cpu.sample()
        process_cpu_s = time.process_time() - process_cpu0
        wall_s = time.monotonic() - wall0
        writer_cpu_s = writer_cpu.cpu_s - writer_cpu0
        driver_error = driver.error if driver is not None else None
        end = len(ticks)
        overruns = station.loop.overruns
        client_error = client.error if client is not None else None
        healthy = all(
            c.device is not None and c.fault_alarm is None and not c.latched for c in controllers
        )
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):  # stop the rest whatever happens here
                driver.stop()
        load.stop()
        if witness is not None:
            witness.stop()
        if client is not None:
            client.stop()
        if service is not None:
            service.stop()  # stops the loop and closes the devices
        elif station is not None:
            station.loop.stop(timeout_s=5.0)
            for on_loop in station.loop.controllers.values():
                device = getattr(on_loop, "device", None)
                if device is not None:
                    device.close()
        with contextlib.suppress(Exception):  # a failed server is reported below
            servers.stop()
    if servers.error is not None:
        print(f"a pty server failed: {servers.error}", file=sys.stderr)
        return 2
    if driver_error is not None:
        print(driver_error, file=sys.stderr)
        return 2
    if client_error is not None:
        print(f"the client failed during the run: {client_error}", file=sys.stderr)
        return 2
    if client is not None and client.received == 0:
        print(f"the {args.client} client received nothing from the station", file=sys.stderr)
        return 2
    # Until the end of the measurement (stopping the service ticks once more, on its thread).
    loop_thread_ids = set(tick_threads[:end])
    if len(loop_thread_ids) != 1:
        print(f"tick events came from threads {loop_thread_ids}", file=sys.stderr)
        return 2

    assert station is not None
    loop = station.loop
    gc_max_ms = loop.gc_policy.max_pause_ms if loop.gc_policy is not None else float("nan")
    scheduling = loop.scheduling.policy if loop.scheduling is not None else "?"
    watchdog_trips = max(servers.watchdog_trips, len(bit_trips))
    measured = ticks[settled:end]
    if len(measured) < 3:
        print(f"only {len(measured)} ticks recorded: nothing to measure", file=sys.stderr)
        return 2
    errors_ms = sorted(
        abs((b[0] - a[0]) - PERIOD_S) * 1000 for a, b in itertools.pairwise(measured)
    )
    p50_ms = percentile(errors_ms, 50)
    p99_ms = percentile(errors_ms, 99)
    max_ms = errors_ms[-1]
    span_s = measured[-1][0] - measured[0][0]
    cpu_pct = (measured[-1][1] - measured[0][1]) / span_s * 100
    process_cpu_pct = process_cpu_s / wall_s * 100
    expected = span_s / PERIOD_S
    print(
        f"control loop at {1 / PERIOD_S:.0f} Hz, RF+IPL+LED on ptys "
        f"(servers: {args.servers}, simulators SCHED_FIFO: {servers.fifo}), "
        f"load {args.load}, client {args.client}"
        f"{f' ({client.received} {_RECEIVED[args.client]} received)' if client else ''}, "
        f"loop thread {scheduling}, {span_s:.1f} s, "
        f"{len(measured)} ticks ({expected + 1:.0f} expected), {overruns} overruns, "
        f"{loop.late_ticks} late, {loop.too_late_ticks} too late, "
        f"devices {'healthy' if healthy else 'NOT healthy'}, {len(alarms)} alarms"
    )
    print(
        f"period error p50 {p50_ms:.3f} ms, p99 {p99_ms:.3f} ms, max {max_ms:.3f} ms "
        f"(targets p99 <= {TARGET_P99_MS} ms, max <= {TARGET_MAX_MS} ms); "
        f"loop thread CPU {cpu_pct:.2f} % of one core "
        f"(target <= {TARGET_CPU_PCT} %); whole controller process {process_cpu_pct:.1f} %; "
        f"longest GC pause {gc_max_ms:.2f} ms (target <= {TARGET_GC_MAX_MS} ms); "
        f"{watchdog_trips} watchdog trips (target 0)"
    )
    energised_pct = sum(energised[settled:end]) / len(measured) * 100
    if args.session:
        assert driver is not None
        print(
            f"RF session running throughout (acknowledged first: {driver.acknowledged or 'none'}), "
            f"energy on in {energised_pct:.0f} % of the measured ticks; "
            f"record writer thread CPU "
            f"{writer_cpu_s / wall_s * 100:.2f} % of one core"
        )
    if witness is not None and witness.max_latency_ms is not None:
        print(
            "the machine itself (cyclictest, a C thread per CPU at SCHED_FIFO 95 waking "
            f"every 1 ms, same run): longest wake-up {max(witness.max_latency_ms):.2f} ms "
            f"(per CPU: {', '.join(f'{ms:.2f}' for ms in witness.max_latency_ms)} ms)"
        )
    met = (
        p99_ms <= TARGET_P99_MS
        and max_ms <= TARGET_MAX_MS
        and cpu_pct <= TARGET_CPU_PCT
        and gc_max_ms <= TARGET_GC_MAX_MS
        and watchdog_trips == 0
    )
    print(
        json.dumps(
            {
                "p50_ms": round(p50_ms, 3),
                "p99_ms": round(p99_ms, 3),
                "max_ms": round(max_ms, 3),
                "cpu_pct": round(cpu_pct, 2),
                "process_cpu_pct": round(process_cpu_pct, 1),
                "gc_max_ms": round(gc_max_ms, 3),
                "watchdog_trips": watchdog_trips,
                "load": args.load,
                "machine_max_latency_ms": witness.max_latency_ms if witness else None,
                "scheduling": scheduling,
                "simulators_fifo": servers.fifo,
                "watchdog_trips_by_device": sorted(bit_trips),
                "late_ticks": loop.late_ticks,
                "too_late_ticks": loop.too_late_ticks,
                "max_lateness_ms": round(loop.max_lateness_s * 1000, 3),
                "alarms": len(alarms),
                "servers": args.servers,
                "client": args.client,
                "session": args.session,
                "energised_pct": round(energised_pct, 1),
                "acknowledged_at_start": driver.acknowledged if driver is not None else None,
                "writer_cpu_pct": round(writer_cpu_s / wall_s * 100, 2) if args.session else None,
                "client_received": client.received if client is not None else None,
                "ticks": len(measured),
                "overruns": overruns,
                "seconds": round(span_s, 1),
                "healthy": healthy,
                "target_p99_ms": TARGET_P99_MS,
                "target_max_ms": TARGET_MAX_MS,
                "target_gc_max_ms": TARGET_GC_MAX_MS,
                "target_cpu_pct": TARGET_CPU_PCT,
                "met": met,
            }
        )
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
