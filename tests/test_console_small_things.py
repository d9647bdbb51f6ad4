"""The console's small things: the trace of the device under treatment, one confirm
key, a prompt at once after a resume, simulators named so, a long fault kept off
the prompt line, keys typed while the console starts, and a page with no other host."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from console_helpers import (
    PORE_PATROL,
    SIZE,
    EventLog,
    answer_prompt,
    make_app,
    press,
    sign_in,
    wait_for,
)
from console_scenarios import (
    IPL_ONLY,
    RF_THEN_LED,
    device,
    protocol,
    session,
    shown,
    wait_awaiting,
)
from textual import events
from textual.widgets import Input

from devicectl.clock import PacedSimClock
from devicectl.console.app import ConsoleApp
from devicectl.console.backend import ConsoleBackend, ConsoleConfig
from devicectl.console.panels import FAULT_CHARS, render_prompt
from devicectl.console.screens import HelpScreen, SignInScreen
from devicectl.console.snapshot import SessionView


def test_the_led_step_traces_the_led_skin_not_the_idle_rf_sensors(tmp_path: Path) -> None:
    app = make_app(protocol=protocol(tmp_path, RF_THEN_LED))
    clock = app.backend.station.clock
    assert isinstance(clock, PacedSimClock)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            for action in ("arm", "start"):
                await answer_prompt(pilot, app, action)
            # The RF trace shows while the session waits at the next-zone prompt (the
            # LED step is not loaded yet, so nothing newer can replace it).
            await wait_awaiting(pilot, app, "next_zone")
            await wait_for(pilot, lambda: "RF skin" in shown(app, "trace-label"))
            for action in ("next_zone", "arm", "start"):
                await answer_prompt(pilot, app, action)
            await wait_awaiting(pilot, app, "start")
            clock.set_speed(20)
            await answer_prompt(pilot, app, "start")
            await wait_for(pilot, lambda: device(app, "led").state == "delivering")
            # the trace samples every TRACE_PERIOD_S: generous on a loaded machine
            await wait_for(pilot, lambda: "LED skin" in shown(app, "trace-label"), timeout_s=60.0)
            assert "RF skin" not in shown(app, "trace-label")

    asyncio.run(scenario())


def test_eye_protection_is_confirmed_with_c_and_a_says_which_key(tmp_path: Path) -> None:
    app = make_app(protocol=protocol(tmp_path, IPL_ONLY))

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await wait_for(pilot, lambda: session(app).awaiting is not None)
            assert session(app).awaiting == "confirm"
            assert "press C" in shown(app, "prompt")
            await press(pilot, "a")
            wanted = "A does not answer this prompt: press C (confirm: eye protection on"
            await wait_for(pilot, lambda: any(n.startswith(wanted) for n in app.notices))
            assert session(app).awaiting == "confirm"
            await press(pilot, "c")
            await wait_for(
                pilot, lambda: device(app, "ipl").state in ("charging", "armed", "paused")
            )

    asyncio.run(scenario())


def test_a_resumed_rf_step_asks_its_next_prompt_in_the_tick_it_resumes(tmp_path: Path) -> None:
    app = make_app(protocol=protocol(tmp_path, RF_THEN_LED))
    log = EventLog()
    app.backend.station.loop.subscribe(log)
    clock = app.backend.station.clock
    assert isinstance(clock, PacedSimClock)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app)
            await answer_prompt(pilot, app, "arm")
            await wait_awaiting(pilot, app, "start")
            # The zone in real time: unpaced, its few seconds of delivery can pass
            # between two of the console's polls.
            clock.set_speed(1)
            await answer_prompt(pilot, app, "start")
            await wait_for(pilot, lambda: device(app, "rf").state == "delivering")
            await press(pilot, "escape")
            await wait_for(pilot, lambda: session(app).state == "faulted")
            await press(pilot, "k")
            await wait_for(pilot, lambda: device(app, "rf").state == "idle")
            await press(pilot, "r")
            await wait_for(pilot, lambda: session(app).awaiting == "next_zone")

    asyncio.run(scenario())
    states = [
        (e.t_s, e.data["state"])
        for e in log.events
        if e.kind == "session_state" and e.device == "session"
    ]
    faulted = next(i for i, (_, state) in enumerate(states) if state == "faulted")
    resumed_s, resumed = states[faulted + 1]
    asked_s, asked = states[faulted + 2]
    assert (resumed, asked) == ("running", "waiting_confirm")
    assert asked_s == resumed_s  # no seconds of a screen that asks for nothing


def test_sim_url_devices_are_named_simulators_not_real_devices(tmp_path: Path) -> None:
    devices = {kind: f"sim://{kind}" for kind in ("rf", "ipl", "led")}
    config = ConsoleConfig(PORE_PATROL, devices=devices, fast=True, speed=0, record=False)
    assert "real" not in config.mode and config.mode.startswith("simulators")
    mixed = ConsoleConfig(PORE_PATROL, devices={"rf": "/dev/ttyUSB0", "led": "sim://led"})
    assert mixed.mode == "real devices (rf), simulators (led)"
    app = ConsoleApp(ConsoleBackend(config), poll_s=0.05)

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, SignInScreen))
            said = str(app.screen.query_one("#signin-mode").render())
            assert said.startswith("devices: simulators") and "real" not in said

    asyncio.run(scenario())


def test_a_long_fault_is_cut_on_the_prompt_line_and_whole_in_the_alarm_list() -> None:
    operator = "tech-" + "x" * 90  # the E-stop's fault message names the operator
    app = make_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await sign_in(pilot, app, operator)
            await wait_for(pilot, lambda: session(app).awaiting is not None)
            await press(pilot, "escape")
            await wait_for(pilot, lambda: session(app).state == "faulted")
            await wait_for(pilot, lambda: operator in shown(app, "alarms"))
            first_line = shown(app, "prompt").splitlines()[0]
            assert "…" in first_line and operator not in first_line
            assert "press K to acknowledge" in first_line
            assert len(first_line) < len("SESSION  FAULTED  ") + FAULT_CHARS + 30

    asyncio.run(scenario())
    long = SessionView("P", "t", "faulted", 1, None, None, "rf: " + "y" * 300, ())
    assert len(render_prompt(long).plain.splitlines()[0]) < 100


def test_keys_typed_while_the_console_starts_go_to_the_sign_in(tmp_path: Path) -> None:
    app = make_app()
    start = app.backend.start

    def start_with_keys_typed() -> None:
        # What a served page sends while the console process is still starting.
        for key in "hk-1":
            app.post_message(events.Key(key, key))
        start()

    app.backend.start = start_with_keys_typed  # type: ignore[method-assign]

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            field = app.screen.query_one("#operator", Input)
            await wait_for(pilot, lambda: field.value == "hk-1")
            assert not any(isinstance(s, HelpScreen) for s in app.screen_stack)
            await press(pilot, "enter")
            await wait_for(pilot, lambda: app.operator == "hk-1")

    asyncio.run(scenario())


def test_the_served_page_asks_no_other_host_and_keeps_early_keys() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from devicectl.console.serve import WEB, make_server

    async def fetch() -> tuple[str, str]:
        server = make_server("true", port=0)
        client = TestClient(TestServer(await server._make_app()))
        await client.start_server()
        try:
            page = await client.get("/", headers={"Host": "chair-7.local:8000"})
            js = await client.get("/static/js/textual.js")
            return await page.text(), await js.text()
        finally:
            await client.close()

    html, js = asyncio.run(fetch())
    # Every URL of the page is its own origin's: no font host, no listening address.
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", html) + re.findall(r"url\(([^)]+)\)", html)
    assert urls and all(u.strip("\"'").startswith("/static/") for u in urls), urls
    assert "googleapis" not in html and "gstatic" not in html
    assert "googleapis" not in js and "gstatic" not in js
    assert '"ws://chair-7.local:8000/ws"' in html
    # Keys typed while the WebSocket connects are held, then sent once it is open.
    assert "WebSocket.CONNECTING" in html and "devicectlHeld" in html
    assert (WEB / "app_index.html").read_text(encoding="utf-8").count("https://") == 0
