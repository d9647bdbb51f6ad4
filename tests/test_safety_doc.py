"""docs/safety.md cites tests as evidence; every one it cites must exist.

A citation is a backquoted ``test_file.py::test_name`` (optionally ``tests/``
first, optionally ``[parameter]`` after). The file and the test function (at
module level or in a class) are checked in every run, by reading the test files'
syntax trees: cheap, and independent of which tests this run collected. A
``[parameter]`` is checked against the ids pytest collected in this session
(before ``-k``/``-m`` deselection) when that file was collected too: always in a
run of the whole suite.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.run_stash import COLLECTED_KEY

TESTS = Path(__file__).resolve().parent
SAFETY = TESTS.parent / "docs" / "safety.md"
CITATION = re.compile(r"`(?:tests/)?(test_[A-Za-z0-9_]+\.py)::(test_[A-Za-z0-9_]+)(\[[^`]*\])?`")


def citations() -> list[tuple[str, str, str]]:
    """Every (file, function, parameter or "") cited in docs/safety.md, in order, once."""
    found = CITATION.findall(SAFETY.read_text(encoding="utf-8"))
    return list(dict.fromkeys(found))


@cache
def functions_in(file_name: str) -> frozenset[str]:
    tree = ast.parse((TESTS / file_name).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
    return frozenset(names)


def test_the_safety_case_cites_tests() -> None:
    cited = citations()
    assert len(cited) > 100, "the citation pattern no longer matches docs/safety.md"
    assert ("test_hil_fault_matrix.py", "test_fault_ends_safe_within_its_bound", "") in cited


def test_every_test_cited_in_the_safety_case_exists(request: pytest.FixtureRequest) -> None:
    collected = request.config.stash.get(COLLECTED_KEY, frozenset())
    collected_files = {nodeid.split("::", 1)[0] for nodeid in collected}
    missing = []
    for file_name, function, param in citations():
        if not (TESTS / file_name).is_file():
            missing.append(f"{file_name} (no such file)")
            continue
        if function not in functions_in(file_name):
            missing.append(f"{file_name}::{function} (no such test)")
            continue
        where = f"tests/{file_name}"
        if param and where in collected_files:
            ids = (n for n in collected if n.startswith(where + "::"))
            if not any(n.endswith(f"::{function}{param}") for n in ids):
                missing.append(f"{file_name}::{function}{param} (no such parameter)")
    assert not missing, "docs/safety.md cites tests that do not exist:\n" + "\n".join(missing)
