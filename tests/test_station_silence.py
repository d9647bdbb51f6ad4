"""The station's ``silence``: a console's pause of its alarm sound, recorded with the
operator's id and never longer than 120 s; and the session view's outcome fields
(each step's result, the sites) that a console client draws its summary from."""

from __future__ import annotations

import pytest
from test_station_service import PIN, PROTOCOL, Rig, rig  # noqa: F401 - the fixture

from devicectl.records.store import RecordStore
from devicectl.station.client import StationError

pytestmark = pytest.mark.timeout(180)  # the service and its devices start in real time


def test_a_silence_is_recorded_with_its_operator_and_is_time_limited(rig: Rig) -> None:  # noqa: F811
    service = rig.start()
    with rig.client() as client:
        with pytest.raises(StationError) as unsigned:
            client.call("silence", seconds=60)
        assert unsigned.value.code == -32001
        client.call("sign_in", operator_id="tech", pin=PIN)
        client.call("load_protocol", toml=PROTOCOL)
        session_id = client.call("start_session")["session_id"]
        assert client.call("silence", seconds=120) == {"silenced_s": 120.0}
        for bad in (600, -1, "long", True):
            with pytest.raises(StationError) as refused:
                client.call("silence", seconds=bad)
            assert refused.value.code == -32602, bad
        client.call("abort")
        client.wait_for(lambda s: (s.get("session") or {}).get("state") == "aborted")
        session = client.state["session"]
        assert session["ended_s"] is not None
        fields = {"site", "cem43", "time_at_target_s", "held_s", "peak_c", "attempts"}
        assert [s["site"] for s in session["sites"]] in ([], ["forehead"])
        assert all(set(s) == fields for s in session["sites"])
        assert [s["result"] for s in session["steps"]] == [""]  # no zone was completed
    assert service.terminate() == 0
    with RecordStore.open(rig.db) as store:
        silences = [
            e
            for e in store.events(session_id)
            if e.kind == "command"
            and isinstance(e.data, dict)
            and e.data.get("action") == "silence"
        ]
        assert len(silences) == 1 and silences[0].operator_id == "tech"
        assert silences[0].data["args"] == {"seconds": 120.0}
