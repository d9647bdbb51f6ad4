"""kill -9 during a device step: the record opens, verifies, holds every committed tick,
and the next start marks the session interrupted."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from devicectl.records.store import RecordStore
from devicectl.session.api import builtin_protocol, run_protocol_file

CHILD = """
import sys
from devicectl.logs import configure_logging
from pathlib import Path
configure_logging(log_file=Path(sys.argv[2]))
from devicectl.session.api import builtin_protocol, run_protocol_file
run_protocol_file(builtin_protocol("pore-patrol.toml"), operator_id="tech-kill",
                  auto_confirm=True, db=sys.argv[1])
"""


def _rf_delivering_recorded(db: Path) -> bool:
    if not db.exists():
        return False
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select count(*) from events where device = 'rf' and kind = 'state' "
                    "and data like '%delivering%'"
                )
            ).scalar()
        return bool(rows)  # delivering the first zone: the RF step is under way
    except sa.exc.OperationalError:
        return False  # schema not there yet
    finally:
        engine.dispose()


def test_kill_9_mid_rf_step_leaves_a_verifiable_record(tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(tmp_path / "child.jsonl")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60.0
        while not _rf_delivering_recorded(db):
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the child never reached the RF step"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    with RecordStore.open(db) as store:
        (session,) = store.list_sessions()
        assert session.outcome == "running"  # nobody closed it
        result = store.verify(session.id)[0]
        assert result.ok, result.describe()
        assert any("unfinished" in note for note in result.notes), result.notes
        events = store.events(session.id)
        assert len(events) == session.events  # the chain head matches what is stored
        # the session row's facts are chained (first event), its end is not (killed)
        assert events[0].kind == "session_started"
        assert events[0].data["operator_id"] == "tech-kill" and events[0].data["unattended"]
        assert "session_ended" not in {e.kind for e in events}
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        kinds = {(e.device, e.kind) for e in events}
        assert ("rf", "state") in kinds and ("session", "step_started") in kinds
        steps = {s.index: s for s in store.steps(session.id)}
        assert steps[3].kind == "rf" and steps[3].ended_s is None  # killed inside it

    # the next session on this store marks the killed one interrupted
    short = tmp_path / "short.toml"
    short.write_text(
        builtin_protocol("pore-patrol.toml").read_text(encoding="utf-8").split("[[step]]")[0]
        + '[[step]]\nkind = "manual"\ntitle = "Cleanse"\ninstructions = "Cleanse."\n',
        encoding="utf-8",
    )
    outcome = run_protocol_file(short, operator_id="tech-next", auto_confirm=True, db=str(db))
    assert outcome.outcome == "complete"
    with RecordStore.open(db, readonly=True) as store:
        assert store.session(session.id).outcome == "interrupted"
        interrupted = store.verify(session.id)[0]
        assert interrupted.ok, interrupted.describe()
        assert any("interrupted" in note for note in interrupted.notes), interrupted.notes


def test_eye_protection_confirmation_is_in_the_durable_record(tmp_path: Path) -> None:
    """H13's attestation is recorded like every operator action (rule 6): with who
    confirmed it, in the IPL step it was given for, inside the verified chain."""
    protocol = tmp_path / "ipl.toml"
    protocol.write_text(
        '[session]\nname = "IPL only"\nversion = "1"\n\n'
        '[[step]]\nkind = "ipl"\ntitle = "IPL"\nfilter_nm = 560\nfluence_j_cm2 = 12.0\n'
        "pulse_width_ms = 4.0\nflashes = 2\n",
        encoding="utf-8",
    )
    db = tmp_path / "r.sqlite"
    outcome = run_protocol_file(protocol, operator_id="tech-7", auto_confirm=True, db=str(db))
    assert outcome.outcome == "complete"
    with RecordStore.open(db, readonly=True) as store:
        assert store.verify(outcome.session_id)[0].ok
        confirmations = [
            e for e in store.events(outcome.session_id) if e.kind == "eye_protection_confirmed"
        ]
    assert len(confirmations) == 1
    (confirmed,) = confirmations
    assert confirmed.device == "ipl" and confirmed.step_index == 1
    assert confirmed.data["operator_id"] == confirmed.operator_id
    assert confirmed.operator_id == "auto", confirmed  # unattended: section 6, item 25


def test_a_faulted_step_is_recorded_as_fault_not_left_running(tmp_path: Path) -> None:
    """A device fault that ends the session must leave the step's fault in the record
    (safety rule 6: every state change recorded); it used to stay 'running' in the
    steps table, because a fault emitted no step_ended event."""
    db = tmp_path / "records.sqlite"
    outcome = run_protocol_file(
        builtin_protocol("pore-patrol.toml"),
        operator_id="tech-fault",
        auto_confirm=True,
        db=str(db),
        faults={"rf": ["runaway@40s"]},
    )
    assert outcome.outcome == "fault"
    with RecordStore.open(db, readonly=True) as store:
        steps = {s.index: s for s in store.steps(outcome.session_id)}
        assert steps[3].outcome == "fault"
        assert steps[3].ended_s is not None
        assert steps[3].result["fault"].startswith("rf: ")
        ended = [
            e.data
            for e in store.events(outcome.session_id)
            if e.kind == "step_ended" and e.data["step"] == 3
        ]
        assert [e["outcome"] for e in ended] == ["fault"]
        [verdict] = store.verify(outcome.session_id)
        assert verdict.ok, verdict.describe()


def test_the_recorded_protocol_hash_is_of_the_bytes_that_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read once: an edit between loading and hashing cannot make the
    record's SHA-256 name a protocol other than the one that ran."""
    protocol = tmp_path / "short.toml"
    text = (
        builtin_protocol("pore-patrol.toml").read_text(encoding="utf-8").split("[[step]]")[0]
        + '[[step]]\nkind = "manual"\ntitle = "Cleanse"\ninstructions = "Cleanse."\n'
    )
    protocol.write_text(text, encoding="utf-8")
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counting_read_bytes(self: Path) -> bytes:
        if self == protocol:
            reads.append(self)
            # what a second read would see: the file edited after it was loaded
            self.write_text(text.replace("Cleanse.", "Edited."), encoding="utf-8")
            return read_bytes(self) if len(reads) > 1 else text.encode("utf-8")
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)
    db = tmp_path / "r.sqlite"
    outcome = run_protocol_file(protocol, operator_id="tech-1", auto_confirm=True, db=str(db))
    assert outcome.outcome == "complete"
    assert len(reads) == 1
    with RecordStore.open(db, readonly=True) as store:
        recorded = store.session(outcome.session_id).protocol_sha256
    assert recorded == hashlib.sha256(text.encode("utf-8")).hexdigest()
