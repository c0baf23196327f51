"""The app's service client shares the agent's MQTT connection (one session per kiosk on the broker);
the service backend's tables in the fleet database, SQLite or PostgreSQL."""

from __future__ import annotations

import pytest

from controller.fleet_db import FleetDb
from kiosk_ui.service_client import ServiceRefused, ServiceUnavailable
from kiosk_ui.service_client.over_mqtt import MqttServiceClient
from tests.conftest import BACKENDS

from .conftest import Raw, wait_until

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def test_service_calls_ride_on_the_agent_connection(broker, make_controller, make_kiosk, fleet_database):
    kiosk = make_kiosk("k-svc")
    seen: list[bool] = []
    svc = MqttServiceClient(kiosk.agent, on_presence=seen.append)
    assert not svc.online
    controller = make_controller(database=fleet_database)
    wait_until(lambda: seen == [True], 10, "controller seen online through the agent")
    assert svc.online
    ticket = svc.call("queue_ticket", "take", {"counter": "general"})
    assert ticket["number"].startswith("A")
    with pytest.raises(ServiceRefused) as err:
        svc.call("queue_ticket", "take", {"counter": "no-such-counter"})
    assert err.value.code == "bad_request"
    # A stray response (no correlation data, or not JSON) is ignored without harming the next call.
    raw = Raw(broker, "stray")
    try:
        raw.publish("kiosk/v1/k-svc/svc/response", b"not json")
        raw.publish("kiosk/v1/k-svc/svc/response", {"ok": True, "data": {}})
    finally:
        raw.close()
    assert svc.call("queue_ticket", "take", {"counter": "general"})["number"] != ticket["number"]
    # The controller going away is seen by the app (offline tickets) and calls say so at once.
    controller.stop()
    wait_until(lambda: seen == [True, False], 10, "controller seen offline")
    assert not svc.online
    with pytest.raises(ServiceUnavailable, match="controller is offline"):
        svc.call("queue_ticket", "take", {"counter": "general"})


def test_a_kiosks_first_ticket_is_numbered_in_its_own_sites_queue(make_controller, make_kiosk, fleet_database):
    """Regression (found by the parallel suite): the service thread answered a kiosk's first request
    before the worker had stored its birth, so the ticket went to no site's queue and the next
    resident at that centre got the same number. Each kiosk asks at once after it connects."""
    controller = make_controller(database=fleet_database)
    for i in range(6):
        kiosk = make_kiosk(f"k-first-{i}", site=f"centre-{i}", connect=False)
        svc = MqttServiceClient(kiosk.agent)
        wait_until(lambda svc=svc: svc.online, 10, "controller seen online through the agent")
        first = svc.call("queue_ticket", "take", {"counter": "general"})
        second = svc.call("queue_ticket", "take", {"counter": "general"})
        assert first["number"] != second["number"]
    conn = FleetDb.from_config(controller.config).connect(readonly=True)
    rows = conn.execute("SELECT kiosk_id, site FROM svc_tickets ORDER BY id").fetchall()
    conn.close()
    assert [(k, s) for k, s in rows] == [(f"k-first-{i}", f"centre-{i}") for i in range(6) for _ in range(2)]
