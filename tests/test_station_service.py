"""The station service with real clients: a served RF simulator on a pty, the service
in its own process (``devicectl station serve --device rf=/dev/pts/N``), clients over
its Unix socket (and TCP on 127.0.0.1). What the RF output does is read at the far
end of the pty, from the simulator's own output log.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from websockets.exceptions import InvalidMessage, InvalidStatus

from devicectl.errors import RecordError
from devicectl.plugins import SIMULATOR_GROUP, load_plugin
from devicectl.records.store import RecordStore
from devicectl.station.auth import Operator, OperatorStore
from devicectl.station.client import StationError, SyncStationClient
from devicectl.station.service import StationService
from devicectl_simulators.pty_server import PtyServer
from tests.served_process import Served, devicectl_script

pytestmark = pytest.mark.timeout(180)  # each test starts the service and its devices in real time

START_S = 20.0
WATCHDOG_S = 0.25
SLACK_S = 0.35
PIN = "2468"
PROTOCOL = """\
[session]
name = "Station RF"
version = "1.0"
description = "One RF zone, long enough to act on while it delivers."

[[step]]
kind = "rf"
title = "RF forehead"
target_c = 42.0
hold_s = 60

[[step.zones]]
name = "forehead"
"""


class Rig:
    def __init__(self, tmp: Path, rf: PtyServer) -> None:
        self.tmp = tmp
        self.rf = rf
        self.sock = tmp / "station.sock"
        self.db = tmp / "records.sqlite"
        self.operators = tmp / "operators.json"
        self.service: Served | None = None
        self.serving: dict[str, Any] = {}

    def start(self, *extra: str) -> Served:
        env = {**os.environ, "DEVICECTL_LOG": str(self.tmp / "station.jsonl")}
        proc = subprocess.Popen(
            [
                *(devicectl_script(), "station", "serve", "--device", f"rf={self.rf.path}"),
                *("--unix", str(self.sock), "--tcp", "127.0.0.1:0"),
                *("--operators", str(self.operators), "--db", str(self.db)),
                # The longest reply timeout: a busy test machine is not a lost device.
                *("--port-timeout", "0.2"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "station.stderr", "ab"),  # noqa: SIM115 - closed with the process
            text=True,
            cwd=self.tmp,
            env=env,
        )
        self.service = Served(proc, self.tmp)
        self.serving = self.service.wait_for(lambda e: e.get("event") == "serving", START_S)
        return self.service

    def client(self, **kwargs: Any) -> SyncStationClient:
        return SyncStationClient(self.sock, **kwargs)

    def output_log(self) -> list[tuple[float, bool, str]]:
        return list(self.rf.inspect(lambda sim: list(sim.output_log)))

    def output_on(self) -> bool:
        return bool(self.rf.inspect(lambda sim: sim.output_on))

    def wait_output(self, on: bool, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.output_on() != on:
            assert time.monotonic() < deadline, f"RF output never {on}: {self.output_log()}"
            time.sleep(0.02)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = OperatorStore(tmp_path / "operators.json")
    store.add("sup", PIN, "supervisor")
    store.add("tech", PIN, "operator", by=Operator("sup", "supervisor"))
    factory = load_plugin(SIMULATOR_GROUP, "rf")
    server = PtyServer(functools.partial(factory, seed=3))
    server.start()
    rig = Rig(tmp_path, server)
    try:
        yield rig
    finally:
        if rig.service is not None:
            rig.service.cleanup()
        server.stop()


def deliver(client: SyncStationClient, rig: Rig) -> str:
    """Sign in, load the RF protocol, start, arm and start the zone: RF output on."""
    client.call("sign_in", operator_id="tech", pin=PIN)
    client.call("load_protocol", toml=PROTOCOL)
    session_id = str(client.call("start_session")["session_id"])
    for gate in ("arm", "start"):
        client.wait_for(lambda s, g=gate: (s.get("session") or {}).get("awaiting") == g)
        client.call(gate)
    rig.wait_output(True)
    return session_id


def test_two_clients_see_one_station_and_an_estop_from_either_stops_the_rf(rig: Rig) -> None:
    rig.start()
    with rig.client() as a, rig.client() as b:
        assert a.hello["api_version"] == 1
        assert set(a.hello["snapshot"]["devices"]) == {"rf"}
        session_id = deliver(a, rig)
        b.wait_for(lambda s: s["devices"]["rf"]["state"] == "delivering")
        assert b.state["session"]["session_id"] == session_id
        assert b.state["session"]["operator_id"] == "tech"
        # b has nobody signed in: the E-stop needs no sign-in.
        assert b.call("estop") == {"stopped": ["rf"]}
        rig.wait_output(False, timeout_s=1.0)
        assert rig.output_log()[-1][2] == "host"  # commanded off, not the watchdog
        for c in (a, b):
            c.wait_for(lambda s: s["devices"]["rf"]["state"] == "estop")
            c.wait_for(lambda s: s["session"]["state"] == "faulted")
        # A client that connects now gets the whole state first.
        with rig.client() as late:
            assert late.hello["snapshot"]["devices"]["rf"]["state"] == "estop"
            assert late.hello["snapshot"]["session"]["session_id"] == session_id


def test_foreign_origin_and_missing_token_are_refused_health_and_status_answer(
    rig: Rig,
) -> None:
    rig.start()
    with pytest.raises(InvalidStatus) as refused:
        rig.client(origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        rig.client(token="not-the-token")
    assert refused.value.response.status_code == 401
    base = rig.serving["url"].replace("ws://", "http://").rstrip("/")
    with urllib.request.urlopen(base + "/health", timeout=5) as response:
        assert json.load(response)["ok"] is True
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(base + "/status", timeout=5)
    assert denied.value.code == 401
    token = Path(rig.serving["token_file"]).read_text().strip()
    request = urllib.request.Request(base + "/status", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["snapshot"]["devices"]["rf"]["state"] == "idle"
    with rig.client() as c, pytest.raises(StationError) as wrong:
        c.call("sign_in", operator_id="tech", pin="0000")
    assert wrong.value.code == -32001


def test_an_unauthenticated_fire_is_refused_and_recorded(rig: Rig) -> None:
    service = rig.start()
    with rig.client() as a, rig.client() as b:
        a.call("sign_in", operator_id="tech", pin=PIN)
        a.call("load_protocol", toml=PROTOCOL)
        session_id = a.call("start_session")["session_id"]
        with pytest.raises(StationError) as refused:
            b.call("fire")
        assert refused.value.code == -32001
        with pytest.raises(StationError) as bad:
            a.call("load_protocol", toml=PROTOCOL.replace("42.0", "47.0"))
        assert bad.value.code == -32003 and bad.value.data["problems"]
        a.call("abort")
        a.wait_for(lambda s: s["session"]["state"] == "aborted")
    assert service.terminate() == 0
    with RecordStore.open(rig.db) as store:
        assert store.session(session_id).outcome == "aborted"
        events = store.events(session_id)
        refusals = [e for e in events if e.kind == "command_refused"]
        assert refusals and refusals[0].data["action"] == "fire", refusals
        assert store.verify(session_id)[0].ok


def test_no_attended_client_for_3_s_pauses_the_session(rig: Rig) -> None:
    rig.start()
    with rig.client() as watcher:
        a = rig.client()
        try:
            deliver(a, rig)
            operator_token = a.call("sign_in", operator_id="tech", pin=PIN)["token"]
        finally:
            a.close()
        gone_s = time.monotonic()
        rig.wait_output(False, timeout_s=6.0)
        assert time.monotonic() - gone_s >= 2.5  # not before the 3 s
        watcher.wait_for(lambda s: s["session"]["state"] == "paused")
        with pytest.raises(StationError):
            watcher.call("resume")  # only an operator resumes
        # A disconnect never ends the session: the operator reconnects with the token.
        with rig.client(token=operator_token) as back:
            assert back.hello["you"]["operator_id"] == "tech"
            assert back.hello["snapshot"]["session"]["state"] == "paused"


def test_kill9_mid_rf_watchdog_cuts_output_and_next_start_marks_interrupted(rig: Rig) -> None:
    service = rig.start()
    # A second service on the same port is refused with one line.
    second = subprocess.run(
        [
            *(devicectl_script(), "station", "serve", "--device", f"rf={rig.rf.path}"),
            *("--unix", str(rig.tmp / "other.sock"), "--db", str(rig.tmp / "other.sqlite")),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=rig.tmp,
    )
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "rf" in lines[0], second.stderr
    with rig.client() as a:
        session_id = deliver(a, rig)
        time.sleep(0.3)
        os.kill(service.proc.pid, signal.SIGKILL)
        kill_s = time.monotonic()
        service.proc.wait(timeout=10)
    rig.wait_output(False, timeout_s=2.0)
    t_off, on, reason = rig.output_log()[-1]
    assert (on, reason) == (False, "watchdog")
    assert t_off - kill_s <= WATCHDOG_S + SLACK_S
    service.cleanup()
    rig.service = None
    rig.sock.unlink(missing_ok=True)
    rig.start()
    assert rig.serving["interrupted"] == [session_id]
    verify = subprocess.run(
        [devicectl_script(), "records", "verify", "--db", str(rig.db)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=rig.tmp,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def self_signed_cert(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here with ``openssl req``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl on PATH to make a certificate (cryptography is no dependency)")
    cert, key = tmp / "station.crt", tmp / "station.key"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_tcp_with_a_certificate_serves_wss_and_refuses_plain_ws(rig: Rig) -> None:
    cert, key = self_signed_cert(rig.tmp)
    rig.start("--tls-cert", str(cert), "--tls-key", str(key))
    url = rig.serving["url"]
    assert url.startswith("wss://127.0.0.1:"), url
    token = Path(rig.serving["token_file"]).read_text().strip()
    trusted = ssl.create_default_context(cafile=str(cert))
    with SyncStationClient(url, token=token, ssl_context=trusted) as c:
        assert c.hello["api_version"] == 1
        assert c.hello["snapshot"]["devices"]["rf"]["state"] == "idle"
        c.call("sign_in", operator_id="tech", pin=PIN)
        assert c.hello["station"]["devices"] == ["rf"]
    base = url.replace("wss://", "https://").rstrip("/")
    with urllib.request.urlopen(base + "/health", timeout=5, context=trusted) as response:
        assert json.load(response)["ok"] is True
    # Without the station's CA the certificate is not trusted.
    with pytest.raises(ssl.SSLCertVerificationError):
        SyncStationClient(url, token=token, ssl_context=ssl.create_default_context())
    # Plain WebSocket to the TLS port: no handshake.
    plain = url.replace("wss://", "ws://")
    with pytest.raises((InvalidMessage, ConnectionError, OSError, TimeoutError)):
        SyncStationClient(plain, token=token, timeout_s=5.0)


NEW_PIN, MALLORY_PIN = "pin-of-tech-2", "pin-of-mallory"


def test_a_supervisor_enrols_over_the_api_and_an_operator_is_refused_and_recorded(
    rig: Rig,
) -> None:
    service = rig.start()
    with rig.client() as sup, rig.client() as tech:
        assert sup.hello["api_minor"] >= 1  # enrol_operator came in 1.1
        sup.call("sign_in", operator_id="sup", pin=PIN)
        added = sup.call("enrol_operator", operator_id="tech-2", pin=NEW_PIN, role="operator")
        assert added == {"operator_id": "tech-2", "role": "operator"}
        assert {"operator_id": "tech-2", "role": "operator"} in sup.call("list_operators")
        tech.call("sign_in", operator_id="tech", pin=PIN)
        tech.call("load_protocol", toml=PROTOCOL)
        session_id = tech.call("start_session")["session_id"]
        with pytest.raises(StationError) as refused:
            tech.call("enrol_operator", operator_id="mallory", pin=MALLORY_PIN, role="supervisor")
        assert refused.value.code == -32005
        with pytest.raises(StationError) as again:
            sup.call("enrol_operator", operator_id="tech-2", pin=NEW_PIN)
        assert again.value.code == -32002 and "already enrolled" in again.value.message
        tech.call("abort")
        tech.wait_for(lambda s: s["session"]["state"] == "aborted")
    with rig.client() as newcomer:
        assert newcomer.call("sign_in", operator_id="tech-2", pin=NEW_PIN)["role"] == "operator"
    assert service.terminate() == 0
    enrolled = {op.id: op.role for op in OperatorStore(rig.operators).list()}
    assert enrolled == {"sup": "supervisor", "tech": "operator", "tech-2": "operator"}
    with RecordStore.open(rig.db) as store:
        refusals = [e for e in store.events(session_id) if e.kind == "command_refused"]
        assert [(e.data["action"], e.data["operator_id"]) for e in refusals] == [
            ("enrol_operator", "tech")
        ], refusals
        assert store.verify(session_id)[0].ok
    log = [json.loads(line) for line in (rig.tmp / "station.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "command_refused" and e.get("operator_id") == "tech" for e in log)
    assert any(e.get("event") == "operator_enrolled" and e.get("by") == "sup" for e in log)
    assert not any(pin in json.dumps(e) for e in log for pin in (NEW_PIN, MALLORY_PIN))


def station_log(rig: Rig) -> list[dict[str, Any]]:
    path = rig.tmp / "station.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_full_collection_is_made_and_timed_between_sessions(rig: Rig) -> None:
    rig.start()
    with rig.client() as a:
        a.call("sign_in", operator_id="tech", pin=PIN)
        a.call("load_protocol", toml=PROTOCOL)
        a.call("start_session")
        a.wait_for(lambda s: (s.get("session") or {}).get("awaiting") == "arm")
        assert not [e for e in station_log(rig) if e.get("event") == "gc_full"]  # not during
        a.call("abort")
        a.wait_for(lambda s: s["session"]["state"] == "aborted")
        deadline = time.monotonic() + 10.0
        while not (full := [e for e in station_log(rig) if e.get("event") == "gc_full"]):
            assert time.monotonic() < deadline, "no full collection after the session"
            time.sleep(0.1)
    assert len(full) == 1, full
    assert full[0]["pause_ms"] >= 0.0
    log = station_log(rig)
    ended = [
        i
        for i, e in enumerate(log)
        if e.get("event") == "session_state" and e.get("state") == "aborted"
    ]
    assert ended and log.index(full[0]) > ended[0], "collected before the session ended"


def test_the_record_is_closed_once_when_its_close_and_the_shutdown_race() -> None:
    # The close two ticks after a session ends and the close at shutdown run on two
    # executor threads; the second must find the record closed, not end it again
    # (the store refuses: "cannot end session ...: it is already aborted").
    closed: list[str] = []

    class SlowWriter:
        def close(self, outcome: str) -> None:
            if closed:
                raise RecordError("records.sqlite", "cannot end session: it is already aborted")
            time.sleep(0.1)  # the commit of session_ended
            closed.append(outcome)

    class Recorder:
        def close(self) -> None:
            pass

    service = SimpleNamespace(
        _record_lock=threading.Lock(), recorder=Recorder(), writer=SlowWriter()
    )
    errors: list[BaseException] = []

    def finish() -> None:
        try:
            StationService._finish_record(service, "aborted")  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=finish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert errors == [] and closed == ["aborted"]
    assert service.writer is None and service.recorder is None
