"""The station service: one process per treatment chair, every front-end its client.

The service owns the ports, the drivers, the control loop, the session runner
and the record writer. The loop runs on its own thread; this module's asyncio
server runs on the main thread and speaks JSON-RPC 2.0 over WebSocket
(``docs/api.md`` is the contract), on a Unix socket and, when asked, on TCP
(with TLS when given a certificate). Commands reach the loop only through
``loop.submit`` and its futures; events leave it only through ``loop.subscribe``:

- the subscriber runs on the loop thread and does nothing but pick the events
  clients see (readings sampled at ``reading_hz``) and hand each over with
  ``call_soon_threadsafe``; it never waits for a client;
- each client has a bounded queue: when it is full the oldest ``reading`` is
  dropped; ``state``, ``alarm``, ``session``, ``progress`` and responses are
  never dropped (a client so slow that its queue fills with those is
  disconnected, and gets the whole state again when it reconnects).

Clients come and go; the session does not. A disconnect never stops a session;
an E-stop from any connected client stops every device; while energy is
delivered with no signed-in client connected for 3 s, the session pauses
(``StationDesk``). If the service is killed, the devices' watchdogs cut the
outputs and the next start marks the session ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import signal
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve, unix_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from devicectl.clock import RealClock
from devicectl.control import realtime
from devicectl.control.events import Command, Event
from devicectl.errors import ConfigError, DevicectlError, ProtocolFileError
from devicectl.modality import modalities, modality
from devicectl.records.store import RecordStore
from devicectl.records.writer import RecordWriter
from devicectl.session.api import (
    all_simulators,
    build_station,
    builtin_protocol,
    close_devices,
    confirm_safe,
    station_refusal,
)
from devicectl.session.protocol_file import (
    SessionProtocol,
    load_protocol_and_sha256,
    loads_protocol,
)
from devicectl.session.recorder import SessionRecorder
from devicectl.session.runner import AUTO_OPERATOR, FINISHED, SessionRunner, SessionState
from devicectl.station.auth import (
    Grant,
    Operator,
    OperatorStore,
    TokenBook,
    token_file_for,
    write_token_file,
)
from devicectl.station.desk import DESK, UNATTENDED_S, StationDesk, alarm_view, device_view, plain
from devicectl.transport import DEFAULT_TIMEOUT_S

API_VERSION = 1
# Methods added within version 1 (docs/api.md#versioning): 1.1 adds enrol_operator
# and list_operators.
API_MINOR = 1
READING_HZ = 5.0
CLIENT_QUEUE = 256
CALL_TIMEOUT_S = 5.0
HEARTBEAT_S = 0.2
SIGN_IN_FAILURE_DELAY_S = 0.5
OUTCOMES = {SessionState.COMPLETE: "complete", SessionState.ENDED: "fault"}

# JSON-RPC error codes (docs/api.md#errors).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
NOT_SIGNED_IN = -32001
REFUSED = -32002
PROTOCOL_REJECTED = -32003
NO_SESSION = -32004
NOT_A_SUPERVISOR = -32005

# Methods a connection may call with nobody signed in on it.
OPEN_METHODS = frozenset({"hello", "sign_in", "estop"})
# Methods only a signed-in supervisor may call.
SUPERVISOR_METHODS = frozenset({"enrol_operator", "list_operators"})
# A console's pause of its alarm sound is recorded, and never longer than this
# (IEC 60601-1-8: an audio pause is time-limited).
SILENCE_MAX_S = 120.0
SESSION_ACTIONS = ("confirm", "arm", "start", "next_zone", "pause", "resume", "abort", "end")


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


@dataclass
class ServeConfig:
    """What ``devicectl station serve`` was asked for."""

    devices: dict[str, str] | None = None
    drivers: dict[str, str] = field(default_factory=dict)
    unix: Path | None = None
    tcp: tuple[str, int] | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    db: str | None = None
    operators: Path | None = None
    token_file: Path | None = None
    allow_origins: tuple[str, ...] = ()
    seed: int = 7
    port_timeout_s: float = DEFAULT_TIMEOUT_S
    unattended_s: float = UNATTENDED_S
    reading_hz: float = READING_HZ


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--tcp {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8765")
    return host.strip("[]") or "127.0.0.1", int(port)


def refuse_live_socket(path: Path) -> None:
    """ConfigError if a station already serves on ``path``; a stale file is removed."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody listens: left by a killed service
        return
    finally:
        probe.close()
    raise ConfigError(f"another station service is already serving on {path}")


