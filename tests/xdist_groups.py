"""What puts each test of the suite in its xdist group (registered by ``conftest.py``)."""

from __future__ import annotations

import pytest
from _pytest.nodeid import NodeId


class GroupIds:
    """Puts each test in its xdist group, where pytest 9 reads it.

    pytest-xdist (3.8) groups a test by appending ``@group`` to its node id
    (``item._nodeid``); pytest 9 builds ``nodeid`` from ``item._id`` and ignores that,
    so ``--dist loadgroup`` spread every group over both workers (two real-time tests
    at once, a module fixture built on each worker). On the workers, after xdist's own
    hook, this sets the id xdist meant.
    """

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not getattr(config.option, "loadgroup", False):  # set on xdist workers only
            return
        for item in items:
            marker = item.get_closest_marker("xdist_group")
            if marker is None or "@" in item.nodeid:
                continue
            item._id = NodeId.parse(f"{item.nodeid}@{marker.args[0]}")  # type: ignore[attr-defined]
