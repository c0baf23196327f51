"""The contract's builders, parsers and version rules, without a broker.

Every builder's output goes through the same ``topics.parse`` the controller runs; the previous
version's payloads (``previous_v1.json``, generated from the code before the redesign) must still
parse; any bytes give a model or a RemoteProtocolError, never another exception.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import commands, device_status, payloads, services, topics, versions, vocab
from contract.device_status import DeviceDetail
from contract.versions import UnsupportedVersion
from foundation.errors import CommandRejected, RemoteProtocolError

PREVIOUS = json.loads(Path(__file__).with_name("previous_v1.json").read_text(encoding="utf-8"))
K = "GD-OLD-1"  # the kiosk id the previous-version fixture was generated with


def _parse(kind: str, body: dict) -> topics.Parsed:
    return topics.parse(f"kiosk/v1/{K}/{kind}", topics.encode(body))


def test_every_builder_round_trips_through_the_controllers_parser():
    birth = _parse("status", payloads.birth(K, mode="safe", boot_id="b1", site="s1", versions={"agent": "1"},
                                            devices=["printer"], ts=5.0)).model
    assert (birth.state, birth.mode, birth.site, birth.devices) == ("online", "safe", "s1", ("printer",))
    will = _parse("status", payloads.offline(K, "b1", "lwt")).model
    assert (will.state, will.reason, will.boot_id) == ("offline", "lwt", "b1")
    tel = _parse("telemetry", payloads.telemetry(
        K, ts=1.0, uptime=2.0, cpu=3.0, memory=None, disk=4.0, temperature=None, enclosure_temperature=56.5,
        devices={"printer": "idle"}, queue_depth=0, mode="normal")).model
    assert tel.get("enclosure_temperature") == 56.5 and tel.devices == {"printer": "idle"}
    ev = _parse("events", payloads.event(K, event_id="e1", boot_id="b1", seq=3, ts=1.0, type="device_state",
                                         fields={"device": "printer"})).model
    assert (ev.id, ev.seq, ev.type, ev.get("device")) == ("e1", 3, "device_state", "printer")
    rep = _parse("config/reported", payloads.config_reported(K, version=None, status="rejected", config={},
                                                             reason="volume: bad")).model
    assert (rep.version, rep.status, rep.reason) == (None, "rejected", "volume: bad")
    res = _parse("cmd/test_print/result", commands.result("c1", K, "rejected", reason="no_key", error="x")).model
    assert (res.id, res.status, res.reason, res.error) == ("c1", "rejected", "no_key", "x")
    st_ = device_status.build("idle", device_status.printer_detail(known=True, paper="out", cover_open=False))
    dev = _parse("devices/printer", device_status.body(K, st_)).model
    assert dev == st_ and (dev.state, dev.fault, dev.required_action) == ("error", "paper_out", "load_paper")


def test_builders_refuse_words_outside_the_vocabulary():
    with pytest.raises(ValueError):
        payloads.birth(K, mode="sleepy", boot_id="b", site="", versions={}, devices=[], ts=0.0)
    with pytest.raises(ValueError):
        payloads.offline(K, "b", "crash")
    with pytest.raises(ValueError):
        commands.result("c1", K, "great")
    with pytest.raises(ValueError):
        device_status.build("fine", DeviceDetail())
    with pytest.raises(ValueError):
        payloads.event(K, event_id="e", boot_id="", seq=1, ts=0.0, type="x", fields={"seq": 2})


@pytest.mark.parametrize("shape", ["headless_printer", "kivy_printer"])
def test_previous_device_shapes_read_as_one_model(shape):
    got = {label: _parse("devices/printer", body).model for label, body in PREVIOUS[shape].items()}
    assert {k: (m.state, m.fault, m.get("paper"), m.get("cover")) for k, m in got.items()} == {
        "paper_ok": ("idle", "", "full", "closed"), "paper_low": ("idle", "", "low", "closed"),
        "paper_out": ("error", "paper_out", "out", "closed"), "cover_open": ("error", "cover_open", "full", "open")}
    assert got["paper_ok"].required_action is None  # null stays null, never the text "None"
    assert got["paper_low"].required_action == "bring_paper"


def test_every_previous_payload_still_parses():
    kinds = {"birth": "status", "will": "status", "shutdown": "status", "telemetry": "telemetry",
             "event": "events", "config_reported_applied": "config/reported",
             "config_reported_rejected": "config/reported", "cmd_result_ok": "cmd/set_mode/result",
             "cmd_result_rejected": "cmd/reboot/result", "svc_request": "svc/request"}
    for key, kind in kinds.items():
        body = PREVIOUS[key]
        parsed = topics.parse(f"kiosk/v1/{K}/{kind}", json.dumps(body).encode())
        assert parsed.version == (1, 0), key
    assert services.parse_request(PREVIOUS["svc_request"]).op == "take"


def test_versions_newer_minor_accepted_unknown_fields_ignored_other_major_refused():
    body = {"state": "online", "kiosk_id": K, "mode": "normal", "boot_id": "b", "hologram": {"x": 1}}
    parsed = topics.parse(f"kiosk/v1/{K}/status", topics.encode(body, "1.7"))
    assert parsed.version == (1, 7) and parsed.model.state == "online"
    with pytest.raises(UnsupportedVersion) as exc:
        topics.parse(f"kiosk/v1/{K}/status", topics.encode(body, "2.0"))
    assert exc.value.version == "2.0" and "unsupported contract version" in str(exc.value)
    for bad in ("1", "one", "1.2.3", True, None, -1):
        with pytest.raises(RemoteProtocolError):
            versions.check({"v": bad})
    assert versions.parse_version(1) == (1, 0) and versions.parse_version("1.1") == (1, 1)


def test_a_previous_fault_word_alone_still_says_the_fault():
    model = _parse("devices/printer", {"v": 1, "state": "error", "detail": "paper_out", "required_action": "x"}).model
    assert (model.fault, model.get("paper"), model.required_action) == ("paper_out", "out", "load_paper")


def test_a_newer_minor_device_word_reads_as_unknown_never_fine():
    raw = {"v": "1.9", "state": "error", "detail": {"paper": "singed", "cover": "closed"}}
    model = _parse("devices/printer", raw).model
    assert model.get("paper") == "unknown" and model.state == "error"
    assert device_status.parse({"state": "idle", "hold_s": float("inf")}).get("hold_s") is None


def test_command_body_built_by_the_controller_is_read_by_the_kiosk():
    cmd = {"id": "abcdefgh", "kiosk_id": K, "name": "set_mode", "issued_at": 1.0, "expires_at": 9.0,
           "issuer": "op", "args": {"mode": "safe"}}
    wire = commands.wire_body(cmd)
    assert wire["v"] == versions.TO_KIOSK  # every kiosk of major 1 reads it, 1.0 ones included
    body = commands.parse(f"kiosk/v1/{K}/cmd/set_mode", json.dumps(wire).encode(), K)
    with pytest.raises(CommandRejected, match="mode"):
        commands.check_args("set_mode", body["args"])  # safe is entered by the kiosk, never commanded
    with pytest.raises(CommandRejected) as exc:
        commands.parse(f"kiosk/v1/{K}/cmd/set_mode", json.dumps({**wire, "v": "2.0"}).encode(), K)
    assert exc.value.reason == "unsupported_version"
    assert set(commands.SPECS) == set(vocab.COMMANDS)


def test_service_answers_round_trip():
    assert services.parse_response(services.answer({"a": 1})) == services.ServiceResponse(True, {"a": 1})
    refused = services.parse_response(services.refusal("slot_full", "full"))
    assert (refused.ok, refused.error, refused.message) == (False, "slot_full", "full")
    with pytest.raises(RemoteProtocolError):
        services.parse_request({"service": "queue", "op": "take", "args": []})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["state", "detail", "paper", "cover", "tamper", "required_action",
                                        "temperature", "hold_s", "fault"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                                 st.text(max_size=12), st.dictionaries(st.text(max_size=8), st.text(max_size=8),
                                                                       max_size=3))))
def test_any_device_body_gives_a_model_or_a_protocol_error(raw):
    try:
        model = device_status.parse(raw)
    except RemoteProtocolError:
        return
    assert model.state in vocab.DEVICE_STATES and model.fault in vocab.FAULTS
    assert model.required_action is None or model.required_action in vocab.REQUIRED_ACTIONS
