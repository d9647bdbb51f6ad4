"""atheris fuzzer for the RF (RFP/1) frame parsers, host side and device side.

Not run by pytest and atheris is not a project dependency. Run with, e.g.::

    uv run --with atheris python fuzz/fuzz_rf_codec.py -max_total_time=20

Any exception other than devicectl's ProtocolError (CRCError is one) from the
host codec, any exception from the simulator's ``feed``, an output switched on
or a reply to a line that fails the CRC is a crash.
"""

from __future__ import annotations

import contextlib
import re
import sys
from binascii import crc_hqx

import atheris

with atheris.instrument_imports():
    from devicectl.clock import SimClock
    from devicectl.errors import ProtocolError
    from devicectl_drivers import rf_codec
    from devicectl_simulators.rf_firmware import RFFirmware

_CMD = re.compile(rb"(0|[1-9][0-9]{0,4}) ([ -~]+)\*([0-9A-F]{4})")


def _line(seq: int, body: bytes) -> bytes:
    head = b"%d %s" % (seq, body)
    return head + b"*%04X\n" % crc_hqx(head, 0xFFFF)


def _may_be_valid(stream: bytes) -> bool:
    for line in stream.split(b"\n")[:-1]:
        match = _CMD.fullmatch(line)
        if match and int(match[3], 16) == crc_hqx(line[:-5], 0xFFFF):
            return True
    return False


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    seq = fdp.ConsumeIntInRange(0, 65535)
    line = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    rf_codec.fast_all_reply(line, seq)
    try:
        reply = rf_codec.decode_reply(line)
    except ProtocolError:
        pass
    else:
        if reply.ok:
            for parse in (rf_codec.parse_all, rf_codec.parse_identity, rf_codec.parse_status):
                with contextlib.suppress(ProtocolError):
                    parse(reply.payload)

    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    if _may_be_valid(stream):
        return
    clock = SimClock()
    sim = RFFirmware(clock, seed=1)
    clock.sleep(1.5)
    sim.feed(_line(1, b"*CLS") + _line(2, b"SOUR:POW 10.0"))
    sim.take()
    sim.feed(stream)
    if sim.take():
        raise AssertionError(f"reply to an invalid stream {stream!r}")
    if sim.output_on:
        raise AssertionError(f"output on after {stream!r}")
    sim.feed(b"\n" + _line(3, b"SYST:HEART"))
    if sim.take() != _line(3, b"OK"):
        raise AssertionError(f"no resync after {stream!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
