"""Shared test set-up: quiet, file-only logging so tests never print log lines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from devicectl.logs import configure_logging
from tests.run_stash import COLLECTED_KEY, SUMMARY_KEY

# In CI the property tests run the same examples every time (derandomised), so a
# red run can be repeated; locally hypothesis explores and prints any failing seed.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else "dev")


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


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep every collected node id, before ``-k``/``-m`` deselect any (test_safety_doc.py)."""
    config.stash[COLLECTED_KEY] = frozenset(item.nodeid for item in items)
