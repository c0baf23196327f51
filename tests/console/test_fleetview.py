"""FleetView and the poller: status mapping, change detection, ordering, SSE frames (pure, no I/O)."""

from __future__ import annotations

import pytest

from controller.web.fleetview import FleetView, Query, QueryError, console_status, parse_query
from controller.web.live import Hub, Poller


def rec(kid, state="online", mode="normal", devices=None, t=100.0, site="s"):
    return {"kiosk_id": kid, "site": site, "state": state, "mode": mode, "reason": "", "devices": devices or {},
            "last_seen": t, "state_since": t}


@pytest.mark.parametrize("record, status", [
    (rec("a"), "online"),
    (rec("a", state="stale"), "offline"),
    (rec("a", state="offline"), "offline"),
    (rec("a", state="unknown"), "offline"),
    (rec("a", mode="out_of_service"), "out_of_service"),
    (rec("a", mode="maintenance"), "out_of_service"),
    (rec("a", mode="safe"), "degraded"),
    (rec("a", devices={"printer": "error"}), "degraded"),
    (rec("a", devices={"printer": {"state": "idle", "required_action": "load paper"}}), "degraded"),
    (rec("a", devices={"printer": {"state": "unknown"}}), "degraded"),
    (rec("a", devices={"printer": "idle", "scanner": {"state": "busy", "required_action": ""}}), "online"),
    (rec("a", state="offline", devices={"printer": "error"}), "offline"),
])
def test_console_status(record, status):
    assert console_status(record) == status


class Source:
    def __init__(self, records):
        self.records = {r["kiosk_id"]: r for r in records}

    def all(self):
        return list(self.records.values())

    def changed(self, since):
        return [r for r in self.records.values() if r["last_seen"] > since or r["state_since"] > since]


def test_only_real_changes_are_published_and_order_is_kept():
    src = Source([rec("k-2", t=100), rec("k-1", t=100), rec("k-3", t=100, site="t")])
    view = FleetView(src.all, src.changed)
    hub = Hub()
    frames = []
    hub.publish = lambda event, data: frames.append((event, data))  # record what browsers would get
    poller = Poller(view, hub, interval=0.01)
    poller.step(full=True)
    assert [r["kiosk_id"] for r in view.list(Query())["items"]] == ["k-1", "k-2", "k-3"]
    frames.clear()
    src.records["k-2"] = {**src.records["k-2"], "last_seen": 150.0}  # telemetry: nothing an operator sees
    poller.step()
    assert frames == []
    src.records["k-2"] = {**src.records["k-2"], "state": "offline", "state_since": 160.0}
    poller.step()
    assert [e for e, _ in frames] == ["kiosk", "summary"]
    assert frames[0][1]["kiosk_id"] == "k-2" and frames[0][1]["status"] == "offline"
    assert frames[1][1]["offline"] == 1 and frames[1][1]["total"] == 3
    src.records["k-0"] = rec("k-0", t=170)
    poller.step()
    assert [r["kiosk_id"] for r in view.list(Query(sort="-kiosk_id"))["items"]] == ["k-3", "k-2", "k-1", "k-0"]
    assert [r["kiosk_id"] for r in view.list(Query(sort="status"))["items"]][0] == "k-2"
    assert view.sites()[0]["site"] == "s" and view.sites()[0]["offline"] == 1
    del src.records["k-3"]
    poller.step(full=True)
    assert view.get("k-3") is None and view.counts()["total"] == 3


def test_parse_query_defaults_and_errors():
    assert parse_query({}) == Query()
    assert parse_query({"page": "2", "size": "10", "status": "offline", "sort": "-site"}).page == 2
    with pytest.raises(QueryError, match="size"):
        parse_query({"size": "0"})
