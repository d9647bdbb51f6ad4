"""``devicectl report`` on a scripted real-time-like record: the loop clock starts at
machine uptime (594 s), an RF zone faults and is resumed, an IPL step flashes, an
LED step is loaded but never runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devicectl.control.events import Alarm, AlarmPriority, Event
from devicectl.records import RecordStore, RecordWriter
from devicectl.report import render_report

T0 = 594.0  # a real-time session's loop clock is the machine's uptime


@pytest.fixture
def page(tmp_path: Path) -> str:
    with RecordStore.open(str(tmp_path / "r.sqlite")) as store:
        sid = store.begin_session(
            protocol_name="Pore Patrol", operator_id="tech-042", unattended=False, t_s=T0
        )
        w = RecordWriter(store, sid)
        w.begin_step(1, "rf", "RF zones", T0 + 1.0)
        zone = {"name": "forehead", "target_c": 42.0, "hold_s": 60.0}
        w.append_event(
            Event(T0 + 1.0, "command", "rf", {"action": "load", "args": {"zone": zone}}),
            step_index=1,
        )
        for i in range(200):
            t = T0 + 1.0 + i * 0.1
            for ch, v in (("skin1_c", 33.0 + i * 0.05), ("skin2_c", 33.1 + i * 0.05)):
                w.append_trace(t, "rf", ch, v, step_index=1)
            w.append_trace(t, "rf", "target_c", 42.0, step_index=1)
            w.end_tick()
        alarm = Alarm(
            "rf", "rf.runaway", AlarmPriority.HIGH, "skin rising 2.4 degC/s", True, 2.4, 2.0
        )
        reading = {"skin1_c": 42.9, "skin2_c": 43.0, "power_w": 31.5, "t_s": T0 + 21.0}
        w.append_event(
            Event(T0 + 21.0, "alarm", "rf", {"alarm": alarm, "reading": reading}), step_index=1
        )
        result = {
            "name": "forehead",
            "time_to_target_s": 18.0,
            "peak_c": 43.1,
            "site_held_s": 2.0,
            "site_time_at_target_s": 3.0,
            "site_cem43": 0.12,
        }
        w.append_event(Event(T0 + 21.0, "zone_result", "rf", {"result": result}), step_index=1)
        w.end_step(1, "fault", T0 + 21.0, {"zones": []})
        w.begin_step(2, "ipl", "IPL pass", T0 + 30.0)
        for k, got in enumerate((12.0, 11.0, 13.5)):
            rec = {"set_fluence_j_cm2": 12.0, "delivered_j_cm2": got}
            w.append_event(Event(T0 + 30.0 + k, "flash", "ipl", {"record": rec}), step_index=2)
        w.end_step(2, "complete", T0 + 33.0, {"flashes_done": 3})
        w.begin_step(3, "led", "Red LED", T0 + 40.0)
        plan = {"duration_s": 1200.0, "irradiance_mw_cm2": 100.0, "wavelength_nm": 633}
        w.append_event(
            Event(T0 + 40.0, "command", "led", {"action": "load", "args": {"step": plan}}),
            step_index=3,
        )
        w.append_trace(T0 + 40.0, "led", "dose_j_cm2", 0.0, step_index=3)
        w.end_step(3, "aborted", T0 + 40.5, None)
        w.end_tick()
        w.close("fault")
        return render_report(store, sid)


def _alts(page: str) -> list[str]:
    return re.findall(r"<img alt='([^']*)'", page)


def test_signoff_summary_comes_first(page: str) -> None:
    first = page.index("Summary for sign-off")
    assert first < page.index("<h2>Steps")
    summary = page[first : page.index("</section>")]
    assert ">fault<" in summary and "tech-042" in summary and "attended (" in summary
    assert "events chain verified (" in summary  # exactly what verify covered
    # the fault, with the reading of the tick that raised it
    assert "rf.runaway" in summary and "2.4 (limit 2)" in summary
    assert "skin1_c=42.9" in summary and "power_w=31.5" in summary


def test_times_are_session_time_not_uptime(page: str) -> None:
    assert "00:21" in page  # the fault, 21 s into the session
    assert "594" not in re.sub(r"data:image/png;base64,[^']*", "", page)
    rf_alt = next(a for a in _alts(page) if a.startswith("RF zone forehead"))
    assert "session time 00:01 to 00:21" in rf_alt


def test_step_results(page: str) -> None:
    text = re.sub(r"<[^>]+>", "|", page)
    # RF per site: time to target, time at target, held, peak, CEM43
    assert "|forehead||18.0||3.0||2.0||43.1||0.12||1|" in text
    # IPL: flashes, set, delivered mean / min / max, mean and worst deviation
    assert "|3||12||12.17||11.00||13.50||+1.4%||+12.5%|" in text
    # LED: it never ran, so no result row and no plot
    assert "LED results" not in page and "LED dose" not in page


def test_plots_have_legends_and_real_alt_text(page: str) -> None:
    alts = _alts(page)
    assert len(alts) == 2  # the RF zone and the IPL step; nothing for the LED step
    ipl = next(a for a in alts if a.startswith("IPL"))
    assert "3 flashes" in ipl and "11.00 to 13.50" in ipl and "3 of 3 within the band" in ipl
    for alt in alts:
        assert len(alt) > 80 and re.search(r"\d", alt)


def test_legend_covers_a_twin_axis() -> None:
    import matplotlib.pyplot as plt

    from devicectl.plots import legend

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="dose")
    ax2 = ax.twinx()
    ax2.plot([0, 1], [1, 0], label="irradiance")
    legend(ax, ax2)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert texts == ["dose", "irradiance"]
