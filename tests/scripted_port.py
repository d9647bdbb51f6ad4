"""A pyserial port that plays a script of exact exchanges, for the driver tests.

Every driver test (RF, IPL, LED) checks the bytes its driver writes and what it
makes of the bytes that come back, with no simulator in between: a driver bug
must not hide behind a simulator bug of the same shape.
"""

from __future__ import annotations

from collections import deque

import serial

Chunk = bytes | BaseException


class ScriptedPort:
    """A duck-typed pyserial port that plays a script of exact exchanges.

    ``expect(request, *reply)`` queues one write the driver must make, byte for
    byte, and what the device sends back after it: byte chunks (each readable
    only after the previous one was read, like bytes trickling in) or an
    exception instance, raised by the ``read`` that reaches it. No reply is
    silence: ``read`` returns ``b""`` and moves :attr:`t_s` on by ``timeout``,
    as a real port makes its caller wait. ``write_error`` makes the write
    itself raise. Like pyserial, every call on a closed port raises
    ``PortNotOpenError``.
    """

    def __init__(self, timeout: float | None = 0.05) -> None:
        self.timeout = timeout
        self.baudrate = 115200
        self.is_open = True
        self.t_s = 0.0
        self.writes: list[bytes] = []
        self.read_sizes: list[int] = []
        self.resets = 0
        self.closes = 0
        self.close_error: BaseException | None = None
        self._script: deque[tuple[bytes, tuple[Chunk, ...], BaseException | None]] = deque()
        self._rx: deque[Chunk] = deque()

    # -- scripting
    def expect(
        self, request: bytes, *reply: Chunk, write_error: BaseException | None = None
    ) -> ScriptedPort:
        self._script.append((request, reply, write_error))
        return self

    def inject(self, *chunks: Chunk) -> None:
        """Bytes already waiting (a late or stale reply) before the next write."""
        self._rx.extend(chunks)

    def assert_done(self) -> None:
        assert not self._script, f"driver never sent: {[r.hex(' ') for r, _, _ in self._script]}"

    # -- the pyserial surface the drivers use
    def _check_open(self) -> None:
        if not self.is_open:
            raise serial.PortNotOpenError()

    @property
    def in_waiting(self) -> int:
        self._check_open()
        head = self._rx[0] if self._rx else b""
        return len(head) if isinstance(head, bytes) else 0

    def read(self, size: int = 1) -> bytes:
        self._check_open()
        assert size >= 1
        self.read_sizes.append(size)
        if not self._rx:
            assert self.timeout is not None
            self.t_s += self.timeout
            return b""  # the port timeout expired
        head = self._rx[0]
        if isinstance(head, BaseException):
            self._rx.popleft()
            raise head
        out, rest = head[:size], head[size:]
        if rest:
            self._rx[0] = rest
        else:
            self._rx.popleft()
        return out

    def write(self, data: bytes) -> int:
        self._check_open()
        data = bytes(data)
        assert self._script, f"unexpected write {data.hex(' ')}: the script is finished"
        expected, reply, write_error = self._script.popleft()
        assert data == expected, f"driver wrote {data.hex(' ')}, script expects {expected.hex(' ')}"
        self.writes.append(data)
        if write_error is not None:
            raise write_error
        self._rx.extend(reply)
        return len(data)

    def reset_input_buffer(self) -> None:
        self._check_open()
        self.resets += 1
        self._rx.clear()

    def close(self) -> None:
        self.closes += 1
        self.is_open = False
        if self.close_error is not None:
            raise self.close_error


class ManualNow:
    """A ``now`` that the test moves by hand."""

    def __init__(self, t_s: float = 100.0) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s
