"""structlog, configured once: JSON lines to a file, readable lines on the terminal.

The log file is ``$DEVICECTL_LOG`` if set, else ``./devicectl-logs/devicectl.jsonl``
(``--log-file`` on the command line overrides both). Terminal output is shown
only with ``--verbose``. Every line carries the logger's bound context:
``device`` for a controller, ``session_id`` once a session binds it, and
``step`` (the protocol step's number, from 1) while a session step runs.

Logging is configured by the command line (``main_options``) or by an explicit
:func:`configure_logging`. A program that uses the Python API without either
gets :func:`ensure_logging` from the API: JSON lines to the default file and
nothing on stdout or stderr (structlog's own default prints every line to
stdout). A program that configured structlog itself keeps its configuration.

Debug-level events (every power command) are filtered out cheaply unless
``verbose`` asks for them; the loop never formats a line nobody will read.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

DEFAULT_LOG_PATH = Path("devicectl-logs") / "devicectl.jsonl"


def default_log_path() -> Path:
    env = os.environ.get("DEVICECTL_LOG")
    return Path(env) if env else DEFAULT_LOG_PATH


class _Tee:
    """Render once per destination: JSON to the file, console text to stderr."""

    def __init__(self, file: TextIO, console: TextIO | None) -> None:
        self._file = file
        self._console = console
        self._json = structlog.processors.JSONRenderer()
        self._pretty = structlog.dev.ConsoleRenderer(
            colors=console is not None and console.isatty()
        )

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        if self._console is not None:
            self._console.write(str(self._pretty(logger, method, dict(event_dict))) + "\n")
        self._file.write(str(self._json(logger, method, event_dict)) + "\n")
        self._file.flush()
        return ""


class _NullLogger:
    def msg(self, message: str) -> None:
        """The processors already wrote the line."""

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def configure_logging(
    *, log_file: Path | None = None, verbose: bool = False, console: TextIO | None = None
) -> Path:
    """Configure structlog for the whole process; returns the log file path."""
    path = log_file or default_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8")
    level = logging.DEBUG if verbose else logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _Tee(handle, (console or sys.stderr) if verbose else None),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _NullLogger(),
        cache_logger_on_first_use=True,
    )
    return path


def ensure_logging() -> Path | None:
    """File-only logging (the default file, nothing on the terminal) when nobody has
    configured structlog yet; None, changing nothing, when somebody has.

    The Python API calls this before a session: a script's stdout is its own.
    """
    if structlog.is_configured():
        return None
    return configure_logging()
