"""The session's identity and outcome on the console: its id, its elapsed time, and
at the end a summary per step and per site with the record's id, the same in
process and as a station client."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from console_helpers import answer_prompt, make_app, screen_text, sign_in, wait_for

from devicectl.console.panels import render_session_line, render_summary
from devicectl.console.remote import session_from
from devicectl.console.snapshot import SessionView, Snapshot, StepView
from devicectl.panel_style import mmss
from devicectl.station.desk import StationDesk, plain

PROTOCOL = """
[session]
name = "Forehead only"
version = "1.0"

[[step]]
kind = "manual"
title = "Cleanse"
instructions = "Cleanse and dry the forehead."

[[step]]
kind = "rf"
title = "RF forehead"
target_c = 42.0
hold_s = 20

[[step.zones]]
name = "forehead"
"""


def test_the_end_of_a_session_shows_each_step_each_site_and_the_record(tmp_path: Path) -> None:
    protocol = tmp_path / "forehead.toml"
    protocol.write_text(PROTOCOL, encoding="utf-8")
    app = make_app(tmp_path / "records.sqlite", protocol=protocol)
    shown: dict[str, str] = {}

    async def scenario() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await sign_in(pilot, app)
            session_id = app.backend.session_id
            assert session_id is not None
            line = render_session_line(app.snapshot).plain
            assert re.match(rf"session {session_id[:8]}  \d\d:\d\d  Forehead only", line), line
            for action in ("confirm", "arm", "start"):
                await answer_prompt(pilot, app, action)

            def over() -> bool:
                s = app.snapshot.session if app.snapshot is not None else None
                return s is not None and s.finished

            await wait_for(pilot, over, timeout_s=60.0)
            await pilot.pause(0.2)
            shown["screen"] = screen_text(app)
            shown["line"] = render_session_line(app.snapshot).plain

    asyncio.run(scenario())
    session = app.snapshot.session if app.snapshot is not None else None
    assert session is not None and session.state == "complete"
    session_id = app.backend.session_id
    assert session_id is not None and session.session_id == session_id
    screen = shown["screen"]
    assert f"SESSION COMPLETE  record {session_id}" in screen
    assert "1. Cleanse [manual] complete: confirmed by tech-042" in screen
    assert "2. RF forehead [rf] complete: forehead:" in screen
    assert "s to target, peak" in screen and "CEM43" in screen
    site = session.sites[0]
    assert site.site == "forehead" and site.time_at_target_s > 0 and site.cem43 > 0
    assert f"site forehead: {site.time_at_target_s:.0f} s at target, peak" in screen
    # the elapsed time stops at the session's end
    assert session.ended_s is not None and session.started_s is not None
    elapsed = session.ended_s - session.started_s
    later = Snapshot(session.ended_s + 600.0, 0, session)
    assert render_session_line(later).plain == shown["line"]
    assert f"  {mmss(elapsed)}  " in shown["line"]

    # A console that is a station client shows the same: the station's session view,
    # through JSON, read back by the client.
    desk = StationDesk(app.backend.station.loop, lambda *a: None)  # type: ignore[arg-type, return-value]
    desk.runner = app.backend.desk.runner
    desk.session_id = session_id
    data = json.loads(json.dumps(plain(desk.session_view())))
    remote = session_from(data)
    assert remote is not None
    assert render_summary(remote).plain == render_summary(session).plain
    assert remote.steps == session.steps and remote.session_id == session_id
    assert [s.site for s in remote.sites] == [s.site for s in session.sites]


def test_each_modality_s_result_is_its_summary_line() -> None:
    steps = (
        StepView(1, "IPL pass", "ipl", "complete", "40 flashes, 9.8-10.2 J/cm2"),
        StepView(2, "Red LED", "led", "complete", "600 s, 54.0 J/cm2"),
        StepView(3, "Mask", "manual", "pending"),
    )
    session = SessionView("P", "tech-042", "aborted", 0, None, None, None, steps)
    text = render_summary(session).plain
    assert "SESSION ABORTED  not recorded" in text
    assert "1. IPL pass [ipl] complete: 40 flashes, 9.8-10.2 J/cm2" in text
    assert "2. Red LED [led] complete: 600 s, 54.0 J/cm2" in text
    assert text.endswith("3. Mask [manual] pending")
    assert render_summary(SessionView("P", "t", "running", 1, None, None, None, steps)).plain == ""
