"""A fleet mid-roll-out: a kiosk still on the previous contract (``"v": 1``, today's shapes,
replayed byte for byte from ``tests/contract/previous_v1.json``) next to a kiosk on the current
one, against the current controller; and a kiosk on an unknown major, refused and counted."""

from __future__ import annotations

import json
from pathlib import Path

from contract import topics

from .conftest import wait_until

PREVIOUS = json.loads((Path(__file__).parents[1] / "contract" / "previous_v1.json").read_text(encoding="utf-8"))
OLD = "GD-OLD-1"  # the id the fixture was generated with


def _open(ctl, kiosk_id):
    return sorted((a["rule"], a["subject"]) for a in ctl.alarms(kiosk_id=kiosk_id)["items"])


def test_previous_version_kiosk_works_with_the_new_controller(make_controller, make_kiosk, raw):
    ctl = make_controller()
    new = make_kiosk("K-NEW", ctl.public_key())
    old = raw("old-kiosk")
    old.subscribe(f"kiosk/v1/{OLD}/cmd/+")

    def send(kind: str, body: dict, retain: bool = False) -> None:
        name = topics.topic(OLD, kind)
        old.publish(name, json.dumps(body).encode(), topics.QOS[topics.parse_topic(name)[1]], retain)

    send("status", PREVIOUS["birth"], retain=True)
    wait_until(lambda: (ctl.kiosk(OLD) or {}).get("state") == "online", 10, "old kiosk online")
    send("telemetry", PREVIOUS["telemetry"])
    send("events", PREVIOUS["event"])
    wait_until(lambda: ctl.events(kiosk_id=OLD, type="device_state")["total"] == 1, 10, "old event stored")

    # Both previous device shapes (headless runtime, Kivy device manager) raise the one right alarm.
    for shape in ("headless_printer", "kivy_printer"):
        for label, want in (("paper_out", [("paper_out", "printer")]), ("paper_ok", []),
                            ("paper_low", [("paper_low", "printer")]), ("paper_ok", []),
                            ("cover_open", [("cover_open", "printer")]), ("paper_ok", [])):
            send("devices/printer", PREVIOUS[shape][label], retain=True)
            wait_until(lambda w=want: _open(ctl, OLD) == w, 10, f"{shape} {label} -> {want}")

    send("config/reported", PREVIOUS["config_reported_applied"], retain=True)
    cid = ctl.send_command(OLD, "test_print", {}, "test")
    wire = old.wait_json(lambda t, b: t == f"kiosk/v1/{OLD}/cmd/test_print")
    assert wire["v"] == 1  # what a previous-version kiosk compares its version with
    send("cmd/test_print/result", {**PREVIOUS["cmd_result_ok"], "id": cid})
    assert ctl.wait_command(cid, 10)["status"] == "succeeded"

    # The new kiosk next to it is read the same way.
    wait_until(lambda: (ctl.kiosk("K-NEW") or {}).get("state") == "online", 10, "new kiosk online")
    assert new.agent.connected
    assert not ctl.stats().get("rejected")

    send("status", PREVIOUS["will"], retain=True)
    wait_until(lambda: (ctl.kiosk(OLD) or {}).get("state") == "offline", 10, "old kiosk's will read")


def test_unknown_major_is_refused_counted_and_named(make_controller, raw):
    ctl = make_controller()
    r = raw("future-kiosk")
    body = {**PREVIOUS["birth"], "v": "2.0", "kiosk_id": "GD-FUT-1"}
    r.publish(topics.topic("GD-FUT-1", "status"), json.dumps(body).encode(), 1, True)
    newer_minor = {**PREVIOUS["birth"], "v": "1.9", "kiosk_id": "GD-MIN-1", "new_field": {"x": 1}}
    r.publish(topics.topic("GD-MIN-1", "status"), json.dumps(newer_minor).encode(), 1, True)
    wait_until(lambda: (ctl.kiosk("GD-MIN-1") or {}).get("state") == "online", 10, "newer minor accepted")
    # Each batch's counts are kept once it committed, a moment after its rows are readable.
    wait_until(lambda: ctl.stats().get("refused_version:2.0") == 1, 10, "refusal counted by version")
    wait_until(lambda: ctl.stats().get("newer_minor") == 1, 10, "the newer minor counted")
    stats = ctl.stats()
    assert stats["rejected:unsupported_version"] == 1 and stats.get("newer_minor") == 1
    assert ctl.kiosk("GD-FUT-1") is None
