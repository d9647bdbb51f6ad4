"""Keys of what tests leave in ``config.stash`` for each other and for ``conftest.py``.

They live in a module of their own: pytest imports ``conftest.py`` as the module
``conftest``, so a key defined there and imported as ``tests.conftest`` would be
a second, different key.
"""

from __future__ import annotations

import pytest

SUMMARY_KEY = pytest.StashKey[list[str]]()  # lines printed at the end of a run (conftest.py)
COLLECTED_KEY = pytest.StashKey[frozenset[str]]()  # every node id collected, before -k/-m
