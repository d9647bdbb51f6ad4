"""``records list`` and ``records export`` options, on small scripted records."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from devicectl import cli
from devicectl.errors import ConfigError
from devicectl.records import RecordStore
from tests.records_scenario import write_session


def _db(tmp_path: Path) -> tuple[Path, list[str]]:
    db = tmp_path / "records.sqlite"
    with RecordStore.open(str(db)) as store:
        ids = [
            write_session(store, ticks=5, per_tick=2),
            write_session(
                store,
                ticks=5,
                per_tick=2,
                outcome="interrupted",
                operator_id="tech-supervisor-0042",
            ),
        ]
    return db, ids


def test_records_list_fits_80_columns(tmp_path: Path) -> None:
    db, ids = _db(tmp_path)
    env = {**os.environ, "COLUMNS": "80", "DEVICECTL_LOG": str(tmp_path / "log.jsonl")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "devicectl"), "records", "list", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, done.stdout
    assert "…" not in done.stdout, done.stdout  # nothing cut short
    for sid in ids:
        row = next(line for line in lines if sid[:12] in line)
        # id, start (to the minute, UTC), outcome and event count all on the id's line
        assert any(o in row for o in ("complete", "interrupted")), row
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", row), row
        assert row.rstrip().split()[-1].isdigit(), row


def test_records_export_no_traces_and_no_jsonl(tmp_path: Path) -> None:
    db, ids = _db(tmp_path)
    log = str(tmp_path / "log.jsonl")
    runner = CliRunner()
    full = runner.invoke(cli.app, ["--log-file", log, "records", "export", ids[0], "--db", str(db)])
    bare = runner.invoke(
        cli.app,
        ["--log-file", log, "records", "export", ids[0], "--jsonl", "--no-traces", "--db", str(db)],
    )
    assert full.exit_code == 0 and bare.exit_code == 0
    kinds = [json.loads(line)["record"] for line in full.stdout.splitlines()]
    bare_kinds = [json.loads(line)["record"] for line in bare.stdout.splitlines()]
    assert "trace" in kinds and "trace" not in bare_kinds
    assert bare_kinds == [k for k in kinds if k != "trace"]
    refused = runner.invoke(
        cli.app, ["--log-file", log, "records", "export", ids[0], "--no-jsonl", "--db", str(db)]
    )
    assert refused.exit_code != 0 and isinstance(refused.exception, ConfigError)
    assert "JSON lines is the only export format" in str(refused.exception)
