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

from devicectl.errors import DevicectlError
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
