"""A Python client of the station service (``docs/api.md``).

Async::

    client = await StationClient.connect("/run/devicectl/station.sock")
    print(client.snapshot["session"])
    await client.call("sign_in", operator_id="tech-042", pin="...")
    async for event in client.events():
        print(event["method"], event["params"])

Synchronous, for scripts and tests (the connection lives on a background thread)::

    with SyncStationClient("/run/devicectl/station.sock") as station:
        station.call("estop")
        station.wait_for(lambda s: s["devices"]["rf"]["output_on"] is False)

A target is a Unix socket path (the station token is read from ``PATH.token``
unless given) or a ``ws://``/``wss://`` URL (then give ``token``). The client
keeps ``state``: the hello snapshot with every later event applied to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect, unix_connect

from devicectl.errors import ConfigError, DevicectlError
from devicectl.station.auth import token_file_for

CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 15.0


class StationError(DevicectlError):
    """A JSON-RPC error answer of the station: ``code``, message and ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data


def apply_event(state: dict[str, Any], method: str, params: dict[str, Any]) -> None:
    """Bring a snapshot (``hello``'s ``snapshot``) up to date with one event."""
    devices = state.setdefault("devices", {})
    if method == "reading":
        devices.update(params["devices"])
        state["t_s"] = params["t_s"]
    elif method == "state":
        devices.setdefault(params["device"], {})["state"] = params["state"]
    elif method == "session":
        state["session"] = {k: v for k, v in params.items() if k != "t_s"}
    elif method == "alarm":
        state.setdefault("alarms", []).append(params)


class StationClient:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.hello: dict[str, Any] = {}
        self.state: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._hello_seen = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []

    @classmethod
    async def connect(
        cls,
        target: str | Path,
        *,
        token: str | None = None,
        origin: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> StationClient:
        """Connect, and wait for the hello snapshot."""
        target = str(target)
        headers: dict[str, str] = {}
        kwargs: dict[str, Any] = {
            "open_timeout": timeout_s,
            "compression": None,
            "max_size": 2**22,
            "ping_interval": 1.0,
            "ping_timeout": 5.0,
        }
        if origin is not None:
            kwargs["origin"] = origin
        if target.startswith(("ws://", "wss://")):
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            if target.startswith("wss://"):
                kwargs["ssl"] = ssl_context or ssl.create_default_context()
            conn = await connect(target, additional_headers=headers, **kwargs)
        else:
            if token is None:
                token_path = token_file_for(target)
                with contextlib.suppress(OSError):
                    token = token_path.read_text(encoding="utf-8").strip()
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            conn = await unix_connect(
                target, uri="ws://localhost/", additional_headers=headers, **kwargs
            )
        client = cls(conn)
        try:
            await asyncio.wait_for(client._hello_seen.wait(), timeout_s)
        except BaseException:
            await client.close()
            raise
        return client

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                message = json.loads(raw)
                if "method" in message:
                    method, params = message["method"], message.get("params") or {}
                    if method == "hello":
                        self.hello = params
                        self.state = json.loads(json.dumps(params["snapshot"]))
                        self._hello_seen.set()
                    else:
                        apply_event(self.state, method, params)
                    for listener in list(self.listeners):
                        listener(method, params)
                    await self._events.put({"method": method, "params": params})
                    continue
                future = self._pending.pop(message.get("id"), None)
                if future is None or future.done():
                    continue
                if "error" in message:
                    error = message["error"]
                    future.set_exception(
                        StationError(error["code"], error["message"], error.get("data"))
                    )
                else:
                    future.set_result(message.get("result"))
        except Exception:  # noqa: BLE001 - a closed connection fails every pending call
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the station connection closed"))
            self._pending.clear()
            await self._events.put(None)

    @property
    def snapshot(self) -> dict[str, Any]:
        return dict(self.hello.get("snapshot", {}))

    @property
    def connected(self) -> bool:
        """False once the connection has closed (the reader has ended)."""
        return not self._reader.done()

    async def call(self, method: str, timeout_s: float = CALL_TIMEOUT_S, **params: Any) -> Any:
        """Call ``method``; its result, or StationError with the station's answer."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        await self.conn.send(json.dumps(request))
        return await asyncio.wait_for(future, timeout_s)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every notification after hello, as ``{"method": ..., "params": ...}``."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def close(self) -> None:
        await self.conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 5.0)


class SyncStationClient:
    """:class:`StationClient` on a background thread, for scripts and tests."""

    # Who this client signed in as, when its owner notes it (the pytest plugin does).
    operator_id: str | None = None

    def __init__(self, target: str | Path, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="station-client", daemon=True
        )
        self._thread.start()
        self._cond = threading.Condition()
        self.events: list[dict[str, Any]] = []
        self._state: dict[str, Any] = {}
        try:
            self.client: StationClient = self._run(StationClient.connect(target, **kwargs))
        except BaseException:
            self._stop_loop()
            raise
        self.client.listeners.append(self._on_event)
        self._run(self._first_copy())

    async def _first_copy(self) -> None:
        self._on_event("hello", self.client.hello)

    def _run(self, coro: Any, timeout_s: float = CALL_TIMEOUT_S + 5.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        copy = json.loads(json.dumps(self.client.state))  # on the client's own thread
        with self._cond:
            if method != "hello" or not self.events:
                self.events.append({"method": method, "params": params})
            self._state = copy
            self._cond.notify_all()

    @property
    def hello(self) -> dict[str, Any]:
        return self.client.hello

    @property
    def state(self) -> dict[str, Any]:
        """A copy of the station state as this client knows it."""
        with self._cond:
            return self._state

    def call(self, method: str, **params: Any) -> Any:
        return self._run(self.client.call(method, **params))

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """Wait until ``predicate(state)`` is true; the state then (AssertionError if never)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                state = self._state
                if predicate(state):
                    return state
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"not within {timeout_s} s; state {state}")
                self._cond.wait(min(remaining, 0.1))

    @property
    def connected(self) -> bool:
        return self.client.connected

    def wait_event(self, seen: int, timeout_s: float) -> int:
        """Wait until more than ``seen`` events have arrived (or ``timeout_s``, or the
        connection closed); how many have arrived."""
        with self._cond:
            if len(self.events) <= seen and self.client.connected:
                self._cond.wait(timeout_s)
            return len(self.events)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self.client.close(), 10.0)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        self._loop.close()

    def __enter__(self) -> SyncStationClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- one session run through a station -------------------------------------------------

