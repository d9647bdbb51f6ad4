"""``devicectl console --serve``: the same console in a browser, for a tablet at the chair.

textual-serve runs the console as a subprocess per browser connection (each
page load is its own console, with its own station and sign-in) and relays
its screen over a websocket. The command it runs is this same command line
without ``--serve``/``--port``, on this same Python. The server listens on
127.0.0.1 only: a tablet reaches it through the clinic's own forwarding (or a
browser on the chair's computer), never an open port on the network.

Real devices (``--device``) can be opened by one console at a time: a second
browser page gets "could not exclusively lock port" from its own console.
"""

from __future__ import annotations

import shlex
import sys

HOST = "127.0.0.1"
_RUN_CLI = "from devicectl.cli import main; main()"


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


def serve_console(argv: list[str], *, port: int) -> None:
    """Serve the console on http://127.0.0.1:PORT until Ctrl-C or SIGTERM."""
    from textual_serve.server import Server

    command = console_command(argv)
    server = Server(command, host=HOST, port=port, title="devicectl console")
    print(f"devicectl console served at http://{HOST}:{port} (Ctrl-C stops)", flush=True)
    server.serve()
