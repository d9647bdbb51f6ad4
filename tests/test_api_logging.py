"""The Python API writes its log to the log file, never to the program's stdout.

Runs the README's Python API example in a fresh interpreter (no logging
configured, as in a user's script) and checks that stdout holds exactly the
example's one printed line. The example runs RF Express instead of Pore Patrol
(same code path, a shorter session) so the test stays well inside its budget.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_api_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    example = next(b for b in blocks if "run_protocol_file" in b)
    assert '"protocols/pore-patrol.toml"' in example
    return example.replace(
        '"protocols/pore-patrol.toml"', repr(str(ROOT / "protocols" / "rf-express.toml"))
    )


def test_readme_api_example_prints_only_its_result(tmp_path: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k != "DEVICECTL_LOG"}
    done = subprocess.run(
        [sys.executable, "-c", readme_api_example()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, lines[:5]
    session_id, outcome, faults = lines[0].split(" ", 2)
    assert re.fullmatch(r"[0-9a-f]{32}", session_id)
    assert outcome == "complete" and faults == "[]"
    assert done.stderr == ""
    # ... and the log went to its default file.
    log = tmp_path / "devicectl-logs" / "devicectl.jsonl"
    assert session_id in log.read_text(encoding="utf-8")


def test_api_keeps_a_configuration_the_program_made() -> None:
    code = (
        "import structlog\n"
        "structlog.configure(processors=[structlog.processors.KeyValueRenderer()])\n"
        "from devicectl.logs import ensure_logging\n"
        "print(ensure_logging())\n"
        "structlog.get_logger().info('mine')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == ["None", "event='mine'"]
