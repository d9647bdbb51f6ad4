"""``devicectl console --station S --serve``: the console in a browser, for a tablet at the chair.

textual-serve runs one console process per browser connection and relays its
screen over a WebSocket. Here every one of those consoles is a client of the
one station service ``S`` (``--station``): a tab owns no device, a second tab
is a second client of the same station (not a second controller), and a
reloaded page is a new client that shows the running session. The serving
process opens nothing either: it only starts consoles.

What is changed from textual-serve's own page (``web/app_index.html``):

- no font from another host (textual-serve's page loads Roboto Mono from
  Google Fonts; a clinic may be offline): the font textual-serve ships is
  served from here;
- no absolute URL with the listening address: assets are ``/static/...`` on
  the page's own origin, and the WebSocket URL is built from the request's
  ``Host`` (``ws://`` or, behind a TLS proxy that says so, ``wss://``), so a
  page reached through a forwarded name works;
- the page plays the alarm sound (Web Audio) when the console signals a burst
  (see ``app.py``'s ``WEB_ALARM_SIGNAL`` and ``audible.py``);
- the WebSocket is refused (403) when the browser's ``Origin`` is not the
  page's own (textual-serve accepts any WebSocket: another site open in the
  tablet's browser could otherwise drive the console).

The server listens on 127.0.0.1 only: a tablet reaches it through the clinic's
own forwarding (or a browser on the chair's computer), never an open port on
the network. Who may act is the station's business: each console asks for the
operator's id and PIN (``sign_in``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"
_RUN_CLI = "from devicectl.cli import main; main()"
WEB = Path(__file__).parent / "web"


def console_command(argv: list[str]) -> str:
    """The shell command that runs ``devicectl`` with ``argv`` minus ``--serve`` and ``--port``."""
    args: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--serve" or arg.startswith("--port="):
            continue
        elif arg == "--port":
            skip = True
        else:
            args.append(arg)
    return shlex.join([sys.executable, "-c", _RUN_CLI, *args])


def web_alarm_patterns() -> dict[str, dict[str, Any]]:
    """The alarm bursts the page plays (``audible.PATTERNS``), by priority name."""
    from devicectl.console.audible import PATTERNS

    return {
        priority.name.lower(): {
            "pulses_s": list(burst.pulses_s),
            "pulse_len_s": burst.pulse_len_s,
            "pitch_hz": burst.pitch_hz,
        }
        for priority, burst in PATTERNS.items()
    }


def make_server(command: str, *, port: int, host: str = HOST) -> Any:
    """A textual-serve server of ``command`` with devicectl's page (see the module doc)."""
    import aiohttp_jinja2
    from aiohttp import web
    from textual_serve.server import Server, to_int

    class ConsoleServer(Server):
        @aiohttp_jinja2.template("app_index.html")
        async def handle_index(self, request: web.Request) -> dict[str, Any]:
            secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
            ws_path = request.app.router["websocket"].url_for()
            return {
                "font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": f"{'wss' if secure else 'ws'}://{request.host}{ws_path}",
                "config": {"static": {"url": "/static/"}},
                "application": {"name": self.title},
                "alarm_patterns": web_alarm_patterns(),
            }

        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            origin = request.headers.get("Origin")
            if origin is not None and urlsplit(origin).netloc != request.host:
                raise web.HTTPForbidden(text="origin not allowed")
            return await super().handle_websocket(request)

    return ConsoleServer(
        command, host=host, port=port, title="devicectl console", templates_path=WEB
    )


def serve_console(argv: list[str], *, port: int) -> None:
    """Serve the console on http://127.0.0.1:PORT until Ctrl-C or SIGTERM."""
    server = make_server(console_command(argv), port=port)
    print(f"devicectl console served at http://{HOST}:{port} (Ctrl-C stops)", flush=True)
    server.serve()
