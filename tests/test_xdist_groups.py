"""The suite's xdist groups: on a worker, a grouped test's node id ends with its group,
which is how ``--dist loadgroup`` sends a whole group to one worker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from _pytest.nodeid import NodeId

from tests.xdist_groups import GroupIds


class Item:
    """The parts of a pytest 9 item the hook uses: ``nodeid`` is read from ``_id``."""

    def __init__(self, nodeid: str, group: str | None) -> None:
        self._id = NodeId.parse(nodeid)
        self._group = group

    @property
    def nodeid(self) -> str:
        return str(self._id)

    def get_closest_marker(self, name: str) -> Any:
        assert name == "xdist_group"
        return pytest.mark.xdist_group(self._group).mark if self._group else None


def ids(loadgroup: bool) -> list[str]:
    items = [Item("tests/test_x.py::test_a[1]", "realtime"), Item("tests/test_x.py::test_b", None)]
    config = SimpleNamespace(option=SimpleNamespace(loadgroup=loadgroup))
    GroupIds().pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    return [item.nodeid for item in items]


def test_on_a_worker_a_grouped_test_s_node_id_names_its_group() -> None:
    assert ids(loadgroup=True) == ["tests/test_x.py::test_a[1]@realtime", "tests/test_x.py::test_b"]


def test_without_loadgroup_the_node_ids_stay() -> None:
    assert ids(loadgroup=False) == ["tests/test_x.py::test_a[1]", "tests/test_x.py::test_b"]
