"""Property: whatever parameters or body an integrator sends, the API answers 2xx or 4xx, never 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PARAM_KEYS = st.sampled_from(["q", "status", "site", "group", "sort", "page", "size", "limit", "state", "from", "to",
                              "hours", "kiosk_id", "x"])
VALUES = st.one_of(st.text(max_size=30), st.integers(-10**12, 10**12).map(str), st.sampled_from(
    ["offline", "-site", "0", "500", "501", "2026-02-30", "", "%00", "' OR 1=1 --"]))
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=4)), max_leaves=12)
PATHS = ["/api/v1/kiosks", "/api/v1/alarms", "/api/v1/reports", "/api/v1/audit", "/api/v1/kiosks/gd-0001/events",
         "/api/v1/kiosks/gd-0001/telemetry", "/api/v1/kiosks/gd-0001/commands", "/api/v1/sites", "/fleet", "/reports"]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(path=st.sampled_from(PATHS), params=st.dictionaries(PARAM_KEYS, VALUES, max_size=4))
def test_queries_never_500(clients, path, params):
    r = clients["vera"].get(path, params=params)
    assert r.status_code < 500, (path, params, r.text[:200])


@FUZZ
@given(body=JSON, path=st.sampled_from(["/api/v1/kiosks/gd-0001/commands", "/api/v1/alarms/1/ack",
                                        "/api/v1/config/fleet", "/api/v1/config/kiosk/gd-0001"]))
def test_bodies_never_500(clients, body, path):
    c = clients["ada"]
    send = c.put if "/config/" in path else c.post
    r = send(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code < 500 or r.status_code == 503, (path, body, r.text[:200])
    assert "error" in r.json() or r.status_code < 300