# What a run through the station answers with ``--yes`` (the prompts of docs/api.md).
GATES = ("confirm", "arm", "start", "next_zone")
FINISHED_STATES = {"complete": "complete", "ended": "fault", "aborted": "aborted"}
POLL_S = 0.1
SAFE_WAIT_S = 3.0
FIRE_RETRY_S = 0.25


def station_target(url: str | Path) -> str:
    """``unix:/path``, ``unix:///path`` or a plain path -> the socket path; a
    ``ws://``/``wss://`` URL as it is. ConfigError for anything else."""
    text = str(url).strip()
    if text.startswith(("ws://", "wss://")):
        return text
    if text.startswith("unix:"):
        text = text[len("unix:") :]
        if text.startswith("//"):
            text = text[2:]
    if not text or "://" in text:
        raise ConfigError(
            f"station {url!r}: expected unix:/path/to/station.sock, a socket path, "
            "or a ws:// or wss:// URL"
        )
    return text


class _StepView:
    """A step as the station's session view shows it (the runner's StepProgress shape)."""

    def __init__(self, step: dict[str, Any]) -> None:
        self.index = int(step["index"])
        self.kind = str(step["kind"])
        self.title = str(step["title"])
        self.outcome = str(step["outcome"])
        self.detail: dict[str, Any] = {}


class _StateView:
    def __init__(self, value: str) -> None:
        self.value = value


class RemoteRunner:
    """The session of a station, shaped like the session runner for progress callbacks:
    ``steps`` (index, kind, title, outcome), ``state.value``, ``prompt``, ``awaiting``."""

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session
        self.steps = [_StepView(s) for s in session.get("steps") or []]
        self.state = _StateView(str(session.get("state")))
        self.prompt: str | None = session.get("prompt")
        self.awaiting: str | None = session.get("awaiting")


class _RemoteClock:
    def __init__(self, t_s: float) -> None:
        self._t_s = t_s

    def now(self) -> float:
        return self._t_s


class _RemoteLoop:
    def __init__(self) -> None:
        # The devices live in the station's process: progress shows no milestones.
        self.controllers: dict[str, Any] = {}


