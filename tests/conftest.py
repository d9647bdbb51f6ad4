"""Shared test set-up: quiet, file-only logging so tests never print log lines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from devicectl.logs import configure_logging
from tests.run_stash import COLLECTED_KEY, SUMMARY_KEY
from tests.xdist_groups import GroupIds

# In CI the property tests run the same examples every time (derandomised), so a
# red run can be repeated; locally hypothesis explores and prints any failing seed.
# Neither has a deadline: a test asserts no time (an example that took 0.5 s on a
# loaded host failed as "flaky" while it passed in 0.02 s when repeated).
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
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


# Modules that run devices in real time, serve them on ptys in real time or start
# processes that do: with pytest-xdist they all run on one worker (``--dist
# loadgroup``), one test at a time, so two real-time tests never compete for the
# CPU with each other. The fault matrix is not among them: it serves its
# simulators on ptys but runs them, and judges every bound, in simulated time (a
# reply may take 0.5 s of wall time before it counts as lost; see
# ``test_hil_fault_matrix.py``). Its premise, that a pty round trip takes no
# simulated time, asserts a wall-clock wait and stays with the real-time tests
# (``REALTIME_TESTS``).
REALTIME_MODULES = frozenset(
    {
        "test_cli_device_config.py",
        "test_console_browser.py",
        "test_console_cli.py",
        "test_console_real_ports.py",
        "test_console_signals.py",
        "test_console_station.py",
        "test_fourth_modality.py",
        "test_hil_kill.py",
        "test_hil_signals.py",
        "test_hil_unplug.py",
        "test_led_stock_pymodbus.py",
        "test_loop_lateness.py",
        "test_pytest_plugin.py",
        "test_records_postgres.py",
        "test_sim_serve.py",
        "test_station_clients.py",
        "test_station_service.py",
        "test_station_silence.py",
    }
)
REALTIME_TESTS = frozenset(
    {
        "test_console_session.py::test_without_fast_the_simulators_run_in_real_time",
        "test_hil_fault_matrix.py::test_sim_time_stands_still_while_a_reply_is_in_flight",
    }
)
# Modules whose tests share an expensive module-scoped fixture (a whole simulated
# session, a wheel built and installed, a package installed): one xdist work unit
# each, so the fixture is set up once, not once on each worker that runs one of them.
SHARED_SETUP_MODULES = frozenset(
    {
        "test_cli.py",
        "test_hil_fault_matrix.py",
        "test_records_chain.py",
        "test_records_traces.py",
        "test_third_party_driver.py",
        "test_wheel.py",
    }
)


def xdist_group_of(path_name: str, test_name: str) -> str | None:
    """The xdist group a test runs in (None: any worker, one test at a time)."""
    if path_name in REALTIME_MODULES or f"{path_name}::{test_name}" in REALTIME_TESTS:
        return "realtime"
    if path_name in SHARED_SETUP_MODULES:
        return path_name
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep every collected node id, before ``-k``/``-m`` deselect any (test_safety_doc.py),
    and put each test in its xdist group (``xdist_group_of``)."""
    config.stash[COLLECTED_KEY] = frozenset(item.nodeid for item in items)
    for item in items:
        group = xdist_group_of(
            item.path.name, item.originalname if isinstance(item, pytest.Function) else item.name
        )
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(GroupIds(), "devicectl-xdist-group-ids")