class Client:
    """One connection: who is signed in on it, and its bounded outgoing queue."""

    def __init__(self, conn: ServerConnection, grant: Grant) -> None:
        self.conn = conn
        self.operator: Operator | None = grant.operator
        self.token: str | None = grant.token if grant.operator is not None else None
        self.peer = str(conn.remote_address or "unix")
        self.queue: deque[tuple[bool, str]] = deque()
        self.wake = asyncio.Event()
        self.overflowed = False
        self.dropped_readings = 0

    def push(self, message: str, droppable: bool) -> None:
        if len(self.queue) >= CLIENT_QUEUE:
            for i, (can_drop, _) in enumerate(self.queue):
                if can_drop:
                    del self.queue[i]
                    self.dropped_readings += 1
                    break
            else:
                if droppable:
                    self.dropped_readings += 1
                    return
                self.overflowed = True  # never drop a state or an alarm: disconnect instead
                self.wake.set()
                return
        self.queue.append((droppable, message))
        self.wake.set()

    async def pump(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.overflowed:
                await self.conn.close(1013, "too slow: reconnect for the full state")
                return
            while self.queue:
                _, message = self.queue.popleft()
                await self.conn.send(message)


def _json(method: str, params: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params})


class StationService:
    """Builds the station and serves it; :meth:`run` until a signal or :meth:`stop`."""

    def __init__(self, config: ServeConfig) -> None:
        if config.unix is None and config.tcp is None:
            raise ConfigError("give --unix PATH and/or --tcp HOST:PORT to serve on")
        if (config.tls_cert is None) != (config.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        self.config = config
        self.log = structlog.get_logger("devicectl.station").bind(device=DESK)
        if config.unix is not None:
            refuse_live_socket(config.unix)
        self.operators = OperatorStore(config.operators)
        self.tokens = TokenBook()
        self.token_file = config.token_file or (
            token_file_for(config.unix) if config.unix is not None else None
        )
        # The record first: a session left running by a killed service is marked now.
        self.store = RecordStore.open(config.db)
        self.interrupted = self.store.mark_interrupted()
        devices = config.devices
        needed = sorted(devices) if devices else sorted(modalities())
        try:
            self.station, self.technician = build_station(
                needed,
                devices,
                config.drivers,
                config.seed,
                None,
                sim_clock=RealClock(),
                port_timeout_s=config.port_timeout_s,
            )
        except BaseException:
            self.store.close()
            raise
        self.simulated = all_simulators(devices)
        self.clock = self.station.clock
        self.loop = self.station.loop
        self.desk = StationDesk(self.loop, self._make_runner, config.unattended_s)
        self.loop.add(self.desk)
        self.protocol: SessionProtocol | None = None
        self.protocol_sha256: str | None = None
        self.writer: RecordWriter | None = None
        self.recorder: SessionRecorder | None = None
        # A session's record is closed once: the close after its end and the one at
        # shutdown can run at once, on two executor threads.
        self._record_lock = threading.Lock()
        self.clients: set[Client] = set()
        self._grants: dict[ServerConnection, Grant] = {}
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._next_reading_s = 0.0
        self._reading_period_s = 1.0 / config.reading_hz
        self._servers: list[Server] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self.exit_code = 0
        self._unsubscribe = self.loop.subscribe(self._on_loop_event)

    # -- the loop thread ---------------------------------------------------------------

    def _make_runner(
        self, protocol: SessionProtocol, operator: str, unattended: bool = False
    ) -> SessionRunner:
        """Operator gates on: every arm, start and trigger is a signed-in operator's
        command. ``unattended`` (a script's ``--yes``): the runner confirms the manual
        steps and does its own commands as ``auto``, as an unattended local run does."""
        return SessionRunner(
            self.station,
            protocol,
            operator_id=operator,
            auto_confirm=unattended,
            technician=self.technician,
            simulated=self.simulated,
            operator_gates=True,
        )

    def _on_loop_event(self, event: Event) -> None:
        """Loop-thread subscriber: choose what clients see, hand it over, never wait."""
        kind = event.kind
        out: list[tuple[str, Any, bool]] = []
        if kind == "tick":
            if event.t_s >= self._next_reading_s:
                self._next_reading_s = event.t_s + self._reading_period_s
                runner = self.desk.runner
                devices = {n: device_view(c, runner) for n, c in self.desk.devices().items()}
                out.append(("reading", {"t_s": round(event.t_s, 3), "devices": devices}, True))
        elif kind == "state" and event.device != "session":
            data = plain(event.data)
            out.append(
                ("state", {"t_s": round(event.t_s, 3), "device": event.device, **data}, False)
            )
            if self.desk.runner is not None:
                # What the session offers follows its devices (a device that paused
                # itself is resumed by the session's resume): clients see it change.
                session = self.desk.session_view() or {}
                out.append(("session", {"t_s": round(event.t_s, 3), **session}, False))
        elif kind == "alarm":
            alarm = alarm_view(event.data["alarm"])
            out.append(("alarm", {"t_s": round(event.t_s, 3), **alarm}, False))
        elif kind in ("session_state", "session_started"):
            out.append(
                ("session", {"t_s": round(event.t_s, 3), **(self.desk.session_view() or {})}, False)
            )
            if kind == "session_state" and self.desk.runner is not None:
                state = self.desk.runner.state
                if state in FINISHED:
                    out.append(("_finished", state, False))
        elif kind in (
            "step_started",
            "step_ended",
            "operator_confirmed",
            "session_secured",
            "unattended",
            "command_rejected",
            "command_refused",
        ):
            params = {"t_s": round(event.t_s, 3), "event": kind, "device": event.device}
            out.append(("progress", {**params, **plain(event.data)}, False))
        if not out or self._aloop is None:
            return
        for method, params, droppable in out:
            with contextlib.suppress(RuntimeError):  # the service's loop is closing
                self._aloop.call_soon_threadsafe(self._fanout, method, params, droppable)

    # -- the service thread: fan-out ---------------------------------------------------

    def _fanout(self, method: str, params: Any, droppable: bool) -> None:
        if method == "_finished":
            task = asyncio.ensure_future(self._close_record(params))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        message = _json(method, params)
        for client in list(self.clients):
            client.push(message, droppable)

    async def _loop_call(self, command: Command) -> Any:
        future = self.loop.submit(command)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), CALL_TIMEOUT_S)
        except DevicectlError as exc:
            raise RpcError(REFUSED, str(exc)) from exc
        except TimeoutError as exc:
            raise RpcError(REFUSED, f"{command.device}: {command.action}: no answer") from exc

    # -- records -----------------------------------------------------------------------

    def _open_record(self, protocol: SessionProtocol, operator: str, unattended: bool) -> str:
        """Begin the session's record and subscribe its recorder (service thread)."""
        session_id = self.store.begin_session(
            protocol_name=protocol.name,
            protocol_sha256=self.protocol_sha256,
            operator_id=operator,
            unattended=unattended,
            t_s=self.clock.now(),
        )
        self.writer = RecordWriter(self.store, session_id)
        desk = self.desk

        def step_index() -> int | None:
            runner = desk.runner
            if runner is None or runner.current >= len(runner.steps):
                return None
            return runner.current + 1

        def record_lost(why: str) -> None:  # on the loop thread
            self.log.error("record_lost", error=why)
            if desk.runner is not None and not desk.runner.finished:
                desk.runner.abort(AUTO_OPERATOR)
            else:
                desk.estop_all(AUTO_OPERATOR)

        self.recorder = SessionRecorder(self.station, self.writer, step_index, record_lost)
        return session_id

    def _finish_record(self, outcome: str) -> None:
        """Close the session's record with ``outcome``, once: a second caller waits for
        the first to finish and then finds nothing left to close."""
        with self._record_lock:
            if self.recorder is not None:
                self.recorder.close()
                self.recorder = None
            if self.writer is not None:
                self.writer.close(outcome)
                self.writer = None

    async def _close_record(self, state: SessionState) -> None:
        # Two ticks on: the final events have been committed with their tick.
        await asyncio.sleep(2 * self.loop.period_s)
        if self.writer is None:
            return
        await asyncio.get_running_loop().run_in_executor(
            None, self._finish_record, OUTCOMES.get(state, "aborted")
        )

    # -- methods ------------------------------------------------------------------------

    async def _hello(self, client: Client) -> dict[str, Any]:
        snapshot = await self._loop_call(Command(DESK, "snapshot"))
        return {
            "api_version": API_VERSION,
            "api_minor": API_MINOR,
            "station": {
                "host": self.store.station,
                "simulated": self.simulated,
                "devices": sorted(self.desk.devices()),
            },
            "you": {
                "operator_id": client.operator.id if client.operator else None,
                "role": client.operator.role if client.operator else None,
            },
            "protocol": self._protocol_view(),
            "snapshot": snapshot,
        }

    def _protocol_view(self) -> dict[str, Any] | None:
        p = self.protocol
        if p is None:
            return None
        return {
            "name": p.name,
            "sha256": self.protocol_sha256,
            "steps": [
                {"index": i + 1, "kind": getattr(s, "kind", "?"), "title": getattr(s, "title", "")}
                for i, s in enumerate(p.steps)
            ],
        }

    async def _sign_in(self, client: Client, params: dict[str, Any]) -> dict[str, Any]:
        operator_id = params.get("operator_id")
        pin = params.get("pin")
        if not isinstance(operator_id, str) or not isinstance(pin, str):
            raise RpcError(INVALID_PARAMS, "sign_in needs operator_id and pin (strings)")
        loop = asyncio.get_running_loop()
        operator = await loop.run_in_executor(None, self.operators.verify, operator_id, pin)
        if operator is None:
            self.log.warning("sign_in_failed", operator_id=operator_id, peer=client.peer)
            await asyncio.sleep(SIGN_IN_FAILURE_DELAY_S)
            raise RpcError(NOT_SIGNED_IN, "unknown operator or wrong PIN")
        if client.token is not None:
            self.tokens.revoke(client.token)
        client.operator = operator
        client.token = self.tokens.issue(operator, self.clock.now())
        self.desk.attended_at_s = self.clock.now()
        self.log.info("signed_in", operator_id=operator.id, peer=client.peer)
        return {
            "token": client.token,
            "operator_id": operator.id,
            "role": operator.role,
            "expires_in_s": self.tokens.ttl_s,
        }

    async def _load_protocol(self, params: dict[str, Any]) -> dict[str, Any]:
        name, text = params.get("name"), params.get("toml")
        if (name is None) == (text is None):
            raise RpcError(INVALID_PARAMS, "load_protocol needs one of name or toml")
        try:
            if isinstance(name, str):
                if "/" in name or name.startswith("."):
                    raise RpcError(INVALID_PARAMS, "name is a built-in protocol's file name")
                path = builtin_protocol(name if name.endswith(".toml") else name + ".toml")
                protocol, sha = load_protocol_and_sha256(path)
            elif isinstance(text, str):
                protocol = loads_protocol(text, "protocol.toml")
                sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
            else:
                raise RpcError(INVALID_PARAMS, "name and toml are strings")
        except ProtocolFileError as exc:
            raise RpcError(
                PROTOCOL_REJECTED, "protocol rejected", {"problems": list(exc.problems)}
            ) from exc
        except ConfigError as exc:
            raise RpcError(PROTOCOL_REJECTED, str(exc), {"problems": [str(exc)]}) from exc
        missing = sorted(
            {getattr(s, "kind", "manual") for s in protocol.steps}
            - {"manual"}
            - set(self.desk.devices())
        )
        if missing:
            problem = f"{protocol.name}: this station has no {', '.join(missing)} device"
            raise RpcError(PROTOCOL_REJECTED, problem, {"problems": [problem]})
        self.protocol, self.protocol_sha256 = protocol, sha
        view = self._protocol_view()
        assert view is not None
        return view

    async def _start_session(self, operator: Operator, params: dict[str, Any]) -> dict[str, Any]:
        unattended = params.get("unattended", False)
        if not isinstance(unattended, bool):
            raise RpcError(INVALID_PARAMS, "unattended is true or false")
        if self.protocol is None:
            raise RpcError(NO_SESSION, "load a protocol first (load_protocol)")
        refusal = station_refusal(
            self.protocol, simulated=self.simulated, answer_prompts=unattended
        )
        if refusal is not None:
            raise RpcError(REFUSED, refusal)
        runner = self.desk.runner
        if runner is not None and not runner.finished:
            raise RpcError(REFUSED, f"a session is {runner.state.value}; end it first")
        if self.writer is not None:
            raise RpcError(REFUSED, "the last session's record is still closing; try again")
        protocol = self.protocol
        loop = asyncio.get_running_loop()
        session_id = await loop.run_in_executor(
            None, self._open_record, protocol, operator.id, unattended
        )
        try:
            args = {"protocol": protocol, "session_id": session_id, "unattended": unattended}
            await self._loop_call(Command(DESK, "start_session", args, operator.id))
        except RpcError:
            await loop.run_in_executor(None, self._finish_record, "aborted")
            raise
        return {"session_id": session_id}

    async def _refuse(self, client: Client, method: str, reason: str, code: int) -> RpcError:
        """Record a refusal (the open session's record and the log show who tried what
        from where); the error to answer with."""
        who = client.operator.id if client.operator is not None else None
        args = {"action": method, "reason": reason, "peer": client.peer}
        with contextlib.suppress(RpcError):
            await self._loop_call(Command(DESK, "refused", args, who))
        return RpcError(code, f"{method} refused: {reason}")

    async def _enrol_operator(self, by: Operator, params: dict[str, Any]) -> dict[str, Any]:
        operator_id, pin = params.get("operator_id"), params.get("pin")
        role = params.get("role", "operator")
        if not (isinstance(operator_id, str) and isinstance(pin, str) and isinstance(role, str)):
            raise RpcError(INVALID_PARAMS, "enrol_operator needs operator_id and pin (strings)")
        loop = asyncio.get_running_loop()
        try:
            added = await loop.run_in_executor(
                None, functools.partial(self.operators.add, operator_id, pin, role, by=by)
            )
        except ConfigError as exc:
            raise RpcError(REFUSED, str(exc)) from exc
        self.log.info("operator_enrolled", operator_id=added.id, role=added.role, by=by.id)
        return {"operator_id": added.id, "role": added.role}

    async def _dispatch(self, client: Client, method: str, params: dict[str, Any]) -> Any:
        operator = client.operator
        if method not in OPEN_METHODS and operator is None:
            reason = "nobody is signed in on this connection (sign_in first)"
            raise await self._refuse(client, method, reason, NOT_SIGNED_IN)
        if method in SUPERVISOR_METHODS and (operator is None or operator.role != "supervisor"):
            reason = f"{operator.id if operator else 'nobody'} is not a supervisor"
            raise await self._refuse(client, method, reason, NOT_A_SUPERVISOR)
        if method == "hello":
            return await self._hello(client)
        if method == "sign_in":
            return await self._sign_in(client, params)
        if method == "estop":
            who = operator.id if operator else None
            stopped = await self._loop_call(Command(DESK, "estop", {}, who))
            return {"stopped": stopped}
        assert operator is not None
        if method == "sign_out":
            if client.token is not None:
                self.tokens.revoke(client.token)
            client.operator = None
            client.token = None
            return True
        if method == "enrol_operator":
            return await self._enrol_operator(operator, params)
        if method == "list_operators":
            listed = await asyncio.get_running_loop().run_in_executor(None, self.operators.list)
            return [{"operator_id": op.id, "role": op.role} for op in listed]
        if method == "load_protocol":
            return await self._load_protocol(params)
        if method == "start_session":
            return await self._start_session(operator, params)
        if method == "acknowledge":
            device = params.get("device")
            done = await self._loop_call(
                Command(DESK, "acknowledge", {"device": device}, operator.id)
            )
            return {"acknowledged": done}
        if method == "silence":
            return await self._loop_call(
                Command(DESK, "silence", {"seconds": _silence_s(params)}, operator.id)
            )
        if method == "fire":
            return await self._loop_call(
                Command(self._device_for("fire", params), "fire", {}, operator.id)
            )
        if method in SESSION_ACTIONS:
            if self.desk.runner is None:
                raise RpcError(NO_SESSION, f"{method}: no session (start_session first)")
            return await self._loop_call(Command("session", method, {}, operator.id))
        raise RpcError(METHOD_NOT_FOUND, f"unknown method {method!r}")

    def _device_for(self, action: str, params: dict[str, Any]) -> str:
        """The device a device action goes to: ``params["device"]``, or the one device
        whose modality offers ``action`` at the console (the IPL's trigger)."""
        named = params.get("device")
        if isinstance(named, str):
            return named
        offering = [
            name
            for name, controller in self.desk.devices().items()
            if any(a == action for _, a, _ in modality(controller.modality).console_actions)
        ]
        if len(offering) != 1:
            raise RpcError(
                INVALID_PARAMS,
                f"{action}: name the device (params.device); offered by {offering or 'none'}",
            )
        return offering[0]

    async def _answer(self, client: Client, raw: str | bytes) -> str | None:
        request_id: Any = None
        notification = False
        try:
            try:
                request = json.loads(raw)
            except ValueError as exc:
                raise RpcError(PARSE_ERROR, "not JSON") from exc
            if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
                raise RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request")
            request_id = request.get("id")
            notification = "id" not in request
            method = request.get("method")
            params = request.get("params", {})
            if not isinstance(method, str):
                raise RpcError(INVALID_REQUEST, "method must be a string")
            if not isinstance(params, dict):
                raise RpcError(INVALID_PARAMS, "params must be an object")
            result = await self._dispatch(client, method, params)
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": plain(result)}
        except RpcError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            reply = {"jsonrpc": "2.0", "id": request_id, "error": error}
        if notification:
            return None  # a notification from the client gets no answer
        return json.dumps(reply)

    # -- connections ---------------------------------------------------------------------

    def _token_of(self, request: Request) -> str | None:
        auth = request.headers.get("Authorization")
        if auth and auth.lower().startswith("bearer "):
            return auth[7:].strip()
        query = parse_qs(urlsplit(request.path).query)
        return query.get("token", [None])[0]

    def _origin_ok(self, request: Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None or origin in self.config.allow_origins:
            return True
        host = request.headers.get("Host")
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and host is not None and parts.netloc == host

    def _http_json(self, conn: ServerConnection, status: HTTPStatus, body: Any) -> Response:
        response = conn.respond(status, json.dumps(body) + "\n")
        headers = Headers(response.headers)
        del headers["Content-Type"]
        headers["Content-Type"] = "application/json"
        response.headers = headers
        return response

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/health":
            alive = self.loop._thread is not None and self.loop._thread.is_alive()
            status = HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE
            return self._http_json(
                conn,
                status,
                {"ok": alive, "api_version": API_VERSION, "tick": self.loop.tick_count},
            )
        if not self._origin_ok(request):
            self.log.warning("origin_refused", origin=request.headers.get("Origin"))
            return self._http_json(conn, HTTPStatus.FORBIDDEN, {"error": "origin not allowed"})
        grant = self.tokens.check(self._token_of(request), self.clock.now())
        if grant is None:
            return self._http_json(
                conn, HTTPStatus.UNAUTHORIZED, {"error": "a valid token is needed"}
            )
        if path == "/status":
            try:
                snapshot = await self._loop_call(Command(DESK, "snapshot"))
            except RpcError as exc:
                return self._http_json(conn, HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            return self._http_json(
                conn, HTTPStatus.OK, {"api_version": API_VERSION, "snapshot": snapshot}
            )
        if path not in ("/", "/ws"):
            return self._http_json(conn, HTTPStatus.NOT_FOUND, {"error": "not found"})
        self._grants[conn] = grant
        return None

    async def _handler(self, conn: ServerConnection) -> None:
        grant = self._grants.pop(conn, None)
        if grant is None:
            return
        client = Client(conn, grant)
        self.clients.add(client)  # events queue up behind the snapshot
        self.log.info(
            "client_connected",
            peer=client.peer,
            operator_id=client.operator.id if client.operator else None,
        )
        pump = asyncio.ensure_future(client.pump())
        try:
            try:
                hello = await self._hello(client)
            except RpcError:
                return
            client.queue.appendleft((False, _json("hello", plain(hello))))
            client.wake.set()
            async for raw in conn:
                reply = await self._answer(client, raw)
                if reply is not None:
                    client.push(reply, False)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            pump.cancel()
            self.log.info("client_disconnected", peer=client.peer)

    async def _heartbeat(self) -> None:
        """Refresh attendance while a signed-in client is connected; watch the loop thread."""
        assert self._stopping is not None
        while not self._stopping.is_set():
            if any(c.operator is not None for c in self.clients):
                self.desk.attended_at_s = self.clock.now()
            thread = self.loop._thread
            if thread is None or not thread.is_alive():
                self.log.critical("loop_thread_stopped")
                self.exit_code = 1
                self._stopping.set()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HEARTBEAT_S)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None or self.config.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--tls-cert/--tls-key: {exc}") from exc
        return context

    async def serve(self, ready: Callable[[dict[str, Any]], None] | None = None) -> int:
        """Serve until SIGINT/SIGTERM/SIGHUP or :meth:`stop`; the exit code."""
        self._aloop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        common: dict[str, Any] = {
            "process_request": self._process_request,
            "ping_interval": 1.0,  # a vanished tablet is noticed within about 3 s
            "ping_timeout": 2.0,
            "compression": None,
            "max_size": 2**20,
        }
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._aloop.add_signal_handler(sig, self._stopping.set)
        context = self._ssl_context()
        where: dict[str, Any] = {"event": "serving", "api_version": API_VERSION}
        with realtime.gil_sharer(self.clock) as scheduling:
            where["scheduling"] = scheduling.policy
            return await self._serve(where, common, context, ready)

    async def _serve(
        self,
        where: dict[str, Any],
        common: dict[str, Any],
        context: ssl.SSLContext | None,
        ready: Callable[[dict[str, Any]], None] | None,
    ) -> int:
        assert self._stopping is not None
        try:
            self.loop.start()
            if self.config.unix is not None:
                old = os.umask(0o117)  # the socket: owner and group only
                try:
                    self._servers.append(
                        await unix_serve(self._handler, str(self.config.unix), **common)
                    )
                finally:
                    os.umask(old)
                where["unix"] = str(self.config.unix)
            if self.config.tcp is not None:
                host, port = self.config.tcp
                server = await serve(self._handler, host, port, ssl=context, **common)
                self._servers.append(server)
                bound = server.sockets[0].getsockname()
                scheme = "wss" if context is not None else "ws"
                where["url"] = f"{scheme}://{host}:{bound[1]}/"
            if self.token_file is not None:
                write_token_file(self.token_file, self.tokens.station_token)
                where["token_file"] = str(self.token_file)
            where["interrupted"] = self.interrupted
            self.log.info("station_serving", **{k: v for k, v in where.items() if k != "event"})
            if ready is not None:
                ready(where)
            heartbeat = asyncio.ensure_future(self._heartbeat())
            await self._stopping.wait()
            heartbeat.cancel()
        finally:
            await self._shutdown()
        return self.exit_code

    def stop(self) -> None:
        """Ask :meth:`serve` to end (thread-safe)."""
        if self._aloop is not None and self._stopping is not None:
            self._aloop.call_soon_threadsafe(self._stopping.set)

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 3.0)
        await asyncio.get_running_loop().run_in_executor(None, self._close_station)
        if self.config.unix is not None:
            self.config.unix.unlink(missing_ok=True)
        if self.token_file is not None:
            self.token_file.unlink(missing_ok=True)

    def _close_station(self) -> None:
        """Stop the loop with every device safe, then close the record with its outcome."""
        loop = self.loop
        loop.stop()
        runner = self.desk.runner
        if runner is not None and not runner.finished:
            runner.abort(AUTO_OPERATOR)
        safe = confirm_safe(self.station)
        self.log.info("station_stopped", safe_states=safe)
        loop.tick()  # the loop thread is stopped: this thread ticks once to record it
        self._unsubscribe()
        if self.writer is not None:
            state = runner.state if runner is not None else SessionState.ABORTED
            self._finish_record(OUTCOMES.get(state, "aborted"))
        close_devices(self.station)
        self.store.close()


def run_service(config: ServeConfig, ready: Callable[[dict[str, Any]], None] | None = None) -> int:
    """Build the station and serve it on this thread until a signal; the exit code."""
    service = StationService(config)
    return asyncio.run(service.serve(ready))


def _silence_s(params: dict[str, Any]) -> float:
    """The ``seconds`` of a ``silence``: a number from 0 to SILENCE_MAX_S."""
    seconds = params.get("seconds", SILENCE_MAX_S)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise RpcError(INVALID_PARAMS, "silence: seconds must be a number")
    if not 0 <= seconds <= SILENCE_MAX_S:
        raise RpcError(INVALID_PARAMS, f"silence: seconds must be 0 to {SILENCE_MAX_S:g}")
    return float(seconds)
