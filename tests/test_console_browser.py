"""The served console in a real browser: headless Chromium (Debian's ``chromium``)
driven by Playwright, against ``devicectl console --station SOCK --serve``.

The station service owns the RF simulator (its own process, on a pty); the page
is one more client of it. Sign in, start RF, press E-stop in the page: the RF
output is off at the far end of the pty, and the page plays the HIGH alarm burst.
Screenshots go to the test's tmp folder, or to the folder ``DEVICECTL_SCREENSHOTS``
names: ``DEVICECTL_SCREENSHOTS=docs/screenshots`` refreshes the README's pictures (a
plain test run leaves the working tree as it was).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_console_station import SimRig, rig  # noqa: F401 - the fixture

from tests.served_process import devicectl_script
from tests.test_station_service import PIN

CHROMIUM = Path("/usr/bin/chromium")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[PX^_].*?\x1b\\\\|\x1b\][^\x07]*\x07")

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.xdist_group("realtime"),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(rig: SimRig) -> Iterator[tuple[SimRig, int]]:  # noqa: F811
    port = free_port()
    proc = subprocess.Popen(
        [
            *(devicectl_script(), "console", str(rig.tmp / "rf.toml")),
            *("--station", str(rig.sock), "--serve", "--port", str(port)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(rig.tmp / "serve.stderr", "ab"),  # noqa: SIM115 - closed with the process
        cwd=rig.tmp,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the served console never listened"
                assert proc.poll() is None, (rig.tmp / "serve.stderr").read_text()
                time.sleep(0.1)
        yield rig, port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_page_signs_in_starts_rf_and_its_estop_stops_it(served: tuple[SimRig, int]) -> None:
    from playwright.sync_api import sync_playwright

    station, port = served
    shots = Path(os.environ.get("DEVICECTL_SCREENSHOTS") or station.tmp / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}/"
    # The page names no other host (fonts) and no listening address: its URLs follow
    # the Host the browser used (here a forwarded name).
    request = urllib.request.Request(url, headers={"Host": f"chair-7.local:{port}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        html = response.read().decode()
    assert "fonts.googleapis" not in html and "127.0.0.1" not in html
    assert f'"ws://chair-7.local:{port}/ws"' in html and '"/static/js/textual.js"' in html
    assert "devicectl-alarm" in html and '"pulses_s": [0.0, 0.2, 0.4, 0.8' in html
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # xterm.js draws on a canvas: the page's text is read from what the console
            # sends it over the page's WebSocket (escape sequences taken out).
            screen: list[str] = []

            def on_frame(payload: str | bytes) -> None:
                raw = payload.decode("utf-8", "ignore") if isinstance(payload, bytes) else payload
                screen.append(ANSI.sub("", raw))

            page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
            page.goto(url)

            def text() -> str:
                return "".join(screen)

            def wait_text(what: str, timeout_s: float = 30.0) -> None:
                deadline = time.monotonic() + timeout_s
                while what not in text():
                    assert time.monotonic() < deadline, (
                        f"{what!r} not on the page: {text()[-3000:]}"
                    )
                    page.wait_for_timeout(200)

            wait_text("Operator id")
            page.locator("#terminal").click()  # keys go to the focused terminal
            page.wait_for_timeout(500)
            # A person types at a person's pace; the terminal's round trip to the
            # console carries each key, and Enter moves the focus to the PIN field.
            page.keyboard.type("tech", delay=80)
            page.keyboard.press("Enter")
            page.wait_for_timeout(800)
            page.keyboard.type(PIN, delay=80)
            page.wait_for_timeout(300)
            page.keyboard.press("Enter")
            wait_text("signed in as tech")
            page.screenshot(path=str(shots / "console-station-signed-in.png"))
            wait_text("press A")
            page.keyboard.press("a")
            wait_text("press S")
            page.keyboard.press("s")
            deadline = time.monotonic() + 20
            while not station.output_on():
                assert time.monotonic() < deadline, "RF output never on"
                page.wait_for_timeout(100)
            wait_text("OUTPUT ON")
            page.screenshot(path=str(shots / "console-station-rf-on.png"))
            page.keyboard.press("Escape")
            deadline = time.monotonic() + 2
            while station.output_on():
                assert time.monotonic() < deadline, f"RF output still on: {station.output_log()}"
                time.sleep(0.02)
            wait_text("EMERGENCY STOP by tech")
            page.screenshot(path=str(shots / "console-station-after-estop.png"))
            # The E-stop is a HIGH alarm: the page played its burst (Web Audio).
            deadline = time.monotonic() + 10
            while "high" not in page.evaluate("window.devicectlAlarmsPlayed || []"):
                assert time.monotonic() < deadline, "the page played no HIGH alarm burst"
                page.wait_for_timeout(100)
        finally:
            browser.close()
