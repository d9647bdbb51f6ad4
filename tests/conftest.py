"""Shared test set-up: quiet, file-only logging so tests never print log lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devicectl.logs import configure_logging
from tests.pty_rig import SUMMARY_KEY


@pytest.fixture(autouse=True, scope="session")
def _logging_to_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = configure_logging(log_file=tmp_path_factory.mktemp("logs") / "devicectl.jsonl")
    yield path


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print what tests left for the reader (the HIL fault matrix's count and bounds)."""
    lines = config.stash.get(SUMMARY_KEY, [])
    if lines:
        terminalreporter.section("measured")
        for line in lines:
            terminalreporter.write_line(line)
