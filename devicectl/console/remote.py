"""The console as a client of the station service (``devicectl console --station``).

The station service (``devicectl station serve``, ``docs/api.md``) owns the
devices, the loop, the session and its record; this backend owns nothing but
a connection. It renders from the service's hello snapshot and the events
after it (``state``, ``reading``, ``alarm``, ``progress``, ``session``), and
sends every key as an API call, signed in with the operator's id and PIN
(``sign_in``). Escape is ``estop``, which needs no sign-in.

Everything runs on the console's own asyncio loop (the Textual app's): the
client's reader task applies events to ``state`` and marks the snapshot
stale; the UI's poll rebuilds the frozen :class:`Snapshot` from it when it
changed. Each device's view comes from its modality
(``Modality.view_from_status``) over the device's part of the snapshot, so the
panels are the same as in-process.

A lost connection is retried every second, with the operator's token once
signed in (the service accepts it at the handshake: no PIN again). A session
never depends on this process: the service keeps it, and a new console (a
reloaded browser page) shows it as soon as it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from pathlib import Path
from typing import Any

import structlog

from devicectl.console.bridge import TRACE_PERIOD_S, TRACE_POINTS, AlarmEvent, Poll, TracePoint
from devicectl.console.keys import KeyAction, key_actions
from devicectl.console.snapshot import SessionView, Snapshot, StepView, site_views
from devicectl.control.events import Alarm, AlarmPriority
from devicectl.errors import ConfigError, DevicectlError
from devicectl.modality import Modality, modalities
from devicectl.station.client import StationClient, StationError

RETRY_S = 1.0
DEFAULT_PROTOCOL = "pore-patrol"
FINISHED_STATES = frozenset({"complete", "aborted", "ended"})
# The device actions the station API carries (docs/api.md#methods).
DEVICE_METHODS = frozenset({"fire"})
# What the console's desk actions are in the API.
SESSION_METHODS = frozenset(
    {"confirm", "arm", "start", "next_zone", "pause", "resume", "abort", "end"}
)


def alarm_from(params: dict[str, Any]) -> Alarm:
    """An :class:`Alarm` from an ``alarm`` event (or an alarm of the snapshot)."""
    name = str(params.get("priority", "high")).upper()
    priority = AlarmPriority[name] if name in AlarmPriority.__members__ else AlarmPriority.HIGH
    return Alarm(
        str(params.get("device", "?")),
        str(params.get("code", "?")),
        priority,
        str(params.get("message", "")),
        latches=bool(params.get("latches", False)),
        value=params.get("value"),
        limit=params.get("limit"),
        doc=str(params.get("doc") or "docs/safety.md"),
    )


def session_from(data: dict[str, Any] | None) -> SessionView | None:
    if not data:
        return None
    return SessionView(
        protocol=str(data.get("protocol", "")),
        operator=str(data.get("operator_id", "")),
        state=str(data.get("state", "")),
        current=int(data.get("current_step") or 0),
        prompt=data.get("prompt"),
        awaiting=data.get("awaiting"),
        fault=data.get("fault"),
        steps=tuple(
            StepView(
                int(s["index"]),
                str(s["title"]),
                str(s["kind"]),
                str(s["outcome"]),
                str(s.get("result") or ""),
            )
            for s in data.get("steps") or ()
        ),
        started_s=_seconds(data.get("started_s")),
        instructions=data.get("instructions"),
        offers=tuple(str(o) for o in data.get("offers") or ()),
        paused=tuple(str(p) for p in data.get("paused") or ()),
        energy=data.get("energy"),
        session_id=data.get("session_id"),
        ended_s=_seconds(data.get("ended_s")),
        sites=site_views(list(data.get("sites") or ())),
    )


def _seconds(value: Any) -> float | None:
    return float(value) if value is not None else None


class StationBackend:
    """A console backend that is a client of one station service."""

    needs_pin = True

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        protocol: Path | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        """``protocol``: the file a new session runs (default the built-in Pore Patrol);
        it is loaded and started at sign-in only when no session is under way."""
        self.target = target
        self.token = token
        self.protocol = protocol
        self.connect_timeout_s = connect_timeout_s
        self.mode = f"station {target}"
        self.log = structlog.get_logger("devicectl.console").bind(device="console")
        self.modalities: dict[str, Modality] = modalities()
        self.devices: dict[str, Modality] = {}
        self.keys: list[KeyAction] = []
        self.client: StationClient | None = None
        self.operator_token: str | None = None
        self.operator_id: str | None = None
        self._dirty = True
        self._snapshot: Snapshot | None = None
        self._alarms: deque[AlarmEvent] = deque(maxlen=1000)
        self._notices: deque[str] = deque(maxlen=1000)
        self._trace: deque[TracePoint] = deque(maxlen=TRACE_POINTS)
        self._next_trace_s = -1e300
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watch: asyncio.Task[None] | None = None
        self._closed = False

    # -- connection ---------------------------------------------------------------------

    async def _connect(self, token: str | None) -> StationClient:
        client = await StationClient.connect(
            self.target, token=token, timeout_s=self.connect_timeout_s
        )
        client.listeners.append(self._on_event)
        self._on_event("hello", client.hello)
        return client

    async def start(self) -> None:
        """Connect and take the hello snapshot: the station's devices decide the panels'
        content and the keys. A station that cannot be reached is a ConfigError."""
        try:
            self.client = await self._connect(self.token)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"cannot reach the station at {self.target}: {exc}") from exc
        except Exception as exc:  # the handshake refused (401, 403)
            raise ConfigError(f"the station at {self.target} refused the console: {exc}") from exc
        names = set(self.client.hello.get("station", {}).get("devices", []))
        self.devices = {n: m for n, m in self.modalities.items() if n in names}
        self.keys = key_actions(self.devices)
        self._watch = asyncio.ensure_future(self._keep_connected())
        self.log.info("console_connected", station=self.target)

    async def _keep_connected(self) -> None:
        while not self._closed:
            client = self.client
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(client._reader)
            if self._closed:
                return
            self._notices.append("station connection lost: reconnecting")
            self.client = None
            while not self._closed and self.client is None:
                await asyncio.sleep(RETRY_S)
                with contextlib.suppress(Exception):
                    self.client = await self._connect(self.operator_token or self.token)
            if self.client is not None:
                self._notices.append("station connection back")

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        self._dirty = True
        if method == "hello":
            for alarm in params.get("snapshot", {}).get("alarms", []):
                self._alarms.append(AlarmEvent(float(alarm.get("t_s", 0.0)), alarm_from(alarm)))
        elif method == "alarm":
            self._alarms.append(AlarmEvent(float(params.get("t_s", 0.0)), alarm_from(params)))
        elif method == "reading":
            t_s = float(params.get("t_s", 0.0))
            if t_s >= self._next_trace_s:
                self._next_trace_s = t_s + TRACE_PERIOD_S
                self._trace.append(self._trace_point(t_s, params.get("devices", {})))
        elif method == "progress" and params.get("event") in (
            "command_rejected",
            "command_refused",
        ):
            why = params.get("error") or params.get("reason") or "refused"
            self._notices.append(f"{params.get('device')}: {why}")
        elif method == "progress" and params.get("event") == "unattended":
            self._notices.append("paused by the station: nobody signed in was connected")

    def _trace_point(self, t_s: float, devices: dict[str, Any]) -> TracePoint:
        channels, names = [], []
        for name in self.devices:
            trace = devices.get(name, {}).get("trace")
            if isinstance(trace, list) and len(trace) == 2:
                value = trace[1]
                channels.append((str(trace[0]), float(value) if value is not None else None))
                names.append(name)
        return TracePoint(t_s, tuple(channels), tuple(names))

    # -- what the screen polls ----------------------------------------------------------

    def _build(self) -> Snapshot | None:
        client = self.client
        if client is None or not client.state:
            return None
        state = client.state
        devices = state.get("devices", {})
        return Snapshot(
            t_s=float(state.get("t_s") or 0.0),
            tick=int(state.get("tick") or 0),
            session=session_from(state.get("session")),
            devices=tuple(
                (name, mod.view_from_status(devices[name]))
                for name, mod in self.devices.items()
                if name in devices
            ),
        )

    def poll(self) -> Poll:
        snapshot = None
        if self._dirty:
            self._dirty = False
            snapshot = self._build()
        alarms, notices = list(self._alarms), list(self._notices)
        self._alarms.clear()
        self._notices.clear()
        return Poll(snapshot, alarms, notices, list(self._trace))

    # -- actions ------------------------------------------------------------------------

    async def sign_in(self, operator: str, pin: str) -> None:
        """Sign in on this connection (the service checks the PIN); DevicectlError if refused."""
        if self.client is None:
            raise DevicectlError("not connected to the station")
        result = await self.client.call("sign_in", operator_id=operator, pin=pin)
        self.operator_token = result.get("token")
        self.operator_id = result.get("operator_id", operator)
        session = self.client.state.get("session")
        if session is None or session.get("state") in FINISHED_STATES:
            await self._start_session()

    async def _start_session(self) -> None:
        """Load this console's protocol and start a session with it (the signed-in
        operator's); a refusal is a DevicectlError with the station's reasons."""
        assert self.client is not None
        try:
            if self.protocol is None:
                await self.client.call("load_protocol", name=DEFAULT_PROTOCOL)
            else:
                text = self.protocol.read_text(encoding="utf-8")
                await self.client.call("load_protocol", toml=text)
            await self.client.call("start_session")
        except StationError as exc:
            problems = (exc.data or {}).get("problems") if isinstance(exc.data, dict) else None
            raise DevicectlError("; ".join(problems or [exc.message])) from exc

    def _call(self, method: str, **params: Any) -> asyncio.Task[Any] | None:
        """Call ``method`` without waiting; a refusal becomes a notice."""
        client = self.client
        if client is None:
            self._notices.append(f"{method}: not connected to the station")
            return None

        async def call() -> Any:
            try:
                return await client.call(method, **params)
            except StationError as exc:
                self._notices.append(f"{method}: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
                self._notices.append(f"{method}: {exc}")
            return None

        task = asyncio.ensure_future(call())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def estop(self, operator: str | None) -> None:
        self._call("estop")

    def send(self, target: str, action: str, operator: str | None, **args: Any) -> None:
        """A console command as its API call: session actions by name, the desk's
        ``acknowledge`` with its device, a device's own key (``fire``)."""
        if target == "session" and action in SESSION_METHODS:
            self._call(action)
        elif action == "acknowledge":
            device = args.get("device")
            self._call("acknowledge", **({"device": device} if device else {}))
        elif action == "alarm_ack":
            return  # the alarm list is this console's own; the station keeps no per-client one
        elif action == "alarm_silence":
            self._call("silence", seconds=args.get("seconds"))  # recorded by the station
        elif action in DEVICE_METHODS:
            self._call(action)
        else:
            self._notices.append(f"{target} {action}: not in the station API")

    def close(self) -> None:
        """Drop the connection; the station and its session carry on."""
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(RuntimeError):
                task = asyncio.ensure_future(client.close())
                self._tasks.add(task)

    async def aclose(self) -> None:
        self.close()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=5.0)