class RemoteStation:
    """The station as a progress callback sees it: ``clock.now()`` (the station's
    clock) and ``devices`` (the device views of the last reading)."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.clock = _RemoteClock(float(state.get("t_s") or 0.0))
        self.loop = _RemoteLoop()
        self.devices: dict[str, Any] = dict(state.get("devices") or {})


class StationSession:
    """Run one protocol on a running station service, from sign-in to outcome.

    ::

        with StationSession("/run/devicectl/station.sock", "tech-042", pin) as run:
            outcome = run.run(Path("protocols/rf-express.toml"), answer_prompts=True)

    It signs in (``operator_id`` and ``pin``), loads the protocol (its TOML text),
    starts the session and follows it to its end. With ``answer_prompts`` (``--yes``)
    it starts the session ``unattended`` (API 1.1): the station's record says so, its
    runner confirms the manual steps and sends its own commands as ``auto`` (and, on
    a station whose devices are all simulators, pulls the IPL trigger), while each
    prompt this run answers (``arm``, ``start``, ``next_zone``) is recorded under the
    signed-in operator. A station of API 1.0 has no unattended mode: there every
    answer, and the trigger, is this run's, under the signed-in operator.
    A protocol with a step that needs a person at the chair (IPL) is refused on a
    station with real devices. A faulted session of an unattended run is ended
    (outcome ``fault``). ``stop()`` true (a signal) aborts the session at the
    station (every device to its safe state) and the outcome says ``interrupted``.
    """

    def __init__(
        self,
        target: str | Path,
        operator_id: str,
        pin: str,
        *,
        token: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not operator_id.strip():
            raise ConfigError("a session needs an operator id (--operator)")
        self.target = station_target(target)
        self.operator_id = operator_id
        self._pin = pin
        kwargs: dict[str, Any] = {"token": token}
        if ssl_context is not None:
            kwargs["ssl_context"] = ssl_context
        try:
            self.client = SyncStationClient(self.target, **kwargs)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the station at {target}: {exc}") from exc
        except Exception as exc:  # websockets' refusals (401, 403, bad handshake)
            if isinstance(exc, DevicectlError):
                raise
            raise ConfigError(f"the station at {target} refused the connection: {exc}") from exc

    def __enter__(self) -> StationSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    @property
    def simulated(self) -> bool:
        """True when every device of the station is a simulator."""
        return bool(self.client.hello.get("station", {}).get("simulated"))

    def run(
        self,
        protocol: str | Path,
        *,
        answer_prompts: bool = False,
        progress: Callable[[RemoteRunner, RemoteStation], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Any:
        """Sign in, load ``protocol`` (a file), start and follow the session to its
        end; a :class:`~devicectl.session.api.SessionOutcome`."""
        from devicectl.errors import ProtocolFileError
        from devicectl.session.api import station_refusal
        from devicectl.session.protocol_file import load_protocol_and_sha256

        path = Path(protocol)
        parsed, _sha = load_protocol_and_sha256(path)  # every problem, before the station
        refusal = station_refusal(parsed, simulated=self.simulated, answer_prompts=answer_prompts)
        if refusal is not None:
            raise ConfigError(refusal)
        text = path.read_text(encoding="utf-8")
        client = self.client
        client.call("sign_in", operator_id=self.operator_id, pin=self._pin)
        latched = sorted(
            name for name, view in client.state.get("devices", {}).items() if view.get("latched")
        )
        if latched:
            raise ConfigError(
                f"the station has a latched fault on {', '.join(latched)}: a session would "
                "stop at once; acknowledge it at the console first"
            )
        try:
            client.call("load_protocol", toml=text)
        except StationError as exc:
            if exc.code == -32003 and isinstance(exc.data, dict):
                raise ProtocolFileError(path, list(exc.data.get("problems") or [])) from exc
            raise
        # An unattended session (API 1.1): the station records it so, and what its
        # runner does by itself as "auto"; the answers below stay this operator's.
        unattended = answer_prompts and int(client.hello.get("api_minor") or 0) >= 1
        started = client.call("start_session", **({"unattended": True} if unattended else {}))
        session_id = str(started["session_id"])
        try:
            return self._follow(session_id, answer_prompts, progress, stop)
        except BaseException:
            # Ctrl-C in a script, a lost connection: never leave the session running
            # unattended on a person's behalf (the station pauses it anyway within 3 s).
            with contextlib.suppress(Exception):
                client.call("abort")
            raise

    def _follow(
        self,
        session_id: str,
        answer_prompts: bool,
        progress: Callable[[RemoteRunner, RemoteStation], None] | None,
        stop: Callable[[], bool] | None,
    ) -> Any:
        from devicectl.session.api import SessionOutcome

        client = self.client
        interrupted = False
        last_fire_s: float | None = None
        seen = 0
        state = client.state
        while True:
            if stop is not None and stop():
                interrupted = True
                break
            seen = client.wait_event(seen, POLL_S)
            if not client.connected:
                raise ConnectionError(
                    f"lost the station connection; session {session_id} goes on at the "
                    "station (it pauses within 3 s while energy is delivered)"
                )
            state = client.state
            session = state.get("session") or {}
            if session.get("session_id") != session_id:
                continue  # the start's own session event is still on its way
            if progress is not None:
                progress(RemoteRunner(session), RemoteStation(state))
            if session["state"] in FINISHED_STATES:
                break
            if not answer_prompts:
                continue
            now_s = float(state.get("t_s") or 0.0)
            if session["state"] == "waiting_confirm" and session.get("awaiting") in GATES:
                with contextlib.suppress(StationError):  # answered already, or moved on
                    client.call(session["awaiting"])
            elif session["state"] == "faulted":
                # Nobody is at the chair to acknowledge: the session ends at the fault.
                with contextlib.suppress(StationError):
                    client.call("end")
            elif (
                self.simulated
                and not session.get("unattended")  # else the station's runner pulls it
                and state.get("devices", {}).get("ipl", {}).get("state") == "armed"
                and (last_fire_s is None or now_s - last_fire_s >= FIRE_RETRY_S)
            ):
                # The trigger, pulled by this run only when every device is a simulator.
                last_fire_s = now_s
                with contextlib.suppress(StationError):  # too soon after the last flash
                    client.call("fire")
        safe_states: dict[str, str | None] = {}
        if interrupted:
            with contextlib.suppress(StationError, ConnectionError, TimeoutError):
                client.call("abort")
            with contextlib.suppress(AssertionError):
                client.wait_for(
                    lambda s: (s.get("session") or {}).get("state") in FINISHED_STATES,
                    SAFE_WAIT_S,
                )
            safe_states = self._safe_states()
            state = client.state
            if progress is not None:
                progress(RemoteRunner(state["session"]), RemoteStation(state))
        session = state["session"]
        started_s, ended_s = self._span(session_id)
        return SessionOutcome(
            session_id=session_id,
            outcome=FINISHED_STATES.get(session["state"], "aborted"),
            protocol=str(session["protocol"]),
            operator_id=str(session["operator_id"]),
            unattended=answer_prompts,
            simulated_s=ended_s - started_s,
            steps=[
                {
                    "step": s["index"],
                    "kind": s["kind"],
                    "title": s["title"],
                    "outcome": s["outcome"],
                }
                for s in session.get("steps") or []
            ],
            faults=self._faults(started_s, state),
            db=self.target,
            sites=[],
            interrupted=interrupted,
            safe_states=safe_states,
        )

    @staticmethod
    def _mine(state: dict[str, Any], session_id: str) -> bool:
        session = state.get("session") or {}
        return session.get("session_id") == session_id and session.get("state") in FINISHED_STATES

    def _safe_states(self) -> dict[str, str | None]:
        """Each device's output as the device reports it, after the abort: None when
        it reports output off, else why not (then its watchdog cuts output)."""
        try:
            state = self.client.wait_for(
                lambda s: all(d.get("output_on") is False for d in s.get("devices", {}).values()),
                SAFE_WAIT_S,
            )
        except AssertionError:
            state = self.client.state
        return {
            name: None
            if view.get("output_on") is False
            else ("output reported on" if view.get("output_on") else "no reading")
            for name, view in sorted(state.get("devices", {}).items())
        }

    def _span(self, session_id: str) -> tuple[float, float]:
        """The station-clock times of the session's first and last ``session`` event."""
        times = [
            float(e["params"]["t_s"])
            for e in list(self.client.events)
            if e["method"] == "session" and e["params"].get("session_id") == session_id
        ]
        return (min(times), max(times)) if times else (0.0, 0.0)

    def _faults(self, since_s: float, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The latched alarms raised during the session, as a local run lists them."""
        faults = [
            {
                "t_s": round(float(e["params"]["t_s"]), 2),
                "device": e["params"]["device"],
                "code": e["params"]["code"],
                "message": e["params"]["message"],
            }
            for e in list(self.client.events)
            if e["method"] == "alarm"
            and e["params"].get("latches")
            and float(e["params"].get("t_s") or 0.0) >= since_s
        ]
        message = (state.get("session") or {}).get("fault")
        if message and not any(f["message"] == message for f in faults):
            # Latched before this client saw it happen: the session's own words.
            faults.append(
                {"t_s": round(since_s, 2), "device": "session", "code": None, "message": message}
            )
        return faults
