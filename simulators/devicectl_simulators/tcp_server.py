"""Serve a simulator on a TCP socket, in real time: raw bytes, RFC 2217 or Modbus/TCP.

A :class:`TcpServer` listens on one address and serves one simulator of the
``devicectl.transport.SimulatedDevice`` shape to one host connection at a
time, exactly as :class:`devicectl_simulators.pty_server.PtyServer` does on a pty:

- raw mode answers pyserial ``socket://HOST:PORT`` URLs: bytes pass unchanged;
- ``rfc2217=True`` answers ``rfc2217://HOST:PORT`` URLs: the Telnet/RFC 2217
  negotiation is pyserial's own :class:`serial.rfc2217.PortManager`, with the
  simulator behind :class:`SimulatorSerialAdapter` (line settings are stored
  and echoed back, modem lines read as a connected device, a purge of the
  receive buffer drops what the simulator sent and nobody has read yet);
- ``modbus_tcp=True`` (a Modbus RTU simulator: the LED) answers stock Modbus/TCP
  clients: :class:`MbapBridge` turns each MBAP request (7-byte header:
  transaction id, protocol id 0, length, unit id; then the PDU) into an RTU
  frame (unit id, PDU, CRC-16) for the simulator, and each RTU answer back into
  an MBAP frame with the request's transaction id. An RTU answer with a bad CRC
  is dropped (the client times out, as on a serial line); the simulator never
  sees MBAP.

The simulator is created in :meth:`start` and lives until :meth:`stop`: a host
that disconnects and connects again finds the same device (as a real device
stays powered when its cable is pulled). While nobody is connected the
simulator keeps running and what it sends is dropped. A second connection while
one is active is accepted and closed at once (the device has one port).

One thread runs the loop: it waits at most ``poll_s`` for host bytes, feeds
them, writes back what the simulator sent, and calls ``advance`` (or
``pending``) every turn so the 250 ms watchdog acts on time with a silent host.
Look at the simulator from other threads only through :meth:`inspect`.

``on_event`` (optional) is called on the serving thread with a dict for every
connection change: ``{"event": "connected"|"disconnected"|"refused", "peer": ...}``.

Only ``devicectl.clock`` is imported from devicectl (the default clock).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from devicectl.clock import Clock, RealClock
from devicectl_simulators.stream import ServedDevice

POLL_S = 0.002
READ_CHUNK = 4096
IAC = b"\xff"

T = TypeVar("T")


class SimulatorSerialAdapter:
    """The serial-port face pyserial's RFC 2217 ``PortManager`` expects.

    Line settings are kept (a simulator has no baud-rate timing); modem lines
    read as a device that is present (CTS, DSR, CD on; RI off).
    """

    def __init__(self, simulator: ServedDevice) -> None:
        self._simulator = simulator
        self.baudrate = 115200
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.xonxoff = False
        self.rtscts = False
        self.dtr = True
        self.rts = True
        self.break_condition = False
        self.cts = True
        self.dsr = True
        self.ri = False
        self.cd = True
        self.purged_bytes = 0

    def reset_input_buffer(self) -> None:
        """Drop what the device sent that the host has not been sent yet."""
        self.purged_bytes += len(self._simulator.take())

    def reset_output_buffer(self) -> None:
        """Nothing to drop: host bytes are fed to the device as they arrive."""


def crc16_modbus(data: bytes) -> int:
    """Modbus RTU CRC-16 (reflected poly 0xA001, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


class MbapBridge:
    """Modbus/TCP (MBAP) on the host side, Modbus RTU on the simulator's side.

    One request is outstanding at a time, as on an RTU line: an answer takes the
    transaction id of the latest request (a request the device never answered,
    during its boot for example, is forgotten when the next one comes).
    """

    MAX_ADU = 260  # MBAP header 7 + PDU 253

    def __init__(self) -> None:
        self._host = bytearray()
        self._device = bytearray()
        self._pending: tuple[int, int] | None = None  # (transaction id, unit id)

    def from_host(self, data: bytes) -> bytes:
        """The RTU frames of the complete MBAP requests in ``data`` (buffered)."""
        self._host += data
        out = bytearray()
        while len(self._host) >= 7:
            tid = int.from_bytes(self._host[0:2], "big")
            proto = int.from_bytes(self._host[2:4], "big")
            length = int.from_bytes(self._host[4:6], "big")
            if proto != 0 or not 2 <= length <= self.MAX_ADU - 6:
                self._host.clear()  # not Modbus/TCP: resynchronise on the next request
                break
            if len(self._host) < 6 + length:
                break
            unit = self._host[6]
            pdu = bytes(self._host[7 : 6 + length])
            del self._host[: 6 + length]
            frame = bytes([unit]) + pdu
            out += frame + crc16_modbus(frame).to_bytes(2, "little")
            self._pending = (tid, unit)
            self._device.clear()  # a late answer to an earlier request is stale
        return bytes(out)

    @staticmethod
    def _rtu_length(buf: bytearray) -> int | None:
        """The length of the RTU answer at the start of ``buf``; None: not yet known,
        0: not an answer this bridge knows (0x03/0x04/0x06/0x10 and exceptions)."""
        if len(buf) < 2:
            return None
        function = buf[1]
        if function & 0x80:
            return 5
        if function in (0x03, 0x04):
            return None if len(buf) < 3 else 5 + buf[2]
        if function in (0x05, 0x06, 0x0F, 0x10):
            return 8
        return 0

    def from_device(self, data: bytes) -> bytes:
        """The MBAP frames of the complete RTU answers in ``data`` (buffered)."""
        self._device += data
        out = bytearray()
        while True:
            n = self._rtu_length(self._device)
            if n is None or len(self._device) < n:
                break
            if n == 0:
                self._device.clear()
                break
            frame = bytes(self._device[:n])
            del self._device[:n]
            if crc16_modbus(frame[:-2]).to_bytes(2, "little") != frame[-2:]:
                continue  # corrupted on the "line": no answer
            if self._pending is None:
                continue  # nobody asked
            tid, _unit = self._pending
            self._pending = None
            adu = frame[:-2]  # unit id + PDU
            out += tid.to_bytes(2, "big") + b"\x00\x00" + len(adu).to_bytes(2, "big") + adu
        return bytes(out)


class _Connection:
    """``PortManager``'s ``connection``: its writes queue for the serving loop."""

    def __init__(self) -> None:
        self.tx = bytearray()

    def write(self, data: bytes) -> None:
        self.tx += data


class TcpServer:
    """One simulator on one TCP address, served by a background thread in real time."""

    def __init__(
        self,
        simulator_factory: Callable[[Clock], ServedDevice],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rfc2217: bool = False,
        modbus_tcp: bool = False,
        clock: Clock | None = None,
        poll_s: float = POLL_S,
        on_event: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self._factory = simulator_factory
        self._host = host
        self._port = port
        if rfc2217 and modbus_tcp:
            raise ValueError("choose RFC 2217 or Modbus/TCP, not both")
        self._rfc2217 = rfc2217
        self._modbus_tcp = modbus_tcp
        self._clock: Clock = clock if clock is not None else RealClock()
        self._poll_s = poll_s
        self._on_event = on_event
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._address: tuple[str, int] | None = None
        self._simulator: ServedDevice | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> tuple[str, int]:
        """Bind and listen, create the simulator, start serving; the (host, port) bound."""
        if self._thread is not None:
            raise RuntimeError("this TcpServer is already started")
        infos = socket.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, socktype, proto, _canon, sockaddr = infos[0]
        listener = socket.socket(family, socktype, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(2)
            listener.setblocking(False)
            bound = listener.getsockname()
            simulator = self._factory(self._clock)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._address = (str(bound[0]), int(bound[1]))
        self._simulator = simulator
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"tcp-server {self._address}", daemon=True
        )
        self._thread.start()
        return self._address

    def stop(self) -> None:
        """Stop serving, close the connection, the simulator and the socket (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        with self._lock, contextlib.suppress(Exception):
            if self._simulator is not None:
                self._simulator.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None

    def __enter__(self) -> TcpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int] | None:
        """The (host, port) bound (None before :meth:`start`)."""
        return self._address

    @property
    def url(self) -> str | None:
        """The URL a host opens: ``socket://`` or ``rfc2217://`` (pyserial), or
        ``modbus-tcp://`` (a Modbus/TCP client: host and port)."""
        if self._address is None:
            return None
        host, port = self._address
        if ":" in host:
            host = f"[{host}]"
        scheme = "rfc2217" if self._rfc2217 else "modbus-tcp" if self._modbus_tcp else "socket"
        return f"{scheme}://{host}:{port}"

    @property
    def simulator(self) -> ServedDevice | None:
        """The served simulator; touch it from other threads only via :meth:`inspect`."""
        return self._simulator

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the serving thread, if any."""
        return self._error

    def inspect(self, function: Callable[[Any], T]) -> T:
        """``function(simulator)`` under the loop's lock (safe from any thread).

        ``function`` gets the simulator as its own class (``Any``): it is how a
        test reaches the firmware's test hooks (``output_log``, ``skin_true_c``...).
        """
        with self._lock:
            return function(self._simulator)

    # ------------------------------------------------------------------ loop

    def _event(self, event: str, peer: tuple[str, int]) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event({"event": event, "peer": f"{peer[0]}:{peer[1]}"})

    def _run(self) -> None:
        listener = self._listener
        assert listener is not None
        simulator = self._simulator
        assert simulator is not None  # start() creates it before the thread
        lock = self._lock
        stop = self._stop
        poll_s = self._poll_s
        advance: Callable[[], object] = getattr(simulator, "advance", None) or simulator.pending
        client: socket.socket | None = None
        peer: tuple[str, int] = ("", 0)
        manager: Any = None  # serial.rfc2217.PortManager in rfc2217 mode (pyserial has no types)
        connection = _Connection()  # bytes queued for the host (escaped in rfc2217 mode)
        bridge: MbapBridge | None = None  # in Modbus/TCP mode, per connection

        def drop_client(reason: str) -> None:
            nonlocal client, manager, peer, bridge
            if client is not None:
                with contextlib.suppress(OSError):
                    client.close()
                self._event(reason, peer)
            client, manager, peer = None, None, ("", 0)
            bridge = None
            connection.tx.clear()

        try:
            while not stop.is_set():
                readers = [listener] if client is None else [listener, client]
                writers = [client] if client is not None and connection.tx else []
                readable, _writable, _ = select.select(readers, writers, [], poll_s)
                if listener in readable:
                    with contextlib.suppress(
                        BlockingIOError, InterruptedError, ConnectionAbortedError
                    ):
                        new, new_peer = listener.accept()
                        if client is not None:
                            new.close()  # one host at a time, as on a serial line
                            self._event("refused", new_peer)
                        else:
                            new.setblocking(False)
                            new.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                            client, peer = new, new_peer
                            connection.tx.clear()
                            if self._rfc2217:
                                manager = self._new_manager(simulator, connection)
                            if self._modbus_tcp:
                                bridge = MbapBridge()
                            self._event("connected", peer)
                data = b""
                if client is not None and client in readable:
                    try:
                        data = client.recv(READ_CHUNK)
                        if not data:
                            drop_client("disconnected")
                    except (BlockingIOError, InterruptedError):
                        data = b""
                    except OSError:
                        data = b""
                        drop_client("disconnected")
                with lock:
                    if data and manager is not None:
                        data = b"".join(manager.filter(data))  # may purge or set lines
                    if data and bridge is not None:
                        data = bridge.from_host(data)  # complete requests, as RTU frames
                    if data:
                        simulator.feed(data)
                    else:
                        advance()
                    out = simulator.take()
                if out and bridge is not None:
                    out = bridge.from_device(out)
                if out and client is not None:
                    connection.tx += out.replace(IAC, IAC + IAC) if manager is not None else out
                if client is not None and connection.tx:
                    try:
                        sent = client.send(connection.tx)
                        del connection.tx[:sent]
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError:
                        drop_client("disconnected")
        except BaseException as exc:  # reported through .error; the thread must not die silently
            self._error = exc
            raise
        finally:
            if client is not None:
                with contextlib.suppress(OSError):
                    client.close()

    @staticmethod
    def _new_manager(simulator: ServedDevice, connection: _Connection) -> Any:
        from serial.rfc2217 import PortManager

        return PortManager(SimulatorSerialAdapter(simulator), connection)
