"""atheris fuzzer for the IPL (IPLB/1, COBS) frame parsers, host side and device side.

Not run by pytest and atheris is not a project dependency. Run with, e.g.::

    uv run --with atheris python fuzz/fuzz_ipl_codec.py -max_total_time=20

Any exception other than devicectl's DeviceError subclasses from the host codec
(``decode_frame``, ``expect_reply``, the payload parsers), any exception from
``fast_status_reply`` or the simulator's ``feed``, an arm, or a reply to a chunk
that is not a valid packet is a crash.
"""

from __future__ import annotations

import contextlib
import sys
from binascii import crc_hqx

import atheris

with atheris.instrument_imports():
    from cobs import cobs

    from devicectl.clock import SimClock
    from devicectl.errors import DeviceError
    from devicectl_drivers import ipl_codec
    from devicectl_simulators import ipl_firmware as sim_mod
    from devicectl_simulators.ipl_firmware import IPLFirmware


def _may_be_valid(stream: bytes) -> bool:
    for chunk in stream.split(b"\x00")[:-1]:
        if not chunk or len(chunk) > sim_mod.MAX_CHUNK:
            continue
        for decode in (cobs.decode, sim_mod.cobs_decode):
            try:
                packet = decode(chunk)
            except (cobs.DecodeError, ValueError):
                continue
            if (
                sim_mod.MIN_PACKET <= len(packet) <= sim_mod.MAX_PACKET
                and packet[0] == sim_mod.VERSION
                and crc_hqx(packet, 0xFFFF) == 0
            ):
                return True
    return False


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    seq = fdp.ConsumeIntInRange(0, 255)
    chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 90))
    ipl_codec.fast_status_reply(chunk, seq)
    try:
        frame = ipl_codec.decode_frame(chunk)
        ipl_codec.parse_identity(frame.payload)
    except DeviceError:
        pass
    for parse in (ipl_codec.parse_status_reply, ipl_codec.unpack_status_reply):
        with contextlib.suppress(DeviceError):
            parse(chunk)

    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    if _may_be_valid(stream):
        return
    clock = SimClock()
    sim = IPLFirmware(clock, seed=1)
    clock.sleep(1.5)
    sim.feed(stream)
    if sim.take():
        raise AssertionError(f"reply to an invalid stream {stream!r}")
    if sim.output_on or sim.charged:
        raise AssertionError(f"armed or charged after {stream!r}")
    heartbeat = ipl_codec.encode_command(3, sim_mod.HEARTBEAT)
    sim.feed(b"\x00" + heartbeat)
    reply = sim.take()
    frame = ipl_codec.decode_frame(reply[:-1])
    ipl_codec.expect_reply(frame, 3, sim_mod.HEARTBEAT, sim_mod.ACK, "HEARTBEAT")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
