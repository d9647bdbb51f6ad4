"""RF driver status query against raw pyserial, on a served simulator on a pty.

The RF simulator is served on a real pty (``PtyServer``, real time) and opened
once with ``open_port``. After a warm-up, blocks of ``RFScpiDriver.read()``
(one ``MEAS:ALL?`` round trip) alternate with blocks of raw
``port.write(frame); port.read_until(b"\\n")`` sending exactly the bytes the
driver sent in its block (``frame_command`` with the same sequence numbers),
so both sides share the machine's noise. The figure is the driver's total time
over raw pyserial's; the target is at most 1.3. The last line is one JSON
object; the exit code is 1 when the target is missed.

    uv run python benchmarks/roundtrip.py [--count N] [--blocks B]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from devicectl.clock import RealClock
from devicectl.logs import configure_logging
from devicectl.transport import open_port
from devicectl_drivers.rf_codec import MAX_SEQ, frame_command
from devicectl_drivers.rf_scpi import RFScpiDriver
from devicectl_simulators.pty_server import PtyServer
from devicectl_simulators.rf_firmware import RFFirmware

TARGET_RATIO = 1.3
WARMUP = 500
BOOT_WAIT_S = 5.0
MEAS_ALL = b"MEAS:ALL?"


def wait_for_boot(driver: RFScpiDriver) -> None:
    """The simulator answers nothing for its first second: read until it does."""
    deadline = time.monotonic() + BOOT_WAIT_S
    while True:
        try:
            driver.read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=int, default=10_000, help="exchanges on each side (default 10000)"
    )
    parser.add_argument(
        "--blocks", type=int, default=10, help="interleaved blocks per side (default 10)"
    )
    args = parser.parse_args()
    if args.count < args.blocks or args.blocks < 1:
        parser.error("--count must be at least --blocks, and --blocks at least 1")
    configure_logging(log_file=Path(tempfile.mkdtemp()) / "bench.jsonl")

    server = PtyServer(RFFirmware, clock=RealClock())
    path = server.start()
    port = open_port(path)
    try:
        driver = RFScpiDriver(port, now=time.monotonic)
        wait_for_boot(driver)
        for _ in range(WARMUP):
            driver.read()
        port.reset_input_buffer()
        for _ in range(WARMUP):
            port.write(frame_command(0, MEAS_ALL))
            port.read_until(b"\n")

        sizes = [args.count // args.blocks] * args.blocks
        sizes[-1] += args.count - sum(sizes)
        driver_s = 0.0
        raw_s = 0.0
        driver_ns: list[int] = []
        raw_ns: list[int] = []
        bad_raw = 0
        clock_ns = time.perf_counter_ns
        read = driver.read
        write = port.write
        read_until = port.read_until
        for size in sizes:
            # the driver's block; its sequence numbers are replayed by the raw block
            first_seq = driver.next_seq
            start = time.perf_counter()
            for _ in range(size):
                t0 = clock_ns()
                read()
                driver_ns.append(clock_ns() - t0)
            driver_s += time.perf_counter() - start
            frames = [frame_command((first_seq + i) % (MAX_SEQ + 1), MEAS_ALL) for i in range(size)]
            start = time.perf_counter()
            for frame in frames:
                t0 = clock_ns()
                write(frame)
                line = read_until(b"\n")
                raw_ns.append(clock_ns() - t0)
                if not line.endswith(b"\n"):
                    bad_raw += 1
            raw_s += time.perf_counter() - start
    finally:
        port.close()
        server.stop()
    if server.error is not None:
        print(f"the pty server failed: {server.error!r}", file=sys.stderr)
        return 2
    if bad_raw:
        print(f"{bad_raw} raw exchanges timed out: the figure would mean nothing", file=sys.stderr)
        return 2

    ratio = driver_s / raw_s
    driver_p50_us = statistics.median(driver_ns) / 1000
    raw_p50_us = statistics.median(raw_ns) / 1000
    print(
        f"RF MEAS:ALL? on a pty, {args.count} exchanges each side in {len(sizes)} "
        f"interleaved blocks: driver {driver_s:.3f} s (p50 {driver_p50_us:.0f} us), "
        f"raw write/read_until {raw_s:.3f} s (p50 {raw_p50_us:.0f} us); "
        f"ratio {ratio:.3f}, target at most {TARGET_RATIO}"
    )
    met = ratio <= TARGET_RATIO
    print(
        json.dumps(
            {
                "ratio": round(ratio, 3),
                "driver_p50_us": round(driver_p50_us, 1),
                "raw_p50_us": round(raw_p50_us, 1),
                "count": args.count,
                "blocks": len(sizes),
                "target": TARGET_RATIO,
                "met": met,
            }
        )
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
